"""The official C++ client (rocketmq 0.4.4) with a SYNC_MASTER and its slave (``twistd`` processes).

It produces to the master (every send acknowledged only once the slave holds it), and after the master is
killed with SIGKILL its pull consumer reads everything through the slave, found in the route.
"""

from __future__ import annotations

import json

from mq.client.simple import create_topic_request, pull_request
from mq.remoting.codes import ResponseCode as RC
from tests.broker.cluster import route_of
from tests.broker.test_ha_integration import HaCluster
from tests.broker.wire import call
from tests.interop.test_cpp_client import PROPS, cpp, pytestmark  # noqa: F401 - skip without the C++ client
from tests.support.processes import wait_until


def test_cpp_produces_to_sync_master_and_consumes_through_the_slave(twistd, tmp_path):
    cluster = HaCluster(twistd, tmp_path, "SYNC_MASTER").start_both()
    namesrv, maddr, saddr = cluster.namesrv.addr, cluster.addr("master"), cluster.addr("slave")
    topic = "CppHa"
    assert call(maddr, create_topic_request(topic, queues=2)).code == RC.SUCCESS
    specs = [{"body": f"cpp-ha-{i}", "tags": "t", "keys": f"k{i}"} for i in range(20)]
    results = cpp("produce", namesrv, topic, "sync", json.dumps(specs))
    assert [r["status"] for r in results] == ["OK"] * 20, results
    # the slave holds them all and knows the topic (slave sync)
    wait_until(lambda: call(saddr, pull_request("w", topic, 0, 0)).code == RC.SUCCESS, 20, 0.2,
               what="the topic readable on the slave")
    cluster.procs["master"].kill()
    wait_until(lambda: route_of(cluster.namesrv, topic).broker_datas[0].broker_addrs == {1: saddr}, 15,
               what="the route without the master")
    got = []
    for qid in (0, 1):
        got += cpp("pull", namesrv, topic, "cpp_ha_group", str(qid), "0", json.dumps(PROPS))
    assert sorted(m["body"] for m in got) == sorted(s["body"] for s in specs)
