"""Heartbeats from every client dialect, group membership, rebalance notices, offsets, running-info relay."""

from __future__ import annotations

import json

import pytest_twisted
from twisted.internet import reactor

from mq.common import fastjson
from mq.common.heartbeat import HeartbeatData
from mq.remoting.client import RemotingClient
from mq.remoting.codes import LanguageCode, RequestCode
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.command import RemotingCommand
from mq.remoting.protocol import RequestDispatcher
from tests.support.polling import poll

CPP_HEARTBEAT = {  # C++: enums as ordinals, subVersion a string, no producerDataSet key
    "clientID": "10.0.0.5@123",
    "consumerDataSet": [{"consumeFromWhere": 0, "consumeType": 1, "groupName": "cppg", "messageModel": 0,
                         "subscriptionDataSet": [{"subString": "a || b", "subVersion": "1690000000000",
                                                  "topic": "T", "tagsSet": ["a", "b"]}]}],
}


def test_heartbeat_dialects_parse_alike():
    cpp = HeartbeatData.from_json(CPP_HEARTBEAT)
    (consumer,) = cpp.consumers
    assert (consumer.consume_type, consumer.message_model, consumer.consume_from_where) == (
        "CONSUME_PASSIVELY", "BROADCASTING", "CONSUME_FROM_LAST_OFFSET")
    (sub,) = consumer.subscription_data_set
    assert (sub.sub_version, sub.tags_set, len(sub.code_set)) == (1690000000000, ["a", "b"], 2)
    assert cpp.producer_groups == []
    go = HeartbeatData.from_json({"clientID": "x", "producerDataSet": [{"groupName": "pg"}], "consumerDataSet": [
        {"groupName": "gog", "consumeType": "CONSUME_PASSIVELY", "messageModel": "CLUSTERING",
         "consumeFromWhere": "CONSUME_FROM_FIRST_OFFSET", "unitMode": True,
         "subscriptionDataSet": [{"topic": "T", "subString": "*", "subVersion": 5, "expressionType": "TAG"}]}]})
    assert go.producer_groups == ["pg"] and go.consumers[0].unit_mode
    assert go.consumers[0].subscription_data_set[0].is_all


class Member:
    """A consumer connection that records the requests the broker sends it."""

    def __init__(self):
        self.received = []
        dispatcher = RequestDispatcher()
        dispatcher.register(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, self._notified)
        dispatcher.register(RequestCode.GET_CONSUMER_RUNNING_INFO, self._running_info)
        self.remoting = RemotingClient(reactor, dispatcher)

    def _notified(self, request, channel):
        self.received.append(request.ext_fields["consumerGroup"])

    def _running_info(self, request, channel):
        return request.response(RC.SUCCESS, None, None, b'{"properties":{"x":"1"}}')

    def heartbeat(self, addr, client_id, group, topics, body=None, version=409):
        data = body or {"clientID": client_id, "consumerDataSet": [
            {"groupName": group, "consumeType": "CONSUME_PASSIVELY", "messageModel": "CLUSTERING",
             "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET",
             "subscriptionDataSet": [{"topic": t, "subString": "*", "subVersion": 1} for t in topics]}]}
        request = RemotingCommand.request(RequestCode.HEART_BEAT, None, json.dumps(data).encode())
        request.version = version
        return self.remoting.invoke(addr, request)


