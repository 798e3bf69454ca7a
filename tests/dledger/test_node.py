"""The Raft core's behaviours one by one, on a reliable in-process network with real default timings."""

from __future__ import annotations

import random

import pytest

from mq.dledger.config import RaftConfig
from mq.dledger.messages import AppendRequest, Entry, Proposed, Refused
from mq.dledger.node import FOLLOWER, LEADER, PRE_CANDIDATE, RaftNode

IDS = ["n0", "n1", "n2"]


class Group:
    """Instant delivery, fsync at once unless ``no_sync`` names the node; ``cut`` isolates nodes."""

    def __init__(self, seed=1, config=RaftConfig()):
        self.now = 0
        self.rng = random.Random(seed)
        self.nodes = {i: RaftNode(i, IDS, config, random.Random(self.rng.random()), 0) for i in IDS}
        self.cut = set()
        self.no_sync = set()
        self.queue = []
        self.applied = {i: [] for i in IDS}

    def handle(self, i, out):
        self.queue.extend(out.messages)
        self.applied[i].extend(out.committed)
        if out.persist and i not in self.no_sync:
            node = self.nodes[i]
            self.handle(i, node.persisted(node.log.last_index, node.log.last_term, self.now))

    def flush(self):
        while self.queue:
            m = self.queue.pop(0)
            if m.src in self.cut or m.dst in self.cut:
                continue
            self.handle(m.dst, self.nodes[m.dst].step(m, self.now))

    def advance(self, ms, step=10):
        end = self.now + ms
        while self.now < end:
            self.now += step
            for i, node in self.nodes.items():
                self.handle(i, node.tick(self.now))
            self.flush()

    def leaders(self):
        return [i for i, n in self.nodes.items() if n.role == LEADER]

    def propose(self, i, body=b"x"):
        result, out = self.nodes[i].propose([body], self.now)
        self.handle(i, out)
        self.flush()
        return result


def _elected(seed=1):
    g = Group(seed)
    g.advance(3_000)
    assert len(g.leaders()) == 1
    return g, g.leaders()[0]


def test_one_leader_and_its_noop_committed_everywhere():
    g, leader = _elected()
    g.advance(1_000)
    for i in IDS:
        assert [e.body for e in g.applied[i]] == [b""]
    assert isinstance(g.propose(leader), Proposed)
    g.advance(500)
    assert all([e.body for e in g.applied[i]] == [b"", b"x"] for i in IDS)


def test_a_rejoining_partitioned_follower_does_not_depose_the_leader():
    g, leader = _elected()
    term = g.nodes[leader].term
    follower = next(i for i in IDS if i != leader)
    g.cut = {follower}
    g.advance(10_000)
    assert g.nodes[follower].role == PRE_CANDIDATE
    assert g.nodes[follower].term == term  # pre-votes never move a term
    g.cut = set()
    g.advance(2_000)
    assert g.leaders() == [leader] and g.nodes[leader].term == term
    assert g.nodes[follower].role == FOLLOWER and g.nodes[follower].leader == leader


def test_a_cut_off_leader_steps_down_and_acknowledges_nothing():
    g, leader = _elected()
    g.cut = {leader}
    proposed = g.propose(leader, b"lost")
    assert isinstance(proposed, Proposed)
    g.advance(RaftConfig().election_min_ms + 100)
    assert g.nodes[leader].role != LEADER
    assert g.propose(leader) == Refused("NOT_LEADER", None)
    assert b"lost" not in [e.body for e in g.applied[leader]]
    g.advance(3_000)
    others = [i for i in IDS if i != leader]
    assert len(g.leaders()) == 1 and g.leaders()[0] in others
    g.cut = set()
    g.advance(2_000)
    assert all(b"lost" not in [e.body for e in g.nodes[i].log.entries()] for i in IDS)  # its tail was cut


def test_nothing_commits_before_a_majority_reports_it_durable():
    g, leader = _elected()
    g.advance(500)
    g.no_sync = {i for i in IDS if i != leader}
    g.propose(leader, b"y")
    g.advance(2_000)
    assert all(b"y" not in [e.body for e in g.applied[i]] for i in IDS)
    follower = next(iter(g.no_sync))
    node = g.nodes[follower]
    g.handle(follower, node.persisted(node.log.last_index, node.log.last_term, g.now))
    g.flush()
    assert b"y" in [e.body for e in g.applied[leader]]


def test_leadership_transfer_to_a_named_peer():
    g, leader = _elected()
    target = next(i for i in IDS if i != leader)
    error, out = g.nodes[leader].transfer_leadership(target, g.now)
    assert error is None
    assert g.propose(leader) == Refused("TRANSFERRING", leader)
    g.handle(leader, out)
    g.flush()
    g.advance(100)
    assert g.leaders() == [target]
    assert g.nodes[leader].transfer_leadership("n9", g.now)[0] == "NOT_LEADER"
    assert g.nodes[target].transfer_leadership("n9", g.now)[0] == "UNKNOWN_PEER"


