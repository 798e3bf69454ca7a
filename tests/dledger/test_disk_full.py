"""A full disk under the Raft log: a write that finds no room is undone to the last whole entry, proposals are
refused (DISK_FULL), the write is retried until it fits, and the files never hold a torn entry. Simulated ENOSPC
(``store.pwrite``) and, where a tmpfs can be mounted, a real full filesystem."""

from __future__ import annotations

import errno
import os

import pytest

from mq.dledger import store as store_module
from mq.dledger.messages import Entry
from mq.dledger.store import DurableLog
from mq.store.mappedfile import DiskFullError
from tests.dledger.test_driver import Cluster


def _entries(n, first=1, term=1, size=200):
    return [Entry(i, term, bytes([i % 251]) * size) for i in range(first, first + n)]


class FullDisk:
    """Stands in for ``os.pwrite``: under a full directory, writes ``room`` more bytes, then ENOSPC."""

    def __init__(self):
        self.full = {}  # directory -> bytes still allowed

    def __call__(self, fd, data, offset):
        directory = os.path.dirname(os.readlink(f"/proc/self/fd/{fd}"))
        room = self.full.get(directory)
        if room is None:
            return os.pwrite(fd, data, offset)
        if room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = os.pwrite(fd, bytes(data[:room]), offset)
        self.full[directory] = room - n
        return n


@pytest.fixture
def full_disk(monkeypatch):
    fake = FullDisk()
    monkeypatch.setattr(store_module, "pwrite", fake)
    return fake


def _recovered(path, segment=4096):
    log = DurableLog(str(path), segment)
    log.recover()
    entries = list(log.iter_entries())
    log.close()
    return entries, log.recovered_cut


@pytest.mark.parametrize("room", [0, 100, 300])  # no byte, part of an entry, one entry and part of the next
def test_a_write_without_room_is_undone_to_the_last_whole_entry(tmp_path, full_disk, room):
    log = DurableLog(str(tmp_path), 4096)
    log.recover()
    log.append(_entries(25))
    log.sync()
    full_disk.full[str(tmp_path)] = room
    with pytest.raises(DiskFullError):
        log.append(_entries(10, first=26))
    kept = 25 + room // 248
    assert log.last_index == kept and log.end == log.position(kept) + 248
    assert sum(os.path.getsize(tmp_path / f"{s:020d}") for s in log.segments) == log.end - log.segments[0]
    assert sorted(int(n) for n in os.listdir(tmp_path)) == log.segments  # a segment the failed write opened is gone
    log.sync()
    assert _recovered(tmp_path) == (_entries(kept), 0)
    del full_disk.full[str(tmp_path)]
    log.append(_entries(35 - kept, first=kept + 1))
    log.sync()
    assert _recovered(tmp_path) == (_entries(35), 0)


def test_the_driver_refuses_proposals_and_retries_until_the_disk_has_room(tmp_path, full_disk, log_events):
    c = Cluster(tmp_path)
    c.run(3)
    leader_id = c.leader()
    leader = c.drivers[leader_id]
    full_disk.full[str(tmp_path / leader_id)] = 0
    first, refused = [], []
    leader.propose([b"a" * 500, b"b" * 500]).addBoth(first.append)
    c.run(0.2)
    assert leader.disk_full and first == []  # a follower majority has it, but not the leader's own disk
    leader.propose([b"c"]).addErrback(lambda f: refused.append(f.value.reason))
    assert refused == ["DISK_FULL"]
    c.run(1)
    assert leader.disk_full and first == []  # retried, still full
    del full_disk.full[str(tmp_path / leader_id)]
    c.run(1.1)
    assert not leader.disk_full and first == [3]
    after = []
    leader.propose([b"d"]).addBoth(after.append)
    c.run(0.5)
    assert after == [4]
    for d in c.drivers.values():
        d.stop()
        d.store.close()
    logs = {i: _recovered(tmp_path / i) for i in c.drivers}
    assert all(got == logs[leader_id] for got in logs.values())
    assert [e.body for e in logs[leader_id][0]] == [b"", b"a" * 500, b"b" * 500, b"d"]
    errors = [e for e in log_events if "proposals are refused (DISK_FULL)" in str(e.get("log_format", ""))]
    assert len(errors) == 1  # one line per episode, not one per retry


def test_a_real_full_filesystem(small_disk):
    """An 8 MiB tmpfs filled but for a little: appends stop at an entry boundary, recovery reads exactly
    what was written, and once space is freed the log goes on."""
    directory = small_disk / "log"
    log = DurableLog(str(directory), 1 << 20)
    log.recover()
    free = os.statvfs(small_disk)
    with open(small_disk / "filler", "wb") as f:
        f.write(b"\0" * (free.f_bavail * free.f_frsize - 200_000))
    index = 0
    with pytest.raises(DiskFullError):
        while True:
            log.append(_entries(1, first=index + 1, size=4000))
            index += 1
    log.sync()
    assert 0 < index == log.last_index < 60
    log.close()
    assert _recovered(directory, 1 << 20) == (_entries(index, size=4000), 0)
    os.unlink(small_disk / "filler")
    log = DurableLog(str(directory), 1 << 20)
    log.recover()
    log.append(_entries(100, first=index + 1, size=4000))
    log.sync()
    log.close()
    assert _recovered(directory, 1 << 20) == (_entries(index + 100, size=4000), 0)


def test_no_message_leaves_while_term_and_vote_cannot_be_saved(tmp_path, monkeypatch, log_events):
    """A node whose disk cannot take its new term or vote sends nothing (a vote nobody saw cannot be
    forgotten unsafely); the other two elect and commit without it, and it rejoins once the save fits."""
    from mq.dledger.store import MetaStore

    save = MetaStore.save
    full = {str(tmp_path / "n2")}

    def meta_save(self, state):
        if self.directory in full:
            raise OSError(errno.ENOSPC, "No space left on device")
        save(self, state)

    monkeypatch.setattr(MetaStore, "save", meta_save)
    c = Cluster(tmp_path)
    c.run(3)
    leader = c.drivers[c.leader()]
    from_n2 = [m for m in c.sent if m.src == "n2"]
    assert leader.node.id != "n2" and c.drivers["n2"].node.term > 0
    assert all(getattr(m, "pre", False) for m in from_n2)  # pre-votes at term 0, before any save failed
    del c.sent[:]
    results = []
    leader.propose([b"x"]).addBoth(results.append)
    c.run(0.5)
    assert results == [2] and MetaStore(str(tmp_path / "n2")).load().term == 0
    full.clear()
    c.run(1)
    assert any(m.src == "n2" for m in c.sent) and MetaStore(str(tmp_path / "n2")).load().term == c.drivers["n2"].node.term
    assert c.drivers["n2"].node.log.entries() == leader.node.log.entries()
    lines = [e for e in log_events if "no space to save term and vote" in str(e.get("log_format", ""))]
    assert len(lines) == 1