@pytest_twisted.inlineCallbacks
def test_membership_notices_and_consumer_list(client, addr, broker):
    a, b = Member(), Member()
    try:
        r = yield a.heartbeat(addr, "A", "grp", ["T1"])
        assert r.code == RC.SUCCESS
        assert "%RETRY%grp" in broker.topic_config_manager.table  # 1 queue, perm RW
        assert broker.topic_config_manager.table["%RETRY%grp"].perm == 6
        yield b.heartbeat(addr, "B", "grp", ["T1"])
        yield poll(lambda: len(a.received) + len(b.received), lambda n: n >= 3, 10, 0.01, "the join notices")
        assert a.received == ["grp"] * 2 and b.received == ["grp"]  # both told when B joined
        yield a.heartbeat(addr, "A", "grp", ["T1"])  # nothing changed: no notice (B's leaving is the 3rd below)
        r = yield client.invoke(addr, RequestCode.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": "grp"})
        assert sorted(fastjson.loads(r.body)["consumerIdList"]) == ["A", "B"]
        r = yield client.invoke(addr, RequestCode.GET_CONSUMER_RUNNING_INFO, {"consumerGroup": "grp", "clientId": "B"})
        assert (r.code, r.body) == (RC.SUCCESS, b'{"properties":{"x":"1"}}')
        r = yield client.invoke(addr, RequestCode.GET_CONSUMER_CONNECTION_LIST, {"consumerGroup": "grp"})
        conn = fastjson.loads(r.body)
        assert {c["clientId"] for c in conn["connectionSet"]} == {"A", "B"} and "T1" in conn["subscriptionTable"]
        yield b.remoting.close()  # a closed connection leaves the group at once, and A hears of it
        yield poll(lambda: len(a.received), lambda n: n >= 3, 10, 0.01, "A told that B left")
        r = yield client.invoke(addr, RequestCode.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": "grp"})
        assert fastjson.loads(r.body)["consumerIdList"] == ["A"] and a.received == ["grp"] * 3
        r = yield a.remoting.invoke(addr, RemotingCommand.request(
            RequestCode.UNREGISTER_CLIENT, {"clientID": "A", "consumerGroup": "grp"}))
        assert r.code == RC.SUCCESS
        r = yield client.invoke(addr, RequestCode.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": "grp"})
        assert (r.code, r.remark.startswith("no consumer for this group, grp")) == (RC.SYSTEM_ERROR, True)
        r = yield client.invoke(addr, RequestCode.GET_CONSUMER_CONNECTION_LIST, {"consumerGroup": "grp"})
        assert r.code == RC.CONSUMER_NOT_ONLINE
    finally:
        yield a.remoting.close()
        yield b.remoting.close()


@pytest_twisted.inlineCallbacks
def test_cpp_heartbeat_and_old_client_running_info(addr, broker, client):
    m = Member()
    try:
        r = yield m.heartbeat(addr, None, None, None, body=CPP_HEARTBEAT, version=61)
        assert r.code == RC.SUCCESS
        info = broker.consumer_manager.get("cppg")
        assert info.message_model == "BROADCASTING" and info.subscriptions["T"].tags_set == ["a", "b"]
        r = yield client.invoke(addr, RequestCode.GET_CONSUMER_RUNNING_INFO,
                                {"consumerGroup": "cppg", "clientId": "10.0.0.5@123"})
        assert r.code == RC.SYSTEM_ERROR and "too low" in r.remark
        bad = yield client.invoke(addr, RequestCode.HEART_BEAT, None, b"{not json")
        assert bad.code == RC.SYSTEM_ERROR and "heartbeat body is not valid" in bad.remark
    finally:
        yield m.remoting.close()


@pytest_twisted.inlineCallbacks
def test_a_malformed_heartbeat_is_refused_without_the_bare_key_rescan(addr, broker, client, monkeypatch):
    # The review: 16 MiB of "{,,,," went through fastjson's bare-key scan char by char, a second client waited 6 s.
    def not_expected(text):
        raise AssertionError("the bare-key fallback ran")

    for name in ("_quote_keys_fast", "_quote_bare_keys"):
        monkeypatch.setattr(fastjson, name, not_expected, raising=False)
    bad = yield client.invoke(addr, RequestCode.HEART_BEAT, None, b"{" + b"," * ((16 << 20) - 1024))
    assert bad.code == RC.SYSTEM_ERROR
    assert bad.remark == "the heartbeat body is not valid: not valid JSON at line 1 column 2 (char 1)"


@pytest_twisted.inlineCallbacks
def test_silent_clients_expire(addr, broker, client):
    yield client.heartbeat(addr, ["pg"], [("eg", ["T"], "CLUSTERING")])
    assert broker.consumer_manager.get("eg") and broker.producer_manager.connections("pg")
    for info in broker.consumer_manager.get("eg").channels.values():
        info.last_update -= 121_000
    for info in broker.producer_manager.connections("pg"):
        info.last_update -= 121_000
    broker._scan_clients()
    assert broker.consumer_manager.get("eg") is None and not broker.producer_manager.connections("pg")


@pytest_twisted.inlineCallbacks
def test_offsets_query_update_and_not_found(client, addr, broker):
    r = yield client.query_offset(addr, "og", "NoQueue", 0)
    assert r.ext_fields == {"offset": "0"}  # queue starts at 0: read from the start
    r = yield client.update_offset(addr, "og", "OffT", 2, 11)
    assert r.code == RC.TOPIC_NOT_EXIST  # as RocketMQ 5: no offsets for a topic the broker does not have
    yield client.create_topic(addr, "OffT", queues=4)
    r = yield client.update_offset(addr, "og", "OffT", 2, 11)
    assert r.code == RC.SUCCESS
    r = yield client.query_offset(addr, "og", "OffT", 2)
    assert r.ext_fields == {"offset": "11"}
    broker.consumer_offset_manager.persist()
    saved = open(broker.consumer_offset_manager.path).read()
    assert '"OffT@og":{2:11}' in saved  # fastjson: integer keys unquoted
    r = yield client.invoke(addr, RequestCode.QUERY_CONSUMER_OFFSET, {"consumerGroup": "og", "topic": "OffT"})
    assert r.code == RC.SYSTEM_ERROR and "queueId" in r.remark
    # heartbeat language and version are kept for the admin bodies
    yield client.heartbeat(addr, ["pg2"])
    r = yield client.invoke(addr, RequestCode.GET_PRODUCER_CONNECTION_LIST, {"producerGroup": "pg2"})
    (conn,) = fastjson.loads(r.body)["connectionSet"]
    assert conn["language"] == LanguageCode.PYTHON.name


@pytest_twisted.inlineCallbacks
def test_check_client_config_refuses_bodies_that_are_not_objects(client, addr, broker):
    for body in (b"7", b"[]", b'{"subscriptionData":"x"}', b"[" * 50_000):
        r = yield client.invoke(addr, RequestCode.CHECK_CLIENT_CONFIG, {}, body)
        assert r.code == RC.SYSTEM_ERROR and "check-client-config body" in r.remark, (body[:20], r.remark)


@pytest_twisted.inlineCallbacks
def test_deeply_nested_json_bodies_are_refused_with_a_remark(client, addr, broker):
    for code in (RequestCode.HEART_BEAT, RequestCode.LOCK_BATCH_MQ, RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP):
        r = yield client.invoke(addr, code, {}, b'{"a":' * 50_000)
        assert r.code == RC.SYSTEM_ERROR and "nested too deeply" in r.remark and "RecursionError" not in r.remark
