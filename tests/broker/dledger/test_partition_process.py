"""A leader cut off from its peers (a TCP proxy on every Raft connection, cut) cannot acknowledge a send: its
sends fail (timeout, then refusal once it steps down), the two others elect a new master that takes sends,
and after the heal the old leader drops its uncommitted tail and ends with the group's CommitLog."""

from __future__ import annotations

import time

import pytest

from mq.client.simple import create_topic_request, send_request
from mq.remoting.codes import ResponseCode as RC
from tests.broker.dledger.group_support import DLedgerCluster
from tests.broker.test_ha_integration import drain
from tests.broker.wire import Wire, call
from tests.support.processes import wait_until


@pytest.fixture
def group(twistd, tmp_path):
    group = DLedgerCluster(twistd, tmp_path, proxied=True)
    yield group
    group.close_proxies()


def test_a_partitioned_leader_acknowledges_nothing(group):
    group.start_all()
    master = group.wait_master()
    old = group.node_of(master)
    assert call(master, create_topic_request("DlPart", queues=1)).code == RC.SUCCESS
    with Wire(master) as w:
        w.send_each("DlPart", (b"before-%d" % i for i in range(50)))
    group.isolate(old)
    refused = {}
    deadline = time.monotonic() + 60  # only a bound on the wait: sends go on until it has stepped down
    with Wire(master) as w:
        i = 0
        while RC.SERVICE_NOT_AVAILABLE not in refused:  # timeouts (no quorum), then refusals (stepped down)
            assert time.monotonic() < deadline, f"the cut-off leader never stepped down: {refused}"
            r = w.call(send_request("DlPart", b"cut-%d" % i, queue_id=0), timeout=10)
            assert r.code != RC.SUCCESS, f"send {i} acknowledged by a leader cut off from its group"
            refused[r.code] = refused.get(r.code, 0) + 1
            i += 1
    new = group.wait_master(20, other_than=master)
    for i in range(20):
        r = call(new, send_request("DlPart", b"after-%d" % i, queue_id=0))
        assert r.code == RC.SUCCESS, (r.code, r.remark)
    group.isolate(old, cut=False)
    wait_until(lambda: group.commitlog(old) == group.commitlog(group.node_of(new)), 30, 0.2,
               what="the old leader's CommitLog equal to the new leader's after the heal")
    bodies = drain(group.addr(old), "DlPart", 1)[0]
    assert len(bodies) == 70 and not any(b.startswith(b"cut-") for b in bodies)
