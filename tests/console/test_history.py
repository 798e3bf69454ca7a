"""The dashboard's per-day history (mq.console.history): points per step, appended to day files once, read back,
pruned and bounded. A ``task.Clock`` drives time; the files are real."""

from __future__ import annotations

import os
import time

from twisted.internet import task

from mq.console import history as hist
from mq.console.history import DayHistory, day_of, read_day_file


def noon(days_ago: int = 0) -> float:
    """Seconds at local noon some days ago (a day boundary is never near)."""
    t = time.localtime()
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday - days_ago, 12, 0, 0, 0, 0, -1))


def made(directory, clock, step=60.0, days=3, brokers=4, topics=2) -> DayHistory:
    if clock.seconds() == 0:
        clock.advance(noon())
    h = DayHistory(str(directory) if directory else None, clock, step, days, brokers, topics)
    h.start()
    return h


def at(clock: task.Clock, seconds: float) -> float:
    clock.advance(seconds - clock.seconds())
    return seconds * 1000


def file_of(directory, day: str):
    return directory / f"{day}.jsonl"


def written(directory, day: str, step_ms: float = 60_000.0):
    return read_day_file(str(file_of(directory, day)), step_ms, 100, 100)


def test_finished_steps_are_appended_once_a_minute_and_read_back_after_a_restart(tmp_path):
    clock = task.Clock()
    start = noon()
    h = made(tmp_path, clock)
    h.add(at(clock, start), {"b/1": (10.0, 5.0)}, {"T": 3.0})
    h.add(at(clock, start + 20), {"b/1": (12.0, 6.0)}, {"T": 4.0})  # same minute: replaces the point
    assert h.brokers["b/1"] == [[(start + 20) * 1000, 12.0, 6.0]]
    assert not file_of(tmp_path, h.day).exists()  # written once a minute, not every round
    h.add(at(clock, start + 61), {"b/1": (14.0, 7.0)}, {"T": 5.0})
    brokers, topics = written(tmp_path, h.day)
    assert brokers["b/1"] == [[(start + 20) * 1000, 12.0, 6.0]]  # the finished step only: the open one may change
    assert topics["T"] == [[(start + 20) * 1000, 4.0]]
    lines_after_first_write = file_of(tmp_path, h.day).read_text().count("\n")
    h.add(at(clock, start + 130), {"b/1": (1.0, 1.0)}, {})
    h.stop()  # the stop writes the rest, the open step's point too
    text = file_of(tmp_path, h.day).read_text()
    assert text.count("\n") == lines_after_first_write + 3  # each point appended once: b at 61 and 130, T at 61
    again = made(tmp_path, task.Clock())
    assert [p[0] for p in again.brokers["b/1"]] == [(start + s) * 1000 for s in (20, 61, 130)]
    assert again.kept_days() == [h.day]
    again.add(at(again.clock, start + 150), {"b/1": (2.0, 2.0)}, {})  # the same step as the last point read
    again.stop()
    assert written(tmp_path, h.day)[0]["b/1"][-1] == [(start + 150) * 1000, 2.0, 2.0]  # the newer one wins


def test_a_new_day_writes_the_old_one_and_prunes_days_past_the_bound(tmp_path):
    for days_ago in (6, 5, 4, 3):  # 4 to 6: before the 3 days kept, counted back from the clock's day (yesterday)
        file_of(tmp_path, day_of(noon(days_ago) * 1000)).write_text('["t","T",1,1]\n')
    (tmp_path / "notes.txt").write_text("not ours")
    clock = task.Clock()
    clock.advance(noon(1))
    h = made(tmp_path, clock)
    kept = file_of(tmp_path, day_of(noon(3) * 1000)).name
    assert sorted(os.listdir(tmp_path)) == [kept, "notes.txt"]  # older days are gone, nothing else is touched
    yesterday = h.day
    h.add(at(clock, noon(1)), {"b/1": (1.0, 2.0)}, {"T": 1.0})
    h.add(at(clock, noon(0)), {"b/1": (3.0, 4.0)}, {})
    assert written(tmp_path, yesterday)[0]["b/1"] == [[noon(1) * 1000, 1.0, 2.0]]  # its open point too
    assert h.brokers == {"b/1": [[noon(0) * 1000, 3.0, 4.0]]} and h.topics == {}
    assert h.kept_days() == [h.day, yesterday] and not (tmp_path / kept).exists()  # pruned at the day's change
    brokers, topics = h.read(yesterday).result
    assert brokers["b/1"][0][1:] == [1.0, 2.0] and topics["T"][0][1] == 1.0
    assert h.read("2001-01-01").result == ({}, {})


