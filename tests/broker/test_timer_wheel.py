"""The on-disk timing wheel alone: slots, lists, cutting back to a checkpoint, retention, lost files."""

from __future__ import annotations

import os

from mq.broker.schedule.timer_wheel import UNIT, UNIT_MAGIC, UNIT_SIZE, TimerWheel
from tests.support.logs import logged_lines

P = 1000
T0 = 1_700_000_000_000  # a multiple of the precision


def opened(tmp_path, slots=16, file_units=1 << 20, end=0, files=None, fired_before=0) -> TimerWheel:
    wheel = TimerWheel(str(tmp_path / "timer"), P, slots, file_units)
    if not wheel.open(end, files or {}, fired_before):
        assert end == 0 or not files, "a fresh wheel only where nothing was expected"
    return wheel


def phys(wheel, slot_ms):
    return [u[3] for u in wheel.walk(slot_ms)[0]]


def test_slot_of_rounds_up_so_nothing_fires_early():
    wheel = TimerWheel("/nonexistent", P, 16)
    assert [wheel.slot_of(t) for t in (T0, T0 + 1, T0 + 999, T0 + 1000)] == [T0, T0 + P, T0 + P, T0 + P]


def test_a_slot_lists_its_units_newest_first_and_only_its_own(tmp_path):
    wheel = opened(tmp_path)
    for phy, slot in ((1, T0), (2, T0 + P), (3, T0), (5, T0)):
        wheel.link(slot, slot, phy, 10)
    assert phys(wheel, T0) == [5, 3, 1]
    assert phys(wheel, T0 + P) == [2]
    assert phys(wheel, T0 + 2 * P) == []
    # T0 + 16 s shares T0's slot (16 slots); it is linked once T0 has fired (it is beyond the span before):
    # walking it never yields T0's units, which stay in the list behind it.
    wheel.link(T0 + 16 * P, T0 + 16 * P, 4, 10)
    assert phys(wheel, T0 + 16 * P) == [4]
    assert phys(wheel, T0 + 32 * P) == []


def test_a_walk_goes_on_from_where_it_stopped(tmp_path):
    wheel = opened(tmp_path)
    for phy in range(10):
        wheel.link(T0, T0, phy, 10)
    first, nxt = wheel.walk(T0, None, 4)
    rest, end = wheel.walk(T0, nxt, 100)
    assert [u[3] for u in first + rest] == list(range(9, -1, -1))
    assert end == -1


def test_a_unit_pointing_forward_ends_the_walk_never_loops(tmp_path, log_events):
    wheel = opened(tmp_path)
    for phy in (1, 2, 3):
        wheel.link(T0, T0, phy, 10)
    fd, rel = wheel._file(UNIT_SIZE)  # the second unit: damaged to point at the newest (a loop)
    os.pwrite(fd, UNIT.pack(2 * UNIT_SIZE, T0, T0, 2, 10, UNIT_MAGIC), rel)
    assert phys(wheel, T0) == [3, 2]
    assert logged_lines(log_events, "points forward")


def test_cut_takes_every_slot_back_to_the_checkpoint(tmp_path):
    wheel = opened(tmp_path, file_units=4)
    for phy in range(5):
        wheel.link(T0 + (phy % 2) * P, T0, phy, 10)
    end = wheel.end
    before = (phys(wheel, T0), phys(wheel, T0 + P))
    for phy in range(5, 14):  # after the checkpoint, across two new files, some into a third slot
        wheel.link(T0 + (phy % 3) * P, T0, phy, 10)
    wheel.close()

    wheel = opened(tmp_path, file_units=4, end=end, files={0: T0 + P, 4 * UNIT_SIZE: T0 + P})
    assert wheel.cut(end) == 9
    assert (phys(wheel, T0), phys(wheel, T0 + P), phys(wheel, T0 + 2 * P)) == (*before, [])
    assert sorted(os.listdir(wheel.log_dir)) == [f"{0:020d}", f"{4 * UNIT_SIZE:020d}"]
    wheel.link(T0 + 2 * P, T0, 99, 10)  # linking goes on at the checkpoint's end
    assert phys(wheel, T0 + 2 * P) == [99] and wheel.end == end + UNIT_SIZE


def test_release_deletes_only_files_whose_slots_all_fired(tmp_path):
    wheel = opened(tmp_path, file_units=2)
    for i, slot in enumerate((T0, T0 + P, T0 + 5 * P, T0 + 2 * P, T0 + 3 * P)):
        wheel.link(slot, slot, i, 10)
    assert wheel.release(T0 + 2 * P) == [0]  # file 1 holds T0 + 5 s, file 2 is being written
    assert wheel.release(T0 + 6 * P) == [2 * UNIT_SIZE]
    assert phys(wheel, T0 + 3 * P) == [4]


def test_a_missing_file_or_another_precision_asks_for_a_rebuild(tmp_path):
    wheel = opened(tmp_path, file_units=2)
    for i in range(5):
        wheel.link(T0 + 5 * P, T0, i, 10)
    end, files = wheel.end, dict(wheel.file_last_slot)
    wheel.close()
    os.unlink(os.path.join(wheel.log_dir, f"{2 * UNIT_SIZE:020d}"))
    again = TimerWheel(str(tmp_path / "timer"), P, 16, 2)
    assert not again.open(end, files, T0)
    assert again.end == 0 and phys(again, T0 + 5 * P) == []
    again.close()
    other = TimerWheel(str(tmp_path / "timer"), 500, 32, 2)
    assert not other.open(0, {}, T0)
    other.close()


def test_files_of_fired_slots_may_be_gone(tmp_path):
    wheel = opened(tmp_path, file_units=2)
    for i, slot in enumerate((T0, T0, T0 + 9 * P, T0 + 9 * P)):
        wheel.link(slot, slot, i, 10)
    end, files = wheel.end, dict(wheel.file_last_slot)
    wheel.close()
    os.unlink(os.path.join(wheel.log_dir, f"{0:020d}"))  # released after the checkpoint was written
    again = TimerWheel(str(tmp_path / "timer"), P, 16, 2)
    assert again.open(end, files, T0 + P)
    assert phys(again, T0 + 9 * P) == [3, 2]
