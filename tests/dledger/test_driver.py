"""``RaftDriver`` on ``task.Clock``: three nodes with real files, messages through the remoting codec and
frames, controlled fsync completion."""

from __future__ import annotations

import os
import random

import pytest
from twisted.internet import defer, task

from mq.dledger import codec
from mq.dledger.config import RaftConfig
from mq.dledger.driver import RaftDriver
from mq.dledger.log import RaftLog
from mq.dledger.node import LEADER, RaftNode
from mq.dledger.store import DurableLog, MetaStore
from mq.remoting.serialization import decode_command, encode_command

IDS = ["n0", "n1", "n2"]


class Cluster:
    def __init__(self, root, seed=7, stalled=(), cache_bytes=64 << 20, **driver_kwargs):
        self.root = root
        self.cache_bytes = cache_bytes
        self.driver_kwargs = driver_kwargs
        self.clock = task.Clock()
        self.clock.advance(1000)
        self.rng = random.Random(seed)
        self.stalled = set(stalled)  # nodes whose fsyncs never complete
        self.drivers = {}
        self.sent = []  # every message any driver sent
        for i in IDS:
            self.start(i)

    def start(self, i):
        directory = str(self.root / i)
        store = DurableLog(directory, 4096)
        meta = MetaStore(directory)
        node = RaftNode(i, IDS, RaftConfig(), random.Random(self.rng.random()), int(self.clock.seconds() * 1000),
                        meta.load(), RaftLog.from_store(store, self.cache_bytes))
        blocking = (lambda fn: defer.Deferred()) if i in self.stalled else (lambda fn: defer.maybeDeferred(fn))
        driver = RaftDriver(self.clock, node, store, meta, self.send, run_blocking=blocking, **self.driver_kwargs)
        self.drivers[i] = driver
        driver.start()

    def send(self, msg):
        self.sent.append(msg)
        frame = encode_command(codec.to_command(msg, "broker-a"))
        self.clock.callLater(0.002, self.deliver, frame)

    def deliver(self, frame):
        _group, msg = codec.from_command(decode_command(frame))
        driver = self.drivers.get(msg.dst)
        if driver is not None and not driver._stopped:
            driver.receive(msg)

    def run(self, seconds):
        for _ in range(int(seconds * 100)):
            self.clock.advance(0.01)

    def leader(self):
        leaders = [i for i, d in self.drivers.items() if d.node.role == LEADER and not d._stopped]
        assert len(leaders) == 1, leaders
        return leaders[0]


def test_a_proposal_fires_once_committed_and_is_on_every_disk(tmp_path):
    c = Cluster(tmp_path)
    c.run(3)
    leader = c.leader()
    results = []
    c.drivers[leader].propose([b"hello", b"world"]).addBoth(results.append)
    c.run(0.5)
    assert results == [3]  # the no-op is entry 1
    for i in IDS:
        store = DurableLog(str(tmp_path / i))
        store.recover()
        on_disk = list(store.iter_entries())
        assert [e.body for e in on_disk] == [b"", b"hello", b"world"]
        assert MetaStore(str(tmp_path / i)).load().term == c.drivers[leader].node.term
    follower = next(i for i in IDS if i != leader)
    failed = []
    c.drivers[follower].propose([b"x"]).addErrback(lambda f: failed.append((f.value.reason, f.value.leader)))
    assert failed == [("NOT_LEADER", leader)]


def test_restart_recovers_term_vote_and_log(tmp_path):
    c = Cluster(tmp_path)
    c.run(3)
    old = c.drivers[c.leader()]
    old.propose([b"kept"])
    c.run(0.5)
    term = old.node.term
    for d in c.drivers.values():
        d.stop()
        d.store.close()
    c2 = Cluster(tmp_path, seed=8)
    for d in c2.drivers.values():
        assert d.node.term == term and [e.body for e in d.node.log.entries()] == [b"", b"kept"]
    c2.run(3)
    leader = c2.drivers[c2.leader()]
    assert leader.node.term > term
    results = []
    leader.propose([b"after"]).addBoth(results.append)
    c2.run(0.5)
    assert results == [4]


def test_without_durable_followers_a_proposal_times_out(tmp_path):
    c = Cluster(tmp_path, stalled=["n0", "n1", "n2"])
    c.run(3)
    leader = c.drivers[c.leader()]
    failures = []
    leader.propose([b"never"]).addErrback(lambda f: failures.append(f.value.reason))
    c.run(2.4)
    assert failures == []
    c.run(0.2)
    assert failures == ["TIMEOUT"]
    assert leader.node.commit == 0


def test_proposals_of_one_turn_go_out_together(tmp_path):
    c = Cluster(tmp_path)
    c.run(3)
    leader = c.drivers[c.leader()]
    sent = []
    send = leader.send
    leader.send = lambda msg: (sent.append(msg), send(msg))
    results = []
    for k in range(5):
        leader.propose([b"m%d" % k]).addBoth(results.append)
    assert sent == []  # nothing leaves before the end of the turn
    c.clock.advance(0)
    appends = [m for m in sent if type(m).__name__ == "AppendRequest" and m.entries]
    assert len(appends) == 2 and all(len(m.entries) == 5 for m in appends)  # one per follower, all five
    c.run(0.5)
    assert results == [2, 3, 4, 5, 6]


def _age_files(directory):
    for name in os.listdir(directory):
        if len(name) == 20:
            os.utime(os.path.join(directory, name), (1000, 1000))