def test_lines_points_and_files_are_bounded(tmp_path, monkeypatch):
    clock = task.Clock()
    start = noon()
    h = made(tmp_path, clock, step=1, brokers=2, topics=1)
    monkeypatch.setattr(hist, "MAX_POINTS", 5)
    for i in range(8):
        h.add(at(clock, start + i), {"b/1": (i, i), "b/2": (i, i), "b/3": (i, i)}, {"T1": i, "T2": i})
    assert sorted(h.brokers) == ["b/1", "b/2"] and list(h.topics) == ["T1"]  # lines past the caps not kept
    assert [p[1] for p in h.brokers["b/1"]] == [3, 4, 5, 6, 7]  # the oldest points go first
    h.add(at(clock, start + 9), {"x" * (hist.MAX_LABEL + 1): (1, 1)}, {})
    assert len(h.brokers) == 2
    h.stop()
    assert [p[1] for p in read_day_file(str(file_of(tmp_path, h.day)), 1000, 2, 1)[0]["b/1"]] == [3, 4, 5, 6, 7]
    monkeypatch.setattr(hist, "MAX_FILE_BYTES", 100)
    big = made(tmp_path, task.Clock())
    assert big.brokers == {}  # too big to read: today starts anew (logged)


def test_lines_not_in_shape_are_skipped(tmp_path):
    clock = task.Clock()
    clock.advance(noon())
    t = noon() * 1000
    file_of(tmp_path, day_of(t)).write_text("\n".join([
        f'["b","b/1",{t},1,2]', "{not json", '["b","b/1",1,2]', f'["x","b/1",{t},1,2]', f'["t","T",{t},"fast"]',
        f'["t","T",{t},NaN]', f'[1,2,{t},3]', f'["t","T",{t + 60_000},7]', '["b","b/2",17', "[" * 200_000, ""]))
    h = made(tmp_path, clock)
    assert h.brokers == {"b/1": [[t, 1.0, 2.0]]} and h.topics == {"T": [[t + 60_000, 7.0]]}


def test_without_a_directory_only_today_is_kept_in_memory():
    clock = task.Clock()
    h = made(None, clock)
    h.add(at(clock, noon()), {"b/1": (1.0, 1.0)}, {})
    h.stop()
    assert h.kept_days() == [h.day] and h.brokers["b/1"]
    assert h.read("2001-01-01").result == ({}, {})


def test_a_directory_that_cannot_be_made_turns_keeping_off(tmp_path):
    (tmp_path / "file").write_text("x")
    h = made(tmp_path / "file" / "sub", task.Clock())
    assert h.directory is None


def test_an_earlier_day_too_big_reads_as_empty(tmp_path, monkeypatch):
    yesterday = day_of(noon(1) * 1000)
    file_of(tmp_path, yesterday).write_text('["t","T",1,1]\n' * 10)
    monkeypatch.setattr(hist, "MAX_FILE_BYTES", 20)
    h = made(tmp_path, task.Clock())
    assert yesterday in h.kept_days() and h.read(yesterday).result == ({}, {})


def test_a_days_file_stops_growing_at_its_bound_and_stays_readable(tmp_path, monkeypatch):
    monkeypatch.setattr(hist, "MAX_FILE_BYTES", 200)
    clock = task.Clock()
    start = noon()
    h = made(tmp_path, clock, step=1)
    for i in range(20):
        h.add(at(clock, start + i * 61), {"b/1": (i, i)}, {})  # a minute apart: a write each time
    h.stop()
    path = file_of(tmp_path, h.day)
    assert 0 < path.stat().st_size <= 200
    assert len(h.brokers["b/1"]) == 20  # memory keeps the day; only the file stopped
    again = made(tmp_path, task.Clock(), step=1)
    assert 0 < len(again.brokers["b/1"]) < 20
