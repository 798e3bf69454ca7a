"""Flushing: group commit under SYNC_FLUSH, the timeout, WAIT=false, the ASYNC_FLUSH timer, clean stop."""

from __future__ import annotations

from typing import Any, Callable, List, Tuple

from twisted.internet import defer

from mq.store import FlushDiskType, PutMessageStatus
from mq.store.checkpoint import load_checkpoint

from .storetestlib import inner, open_store, result_of, stop


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
    store = open_store(tmp_path)  # ASYNC_FLUSH, fsync inline
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
