"""A full disk, simulated through ``mappedfile.allocate`` (the fallocate hook): puts are refused cleanly, nothing
refused is ever found in the CommitLog, reads go on, and puts resume once space returns.

The same on a real full filesystem, with a ``twistd broker``: tests/broker/test_disk_full.py.
"""

from __future__ import annotations

import errno
import os

import pytest

from mq.store import PutMessageStatus, mappedfile
from mq.store.index import IndexFile
from mq.store.mappedfile import DiskFullError, MappedFile, MappedFileQueue, StoreError
from tests.store.storetestlib import (
    Disk,
    assert_consistent,
    file_names,
    inner,
    open_store,
    put,
    result_of,
    scan_commitlog,
)
from tests.support.logs import logged_lines, tracebacks

NOT_AVAILABLE = PutMessageStatus.SERVICE_NOT_AVAILABLE
INTERVAL = 0.101  # diskSpaceCheckInterval (100 ms), and a little more for float milliseconds


@pytest.fixture
def disk(monkeypatch) -> Disk:
    return Disk(monkeypatch)


# -- files ------------------------------------------------------------------------------------------


def test_a_new_file_is_reserved_whole_on_disk(tmp_path):
    f = MappedFile(str(tmp_path / "00000000000000000000"), 0, 256 * 1024, create=True)
    assert os.stat(f.path).st_blocks * 512 >= 256 * 1024 and f.reserved == f.size
    f.close()


def test_a_file_the_disk_has_no_room_for_is_not_created(tmp_path, disk):
    disk.full = True
    q = MappedFileQueue(str(tmp_path / "q"), 64 * 1024)
    with pytest.raises(DiskFullError, match="no space left for 65536 bytes of .*00000000000000000000"):
        q.create(0)
    assert q.files == [] and os.listdir(tmp_path / "q") == []  # no file, not even a .creating one


def test_a_fallocate_failure_returned_rather_than_raised_is_a_full_disk_too(tmp_path, monkeypatch):
    """PyPy 7.3's ``os.posix_fallocate`` returns ENOSPC where CPython raises it: taken for success, the file
    was mapped unreserved and written into until a SIGBUS."""
    monkeypatch.setattr(os, "posix_fallocate", lambda fd, offset, length: errno.ENOSPC)
    q = MappedFileQueue(str(tmp_path / "q"), 64 * 1024)
    with pytest.raises(DiskFullError, match="no space left for 65536 bytes of .*00000000000000000000"):
        q.create(0)
    assert q.files == [] and os.listdir(tmp_path / "q") == []


def test_without_fallocate_space_is_reserved_by_rewriting_the_range(tmp_path, monkeypatch):
    def unsupported(fd, offset, length):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    path = str(tmp_path / "00000000000000000000")
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    os.ftruncate(fd, 1 << 20)  # an old sparse file holding some data
    os.pwrite(fd, b"kept", 300_000)
    os.close(fd)
    monkeypatch.setattr(mappedfile, "allocate", unsupported)
    f = MappedFile(path, 0, 1 << 20)
    assert f.reserved == 0
    f.reserve_upto(f.size)
    assert os.stat(path).st_blocks * 512 >= 1 << 20
    assert f.mm[300_000:300_004] == b"kept" and f.mm[:4] == bytes(4)
    f.close()
    monkeypatch.setattr(mappedfile, "allocate", None)  # no posix_fallocate at all (not Linux)
    g = MappedFile(str(tmp_path / "00000000000001048576"), 1 << 20, 1 << 16, create=True)
    assert os.stat(g.path).st_blocks * 512 >= 1 << 16
    g.close()


def test_other_reservation_errors_are_store_errors(tmp_path, monkeypatch):
    def broken(fd, offset, length):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(mappedfile, "allocate", broken)
    with pytest.raises(StoreError, match="cannot make room for") as e:
        MappedFile(str(tmp_path / "00000000000000000000"), 0, 4096, create=True)
    assert not isinstance(e.value, DiskFullError)


def test_index_entries_are_reserved_ahead_and_a_full_disk_writes_no_entry(tmp_path, disk):
    f = IndexFile(str(tmp_path / "i"), 8, 200_000, create=True)
    reserved = f.file.reserved
    per_chunk = (reserved - f._entries_at) // 20
    assert f.put_hashes([(i, 100 + i) for i in range(per_chunk - 1)], 1) == per_chunk - 1
    disk.full = True
    before = bytes(f.mm[:reserved])
    with pytest.raises(DiskFullError):
        f.put_hash(7, 999, 2)
    assert bytes(f.mm[:reserved]) == before and f.index_count == per_chunk
    disk.full = False
    f.put_hash(7, 999, 2)
    assert f.index_count == per_chunk + 1
    f.close()


