"""A DLedger group of three real ``twistd broker`` processes and a NameServer: election, replication of every
acknowledged send to the followers' CommitLogs byte for byte, followers as slaves with RocketMQ's ids, the
config reaching them, and a graceful stop that hands leadership over first."""

from __future__ import annotations

import time

import pytest

from mq.client.simple import create_topic_request, query_offset_request, send_request, update_offset_request
from mq.remoting.codes import ResponseCode as RC
from tests.broker.dledger.group_support import DLedgerCluster
from tests.broker.test_ha_integration import drain
from tests.broker.wire import Wire, call
from tests.support.processes import wait_until


@pytest.fixture
def group(twistd, tmp_path):
    return DLedgerCluster(twistd, tmp_path)


def route_ids(group):
    from mq.client.simple import parse_route, route_request

    route = parse_route(call(group.namesrv.addr, route_request("TBW102")))
    return next((bd.broker_addrs for bd in route.broker_datas if bd.broker_name == "dl-a"), None) if route else None


def test_a_group_elects_replicates_and_its_followers_act_as_slaves(group):
    group.start_all()
    master = group.wait_master()
    leader = group.node_of(master)
    followers = [n for n in group.ids if n != leader]
    expected = {0: master, **{int(n[1:]) + 1: group.addr(n) for n in followers}}
    wait_until(lambda: route_ids(group) == expected, 20, 0.1, what=f"the route {expected}")

    assert call(master, create_topic_request("DlT", queues=4)).code == RC.SUCCESS
    with Wire(master) as w:
        sent = w.send_each("DlT", (b"dl-%04d" % i for i in range(200)), queues=4, tags="t")
    assert call(master, update_offset_request("dlG", "DlT", 1, 9)).code == RC.SUCCESS

    # followers refuse sends as slaves do, and serve reads: every acknowledged message is there
    for n in followers:
        r = call(group.addr(n), send_request("DlT", b"no", queue_id=0))
        assert r.code == RC.SERVICE_NOT_AVAILABLE and "slave" in r.remark
    for n in followers:
        wait_until(lambda n=n: sorted(drain(group.addr(n), "DlT", 4)[0]) == sent, 20, 0.2,
                   what=f"every message on {n}")
        wait_until(lambda n=n: call(group.addr(n), query_offset_request("dlG", "DlT", 1)).ext_fields.get("offset")
                   == "9", 20, 0.2, what=f"the consumer offset synced to {n}")
    logs = {n: group.commitlog(n) for n in group.ids}
    assert logs[followers[0]] == logs[leader] == logs[followers[1]]

    # a graceful stop of the leader hands leadership over: a new master is routed at once
    assert group.procs[leader].stop() in (0, -15)
    assert "leadership goes to" in group.procs[leader].log_text()
    new = group.wait_master(10, other_than=master)
    r = call(new, send_request("DlT", b"after", queue_id=0))
    assert r.code == RC.SUCCESS, (r.code, r.remark)


def test_a_new_topic_reaches_the_followers_within_a_second_or_two(twistd, tmp_path):
    group = DLedgerCluster(twistd, tmp_path, extra_conf="slaveSyncInterval=60000\n").start_all()
    master = group.wait_master()
    assert call(master, create_topic_request("DlNewTopic", queues=2)).code == RC.SUCCESS
    assert call(master, send_request("DlNewTopic", b"new", queue_id=1)).code == RC.SUCCESS
    started = time.monotonic()
    for n in group.ids:  # far sooner than the 60 s slave sync: the leader announced a new topic table version
        wait_until(lambda n=n: drain(group.addr(n), "DlNewTopic", 2)[0] == [b"new"], 10, 0.1, what=f"on {n}")
    print(f"\nnew topic on every follower after {time.monotonic() - started:.2f} s")


def test_a_committed_consumer_offset_reaches_the_followers_within_a_second_or_two(twistd, tmp_path):
    """Offsets used to follow only at slaveSyncInterval (10 s by default): a failover then delivered again up to
    that much consumption. The leader announces their change count every second; followers copy on a change."""
    group = DLedgerCluster(twistd, tmp_path, extra_conf="slaveSyncInterval=60000\n").start_all()
    master = group.wait_master()
    followers = [group.addr(n) for n in group.ids if group.addr(n) != master]
    assert call(master, create_topic_request("DlOffsets", queues=2)).code == RC.SUCCESS
    for offset in (5, 17):  # the first copy, then a change after it
        assert call(master, update_offset_request("dlOffG", "DlOffsets", 1, offset)).code == RC.SUCCESS
        started = time.monotonic()
        for addr in followers:
            wait_until(lambda addr=addr, offset=offset: call(addr, query_offset_request("dlOffG", "DlOffsets", 1)).ext_fields.get(
                "offset") == str(offset), 15, 0.1, what=f"offset {offset} on {addr}")
        print(f"\noffset {offset} on every follower after {time.monotonic() - started:.2f} s")
