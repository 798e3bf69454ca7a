"""Helpers for store tests: small files, a fake clock, synchronous fsync, and consistency checks."""

from __future__ import annotations

import errno
import os
from typing import Any, Callable, Dict, List, Optional

from twisted.internet import defer, task

from mq.common.message import MessageExtBrokerInner
from mq.common.message_record import decode_message_ext
from mq.store import MessageStore, MessageStoreConfig, PutMessageResult, mappedfile

T0 = 1_700_000_000.0  # 2023-11-14, a Tuesday


def config(root, **overrides: Any) -> MessageStoreConfig:
    kwargs: Dict[str, Any] = dict(
        store_path_root_dir=str(root),
        mapped_file_size_commit_log=16 * 1024,
        mapped_file_size_consume_queue=32 * 20,
        max_hash_slot_num=32,
        max_index_num=64,
        delete_when="99",  # never, unless a test says so
    )
    kwargs.update(overrides)
    return MessageStoreConfig(**kwargs)


def open_store(root, clock: Optional[task.Clock] = None, run_blocking: Optional[Callable] = None,
               disk_usage: Optional[Callable[[str], float]] = None, start: bool = True, **overrides: Any) -> MessageStore:
    """A store on a task.Clock whose fsync runs inline, unless told otherwise."""
    if clock is None:
        clock = task.Clock()
        clock.advance(T0)
    store = MessageStore(
        config(root, **overrides),
        reactor=clock,
        store_host=("10.0.0.5", 10911),
        now_ms=lambda: int(clock.seconds() * 1000),
        run_blocking=run_blocking or defer.maybeDeferred,
        disk_usage=disk_usage or (lambda path: 0.10),
    )
    if start:
        store.start()
    return store


def inner(topic: str = "T", body: bytes = b"body", queue_id: int = 0, tags: Optional[str] = None,
          keys: Optional[str] = None, uniq: Optional[str] = None, sys_flag: int = 0, **props: str) -> MessageExtBrokerInner:
    properties = dict(props)
    if tags is not None:
        properties["TAGS"] = tags
    if keys is not None:
        properties["KEYS"] = keys
    if uniq is not None:
        properties["UNIQ_KEY"] = uniq
    return MessageExtBrokerInner(
        topic=topic, body=body, queue_id=queue_id, properties=properties, sys_flag=sys_flag,
        born_host=("192.168.0.7", 50000), born_timestamp=1_699_999_999_000,
    )


def result_of(d: defer.Deferred) -> Any:
    """The result a Deferred already has (tests run fsync inline, so puts complete at once)."""
    out: List[Any] = []
    d.addBoth(out.append)
    assert out, "Deferred has not fired"
    if hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]


def put(store: MessageStore, msg: MessageExtBrokerInner) -> PutMessageResult:
    d = store.put_message(msg)
    store.reactor.advance(0)  # let a SYNC_FLUSH group commit run
    return result_of(d)


def stop(store: MessageStore) -> None:
    result_of(store.stop())


def scan_commitlog(store: MessageStore):
    """Every valid record in the CommitLog, decoded, in offset order."""
    cl = store.commitlog
    return [decode_message_ext(f.mm, rel, check_crc=True) for f, rel, _ in cl.scan(cl.min_offset, True)]


def assert_consistent(store: MessageStore) -> None:
    """Queues and index agree with the CommitLog: each record is at its queue offset, queues hold nothing else."""
    records = scan_commitlog(store)
    if records:
        last_end = records[-1].commit_log_offset + records[-1].store_size
        max_phy = store.get_max_phy_offset()
        assert last_end == max_phy or max_phy % store.commitlog.file_size == 0
    per_queue: Dict[Any, List[Any]] = {}
    for m in records:
        tran = m.sys_flag & 0xC
        if tran in (0x4, 0xC):
            continue
        per_queue.setdefault((m.topic, m.queue_id), []).append(m)
    for (topic, qid), msgs in per_queue.items():
        cq = store.consume_queue(topic, qid)
        assert cq is not None
        assert cq.max_offset == msgs[-1].queue_offset + 1
        for m in msgs:
            e = cq.entry(m.queue_offset)
            assert e is not None and e[0] == m.commit_log_offset and e[1] == m.store_size, (m, e)
            if m.unique_key and store.index is not None:
                hits = store.query_message(topic, m.unique_key, 64, 0, 2**62).message_buffers
                assert any(decode_message_ext(h).commit_log_offset == m.commit_log_offset for h in hits)
    for cq in store.queues.all():
        if cq.max_offset:
            assert (cq.topic, cq.queue_id) in per_queue
            assert store.queue_offsets[(cq.topic, cq.queue_id)] == cq.max_offset


def file_names(path) -> List[str]:
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


class Disk:
    """Stands in for ``posix_fallocate``: fails with ENOSPC while ``full``, counts the calls."""

    def __init__(self, monkeypatch) -> None:
        self.full = False
        self.calls = 0
        self.real = mappedfile.allocate
        monkeypatch.setattr(mappedfile, "allocate", self)

    def __call__(self, fd: int, offset: int, length: int) -> None:
        self.calls += 1
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.real(fd, offset, length)