# -- puts -------------------------------------------------------------------------------------------


def test_a_put_needing_a_new_commitlog_file_is_refused_and_leaves_no_trace(tmp_path, disk, log_events):
    store = open_store(tmp_path)
    acked = [put(store, inner(body=b"x" * 1000, uniq=f"A{i:031d}")) for i in range(14)]
    assert all(r.status is PutMessageStatus.PUT_OK for r in acked)
    cl = store.commitlog
    assert len(cl.files.files) == 1
    end, queue_max = cl.max_offset, store.get_max_offset_in_queue("T", 0)
    tail = bytes(cl.files.files[0].mm[end - cl.files.files[0].start:])
    disk.full = True
    r = put(store, inner(body=b"y" * 2000, uniq="R" * 32))
    assert r.status is NOT_AVAILABLE
    assert r.reason.startswith("the broker's disk is full: no space left for 16384 bytes of commitlog/00000000000000016384")
    assert str(tmp_path) not in r.reason  # the host's paths are not told to clients
    # Nothing of the refused message anywhere: no pad, no new file, no queue entry.
    assert cl.max_offset == end and len(cl.files.files) == 1
    assert bytes(cl.files.files[0].mm[end - cl.files.files[0].start:]) == tail
    assert store.get_max_offset_in_queue("T", 0) == queue_max
    assert file_names(tmp_path / "commitlog") == ["00000000000000000000"]
    # Refused without trying the disk again until diskSpaceCheckInterval has passed.
    calls = disk.calls
    for _ in range(5):
        assert put(store, inner(body=b"z")).status is NOT_AVAILABLE  # even one that would fit
    assert disk.calls == calls
    assert len(logged_lines(log_events, "puts refused: the broker's disk is full")) == 1
    # Reads go on.
    got = store.get_message("G", "T", 0, 0, 32)
    assert got.message_count == 14
    # The disk has room again: the next put after the interval is taken.
    disk.full = False
    store.reactor.advance(INTERVAL)
    ok = put(store, inner(body=b"y" * 2000, uniq="R" * 32))
    assert ok.status is PutMessageStatus.PUT_OK and len(cl.files.files) == 2
    assert_consistent(store)
    assert [m.unique_key for m in scan_commitlog(store)] == [f"A{i:031d}" for i in range(14)] + ["R" * 32]


def test_the_retry_fails_quietly_while_the_disk_stays_full(tmp_path, disk, log_events):
    store = open_store(tmp_path)
    for _ in range(14):
        put(store, inner(body=b"x" * 1000))
    disk.full = True
    for _ in range(5):
        assert put(store, inner(body=b"y" * 2000)).status is NOT_AVAILABLE
        store.reactor.advance(INTERVAL)
    assert disk.calls >= 5  # retried once per interval
    assert len(logged_lines(log_events, "puts refused")) == 1
    assert not [e for e in log_events if "accepted again" in str(e.get("log_format"))]


@pytest.mark.parametrize("what", ["consumequeue", "index"])
def test_a_put_needing_a_new_queue_or_index_file_is_refused_before_the_commitlog(tmp_path, disk, what):
    # ConsumeQueue files of 32 entries, IndexFiles of 64 entries (storetestlib): a new topic needs a new queue
    # file; a message with 70 keys needs a new IndexFile.
    store = open_store(tmp_path)
    put(store, inner(uniq="U" * 32))
    end = store.get_max_phy_offset()
    disk.full = True
    msg = inner(topic="NewTopic") if what == "consumequeue" else inner(keys=" ".join(f"k{i}" for i in range(70)))
    r = put(store, msg)
    assert r.status is NOT_AVAILABLE and what in r.reason
    assert store.get_max_phy_offset() == end
    disk.full = False
    store.reactor.advance(INTERVAL)
    assert put(store, msg).status is PutMessageStatus.PUT_OK
    assert_consistent(store)
    store.crash_close()
    again = open_store(tmp_path)  # recovery finds exactly the two acknowledged messages
    assert len(scan_commitlog(again)) == 2
    assert_consistent(again)


