"""ConsumeQueue files: reserved on disk as they fill rather than whole, and sized in RocketMQ's bytes.

Thousands of queues at RocketMQ's default file size (300,000 entries, 5.7 MiB) must not take gigabytes of disk
before they hold a message; a broker.conf copied from RocketMQ must mean the same file size here; a store made
with another size must stay readable.
"""

from __future__ import annotations

import os
from typing import List

import pytest
from twisted.logger import LogLevel

from mq.common.message_record import decode_message_ext
from mq.store import MessageStoreConfig, PutMessageStatus
from mq.store.consumequeue import ENTRY_SIZE, RESERVE_AHEAD, ConsumeQueue, queue_file_size
from mq.store.mappedfile import DiskFullError, MappedFile
from tests.store.storetestlib import Disk, assert_consistent, file_names, inner, open_store, put, result_of, stop
from tests.support.logs import logged_lines

DEFAULT_BYTES = 300_000 * ENTRY_SIZE
PER_AHEAD = RESERVE_AHEAD // ENTRY_SIZE  # entries reserved past the one being written


def allocated(path) -> int:
    return os.stat(path).st_blocks * 512


def cq_files(root, topic: str, qid: int = 0):
    d = os.path.join(str(root), "consumequeue", topic, str(qid))
    return [os.path.join(d, n) for n in file_names(d)]


def test_the_default_file_size_is_rocketmqs_in_bytes_rounded_up_to_whole_entries():
    assert MessageStoreConfig().mapped_file_size_consume_queue == 6_000_000
    assert queue_file_size(6_000_000) == 6_000_000
    assert queue_file_size(1001) == 1020 and queue_file_size(1000) == 1000