def test_a_follower_behind_the_leaders_retention_gets_heartbeats_only_until_resynced(tmp_path):
    c = Cluster(tmp_path)
    c.run(3)
    leader_id = c.leader()
    leader = c.drivers[leader_id]
    lagging = next(i for i in IDS if i != leader_id)
    c.drivers[lagging].stop()
    c.drivers[lagging].store.close()
    for k in range(10):
        leader.propose([bytes([k]) * 300 for _ in range(10)])
        c.run(0.1)
    assert leader.node.commit == 101
    _age_files(tmp_path / leader_id)
    base = leader.delete_expired(reserved_ms=3_600_000)
    c.run(0.1)
    assert base is not None and leader.node.log.base_index == base > 1
    assert leader.store.base_index == base and len(os.listdir(tmp_path / leader_id)) < 10

    c.start(lagging)
    c.run(0.5)
    assert leader.node.behind == {lagging}
    del c.sent[:]
    c.run(3)
    assert leader.node.behind == {lagging} and c.leader() == leader_id
    assert c.drivers[lagging].node.leader == leader_id and c.drivers[lagging].node.log.last_index == 1
    to_lagging = [m for m in c.sent if m.dst == lagging]
    assert 3 / 0.3 - 2 <= len(to_lagging) <= 3 / 0.3 + 2  # a heartbeat a tick, no resend loop
    assert all(not m.entries and m.prev_index == base for m in to_lagging)

    # the broker's resync: the follower's log restarts at the leader's base
    c.drivers[lagging].stop()
    c.drivers[lagging].store.close()
    DurableLog(str(tmp_path / lagging), 4096).reset(base, leader.node.log.term_at(base), leader.store.base_pos)
    c.start(lagging)
    results = []
    leader.propose([b"after"]).addBoth(results.append)
    c.run(1)
    assert results == [102] and leader.node.behind == set()
    caught_up = c.drivers[lagging]
    assert caught_up.node.log.entries() == leader.node.log.entries()
    assert [caught_up.store.position(i) for i in (base + 1, 102)] == [leader.store.position(i) for i in (base + 1, 102)]


@pytest.fixture
def fsynced(monkeypatch):
    """The descriptors the Raft log's files were fsynced on, in order."""
    import mq.dledger.store

    calls = []
    real = os.fsync
    monkeypatch.setattr(mq.dledger.store.os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    return calls


def commit_one(c, body, fsynced):
    """Elect a leader, forget the fsyncs so far, and have ``body`` committed within 0.2 s."""
    c.run(3)
    leader = c.drivers[c.leader()]
    fsynced.clear()
    results = []
    leader.propose([body]).addBoth(results.append)
    c.run(0.2)
    assert results == [leader.node.log.last_index]


def test_async_flush_counts_a_written_entry_and_fsyncs_it_within_the_interval(tmp_path, fsynced):
    c = Cluster(tmp_path, flush_each=False, flush_interval_ms=30_000)
    commit_one(c, b"fast", fsynced)
    assert fsynced == [] and all(d.store.dirty for d in c.drivers.values())
    c.run(30)
    assert fsynced and not any(d.store.dirty for d in c.drivers.values())
    fsynced.clear()
    c.run(31)
    assert fsynced == []  # nothing written since: nothing to fsync
    for i in IDS:  # and what was acknowledged is in every node's files
        store = DurableLog(str(tmp_path / i))
        store.recover()
        assert [e.body for e in store.iter_entries()][-1] == b"fast"


def test_sync_flush_fsyncs_before_an_entry_counts(tmp_path, fsynced):
    c = Cluster(tmp_path)
    commit_one(c, b"safe", fsynced)
    assert len(fsynced) >= 2  # the leader's and at least one follower's before the majority counted
    assert not any(d.store.dirty for d in c.drivers.values())


def test_async_flush_writes_on_the_reactor_thread_and_answers_an_append_once(tmp_path):
    """Under ASYNC_FLUSH a write goes to the page cache at once (no worker round trip, which cost more CPU than
    the write), and a follower's answers before and after its write to one AppendRequest become one."""
    handed = []
    c = Cluster(tmp_path, flush_each=False, flush_interval_ms=30_000)
    for d in c.drivers.values():
        d.run_blocking = lambda fn, run=d.run_blocking: (handed.append(fn), run(fn))[1]
    c.run(3)
    leader = c.drivers[c.leader()]
    del handed[:], c.sent[:]
    results = []
    leader.propose([b"one", b"two"]).addBoth(results.append)
    c.run(0.2)
    assert results == [leader.node.log.last_index] and handed == []  # written and committed without a worker
    answers = [m for m in c.sent if type(m).__name__ == "AppendResponse"]
    appends = [m for m in c.sent if type(m).__name__ == "AppendRequest" and m.entries]
    assert len(appends) >= 2 and len(answers) == len(appends)  # one answer each, already counting the write
    assert all(a.success and a.durable == a.last == results[0] for a in answers)
    c.run(30)
    assert len(handed) == 3  # the fsyncs, one per node, in the worker
    for i in IDS:
        store = DurableLog(str(tmp_path / i))
        store.recover()
        assert [e.body for e in store.iter_entries()][-2:] == [b"one", b"two"]


def test_one_timer_bounds_the_wait_of_every_proposal(tmp_path):
    c = Cluster(tmp_path, stalled=["n0", "n1", "n2"])
    c.run(3)
    leader = c.drivers[c.leader()]
    failures = []
    for k in range(50):
        leader.propose([b"m%d" % k]).addErrback(lambda f: failures.append(f.value.reason))
        c.clock.advance(0.01)
    assert len(leader._pending) == 50
    assert len([dc for dc in c.clock.getDelayedCalls() if dc.func == leader._expire]) == 1
    c.run(2.2)
    assert 0 < len(failures) < 50  # the early ones expired, the later ones still wait
    c.run(0.4)
    assert failures == ["TIMEOUT"] * 50 and leader._pending == {} and not leader._deadlines
