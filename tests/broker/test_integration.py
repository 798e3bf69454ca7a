"""Real ``twistd namesrv`` and ``twistd broker`` processes over loopback."""

from __future__ import annotations

import os
import signal

import pytest

from mq.client.simple import (
    create_topic_request,
    max_offset_request,
    pull_request,
    query_offset_request,
    send_request,
    update_offset_request,
)
from mq.common import fastjson
from mq.common.message_record import decode_messages
from mq.common.properties import parse_properties
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.command import RemotingCommand
from tests.broker.cluster import broker_starter, pull_all, route_of, start_namesrv
from tests.broker.wire import Wire, call
from tests.support.processes import wait_until


@pytest.fixture
def namesrv(twistd, tmp_path):
    return start_namesrv(twistd, tmp_path, "--broker-expiry", "3", "--scan-interval", "1")


@pytest.fixture
def start_broker(twistd, tmp_path, namesrv):
    return broker_starter(twistd, tmp_path, namesrv)


def test_produce_consume_and_route_at_once(namesrv, start_broker):
    broker = start_broker()
    broker.wait_log("serving at 127.0.0.1", 10)
    r = call(broker.addr, create_topic_request("ItTopic", queues=2))
    assert r.code == RC.SUCCESS
    route = route_of(namesrv, "ItTopic")  # no wait: the broker registered the topic before answering
    assert route is not None and route.queue_datas[0].write_queue_nums == 2
    assert route.broker_datas[0].broker_addrs == {0: broker.addr}
    with Wire(broker.addr) as w:
        for i in range(20):
            r = w.call(send_request("ItTopic", b"body-%d" % i, tags="t", queue_id=i % 2))
            assert r.code == RC.SUCCESS, r.remark
        got = []
        for qid in (0, 1):
            r = w.call(pull_request("itg", "ItTopic", qid, 0))
            assert r.code == RC.SUCCESS
            got += [m.body for m in decode_messages(r.body)]
    assert sorted(got) == sorted(b"body-%d" % i for i in range(20))
    # a topic auto-created by a send reaches the NameServer at once too (oneway registration)
    assert call(broker.addr, send_request("ItAuto", b"x")).code == RC.SUCCESS
    wait_until(lambda: route_of(namesrv, "ItAuto") is not None, 5, what="auto-created topic in the route")


def pull_holds(addr):
    """The broker's count of pulls held by long polling (GET_BROKER_RUNTIME_INFO's pullHoldCount)."""
    r = call(addr, RemotingCommand.request(RequestCode.GET_BROKER_RUNTIME_INFO))
    return int(fastjson.loads(r.body)["table"]["pullHoldCount"])


def test_long_poll_woken_by_send(start_broker):
    broker = start_broker()
    call(broker.addr, create_topic_request("ItPoll", queues=1))
    with Wire(broker.addr) as puller, Wire(broker.addr) as sender:
        opaque = puller.send(pull_request("pollg", "ItPoll", 0, 0, suspend_ms=20000))
        wait_until(lambda: pull_holds(broker.addr) == 1, 10, what="the pull held by the broker")
        assert sender.call(send_request("ItPoll", b"wake")).code == RC.SUCCESS
        # answered by the arrival: the timeout (20 s, beyond this wait) would answer PULL_NOT_FOUND, no message
        r = puller.receive(opaque, timeout=10)
    assert r.code == RC.SUCCESS and [m.body for m in decode_messages(r.body)] == [b"wake"]
    assert pull_holds(broker.addr) == 0


def test_offsets_survive_restart(start_broker):
    broker = start_broker()
    call(broker.addr, create_topic_request("ItOff", queues=2))
    assert call(broker.addr, update_offset_request("offg", "ItOff", 1, 42)).code == RC.SUCCESS
    assert broker.stop() in (0, -signal.SIGTERM)  # twistd re-raises the signal it stopped on
    broker = start_broker()
    r = call(broker.addr, query_offset_request("offg", "ItOff", 1))
    assert (r.code, r.ext_fields["offset"]) == (RC.SUCCESS, "42")


def test_sync_flush_kill_loses_no_acknowledged_message(start_broker):
    broker = start_broker("--flush", "SYNC_FLUSH")
    call(broker.addr, create_topic_request("ItSync", queues=1))
    acked = []
    with Wire(broker.addr) as w:
        for i in range(200):
            r = w.call(send_request("ItSync", b"m%d" % i, queue_id=0))
            assert r.code == RC.SUCCESS
            acked.append(b"m%d" % i)
    broker.kill()
    broker = start_broker("--flush", "SYNC_FLUSH")
    assert int(call(broker.addr, max_offset_request("ItSync", 0)).ext_fields["offset"]) >= len(acked)
    got = []
    offset = 0
    with Wire(broker.addr) as w:
        while offset < len(acked):
            r = w.call(pull_request("syncg", "ItSync", 0, offset))
            assert r.code == RC.SUCCESS, (r.code, r.remark)
            got += [m.body for m in decode_messages(r.body)]
            offset = int(r.ext_fields["nextBeginOffset"])
    assert got[: len(acked)] == acked


