"""Recovery: clean restart, torn tails, rebuilding queues and index from the CommitLog, corruption."""

from __future__ import annotations

import re
import shutil
import struct
from contextlib import contextmanager

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.logger import formatEvent, globalLogPublisher

from mq.common.message_record import decode_messages
from mq.store import GetMessageStatus, PutMessageStatus

from .storetestlib import assert_consistent, inner, open_store, put, scan_commitlog, stop


@contextmanager
def truncation_warnings():
    """The store's "CommitLog truncated" warnings logged meanwhile."""
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        yield events
    finally:
        globalLogPublisher.removeObserver(events.append)
        events[:] = [e for e in events if "truncated" in formatEvent(e)]


def _fill(store, n, queues=3, topics=("A", "B")):
    out = []
    for i in range(n):
        r = put(store, inner(topic=topics[i % len(topics)], queue_id=i % queues, body=b"m%05d" % i * (1 + i % 7),
                             uniq=f"U{i}", keys=f"K{i} common"))  # fmt: skip
        assert r.status is PutMessageStatus.PUT_OK
        out.append(r.append_result)
    return out


def _snapshot(store):
    state = {}
    for cq in store.queues.all():
        r = store.get_message("g", cq.topic, cq.queue_id, cq.min_offset, 10_000)
        bodies = []
        offset = cq.min_offset
        while offset < cq.max_offset:
            r = store.get_message("g", cq.topic, cq.queue_id, offset, 32)
            bodies += r.message_buffers
            offset = r.next_begin_offset
        state[(cq.topic, cq.queue_id)] = (cq.min_offset, cq.max_offset, bodies)
    return state


def test_clean_restart_continues_where_it_ended(tmp_path):
    store = open_store(tmp_path)
    results = _fill(store, 100)
    before = _snapshot(store)
    stop(store)
    with truncation_warnings() as warnings:
        store = open_store(tmp_path)
    assert warnings == []  # the zeros after the last record are not a torn tail
    assert _snapshot(store) == before
    r = put(store, inner(topic="A", queue_id=0))
    assert r.append_result.wrote_offset == results[-1].wrote_offset + results[-1].wrote_bytes
    assert r.append_result.logics_offset == before[("A", 0)][1]
    assert_consistent(store)


def test_crash_drops_a_torn_tail_and_keeps_whole_records(tmp_path):
    store = open_store(tmp_path)
    results = _fill(store, 60)
    end = store.get_max_phy_offset()
    last_raw = store.look_message_by_offset(results[-1].wrote_offset)
    # a torn append: the first half of a record, with its own offset patched in, then the crash
    torn = bytearray(last_raw[: len(last_raw) // 2])
    struct.pack_into(">q", torn, 28, end)
    f = store.commitlog.files.find(end)
    f.mm[end - f.start : end - f.start + len(torn)] = bytes(torn)
    store.crash_close()
    assert (tmp_path / "abort").exists()
    with truncation_warnings() as warnings:
        store = open_store(tmp_path)
    assert [formatEvent(e) for e in warnings] == [f"CommitLog truncated at {end}: dropping a torn or invalid record there"]
    assert store.get_max_phy_offset() == end
    f = store.commitlog.files.find(end)
    assert f.mm[end - f.start : end - f.start + len(torn)] == bytes(len(torn))  # zeroed, can never resurface
    assert len(scan_commitlog(store)) == 60
    assert_consistent(store)
    assert put(store, inner()).append_result.wrote_offset == end


def test_queue_entries_past_the_commitlog_end_are_dropped(tmp_path):
    store = open_store(tmp_path)
    results = _fill(store, 30, queues=1, topics=("A",))
    cut = results[20]
    store.crash_close()
    # power loss lost the last CommitLog pages but the queue pages made it
    with open(tmp_path / "commitlog" / f"{0:020d}", "r+b") as fh:
        fh.seek(cut.wrote_offset)
        fh.write(bytes(16 * 1024 - cut.wrote_offset))
    for p in sorted((tmp_path / "commitlog").iterdir())[1:]:
        p.write_bytes(bytes(16 * 1024))
    store = open_store(tmp_path)
    assert store.get_max_phy_offset() == cut.wrote_offset
    assert store.get_max_offset_in_queue("A", 0) == 20
    r = store.get_message("g", "A", 0, 20, 32)
    assert r.status is GetMessageStatus.OFFSET_OVERFLOW_ONE
    assert not store.query_message("A", "U25", 10, 0, 2**62).message_buffers
    assert put(store, inner(topic="A")).append_result.logics_offset == 20
    assert_consistent(store)


def test_queues_and_index_rebuild_from_the_commitlog_alone(tmp_path):
    store = open_store(tmp_path)
    _fill(store, 200)
    before = _snapshot(store)
    queries = {k: sorted(store.query_message("A", k, 100, 0, 2**62).message_buffers) for k in ("common", "K10", "U12")}
    stop(store)
    for name in ("consumequeue", "index"):
        shutil.rmtree(tmp_path / name)
    (tmp_path / "checkpoint").unlink()
    store = open_store(tmp_path)
    assert _snapshot(store) == before
    for k, hits in queries.items():
        assert sorted(store.query_message("A", k, 100, 0, 2**62).message_buffers) == hits
    assert_consistent(store)


def test_a_corrupted_byte_in_the_middle_is_detected_and_never_served(tmp_path):
    store = open_store(tmp_path)
    results = _fill(store, 40, queues=1, topics=("A",))
    victim = results[17]
    stop(store)
    path = tmp_path / "commitlog" / f"{0:020d}"
    with open(path, "r+b") as fh:
        fh.seek(victim.wrote_offset + 84 + 4 + 2)  # a body byte
        b = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([b[0] ^ 0x40]))
    store = open_store(tmp_path)
    assert store.look_message_by_offset(victim.wrote_offset) is None
    served = []
    offset = 0
    while offset < store.get_max_offset_in_queue("A", 0):
        r = store.get_message("g", "A", 0, offset, 8)
        served += decode_messages(r.body(), check_crc=True)  # every served record checks out
        offset = r.next_begin_offset
    assert [m.queue_offset for m in served] == [i for i in range(40) if i != 17]
    assert store.stats().corrupt_records_detected >= 1


def test_corruption_found_by_crash_recovery_truncates_there(tmp_path):
    store = open_store(tmp_path)
    results = _fill(store, 40, queues=1, topics=("A",))
    victim = results[25]
    store.crash_close()
    (tmp_path / "checkpoint").unlink(missing_ok=True)  # recovery scans everything
    f = tmp_path / "commitlog" / f"{victim.wrote_offset // (16 * 1024) * 16 * 1024:020d}"
    data = bytearray(f.read_bytes())
    data[victim.wrote_offset % (16 * 1024) + 90] ^= 0xFF
    f.write_bytes(bytes(data))
    store = open_store(tmp_path)
    assert store.get_max_phy_offset() == victim.wrote_offset
    assert store.get_max_offset_in_queue("A", 0) == 25
    assert_consistent(store)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["A", "B", "C"]), st.integers(0, 3), st.integers(0, 2000)), min_size=1, max_size=60))