def test_many_queues_at_the_default_size_take_what_they_hold_not_whole_files(tmp_path):
    """200 queues of one message each: 200 files of 6 MB (sparse), about 80 KiB of disk each."""
    store = open_store(tmp_path, mapped_file_size_consume_queue=DEFAULT_BYTES, mapped_file_size_commit_log=1 << 20)
    for i in range(200):
        assert put(store, inner(topic=f"T{i % 8}", queue_id=i // 8)).status is PutMessageStatus.PUT_OK
    paths = [p for t in range(8) for q in range(25) for p in cq_files(tmp_path, f"T{t}", q)]
    assert len(paths) == 200
    assert all(os.stat(p).st_size == DEFAULT_BYTES for p in paths)
    assert all(ENTRY_SIZE <= allocated(p) <= RESERVE_AHEAD + 2 * 4096 for p in paths)
    assert sum(allocated(p) for p in paths) < 200 * DEFAULT_BYTES // 50
    assert_consistent(store)


def test_the_reservation_follows_the_writer_and_always_covers_what_is_written(tmp_path):
    cq = ConsumeQueue("T", 0, str(tmp_path), DEFAULT_BYTES)
    for i in range(3 * PER_AHEAD):
        cq.prepare(i)
        cq.put(i, 1000 + i * 100, 100, 0)
        f = cq.files.files[0]
        assert f.reserved >= (i + 1) * ENTRY_SIZE
    assert f.reserved < 5 * RESERVE_AHEAD
    assert allocated(f.path) >= 3 * RESERVE_AHEAD
    assert cq.entry(3 * PER_AHEAD - 1) == (1000 + (3 * PER_AHEAD - 1) * 100, 100, 0)
    cq.close()


def test_a_batch_across_the_reserved_edge_is_written_whole(tmp_path):
    cq = ConsumeQueue("T", 0, str(tmp_path), DEFAULT_BYTES)
    cq.prepare(0)
    cq.put(0, 0, 100, 0)
    edge = cq.files.files[0].reserved // ENTRY_SIZE
    cq.prepare(1, edge + 10)
    cq.put_batch(1, 100, [100] * (edge + 10), [7] * (edge + 10))
    assert cq.max_offset == edge + 11
    assert [cq.entry(o) for o in (edge - 1, edge, edge + 10)] == [((edge - 1) * 100, 100, 7),
                                                                    (edge * 100, 100, 7), ((edge + 10) * 100, 100, 7)]
    assert cq.files.files[0].reserved >= (edge + 11) * ENTRY_SIZE
    cq.close()


def test_a_full_disk_at_the_reserved_edge_refuses_the_put_before_the_commitlog(tmp_path, monkeypatch):
    disk = Disk(monkeypatch)
    store = open_store(tmp_path, mapped_file_size_consume_queue=DEFAULT_BYTES, mapped_file_size_commit_log=4 << 20)
    first = put(store, inner())
    reserved = store.consume_queue("T", 0).files.files[0].reserved
    batch = [(0, b"b", "", {})] * 64
    while store.get_max_offset_in_queue("T", 0) + len(batch) <= reserved // ENTRY_SIZE:
        assert result_of(store.put_message_batch("T", 0, 0, 1, ("10.0.0.1", 1), 0, batch)).status is first.status
    end, queued = store.get_max_phy_offset(), store.get_max_offset_in_queue("T", 0)
    disk.full = True
    r = result_of(store.put_message_batch("T", 0, 0, 1, ("10.0.0.1", 1), 0, batch))
    assert r.status is PutMessageStatus.SERVICE_NOT_AVAILABLE and "consumequeue" in r.reason, r.reason
    assert (store.get_max_phy_offset(), store.get_max_offset_in_queue("T", 0)) == (end, queued)
    disk.full = False
    store.reactor.advance(0.101)  # diskSpaceCheckInterval
    assert result_of(store.put_message_batch("T", 0, 0, 1, ("10.0.0.1", 1), 0, batch)).status is first.status
    assert store.get_max_offset_in_queue("T", 0) == queued + len(batch)
    assert allocated(cq_files(tmp_path, "T")[0]) >= (queued + len(batch)) * ENTRY_SIZE
    assert_consistent(store)


def test_a_store_reopened_with_another_size_keeps_its_queues_files(tmp_path, log_events):
    """mappedFileSizeConsumeQueue changed (or an older mq's entries read as bytes now): old queues keep their size,
    new queues take the new one, and nothing stored is lost."""
    store = open_store(tmp_path, mapped_file_size_consume_queue=32 * ENTRY_SIZE)
    for i in range(40):
        put(store, inner(body=b"m%d" % i))
    stop(store)
    again = open_store(tmp_path, mapped_file_size_consume_queue=64 * ENTRY_SIZE)
    assert logged_lines(log_events, "T/0: keeping the 640-byte files on disk (mappedFileSizeConsumeQueue is 1280)",
                        levels=(LogLevel.info,))
    bodies, offset = [], 0
    while offset < 40:  # a pull reads within one queue file
        got = again.get_message("G", "T", 0, offset, 64)
        bodies += [decode_message_ext(b).body for b in got.message_buffers]
        offset = got.next_begin_offset
    assert bodies == [b"m%d" % i for i in range(40)]
    for i in range(40, 70):
        put(again, inner(body=b"m%d" % i))
    put(again, inner(topic="New"))
    assert [os.path.getsize(p) for p in cq_files(tmp_path, "T")] == [640, 640, 640]
    assert [os.path.getsize(p) for p in cq_files(tmp_path, "New")] == [1280]
    assert again.get_max_offset_in_queue("T", 0) == 70
    assert_consistent(again)


def test_zeroing_a_truncated_tail_leaves_the_rest_of_a_sparse_file_sparse(tmp_path):
    f = MappedFile(str(tmp_path / "00000000000000000000"), 0, 64 << 20, create=True, reserve=8192)
    f.mm[0:8192] = b"\x01" * 8192
    f.zero_from(100)
    assert f.mm[0:100] == b"\x01" * 100 and f.mm[100:8192] == bytes(8092)
    assert allocated(f.path) < 4 << 20
    f.close()


def test_a_queue_file_whose_reservation_fails_is_not_written(tmp_path, monkeypatch):
    disk = Disk(monkeypatch)
    cq = ConsumeQueue("T", 0, str(tmp_path), DEFAULT_BYTES)
    cq.prepare(0)
    edge = cq.files.files[0].reserved // ENTRY_SIZE
    disk.full = True
    with pytest.raises(DiskFullError):
        cq.prepare(edge)
    with pytest.raises(DiskFullError):
        cq.put(edge, 5, 5, 5)  # a writer that skipped prepare (a slave's dispatch) is refused as well
    assert cq.max_offset == 0
    cq.close()


def _vm_flags_of(path: str) -> List[List[str]]:
    """The VmFlags of each of this process's mappings of ``path``, in address order (Linux /proc/self/smaps)."""
    lines = open("/proc/self/smaps").read().splitlines()
    found = [next(x for x in lines[i + 1:] if x.startswith("VmFlags:")).split()[1:]
             for i, line in enumerate(lines) if line.endswith(path)]
    assert found, f"{path} is not mapped"
    return found


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="Linux's /proc/self/smaps")
def test_a_new_queue_file_is_mapped_without_readahead(tmp_path):
    """A fault into a new file read a whole readahead window around it (1.5 ms for a 6 MB file's first entry)."""
    cq = ConsumeQueue("T", 0, str(tmp_path), DEFAULT_BYTES)
    cq.prepare(0)
    cq.put(0, 0, 100, 0)
    [flags] = _vm_flags_of(cq.files.files[0].path)
    assert "rr" in flags
    cq.close()


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="Linux's /proc/self/smaps")
def test_a_reopened_queue_keeps_readahead_for_what_it_holds_and_none_past_it(tmp_path):
    store = open_store(tmp_path, mapped_file_size_consume_queue=DEFAULT_BYTES, mapped_file_size_commit_log=1 << 20)
    batch = [(0, b"b", "", {})] * 500  # 10,000 bytes of entries: two pages and some
    result_of(store.put_message_batch("T", 0, 0, 1, ("10.0.0.1", 1), 0, batch))
    stop(store)
    again = open_store(tmp_path, mapped_file_size_consume_queue=DEFAULT_BYTES, mapped_file_size_commit_log=1 << 20)
    written, unwritten = _vm_flags_of(again.consume_queue("T", 0).files.files[0].path)
    assert "rr" not in written and "rr" in unwritten


