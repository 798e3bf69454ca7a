"""The Raft core under the deterministic simulation: thousands of seeds, every invariant after every event.

A failure prints the seed and the command that replays it with a trace. ``DLEDGER_SIM_EXAMPLES`` scales the
number of seeds per group size (CI default below); ``python -m benchmarks.raft_soak`` runs longer soaks.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dledger.simulation import SimulationFailure, run

EXAMPLES = int(os.environ.get("DLEDGER_SIM_EXAMPLES", "1000"))
CHAOS_MS = 2_000


@pytest.mark.parametrize("nodes", [3, 5])
def test_invariants_hold_for_many_seeds(nodes):
    @settings(max_examples=EXAMPLES if nodes == 3 else EXAMPLES // 2, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 2**63 - 1))
    def check(seed):
        run(seed, nodes, chaos_ms=CHAOS_MS)

    check()


def test_a_failure_names_its_replay_command(monkeypatch):
    """The checks can fail, and say how to replay: a core that commits on a single durable copy is caught."""
    from mq.dledger import node as node_module

    def careless_commit(self):
        n = max([self.durable] + [self.match[p] for p in self.others])  # no majority: the largest mark
        if n > self.commit and self.log.term_at(n) == self.term:
            self.commit = n
            self._hand_out()

    monkeypatch.setattr(node_module.RaftNode, "_maybe_commit", careless_commit)
    failures = _failures(range(40))
    assert failures, "a commit on one copy went unnoticed in 40 seeds"
    assert "python -m tests.dledger.simulation --seed" in failures[0]


def test_replay_is_exact():
    a = run(12345, 5, chaos_ms=CHAOS_MS)
    b = run(12345, 5, chaos_ms=CHAOS_MS)
    assert a.stats == b.stats
    assert [n.log.entries() for n in a.nodes.values()] == [n.log.entries() for n in b.nodes.values()]


def test_a_vote_for_a_shorter_log_is_caught(monkeypatch):
    """Leader completeness is checked: a core that votes without comparing logs elects leaders missing commits."""
    from mq.dledger import node as node_module

    monkeypatch.setattr(node_module.RaftNode, "_log_ok", lambda self, last_index, last_term: True)
    failures = _failures(range(60))
    assert any("lacks entry" in f for f in failures), failures[:3]


def test_a_stale_vote_may_elect_a_leader_of_an_older_term():
    """Raft promises completeness to leaders of later terms only: here a vote granted in term 2 reaches its
    candidate after term 3 has committed more, and the term-2 leader rightly lacks it (found by seed search)."""
    sim = run(2891654466278326, 3, chaos_ms=CHAOS_MS)
    assert sim.stats["acked"] > 0


def test_an_eviction_before_the_disk_has_the_entry_is_caught(monkeypatch):
    """The body cache is checked: a log that lets bodies of unapplied (maybe unsynced) entries leave memory
    reads them from a disk that does not hold them."""
    from mq.dledger.log import RaftLog

    append = RaftLog.append

    def append_and_release(self, entries):
        append(self, entries)
        self.release(self.last_index)

    monkeypatch.setattr(RaftLog, "append", append_and_release)
    failures = _failures(range(40))
    assert any("beyond the disk" in f or "differs" in f or "holds" in f for f in failures), failures[:3]



def _failures(seeds):
    """The failure messages of 3-node runs of ``seeds``."""
    failures = []
    for seed in seeds:
        try:
            run(seed, 3, chaos_ms=CHAOS_MS)
        except SimulationFailure as e:
            failures.append(str(e))
    return failures


def test_a_leader_that_ignores_its_retention_is_caught(monkeypatch):
    """Retention is checked: a leader that keeps sending from below its base (as before retention existed)
    never brings a follower that needs deleted entries back, and the heal phase says so."""
    from mq.dledger import node as node_module
    from mq.dledger.messages import AppendRequest

    def send_append(self, p):
        first = self.next[p]
        entries = tuple(self.log.slice(first, self.config.max_batch_entries, self.config.max_batch_bytes))
        self._send(AppendRequest(self.id, p, self.term, first - 1, self.log.term_at(first - 1), entries, self.commit))
        if not self.probing[p]:
            self.next[p] = first + len(entries)

    monkeypatch.setattr(node_module.RaftNode, "_send_append", send_append)
    failures = _failures(range(80))
    assert any("after healing" in f or "no commit" in f for f in failures), failures[:3]
