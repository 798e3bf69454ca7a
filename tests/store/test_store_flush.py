"""Flushing: group commit under SYNC_FLUSH, the timeout, WAIT=false, the ASYNC_FLUSH timer, clean stop."""

from __future__ import annotations

from typing import Any, Callable, List, Tuple

from twisted.internet import defer

from mq.store import FlushDiskType, PutMessageStatus
from mq.store.checkpoint import load_checkpoint
from mq.store.mappedfile import MappedFile
from tests.support.logs import tracebacks

from .storetestlib import assert_consistent, inner, open_store, put, result_of, stop


class ManualThread:
    """Stands in for deferToThread: jobs run only when the test says so."""

    def __init__(self) -> None:
        self.pending: List[Tuple[Callable[[], Any], defer.Deferred]] = []
        self.ran = 0

    def __call__(self, fn: Callable[[], Any]) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self.pending.append((fn, d))
        return d

    def run_one(self) -> None:
        fn, d = self.pending.pop(0)
        self.ran += 1
        d.callback(fn())


def _fired(d: defer.Deferred) -> list:
    out: list = []
    d.addCallback(out.append)
    return out


def test_group_commit_one_fsync_serves_every_waiting_put(tmp_path):
    thread = ManualThread()
    store = open_store(tmp_path, run_blocking=thread, flush_disk_type=FlushDiskType.SYNC_FLUSH)
    clock = store.reactor
    a = _fired(store.put_message(inner(body=b"a")))
    assert not a  # not acknowledged before its bytes are on disk
    clock.advance(0)
    assert len(thread.pending) == 1
    later = [_fired(store.put_message(inner(body=b"%d" % i))) for i in range(50)]
    clock.advance(0)
    assert len(thread.pending) == 1  # puts queue while the fsync runs
    thread.run_one()
    assert a and a[0].status is PutMessageStatus.PUT_OK
    assert not any(later)
    clock.advance(0)
    assert len(thread.pending) == 1
    thread.run_one()
    assert all(r and r[0].status is PutMessageStatus.PUT_OK for r in later)
    assert thread.ran == 2  # 51 puts, 2 fsyncs
    assert store.commitlog.flushed == store.get_max_phy_offset()
    # the messages were readable before they were flushed (as in RocketMQ), and are all there
    assert store.get_max_offset_in_queue("T", 0) == 51


def test_sync_flush_times_out_after_five_seconds(tmp_path):
    thread = ManualThread()
    store = open_store(tmp_path, run_blocking=thread, flush_disk_type=FlushDiskType.SYNC_FLUSH)
    clock = store.reactor
    r = _fired(store.put_message(inner()))
    clock.advance(0)
    clock.advance(4.9)
    assert not r
    clock.advance(0.2)
    assert r[0].status is PutMessageStatus.FLUSH_DISK_TIMEOUT and r[0].append_result.wrote_bytes > 0
    thread.run_one()  # the stuck fsync finally returns: nothing fires twice
    assert store.commitlog.flushed == store.get_max_phy_offset()


def test_wait_false_does_not_wait_for_the_disk(tmp_path):
    thread = ManualThread()
    store = open_store(tmp_path, run_blocking=thread, flush_disk_type=FlushDiskType.SYNC_FLUSH)
    r = _fired(store.put_message(inner(WAIT="false")))
    assert r[0].status is PutMessageStatus.PUT_OK


def test_async_flush_runs_on_its_interval(tmp_path):
    store = open_store(tmp_path, flush_consume_queue_least_pages=0)  # ASYNC_FLUSH, fsync inline, every queue
    clock = store.reactor
    r = _fired(store.put_message(inner()))
    assert r[0].status is PutMessageStatus.PUT_OK
    assert store.commitlog.flushed < store.get_max_phy_offset()
    clock.advance(0.5)
    clock.advance(0)
    assert store.commitlog.flushed == store.get_max_phy_offset()
    clock.advance(1.0)
    clock.advance(0)
    cp = load_checkpoint(str(tmp_path / "checkpoint"))
    assert cp.physic_offset == cp.logics_offset == cp.index_offset == store.get_max_phy_offset()


def test_clean_stop_flushes_everything_and_removes_abort(tmp_path):
    thread = ManualThread()
    store = open_store(tmp_path, run_blocking=thread, flush_disk_type=FlushDiskType.SYNC_FLUSH)
    assert (tmp_path / "abort").exists()
    r = _fired(store.put_message(inner()))
    store.reactor.advance(0)
    d = store.stop()
    while thread.pending:
        thread.run_one()
    result_of(d)
    assert r[0].status is PutMessageStatus.PUT_OK
    assert not (tmp_path / "abort").exists()
    cp = load_checkpoint(str(tmp_path / "checkpoint"))
    assert cp.physic_offset == cp.recover_from == store.commitlog.files.wrote > 0