def test_a_malformed_append_changes_nothing():
    g, leader = _elected()
    follower = next(i for i in IDS if i != leader)
    node = g.nodes[follower]
    before = node.log.entries()
    bad = AppendRequest(leader, follower, node.term, node.log.last_index, node.log.last_term,
                        (Entry(node.log.last_index + 2, node.term, b"gap"),), 0)
    assert not node.step(bad, g.now).messages
    assert node.log.entries() == before


@pytest.mark.parametrize("kwargs", [dict(heartbeat_ms=600), dict(election_max_ms=1_000), dict(heartbeat_ms=0),
                                    dict(max_pending=True)])
def test_config_refuses_unsafe_timings(kwargs):
    with pytest.raises(ValueError):
        RaftConfig(**kwargs)


def test_a_follower_takes_entries_at_or_below_its_base_as_matching():
    """Retention deleted entries 1..5 here (applied, so committed): a leader resending from 4 is answered from
    the base on, and the entries after it are appended."""
    from mq.dledger.log import MemoryLog

    log = MemoryLog([Entry(i, 1, b"x%d" % i) for i in range(1, 9)])
    node = RaftNode("n1", IDS, RaftConfig(), random.Random(1), 0, log=log, applied=0)
    out = node.step(AppendRequest("n0", "n1", 1, 8, 1, (), 6), 10)
    node.persisted(8, 1, 10)
    assert node.applied == 6
    log.compact(5)
    assert log.first_index == 6 and log.term_at(5) == 1
    resent = tuple(Entry(i, 1, b"x%d" % i) for i in range(4, 9)) + (Entry(9, 2, b"new"),)
    out = node.step(AppendRequest("n0", "n1", 2, 3, 1, resent, 9), 20)
    assert [(m.success, m.last) for m in out.messages] == [(True, 9)]
    assert log.last_index == 9 and log.entry(9).body == b"new"
    out = node.step(AppendRequest("n0", "n1", 2, 3, 1, resent[:2], 9), 30)  # a stale batch, all at or below the base
    assert [(m.success, m.last) for m in out.messages] == [(True, 9)]
    restarted = RaftNode("n1", IDS, RaftConfig(), random.Random(1), 0, log=log, applied=2)
    assert restarted.applied == restarted.commit == 5  # what retention deleted was applied


def test_committed_entries_are_handed_out_one_batch_at_a_time():
    """A node restarted far behind its commit index hands out at most one append batch per call, and asks
    for a tick at once while more wait, so a restart never reads the whole log into one output."""
    from mq.dledger.log import MemoryLog

    config = RaftConfig(max_batch_entries=100, max_batch_bytes=1_000)
    log = MemoryLog([Entry(i, 1, b"%03d" % (i % 1000) * 5) for i in range(1, 1001)])  # 15-byte bodies
    node = RaftNode("n1", IDS, config, random.Random(1), 0, log=log, applied=0)
    out = node.step(AppendRequest("n0", "n1", 1, 1000, 1, (), 1000), 10)
    sizes = [len(out.committed)]
    while node.next_deadline() == 0:
        sizes.append(len(node.tick(20).committed))
    assert sizes == [66] * 15 + [10] and node.applied == 1000  # 1,000 bytes of 15-byte bodies: 66 a batch
    assert node.next_deadline() > 20


def test_the_leader_replicates_a_proposal_in_parallel_with_its_own_fsync():
    """Standard Raft: followers get the entry in the same step as the leader's own write (not after its fsync);
    the leader's copy counts toward a majority only once on its disk, and nothing is handed out (acknowledged)
    before this node's own fsync either."""
    g, leader = _elected()
    g.advance(500)
    g.no_sync = set(IDS)  # no fsync finishes unless reported below
    node = g.nodes[leader]
    result, out = node.propose([b"z"], g.now)
    sent = [m for m in out.messages if isinstance(m, AppendRequest) and [e.body for e in m.entries] == [b"z"]]
    assert {m.dst for m in sent} == set(IDS) - {leader} and out.persist
    g.handle(leader, out)
    g.flush()
    follower = next(i for i in IDS if i != leader)
    f = g.nodes[follower]
    g.handle(follower, f.persisted(f.log.last_index, f.log.last_term, g.now))
    g.flush()
    assert node.commit < result.last  # one follower on disk, the leader's own copy not yet: no majority
    g.handle(leader, node.persisted(node.log.last_index, node.log.last_term, g.now))
    assert node.commit == result.last and b"z" in [e.body for e in g.applied[leader]]
