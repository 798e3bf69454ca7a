"""Leadership transfer in a DLedger group of real processes: ``mqadmin transferLeadership`` moves the routed
master at once, leadership goes back to ``preferredLeaderId`` on its own, and each node's metrics show its role,
term, commit index, its followers' lag, elections and the time it spent without a leader."""

from __future__ import annotations

import urllib.request

from tests.admin.conftest import mqadmin
from tests.broker.dledger.group_support import DLedgerCluster
from tests.support.processes import wait_until


def metrics_of(group, node: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{group.metrics_ports[node]}/metrics", timeout=5) as r:
        return r.read().decode()


def test_transfer_on_request_and_back_to_the_preferred_leader(twistd, tmp_path):
    group = DLedgerCluster(twistd, tmp_path, extra_conf="preferredLeaderId=n0\n", metrics=True).start_all()
    wait_until(lambda: group.master() == group.addr("n0"), 30, 0.1, what="n0, the preferred leader, routed master")
    r = mqadmin("transferLeadership", "-b", group.addr("n0"), "-t", "n2", namesrv=group.namesrv.addr)
    assert r.code == 0 and "leadership handed from n0 to n2" in r.out, (r.out, r.err)
    wait_until(lambda: group.master() == group.addr("n2"), 10, 0.05, what="n2 routed master after the transfer")

    text = metrics_of(group, "n2")
    assert 'mq_dledger_role{group="dl-a",node="n2",role="LEADER"} 1.0' in text
    for family in ("mq_dledger_term", "mq_dledger_commit_index", "mq_dledger_follower_lag_entries",
                   "mq_dledger_elections_total", "mq_dledger_leaderless_seconds_total"):
        assert family in text, family
    assert 'mq_dledger_follower_lag_entries{follower="n0",group="dl-a",node="n2"}' in text

    # a follower refuses: the answer names the leader
    r = mqadmin("transferLeadership", "-b", group.addr("n1"), "-t", "n1", namesrv=group.namesrv.addr)
    assert r.code != 0 and "n1 is not the leader; n2 is" in r.out + r.err

    # n2 hands leadership back to the preferred n0 once n0 is caught up (checked every 5 s)
    wait_until(lambda: group.master() == group.addr("n0"), 30, 0.1, what="leadership back on n0")
    assert "leadership moves back to it" in group.procs["n2"].log_text()


def test_the_metrics_text_has_one_type_line_per_family(twistd, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    group = DLedgerCluster(twistd, tmp_path, metrics=True).start_all()
    master = group.wait_master()
    text = metrics_of(group, group.node_of(master))
    names = [f.name for f in text_string_to_metric_families(text)]
    assert len(names) == len(set(names))
    assert "mq_dledger_leaderless_current_seconds" in names and "mq_dledger_leaderless_seconds" in names