def test_stop_is_idempotent(tmp_path):
    store = open_store(tmp_path)
    stop(store)
    stop(store)


# -- queues: RocketMQ's least-pages rule ------------------------------------------------------------


def _many_queues_store(tmp_path, **overrides):
    """A store on 1 MiB CommitLog files and RocketMQ-size queue files, its first (thorough) flush done."""
    store = open_store(tmp_path, mapped_file_size_commit_log=1 << 20, mapped_file_size_consume_queue=6_000_000,
                       **overrides)  # fmt: skip
    store.reactor.advance(1.0)  # the first queue flush is a thorough one
    return store


def _queue_files_synced(monkeypatch) -> List[str]:
    synced: List[str] = []
    real = MappedFile.sync
    monkeypatch.setattr(MappedFile, "sync", lambda f: (synced.append(f.path), real(f))[1])
    return synced


def test_queues_with_fewer_dirty_pages_than_least_wait_for_the_thorough_flush(tmp_path, monkeypatch):
    store = _many_queues_store(tmp_path)
    synced = _queue_files_synced(monkeypatch)
    for i in range(100):  # 100 queues, one entry each
        put(store, inner(topic=f"T{i % 4}", queue_id=i // 4))
    busy = store.get_max_phy_offset()
    store.reactor.advance(1.0)
    assert not [p for p in synced if "consumequeue" in p]  # no fdatasync for 100 one-entry queues
    cp = load_checkpoint(str(tmp_path / "checkpoint"))
    assert cp.logics_offset < busy <= cp.physic_offset == cp.index_offset  # queues named flushed only as far as done
    assert cp.recover_from == cp.logics_offset
    store.reactor.advance(59.0)  # flushConsumeQueueThoroughInterval (60 s) since the last thorough flush
    assert len([p for p in synced if "consumequeue" in p]) == 100
    cp = load_checkpoint(str(tmp_path / "checkpoint"))
    assert cp.logics_offset == cp.index_offset == busy


def test_a_queue_with_least_pages_dirty_is_flushed_at_the_next_tick(tmp_path, monkeypatch):
    store = _many_queues_store(tmp_path)
    synced = _queue_files_synced(monkeypatch)
    batch = [(0, b"b", "", {})] * 410  # 8,200 bytes of entries: two pages
    result_of(store.put_message_batch("Busy", 0, 0, 1, ("10.0.0.1", 1), 0, batch))
    put(store, inner(topic="Quiet"))
    store.reactor.advance(1.0)
    flushed = [p for p in synced if "consumequeue" in p]
    assert len(flushed) == 1 and "/Busy/0/" in flushed[0]
    assert store.consume_queue("Quiet", 0).files.flushed == 0


def test_least_pages_zero_flushes_every_dirty_queue_every_tick(tmp_path, monkeypatch):
    store = _many_queues_store(tmp_path, flush_consume_queue_least_pages=0)
    synced = _queue_files_synced(monkeypatch)
    for i in range(10):
        put(store, inner(queue_id=i))
    store.reactor.advance(1.0)
    assert len([p for p in synced if "consumequeue" in p]) == 10
    assert load_checkpoint(str(tmp_path / "checkpoint")).logics_offset == store.get_max_phy_offset()


def test_a_crash_losing_unflushed_queue_entries_gets_them_back_from_the_checkpoint(tmp_path):
    """What a power loss does to queues the least-pages rule left unflushed: their bytes past ``flushed`` are gone.
    Recovery dispatches again from the checkpoint's queue offset, so every entry comes back."""
    store = _many_queues_store(tmp_path)
    for i in range(60):
        put(store, inner(topic=f"T{i % 3}", queue_id=i % 7, body=b"m%d" % i))
    store.reactor.advance(1.0)
    for cq in store.queues.all():  # the page cache lost with the machine: unflushed entries zeroed
        q = cq.files
        for f in q.files:
            lo = max(q.flushed, f.start) - f.start
            f.mm[lo:f.size] = bytes(f.size - lo)
    store.crash_close()
    again = open_store(tmp_path, mapped_file_size_commit_log=1 << 20, mapped_file_size_consume_queue=6_000_000)
    assert sum(cq.max_offset for cq in again.queues.all()) == 60
    assert_consistent(again)


def test_stop_flushes_every_queue_whatever_its_dirty_pages(tmp_path, monkeypatch):
    store = _many_queues_store(tmp_path)
    for i in range(20):
        put(store, inner(queue_id=i))
    stop(store)
    cp = load_checkpoint(str(tmp_path / "checkpoint"))
    assert cp.logics_offset == cp.physic_offset == store.get_max_phy_offset()
    assert all(cq.files.flushed == cq.files.wrote for cq in store.queues.all())


# -- a pass over many queues, in chunks -----------------------------------------------------------


def test_a_pass_over_many_dirty_queues_is_cut_into_chunks_and_a_sync_put_goes_between_them(tmp_path):
    thread = ManualThread()
    store = open_store(tmp_path, run_blocking=thread, flush_disk_type=FlushDiskType.SYNC_FLUSH,
                       flush_consume_queue_least_pages=0)  # fmt: skip
    store.queue_flush.chunk_files = 50
    clock = store.reactor
    for i in range(120):  # 120 dirty queues: chunks of 50, 50 and 20 files
        _fired(store.put_message(inner(topic=f"T{i % 4}", queue_id=i // 4, WAIT="false")))
    while thread.pending:
        thread.run_one()
    dispatched = store.get_max_phy_offset()
    clock.advance(1.0)  # the logic tick
    assert len(thread.pending) == 1 and store.queue_flush.in_pass
    late = _fired(store.put_message(inner(body=b"sync")))  # a SYNC_FLUSH put waits for its fsync
    clock.advance(0)
    thread.run_one()  # the first chunk, prepared before the put was written
    assert not late
    checkpoint_before = load_checkpoint(str(tmp_path / "checkpoint"))
    assert sum(cq.files.flushed == cq.files.wrote for cq in store.queues.all()) == 50
    clock.advance(0)
    thread.run_one()  # CommitLog and queue chunks take turns: the put's fsync, not the next chunk
    assert late and late[0].status is PutMessageStatus.PUT_OK
    assert sum(cq.files.flushed == cq.files.wrote for cq in store.queues.all()) == 50
    assert store.queue_flush.in_pass
    clock.advance(0)
    chunks = 0
    while thread.pending:
        thread.run_one()
        chunks += 1
        clock.advance(0)
    assert chunks == 2 and not store.queue_flush.in_pass
    assert load_checkpoint(str(tmp_path / "checkpoint")) != checkpoint_before
    cp = load_checkpoint(str(tmp_path / "checkpoint"))
    # Entries dispatched when the pass began are durable; the two SYNC puts' entries came after it.
    assert cp.logics_offset == dispatched < store.get_max_phy_offset() == cp.physic_offset == cp.index_offset
    assert all(cq.files.flushed == cq.files.wrote for cq in store.queues.all() if cq.topic != "T")


def test_a_steady_sync_flush_load_does_not_starve_the_queue_flush(tmp_path):
    thread = ManualThread()
    store = open_store(tmp_path, run_blocking=thread, flush_disk_type=FlushDiskType.SYNC_FLUSH,
                       flush_consume_queue_least_pages=0)  # fmt: skip
    clock = store.reactor
    _fired(store.put_message(inner()))
    clock.advance(0)
    clock.advance(1.0)  # the logic tick asks for a queue flush while a CommitLog fsync is running
    for i in range(3):  # every fsync ends with new SYNC puts waiting
        _fired(store.put_message(inner(body=b"%d" % i)))
        clock.advance(0)
        thread.run_one()
        clock.advance(0)
    assert load_checkpoint(str(tmp_path / "checkpoint")).logics_offset > 0


def test_a_truncation_abandons_the_pass_under_way(tmp_path):
    thread = ManualThread()
    store = open_store(tmp_path, run_blocking=thread, flush_consume_queue_least_pages=0)
    store.queue_flush.chunk_files = 5
    for i in range(12):
        put(store, inner(queue_id=i))
    while thread.pending:
        thread.run_one()
    store.reactor.advance(1.0)
    thread.run_one()
    assert store.queue_flush.in_pass
    store.truncate(store.get_max_phy_offset())
    assert not store.queue_flush.in_pass


def test_a_topic_deleted_during_a_pass_is_skipped_by_its_later_chunks(tmp_path, log_events):
    thread = ManualThread()
    store = open_store(tmp_path, run_blocking=thread, flush_consume_queue_least_pages=0)
    store.queue_flush.chunk_files = 4
    for i in range(12):
        put(store, inner(topic="A" if i < 4 else "B", queue_id=i))
    while thread.pending:
        thread.run_one()
    store.reactor.advance(1.0)
    thread.run_one()  # A's four queues
    store.delete_topics(["B"])  # between two jobs, as the store's admin calls run
    store.reactor.advance(0)
    while thread.pending:
        thread.run_one()
        store.reactor.advance(0)
    assert not store.queue_flush.in_pass and not tracebacks(log_events)
    assert load_checkpoint(str(tmp_path / "checkpoint")).logics_offset == store.get_max_phy_offset()
