"""The Prometheus families of a DLedger group (docs/replication.md): its role, indexes, follower lag and
elections as the broker's metrics endpoint shows them. ``DLedgerGroup`` only keeps the counts; reading them out
for Prometheus is this module's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from mq.dledger.node import LEADER

if TYPE_CHECKING:
    from mq.broker.dledger.group import DLedgerGroup


def collect(group: DLedgerGroup) -> Iterator:
    """The group's Prometheus families: role, term and indexes, follower lag (leader only), elections and time
    without a leader; nothing before the Raft log is open."""
    node = group.driver.node if group.driver is not None else None
    if node is None:
        return
    labels = ["group", "node"]
    key = [group.settings.group, group.settings.self_id]
    role = GaugeMetricFamily("mq_dledger_role", "1 for this node's Raft role (LEADER only once it serves)",
                             labels=labels + ["role"])
    shown = "LEADER" if node.role == LEADER and group.ready else ("LEADER_NOT_READY" if node.role == LEADER
                                                                 else node.role)
    for r in ("LEADER", "LEADER_NOT_READY", "FOLLOWER", "PRE_CANDIDATE", "CANDIDATE"):
        role.add_metric(key + [r], 1 if r == shown else 0)
    yield role
    for name, doc, value in (
        ("mq_dledger_term", "Raft term", node.term),
        ("mq_dledger_commit_index", "Highest committed Raft index known here", node.commit),
        ("mq_dledger_applied_index", "Highest Raft index applied to the CommitLog", group.applied_index),
        ("mq_dledger_last_index", "Last Raft index in this node's log", node.log.last_index),
    ):
        yield _one(name, doc, labels, key, value)
    lag = GaugeMetricFamily("mq_dledger_follower_lag_entries",
                            "Entries a follower has not yet on disk (leader only)", labels=labels + ["follower"])
    if node.role == LEADER:
        for p in node.others:
            lag.add_metric(key + [p], node.log.last_index - node.match[p])
    yield lag
    now = group.reactor.seconds()
    current = 0.0 if group.leaderless_since is None else now - group.leaderless_since
    yield _one("mq_dledger_leaderless_current_seconds", "Seconds without a known leader so far, this time",
               labels, key, current)
    for name, doc, value in (
        ("mq_dledger_elections", "Elections this node started (as candidate)", group.elections),
        ("mq_dledger_leader_changes", "Times this node learned of a new leader", group.leader_changes),
        ("mq_dledger_leaderless_seconds_total", "Seconds this node knew no leader, all together",
         group.leaderless_total + current),
    ):
        family = CounterMetricFamily(name, doc, labels=labels)
        family.add_metric(key, value)
        yield family


def _one(name: str, doc: str, labels, key, value) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    family.add_metric(key, value)
    return family