def test_silent_broker_dropped_and_graceful_stop_unregisters(namesrv, start_broker):
    broker = start_broker()
    call(broker.addr, create_topic_request("ItGone", queues=1))
    wait_until(lambda: route_of(namesrv, "ItGone") is not None, 15, 0.1, "the new topic routed")  # registration is async
    os.kill(broker.proc.pid, signal.SIGSTOP)  # alive, connected, but silent
    try:
        wait_until(lambda: route_of(namesrv, "ItGone") is None, 15, 0.2, "the silent broker dropped from routes")
    finally:
        os.kill(broker.proc.pid, signal.SIGCONT)
    call(broker.addr, create_topic_request("ItGone", queues=1))  # registers again
    wait_until(lambda: route_of(namesrv, "ItGone") is not None, 15, 0.1, "the broker registered again")
    assert broker.stop() in (0, -signal.SIGTERM)  # twistd re-raises the signal it stopped on
    assert route_of(namesrv, "ItGone") is None  # unregistered on the way out
    assert "stopped" in broker.log_text()


def test_runtime_config_changes_survive_a_restart(twistd, tmp_path, namesrv):
    start = broker_starter(twistd, tmp_path, namesrv, "defaultTopicQueueNums=3\n")
    broker = start()

    def settings():
        r = call(broker.addr, RemotingCommand.request(RequestCode.GET_BROKER_CONFIG))
        return parse_properties(r.body.decode())

    body = b"defaultTopicQueueNums=5\nautoCreateSubscriptionGroup=false\nnamesrvAddr=127.0.0.1:1\n"
    r = call(broker.addr, RemotingCommand.request(RequestCode.UPDATE_BROKER_CONFIG, None, body))
    assert r.code == RC.SUCCESS, r.remark
    saved = parse_properties((tmp_path / "store" / "config" / "broker.properties").read_text())
    assert saved == {"defaultTopicQueueNums": "5", "autoCreateSubscriptionGroup": "false",
                     "namesrvAddr": "127.0.0.1:1"}
    r = call(broker.addr, RemotingCommand.request(RequestCode.UPDATE_BROKER_CONFIG, None, b"listenPort=1\n"))
    assert r.code == RC.SYSTEM_ERROR  # refused, so not saved either

    assert broker.stop() in (0, -signal.SIGTERM)
    broker = start()
    got = settings()
    # the saved change beats --config (3), the command line's --namesrv beats the saved change
    assert got["defaultTopicQueueNums"] == "5" and got["autoCreateSubscriptionGroup"] == "false"
    assert got["namesrvAddr"] == namesrv.addr and "listenPort=1" not in saved
    assert call(broker.addr, pull_request("NoSuchGroup", "TBW102", 0, 0)).code == RC.SUBSCRIPTION_GROUP_NOT_EXIST
    broker.wait_log("settings changed at run time, kept in", 5)


def test_offset_moved_pull_writes_an_event(start_broker):
    broker = start_broker()
    assert call(broker.addr, create_topic_request("ItMoved", queues=2)).code == RC.SUCCESS
    with Wire(broker.addr) as w:
        for i in range(3):
            assert w.call(send_request("ItMoved", b"m%d" % i, queue_id=1)).code == RC.SUCCESS
        wait_until(lambda: w.call(max_offset_request("ItMoved", 1)).ext_fields["offset"] == "3", 10,
                   what="three messages in the consume queue")
        r = w.call(pull_request("movedG", "ItMoved", 1, 9))
        # past the end of a queue that still starts at 0: RocketMQ's store corrects to the min offset
        assert (r.code, r.ext_fields["nextBeginOffset"]) == (RC.PULL_OFFSET_MOVED, "0")
        assert w.call(pull_request("movedG", "ItMoved", 1, 3)).code == RC.PULL_NOT_FOUND  # no event for that
    wait_until(lambda: pull_all(broker.addr, "OFFSET_MOVED_EVENT"), 10, what="an offset moved event")
    events = pull_all(broker.addr, "OFFSET_MOVED_EVENT")
    assert len(events) == 1
    event = events[0]
    assert (event.tags, event.keys, event.queue_id) == ("movedG", ["movedG"], 0)
    assert event.body == (b'{"consumerGroup":"movedG","messageQueue":{"brokerName":"it-broker","queueId":1,'
                          b'"topic":"ItMoved"},"offsetNew":0,"offsetRequest":9}')
    assert "PULL_OFFSET_MOVED: correction offset. topic=ItMoved, groupId=movedG" in broker.log_text()