def _released(monkeypatch) -> List[tuple]:
    calls: List[tuple] = []
    real = MappedFile.release_pages
    monkeypatch.setattr(MappedFile, "release_pages",
                        lambda f, start=0, length=None: (calls.append((f.start, start, length)), real(f, start, length))[1])
    return calls


def test_the_page_being_written_stays_mapped_and_pages_behind_it_are_given_back(tmp_path, monkeypatch):
    calls = _released(monkeypatch)
    cq = ConsumeQueue("T", 0, str(tmp_path), 64 * 1024 // ENTRY_SIZE * ENTRY_SIZE)  # a file of 3,276 entries
    per_page = 4096 // ENTRY_SIZE  # 204 entries, 4,080 bytes: pages and entries do not line up
    for i in range(per_page):
        cq.prepare(i)
        cq.put(i, i, 1, 0)
    cq.release_pages(sweep=False)
    assert calls == []  # still on its first page: nothing behind it
    for i in range(per_page, 3 * per_page + 10):
        cq.prepare(i)
        cq.put(i, i, 1, 0)
    cq.release_pages(sweep=False)
    assert cq.files.wrote == 12_440
    assert calls == [(0, 0, 3 * 4096)]  # the three pages behind, not the fourth, being written
    cq.release_pages(sweep=False)
    assert len(calls) == 1  # the writer has not moved on: no syscall
    cq.release_pages(sweep=True)
    assert calls[1:] == [(0, 0, 3 * 4096)]  # a sweep gives back all of them again (reads may have mapped some)
    for i in range(3 * per_page + 10, 4 * per_page + 10):
        cq.prepare(i)
        cq.put(i, i, 1, 0)
    cq.release_pages(sweep=False)
    assert calls[2:] == [(0, 3 * 4096, 4096)]  # only the page left behind since
    cq.close()


def test_release_counts_pages_in_each_file_and_skips_those_given_back_already(tmp_path, monkeypatch):
    calls = _released(monkeypatch)
    size = 2 * 4096 // ENTRY_SIZE * ENTRY_SIZE  # 409 entries: 8,180 bytes a file
    cq = ConsumeQueue("T", 0, str(tmp_path), size)
    for i in range(1000):  # three files, the writer in the third
        cq.prepare(i)
        cq.put(i, i, 1, 0)
    cq.release_pages(sweep=False)
    assert [f.start for f in cq.files.files] == [0, size, 2 * size] and cq.files.wrote == 20_000
    assert calls == [(0, 0, size), (size, 0, size)]  # the third file's first page is the one being written
    for i in range(1000, 1200):
        cq.prepare(i)
        cq.put(i, i, 1, 0)
    cq.release_pages(sweep=False)
    assert calls[2:] == [(2 * size, 0, 4096)]  # pages count from the file's start, not the queue's
    cq.close()