def test_a_batch_needing_a_new_queue_file_is_refused_whole(tmp_path, disk):
    store = open_store(tmp_path)
    for _ in range(30):
        put(store, inner())
    end = store.get_max_phy_offset()
    disk.full = True
    batch = [(0, b"b%d" % i, "", {}) for i in range(5)]  # entries 30..34 cross into a second queue file
    d = store.put_message_batch("T", 0, 0, 1, ("10.0.0.1", 1), 0, batch)
    r = result_of(d)
    assert r.status is NOT_AVAILABLE and store.get_max_phy_offset() == end
    assert store.get_max_offset_in_queue("T", 0) == 30
    disk.full = False
    store.reactor.advance(INTERVAL)
    assert result_of(store.put_message_batch("T", 0, 0, 1, ("10.0.0.1", 1), 0, batch)).status is PutMessageStatus.PUT_OK
    assert store.get_max_offset_in_queue("T", 0) == 35
    assert_consistent(store)


def test_disk_use_over_the_warning_level_refuses_puts_within_the_check_interval(tmp_path):
    """Not at the next 10-second retention run: a fast fill is caught on the put path."""
    disk = {"ratio": 0.5}
    store = open_store(tmp_path, disk_usage=lambda path: disk["ratio"])
    assert put(store, inner()).status is PutMessageStatus.PUT_OK
    disk["ratio"] = 0.95
    store.reactor.advance(INTERVAL)
    r = put(store, inner())
    assert r.status is NOT_AVAILABLE
    assert r.reason == "the broker's disk is full: 95.0% used, over diskSpaceWarningLevelRatio 90%"
    disk["ratio"] = 0.6
    assert put(store, inner()).status is NOT_AVAILABLE  # cached until the interval passes
    store.reactor.advance(INTERVAL)
    assert put(store, inner()).status is PutMessageStatus.PUT_OK


def test_a_slave_stops_appending_on_a_full_disk_and_takes_up_again(tmp_path, disk):
    master = open_store(tmp_path / "m")
    for i in range(20):
        put(master, inner(body=b"x" * 1000, uniq=f"U{i:031d}"))
    slave = open_store(tmp_path / "s", broker_role="SLAVE")
    first = master.commitlog.files.files[0]
    data = bytes(first.mm[: first.size])
    assert slave.append_raw(0, data)
    second = master.get_commit_log_data(first.end, 1 << 20)
    disk.full = True
    with pytest.raises(DiskFullError):
        slave.append_raw(first.end, second)  # the slave's second CommitLog file cannot be created
    assert slave.get_max_phy_offset() == first.end
    disk.full = False
    assert slave.append_raw(first.end, second)
    assert slave.get_max_phy_offset() == master.get_max_phy_offset()
    assert_consistent(slave)


def test_a_slave_whose_queue_file_cannot_be_created_dispatches_it_later(tmp_path, disk):
    master = open_store(tmp_path / "m")
    put(master, inner(topic="A"))
    put(master, inner(topic="B"))
    slave = open_store(tmp_path / "s", broker_role="SLAVE")
    slave.append_raw(0, master.get_commit_log_data(0, 64))  # a part of A's record: nothing to dispatch yet
    disk.full = True
    with pytest.raises(DiskFullError):
        slave.append_raw(64, master.get_commit_log_data(64, 1 << 20))
    assert slave.get_max_phy_offset() == master.get_max_phy_offset()  # the bytes are kept...
    assert slave.consume_queue("A", 0) is None or slave.get_max_offset_in_queue("A", 0) == 0  # ...not dispatched
    disk.full = False
    slave.dispatch_appended()
    assert slave.get_max_offset_in_queue("A", 0) == 1 and slave.get_max_offset_in_queue("B", 0) == 1
    assert_consistent(slave)


# -- the checkpoint ---------------------------------------------------------------------------------


def test_a_checkpoint_that_cannot_be_written_is_written_at_the_next_flush(tmp_path, monkeypatch, log_events):
    from mq.store import flushing as store_module

    store = open_store(tmp_path, flush_consume_queue_least_pages=0)  # every queue flushed at every tick
    put(store, inner())
    calls = {"n": 0}
    real = store_module.write_checkpoint

    def failing(path, cp):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, cp)

    monkeypatch.setattr(store_module, "write_checkpoint", failing)
    store.reactor.advance(1)
    put(store, inner())
    store.reactor.advance(1)
    assert calls["n"] == 2 and store.checkpoint.logics_offset != store.reput_offset
    assert len(logged_lines(log_events, "cannot write")) == 1
    assert not tracebacks(log_events)
    store.reactor.advance(1)
    assert store.checkpoint.logics_offset == store.reput_offset
