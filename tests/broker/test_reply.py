"""SEND_REPLY_MESSAGE (324) / _V2 (325): the push to the requester, the stored copy, every refusal."""

from __future__ import annotations

import time

import pytest_twisted
from twisted.internet import defer, reactor

from mq.broker.processor.reply import reply_push_header
from mq.client import SimpleClient
from mq.client.simple import send_header
from mq.common.broker_headers import ReplyMessageRequestHeader, SendMessageRequestHeader
from mq.common.message import string_to_properties
from mq.common.message_record import decode_messages
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.command import RemotingCommand
from mq.remoting.protocol import RequestDispatcher

REPLY_TOPIC = "DefaultCluster_REPLY_TOPIC"


def reply_request(client_id, body=b"pong", code=RequestCode.SEND_REPLY_MESSAGE_V2, topic=REPLY_TOPIC, queue_id=0,
                  correlation="corr-1", **extra):
    props = {"CORRELATION_ID": correlation, "TTL": "3000", "MSG_TYPE": "reply", "WAIT": "true", **extra}
    if client_id is not None:
        props["REPLY_TO_CLIENT"] = client_id
    header = send_header(topic, queue_id, props, group="PG_responder")
    ext = header.encode_short() if code == RequestCode.SEND_REPLY_MESSAGE_V2 else header.encode()
    return RemotingCommand.request(code, ext, body)


class Requester:
    """A client that registers a producer group and records the replies pushed to it."""

    def __init__(self, client_id="127.0.0.1@requester", answer=RC.SUCCESS):
        self.pushed = []
        self.answer = answer
        dispatcher = RequestDispatcher()
        dispatcher.register(RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT, self._on_push)
        self.client = SimpleClient(reactor, client_id=client_id)
        self.client.remoting.dispatcher = dispatcher
        self.client_id = client_id

    def _on_push(self, request, channel):
        self.pushed.append(request)
        return request.response(self.answer, None if self.answer == RC.SUCCESS else "busy")

    def join(self, addr):
        return self.client.heartbeat(addr, producer_groups=["PG_requester"])


@defer.inlineCallbacks
def stored_replies(client, addr):
    r = yield client.pull(addr, "g", REPLY_TOPIC, 0, 0)
    return decode_messages(r.body) if r.code == RC.SUCCESS else []


def test_reply_topic_exists_at_start(broker):
    tc = broker.topic_config_manager.table[REPLY_TOPIC]
    assert (tc.read_queue_nums, tc.write_queue_nums, tc.perm) == (1, 1, 6)


@pytest_twisted.inlineCallbacks
def test_reply_is_pushed_to_the_requester_and_stored(client, addr, broker):
    requester = Requester()
    try:
        r = yield requester.join(addr)
        assert r.code == RC.SUCCESS
        before = int(time.time() * 1000)
        r = yield client.call(addr, reply_request(requester.client_id, queue_id=-1))
        after = int(time.time() * 1000)  # the broker's clock is this one (the reactor's seconds)
        assert r.code == RC.SUCCESS, r.remark
        ext = r.ext_fields
        assert set(ext) == {"msgId", "queueId", "queueOffset", "MSG_REGION", "TRACE_ON"}
        assert (ext["queueId"], ext["queueOffset"], ext["MSG_REGION"], ext["TRACE_ON"]) == (
            "0", "0", "DefaultRegion", "true")
        assert len(ext["msgId"]) == 32 and ext["msgId"] != "0"

        [push] = requester.pushed
        assert push.code == RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT and push.body == b"pong"
        h = ReplyMessageRequestHeader.decode(push.ext_fields)
        assert (h.producer_group, h.topic, h.default_topic, h.queue_id, h.flag) == (
            "PG_responder", REPLY_TOPIC, "TBW102", 0, 0)
        assert h.store_host == f"127.0.0.1:{broker.config.listen_port}"
        assert h.born_host.startswith("127.0.0.1:") and int(h.born_host.rsplit(":", 1)[1]) > 0
        assert before <= h.store_timestamp <= after  # stamped while the call ran
        props = string_to_properties(h.properties)
        assert (props["CORRELATION_ID"], props["REPLY_TO_CLIENT"], props["TTL"], props["MSG_TYPE"]) == (
            "corr-1", requester.client_id, "3000", "reply")
        assert before <= int(props["PUSH_REPLY_TIME"]) <= after

        [msg] = yield stored_replies(client, addr)
        assert msg.body == b"pong" and msg.msg_id == ext["msgId"]
        assert msg.properties["CORRELATION_ID"] == "corr-1" and "PUSH_REPLY_TIME" not in msg.properties
        assert msg.born_host[0] == "127.0.0.1"
    finally:
        yield requester.client.close()


