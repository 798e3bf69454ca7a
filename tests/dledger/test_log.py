"""``RaftLog`` over a real ``DurableLog``: bodies held up to the budget and only once applied, older ones read
back from the files exactly; recovery through a small window keeps what a full read keeps."""

from __future__ import annotations

import os

import pytest

from mq.dledger import store as store_module
from mq.dledger.log import MemoryLog, RaftLog, TermRuns
from mq.dledger.messages import Entry
from mq.dledger.store import DurableLog


def _entries(n, first=1, term=1, size=100):
    return [Entry(i, term, bytes([i % 251]) * (size + i % 7)) for i in range(first, first + n)]


def _written(log: RaftLog, entries):
    """Append to the core's log and the store, as the driver does, then fsync."""
    log.append(entries)
    log.store.append(entries)
    log.store.sync()


def test_bodies_leave_memory_only_once_applied_and_within_the_budget(tmp_path):
    log = RaftLog.from_store(DurableLog(str(tmp_path), 4096), cache_bytes=1000)
    entries = _entries(50)
    _written(log, entries)
    assert log.cached_bytes > 5000 and log.cache_first == 1  # nothing applied: everything stays
    log.release(30)
    assert log.cache_first == 31  # the 20 unapplied ones stay, over the budget
    log.release(50)
    assert log.cached_bytes <= 1000 and log.cache_first > 40
    assert log.disk_reads == 0
    assert log.entries() == entries
    assert log.slice(3, 5, 10_000) == entries[2:7]
    assert log.slice(3, 100, 250) == entries[2:4]  # the byte bound holds across disk and cache
    assert log.slice(3, 100, 0) == entries[2:3]  # one entry always goes
    assert log.entry(17) == entries[16] and log.disk_reads > 0


def test_truncation_below_the_cache_then_append(tmp_path):
    log = RaftLog.from_store(DurableLog(str(tmp_path), 4096), cache_bytes=0)
    _written(log, _entries(40))
    log.release(40)
    assert log.cached_bytes == 0 and log.cache_first == 41
    log.truncate_from(25)  # the core cuts first; the store follows later (the driver's worker)
    newer = _entries(5, first=25, term=2)
    log.append(newer)
    assert log.cache_first == 25 and log.last_term == 2
    assert log.entries() == _entries(24) + newer  # old ones from disk, new ones from memory
    log.store.truncate_from(25)
    log.store.append(newer)
    log.store.sync()
    reopened = RaftLog.from_store(DurableLog(str(tmp_path), 4096))
    assert reopened.entries() == _entries(24) + newer and reopened.cached_bytes == 0


def test_recovery_reads_nothing_into_memory_and_serves_from_disk(tmp_path):
    store = DurableLog(str(tmp_path), 4096)
    store.recover()
    store.append(_entries(30, term=3))
    store.sync()
    store.close()
    log = RaftLog.from_store(DurableLog(str(tmp_path), 4096))
    assert (log.last_index, log.last_term, log.cached_bytes, log.disk_reads) == (30, 3, 0, 0)
    assert log.first_index_of_term(20) == 1 and log.term_at(0) == 0 and log.term_at(31) == -1
    assert log.range(5, 9) == _entries(30, term=3)[4:9]


def test_recovery_window_smaller_than_an_entry(tmp_path, monkeypatch):
    """The scan slides its window and reads a larger entry whole; the torn tail after it is still cut."""
    monkeypatch.setattr(store_module, "RECOVERY_WINDOW", 64)
    store = DurableLog(str(tmp_path), 1 << 20)
    store.recover()
    entries = _entries(20, size=300)
    store.append(entries)
    store.sync()
    end = store.end
    store.close()
    os.truncate(tmp_path / f"{0:020d}", end - 10)  # the last entry torn
    store = DurableLog(str(tmp_path), 1 << 20)
    assert store.recover() == 19 and store.recovered_cut == end - 10 - store.end > 300
    assert list(store.iter_entries()) == entries[:19]
    assert store.read_range(2, 19, 0) == entries[1:2]


def test_memory_log_keeps_everything_and_refuses_bad_edits():
    log = MemoryLog(_entries(10))
    log.release(10)
    assert log.cache_first == 1 and log.entries() == _entries(10)
    with pytest.raises(ValueError):
        log.append(_entries(1, first=12))
    with pytest.raises(ValueError):
        log.append(_entries(1, first=11, term=0))
    with pytest.raises(ValueError):
        log.truncate_from(0)


def test_term_runs_answer_like_a_list_of_terms():
    terms = [0, 1, 1, 2, 2, 2, 5, 7, 7]
    runs = TermRuns()
    for i, t in enumerate(terms[1:], 1):
        runs.append(i, t)
    assert [runs.term_at(i) for i in range(len(terms))] == terms and runs.term_at(9) == -1
    assert [runs.run_start(i) for i in range(1, 9)] == [1, 1, 3, 3, 3, 6, 7, 7]
    runs.truncate_from(5)
    assert runs.last == 4 and runs.last_term == 2
    runs.append(5, 3)
    runs.compact(3)
    assert (runs.base, runs.base_term, runs.term_at(2), runs.term_at(4), runs.run_start(4)) == (3, 2, -1, 2, 4)
    with pytest.raises(ValueError):
        runs.truncate_from(3)
    runs.compact(5)
    assert (runs.term_at(5), runs.last_term, list(runs.starts)) == (3, 3, [])


def test_reads_of_applied_entries_beside_a_writer_thread(tmp_path):
    """The reactor reads evicted bodies while the writer thread appends, rolls segments and cuts an unapplied
    tail: reads of applied entries always see exactly what was written."""
    import random
    import threading

    store = DurableLog(str(tmp_path), 8192)
    store.recover()
    applied = [0]
    done = threading.Event()
    errors = []

    def writer():
        try:
            index = 1
            for round_ in range(150):
                batch = _entries(12, first=index, size=50 + round_ % 90)
                store.append(batch)
                store.sync()
                applied[0] = index + 7  # the last 4 stay unapplied, then are cut and rewritten
                store.truncate_from(index + 8)
                index += 8
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    rng = random.Random(5)
    reads = 0
    while not done.is_set() or reads < 50:
        upto = applied[0]
        if upto:
            first = rng.randint(1, upto)
            got = store.read_range(first, min(upto, first + 30), rng.choice([0, 500, 5000]))
            assert got and all(e.index == first + k and len(e.body) >= 50 for k, e in enumerate(got))
            assert all(e.body == bytes([e.index % 251]) * len(e.body) for e in got)
            reads += 1
    thread.join()
    assert not errors and reads >= 50 and len(store.segments) > 10