def test_any_sequence_of_puts_rebuilds_identically(tmp_path_factory, puts):
    root = tmp_path_factory.mktemp("prop")
    store = open_store(root)
    for i, (topic, qid, size) in enumerate(puts):
        put(store, inner(topic=topic, queue_id=qid, body=bytes([i % 256]) * size, uniq=f"U{i}"))
    assert_consistent(store)
    before = _snapshot(store)
    store.crash_close()
    for name in ("consumequeue", "index"):
        shutil.rmtree(root / name, ignore_errors=True)
    (root / "checkpoint").unlink(missing_ok=True)
    store = open_store(root)
    assert _snapshot(store) == before
    assert_consistent(store)
    stop(store)


def test_files_half_created_by_a_crash_are_removed_not_fatal(tmp_path):
    """A crash between creating a file and sizing it leaves only a ``.creating`` leftover, never a short file."""
    store = open_store(tmp_path)
    _fill(store, 10)
    store.crash_close()
    leftovers = []
    for sub in ("commitlog", "index"):
        path = tmp_path / sub / ("00000000000000000000.creating" if sub == "commitlog" else "20260101000000000.creating")
        path.write_bytes(b"")
        leftovers.append(path)
    store = open_store(tmp_path)
    assert len(scan_commitlog(store)) == 10
    assert not any(p.exists() for p in leftovers)
    assert_consistent(store)


def test_a_long_recovery_logs_its_progress(tmp_path, monkeypatch, log_events):
    """Rebuilding from the whole CommitLog logs how far it got (here every record, every time) and its end."""
    import mq.store.dispatch
    import mq.store.store

    store = open_store(tmp_path)
    _fill(store, 20)
    stop(store)
    (tmp_path / "checkpoint").unlink()
    monkeypatch.setattr(mq.store.dispatch, "PROGRESS_EVERY", 1)
    monkeypatch.setattr(mq.store.store, "RECOVERY_LOG_EVERY", 0.0)
    store = open_store(tmp_path)
    lines = [formatEvent(e) for e in log_events if "recovery: CommitLog" in formatEvent(e)]
    assert len(lines) == 21
    assert all(re.fullmatch(r"recovery: CommitLog read and dispatched: [\d.,]+ of [\d.,]+ MiB \(\d+%\), [\d.,]+ MiB/s",
                            line) for line in lines[:-1]), lines
    assert lines[-1].startswith("recovery: CommitLog read and dispatched: done, 0.0 MiB in ")
    stop(store)


def test_a_short_recovery_logs_nothing(tmp_path, log_events):
    store = open_store(tmp_path)
    _fill(store, 20)
    stop(store)
    stop(open_store(tmp_path))
    assert not [e for e in log_events if "recovery: CommitLog" in formatEvent(e)]