@pytest_twisted.inlineCallbacks
def test_reply_with_the_v1_header(client, addr):
    requester = Requester()
    try:
        yield requester.join(addr)
        r = yield client.call(addr, reply_request(requester.client_id, b"v1", code=RequestCode.SEND_REPLY_MESSAGE))
        assert r.code == RC.SUCCESS, r.remark
        assert [p.body for p in requester.pushed] == [b"v1"]
    finally:
        yield requester.client.close()


@pytest_twisted.inlineCallbacks
def test_requester_not_connected_gets_rocketmq_code_and_remark_and_is_still_stored(client, addr):
    r = yield client.call(addr, reply_request("10.9.9.9@ghost"))
    assert r.code == RC.SYSTEM_ERROR
    assert r.remark == "push reply message fail, channel of <10.9.9.9@ghost> not found."
    [msg] = yield stored_replies(client, addr)
    assert r.ext_fields["msgId"] == msg.msg_id

    # a requester that heartbeated and then went away is not found either
    requester = Requester("127.0.0.1@gone")
    yield requester.join(addr)
    yield requester.client.close()
    r = yield client.call(addr, reply_request(requester.client_id))
    assert (r.code, r.remark) == (RC.SYSTEM_ERROR, "push reply message fail, channel of <127.0.0.1@gone> not found.")


@pytest_twisted.inlineCallbacks
def test_reply_without_reply_to_client(client, addr):
    r = yield client.call(addr, reply_request(None))
    assert (r.code, r.remark) == (RC.SYSTEM_ERROR, "reply message properties[REPLY_TO_CLIENT] is null")


@pytest_twisted.inlineCallbacks
def test_requester_refusing_the_push(client, addr):
    requester = Requester(answer=RC.SYSTEM_ERROR)
    try:
        yield requester.join(addr)
        r = yield client.call(addr, reply_request(requester.client_id))
        assert r.code == RC.SYSTEM_ERROR and "push reply message to <127.0.0.1@requester> fail" in r.remark
        assert "busy" in r.remark and len(requester.pushed) == 1
    finally:
        yield requester.client.close()


@pytest_twisted.inlineCallbacks
def test_store_reply_message_disabled(make_broker, client):
    broker = make_broker(storeReplyMessageEnable="false")
    addr = broker.config.broker_addr
    requester = Requester()
    try:
        yield requester.join(addr)
        r = yield client.call(addr, reply_request(requester.client_id))
        assert r.code == RC.SUCCESS
        assert (r.ext_fields["msgId"], r.ext_fields["queueId"], r.ext_fields["queueOffset"]) == ("0", "0", "0")
        assert len(requester.pushed) == 1
        assert (yield stored_replies(client, addr)) == []
    finally:
        yield requester.client.close()


@pytest_twisted.inlineCallbacks
def test_reply_is_checked_like_a_send(client, addr):
    r = yield client.call(addr, reply_request("x@y", topic="bad topic"))
    assert r.code == RC.SYSTEM_ERROR and "not valid" in r.remark
    r = yield client.call(addr, reply_request("x@y", queue_id=3))
    assert r.code == RC.SYSTEM_ERROR and "queueId[3] is illegal" in r.remark
    r = yield client.call(addr, reply_request("x@y", topic="SCHEDULE_TOPIC_XXXX"))
    assert r.code == RC.NO_PERMISSION
    request = reply_request("x@y")
    del request.ext_fields["b"]
    r = yield client.call(addr, request)
    assert r.code == RC.SYSTEM_ERROR and "'b'" in r.remark


def test_push_header_maps_every_send_field():
    h = SendMessageRequestHeader(producer_group="PG", topic="C_REPLY_TOPIC", default_topic="TBW102",
                                 default_topic_queue_nums=4, queue_id=-1, sys_flag=1, born_timestamp=1700000000123,
                                 flag=7, properties="a\x01b", reconsume_times=2, unit_mode=True)
    push = reply_push_header(h, "a\x01b\x02PUSH_REPLY_TIME\x019", 0, ("10.0.0.1", 5000), ("10.0.0.2", 10911), 99)
    assert push.encode() == {
        "producerGroup": "PG", "topic": "C_REPLY_TOPIC", "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
        "queueId": "0", "sysFlag": "1", "bornTimestamp": "1700000000123", "flag": "7",
        "properties": "a\x01b\x02PUSH_REPLY_TIME\x019", "reconsumeTimes": "2", "unitMode": "true",
        "bornHost": "10.0.0.1:5000", "storeHost": "10.0.0.2:10911", "storeTimestamp": "99",
    }
    assert ReplyMessageRequestHeader.decode(push.encode()) == push
    # what a Java broker sends: reconsumeTimes may be absent, unitMode "false"
    java = {k: v for k, v in push.encode().items() if k != "reconsumeTimes"}
    java["unitMode"] = "false"
    decoded = ReplyMessageRequestHeader.decode(java)
    assert decoded.reconsume_times is None and decoded.unit_mode is False
