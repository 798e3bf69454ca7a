"""Broker → client pushes respect the target's backpressure: a client that does not read what it was sent gets
no more reply pushes or relays (SYSTEM_BUSY naming it), and a relay carries no body the caller sent."""

from __future__ import annotations

import json

import pytest

from mq.client.simple import send_request
from mq.common.message_record import decode_message_ext
from mq.common.mixall import MIN_VERSION_CONSUMER_RUNNING_INFO
from mq.remoting.codes import FLAG_RESPONSE, RequestCode
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.command import RemotingCommand
from mq.remoting.serialization import encode_command
from tests.broker.test_client_limits import Broker
from tests.broker.test_reply import REPLY_TOPIC, reply_request
from tests.remoting.support import split_frames

MiB = 1 << 20


@pytest.fixture
def b(tmp_path):
    broker = Broker(tmp_path)
    yield broker
    broker.svc.stopService()


def call(conn, request: RemotingCommand, opaque: int = 1) -> list:
    """Feed ``request`` to the broker on ``conn``; the responses written on ``conn`` at once."""
    proto, transport = conn
    request.opaque = opaque
    transport.clear()
    proto.dataReceived(encode_command(request))
    return [c for c in split_frames(transport.value()) if c.flag & FLAG_RESPONSE]


def join(conn, client_id: str, producer: str = "", consumer: str = "") -> None:
    body = {"clientID": client_id,
            "consumerDataSet": [{"groupName": consumer, "consumeType": "CONSUME_PASSIVELY",
                                 "messageModel": "CLUSTERING", "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET",
                                 "subscriptionDataSet": [{"topic": "T", "subString": "*", "subVersion": 1}]}]
            if consumer else [],
            "producerDataSet": [{"groupName": producer}] if producer else []}
    request = RemotingCommand(RequestCode.HEART_BEAT, 0, 0, None, {}, json.dumps(body).encode(),
                              version=MIN_VERSION_CONSUMER_RUNNING_INFO)
    [answer] = call(conn, request)
    assert answer.code == RC.SUCCESS, answer.remark
    conn[1].clear()


def sent_to(conn, code: int) -> list:
    """The requests of ``code`` the broker wrote to ``conn``."""
    return [c for c in split_frames(conn[1].value()) if c.code == code and not c.flag & FLAG_RESPONSE]


def stored_replies(b) -> int:
    return b.svc.store.get_max_offset_in_queue(REPLY_TOPIC, 0)


def test_no_reply_push_to_a_requester_that_does_not_read(b):
    responder, victim = b.connect(), b.connect()
    join(victim, "victim@1", producer="PG_requester")
    assert call(responder, reply_request("victim@1", b"x" * MiB)) == []  # waits for the victim's answer
    [push] = sent_to(victim, RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT)
    assert len(push.body) == MiB
    victim[0].dataReceived(encode_command(push.response(RC.SUCCESS)))
    [r] = [c for c in split_frames(responder[1].value()) if c.flag & FLAG_RESPONSE]
    assert r.code == RC.SUCCESS, r.remark
    # then it stops reading: a TCP transport pauses its producer once over 64 KiB of output is unsent
    victim[1].producer.pauseProducing()
    victim[1].clear()
    for i in range(20):
        [r] = call(responder, reply_request("victim@1", b"y" * MiB), opaque=10 + i)
        assert (r.code, r.opaque) == (RC.SYSTEM_BUSY, 10 + i)
        assert "<victim@1> does not read what the broker already sent it" in r.remark
        assert r.ext_fields["msgId"] != "0"  # stored all the same, as RocketMQ stores a reply whose push failed
    assert sent_to(victim, RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT) == []
    assert stored_replies(b) == 21
    # once it has read its output, pushes go out again
    victim[1].producer.resumeProducing()
    call(responder, reply_request("victim@1", b"z"), opaque=99)
    assert [p.body for p in sent_to(victim, RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT)] == [b"z"]


def relay(admin, code: int, ext: dict, body: bytes, opaque: int) -> list:
    return call(admin, RemotingCommand.request(code, dict(ext), body), opaque)


def test_relays_carry_no_caller_body_and_skip_a_client_that_does_not_read(b):
    admin, consumer = b.connect(), b.connect()
    join(consumer, "C1", consumer="dg")
    [sent] = call(admin, send_request("T", b"stored"))
    assert sent.code == RC.SUCCESS, sent.remark
    ask = {"consumerGroup": "dg", "clientId": "C1"}
    junk = b"j" * MiB
    assert relay(admin, RequestCode.GET_CONSUMER_RUNNING_INFO, ask, junk, 1) == []
    assert relay(admin, RequestCode.CONSUME_MESSAGE_DIRECTLY, dict(ask, msgId=sent.ext_fields["msgId"]), junk, 2) == []
    [info] = sent_to(consumer, RequestCode.GET_CONSUMER_RUNNING_INFO)
    assert info.body == b""  # the request has no body: the caller's is not forwarded (RocketMQ forwards it)
    [direct] = sent_to(consumer, RequestCode.CONSUME_MESSAGE_DIRECTLY)
    assert decode_message_ext(direct.body).body == b"stored"  # the stored message, not the caller's body
    # the consumer does not read: further relays are refused at once, under clientRelayMaxInFlight (4)
    consumer[1].producer.pauseProducing()
    consumer[1].clear()
    [busy] = relay(admin, RequestCode.GET_CONSUMER_RUNNING_INFO, ask, b"", 3)
    assert (busy.code, busy.opaque) == (RC.SYSTEM_BUSY, 3)
    assert "does not read what the broker already sent it" in busy.remark and consumer[0].peer in busy.remark
    assert consumer[1].value() == b""
    consumer[1].producer.resumeProducing()
    assert relay(admin, RequestCode.GET_CONSUMER_RUNNING_INFO, ask, b"", 4) == []
    assert len(sent_to(consumer, RequestCode.GET_CONSUMER_RUNNING_INFO)) == 1


def test_group_change_pushes_skip_a_member_that_does_not_read(b):
    """NOTIFY_CONSUMER_IDS_CHANGED is small, but a member that never reads would keep one per group change for
    as long as the idle limit lets its connection live (a churning group: megabytes a second)."""
    stuck, awake = b.connect(), b.connect()
    join(stuck, "Stuck", consumer="cg")
    join(awake, "Awake", consumer="cg")
    assert len(sent_to(stuck, RequestCode.NOTIFY_CONSUMER_IDS_CHANGED)) == 1  # told while it read
    stuck[1].producer.pauseProducing()
    stuck[1].clear()
    for i in range(50):  # members come and go
        join(b.connect(), f"Churn{i}", consumer="cg")
    assert stuck[1].value() == b""
    assert len(sent_to(awake, RequestCode.NOTIFY_CONSUMER_IDS_CHANGED)) >= 50
    stuck[1].producer.resumeProducing()  # reading again: it is told of the next change
    join(b.connect(), "Later", consumer="cg")
    assert len(sent_to(stuck, RequestCode.NOTIFY_CONSUMER_IDS_CHANGED)) == 1
