"""Retention: expired CommitLog files go at the delete hour or when the disk fills; queues and index follow."""

from __future__ import annotations

import os
import time

import pytest
from twisted.internet import task

from mq.store import GetMessageStatus, PutMessageStatus

from .storetestlib import assert_consistent, file_names, inner, open_store, put

FOUR_THIRTY = time.mktime((2023, 11, 15, 4, 30, 0, 0, 0, -1))  # local time
NOON = time.mktime((2023, 11, 15, 12, 0, 0, 0, 0, -1))


def _store(tmp_path, at, ratio=0.1, **kw):
    clock = task.Clock()
    clock.advance(at)
    disk = {"ratio": ratio}
    store = open_store(tmp_path, clock=clock, disk_usage=lambda path: disk["ratio"], delete_when="04", **kw)
    return store, clock, disk


def _fill(store, n=80):
    return [put(store, inner(body=b"x" * 900, uniq=f"U{i}", keys=f"K{i}")).append_result for i in range(n)]


def _age(tmp_path, names, hours, now):
    for name in names:
        t = now - hours * 3600
        os.utime(tmp_path / "commitlog" / name, (t, t))


def test_expired_files_are_deleted_at_the_delete_hour_with_their_queue_and_index_files(tmp_path):
    store, clock, _ = _store(tmp_path, FOUR_THIRTY)
    results = _fill(store)
    names = file_names(tmp_path / "commitlog")
    assert len(names) == 5
    cq_files_before = file_names(tmp_path / "consumequeue" / "T" / "0")
    index_before = file_names(tmp_path / "index")
    _age(tmp_path, names[:3], 73, clock.seconds())
    clock.advance(10)
    assert file_names(tmp_path / "commitlog") == names[3:]
    min_phy = store.get_min_phy_offset()
    assert min_phy == int(names[3])
    # queue: min offset moved to the first message still stored; older reads get OFFSET_TOO_SMALL
    first_kept = next(r for r in results if r.wrote_offset >= min_phy)
    assert store.get_min_offset_in_queue("T", 0) == first_kept.logics_offset
    r = store.get_message("g", "T", 0, 0, 32)
    assert (r.status, r.next_begin_offset) == (GetMessageStatus.OFFSET_TOO_SMALL, first_kept.logics_offset)
    assert store.look_message_by_offset(results[0].wrote_offset) is None
    assert len(file_names(tmp_path / "consumequeue" / "T" / "0")) < len(cq_files_before)
    assert len(file_names(tmp_path / "index")) < len(index_before)
    assert not store.query_message("T", "U0", 10, 0, 2**62).message_buffers
    assert store.query_message("T", f"U{len(results) - 1}", 10, 0, 2**62).message_buffers
    r = store.get_message("g", "T", 0, first_kept.logics_offset, 32)
    assert r.status is GetMessageStatus.FOUND and r.message_queue_offsets[0] == first_kept.logics_offset
    assert_consistent(store)


@pytest.mark.parametrize("at, age_hours", [(NOON, 100), (FOUR_THIRTY, 71)], ids=["old-but-not-the-hour", "young-at-the-hour"])
def test_files_stay_unless_expired_at_the_hour(tmp_path, at, age_hours):
    store, clock, _ = _store(tmp_path, at)
    _fill(store)
    names = file_names(tmp_path / "commitlog")
    _age(tmp_path, names, age_hours, clock.seconds())
    clock.advance(10)
    assert file_names(tmp_path / "commitlog") == names


def test_disk_thresholds(tmp_path):
    store, clock, disk = _store(tmp_path, NOON)
    _fill(store)
    names = file_names(tmp_path / "commitlog")
    _age(tmp_path, names[:2], 80, clock.seconds())
    disk["ratio"] = 0.80  # over diskMaxUsedSpaceRatio: expired files go at any hour
    clock.advance(10)
    assert file_names(tmp_path / "commitlog") == names[2:]
    disk["ratio"] = 0.87  # over the forcible ratio: the oldest goes even if young, one per run
    clock.advance(10)
    assert file_names(tmp_path / "commitlog") == names[3:]
    disk["ratio"] = 0.95  # over the warning level: puts are refused
    clock.advance(10)
    assert put(store, inner()).status is PutMessageStatus.SERVICE_NOT_AVAILABLE
    assert file_names(tmp_path / "commitlog") == names[4:]  # never the newest file
    disk["ratio"] = 0.5
    clock.advance(10)
    assert put(store, inner()).status is PutMessageStatus.PUT_OK
    assert store.stats().disk_used_ratio == 0.5
    assert_consistent(store)


def test_clean_expired_consume_queues_removes_only_queues_wholly_before_the_commit_log(tmp_path):
    store, clock, _ = _store(tmp_path, FOUR_THIRTY)
    for _ in range(3):
        put(store, inner(topic="Old", body=b"o" * 900))
    _fill(store)
    assert store.clean_expired_consume_queues() == []  # nothing expired yet: every queue is kept
    names = file_names(tmp_path / "commitlog")
    _age(tmp_path, names[:3], 73, clock.seconds())
    clock.advance(10)
    assert store.get_max_offset_in_queue("Old", 0) == 3 and store.consume_queue("Old", 0) is not None
    assert store.clean_expired_consume_queues() == [("Old", 0)]
    assert store.consume_queue("Old", 0) is None and not (tmp_path / "consumequeue" / "Old").exists()
    assert store.consume_queue("T", 0) is not None  # its newer entries still point at stored messages
    # a new message of the removed queue takes the next queue offset, as in RocketMQ
    assert put(store, inner(topic="Old")).append_result.logics_offset == 3
    r = store.get_message("g", "Old", 0, 3, 32)
    assert r.status is GetMessageStatus.FOUND
    assert_consistent(store)
