"""Unit tests (no network) of request-reply: reply building, the pushed reply, waiting, the producer calls."""

from __future__ import annotations

import zlib

import pytest
from twisted.internet import task
from twisted.python.failure import Failure

from mq.client import RequestTimeoutError, create_reply, make_message
from mq.client.instance import ClientConfig, ClientInstance
from mq.client.model import MessageQueue, MQBrokerError, MQClientError, SendResult
from mq.client.producer import TopicPublishInfo
from mq.client.request_reply import ReplyWaiters, reply_from_push
from mq.common.broker_headers import ReplyMessageRequestHeader
from mq.common.message import MessageExt, properties_to_string, string_to_properties
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand
from tests.client.test_unit_producer import producer_with, result_of


def request_message(**props):
    base = {"CLUSTER": "C1", "CORRELATION_ID": "c-1", "REPLY_TO_CLIENT": "10.0.0.1@7", "TTL": "3000",
            "UNIQ_KEY": "U", "TAGS": "t"}
    base.update(props)
    return MessageExt(topic="Req", body=b"q", properties={k: v for k, v in base.items() if v is not None},
                      store_host=("broker-b", 1))


def test_create_reply_copies_what_the_broker_needs():
    reply = create_reply(request_message(), "pong")
    assert reply.topic == "C1_REPLY_TOPIC" and reply.body == b"pong"
    assert reply.properties == {"MSG_TYPE": "reply", "CORRELATION_ID": "c-1", "REPLY_TO_CLIENT": "10.0.0.1@7",
                                "TTL": "3000"}
    assert "TTL" not in create_reply(request_message(TTL=None), b"x").properties
    with pytest.raises(MQClientError, match=r"property\[CLUSTER\] is null"):
        create_reply(request_message(CLUSTER=None), b"x")
    with pytest.raises(MQClientError, match="cannot be null"):
        create_reply(None, b"x")


def push_request(body=b"pong", sys_flag=0, **fields):
    h = ReplyMessageRequestHeader(
        producer_group="PG", topic="C1_REPLY_TOPIC", default_topic="TBW102", default_topic_queue_nums=4, queue_id=0,
        sys_flag=sys_flag, born_timestamp=111, flag=3,
        properties=properties_to_string({"CORRELATION_ID": "c-1", "PUSH_REPLY_TIME": "222", "MSG_TYPE": "reply"}),
        reconsume_times=None, born_host="10.0.0.9:4242", store_host="10.0.0.2:10911", store_timestamp=333)
    ext = h.encode()
    ext.update(fields)
    return RemotingCommand.request(RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT, ext, body)


def test_reply_from_push_maps_the_header():
    msg = reply_from_push(push_request(), 444)
    assert (msg.topic, msg.body, msg.flag, msg.queue_id, msg.born_timestamp, msg.store_timestamp) == (
        "C1_REPLY_TOPIC", b"pong", 3, 0, 111, 333)
    assert msg.born_host == ("10.0.0.9", 4242) and msg.store_host == ("10.0.0.2", 10911)
    assert msg.reconsume_times == 0
    assert msg.properties == {"CORRELATION_ID": "c-1", "PUSH_REPLY_TIME": "222", "MSG_TYPE": "reply",
                              "ARRIVE_TIME": "444"}
    squeezed = reply_from_push(push_request(zlib.compress(b"x" * 5000), sys_flag=1), 1)
    assert squeezed.body == b"x" * 5000


def test_waiters_deliver_time_out_and_forget():
    clock = task.Clock()
    w = ReplyWaiters(clock)
    got = []
    w.expect("a", "Req", 2.0).addBoth(got.append)
    w.expect("b", "Req", 2.0).addBoth(got.append)
    w.expect("c", "Req", 2.0).addBoth(got.append)
    w.sent("b")
    assert w.deliver(MessageExt(properties={"CORRELATION_ID": "a"}))
    assert not w.deliver(MessageExt(properties={"CORRELATION_ID": "a"}))  # already answered
    assert not w.deliver(MessageExt(properties={}))
    # a Failure of its own: a failed Deferred left unhandled is logged when collected (on PyPy, tests later)
    w.send_failed("c", Failure(MQBrokerError("refused", ResponseCode.NO_PERMISSION, "no")))
    clock.advance(1.999)
    assert len(got) == 2 and list(w.pending) == ["b"]  # the request's own timeout, not sooner
    clock.advance(0.001)
    assert isinstance(got[0], MessageExt)
    assert isinstance(got[1].value, MQClientError) and got[1].value.code == ResponseCode.NO_PERMISSION
    assert "send request message to <Req> fail: refused" in str(got[1].value)
    assert isinstance(got[2].value, RequestTimeoutError)
    assert str(got[2].value) == "send request message to <Req> OK, but wait reply message timeout, 2000 ms."
    assert w.pending == {} and clock.getDelayedCalls() == []

    d = w.expect("d", "Req", 1.0)
    d.addErrback(lambda f: got.append(f))
    d.cancel()
    assert w.pending == {} and clock.getDelayedCalls() == []
    w.expect("e", "Req", 1.0).addErrback(got.append)
    clock.advance(1.0)
    assert "before the request was sent" in str(got[-1].value)
    w.expect("f", "Req", 1.0).addErrback(got.append)
    w.fail_all("shut down")
    assert "abandoned: shut down" in str(got[-1].value) and clock.getDelayedCalls() == []


def test_instance_answers_pushed_replies():
    clock = task.Clock()
    inst = ClientInstance(ClientConfig(namesrv_addr="127.0.0.1:1", instance_name="unit"), clock)
    got = []
    inst.replies.expect("c-1", "Req", 3.0).addBoth(got.append)
    channel = type("Channel", (), {"peer": "10.0.0.2:10911"})()
    response = inst._on_reply(push_request(), channel)
    assert response.code == ResponseCode.SUCCESS and got[0].body == b"pong"
    assert inst._on_reply(push_request(), channel).code == ResponseCode.SUCCESS  # no request waits: still OK
    broken = push_request()
    del broken.ext_fields["storeHost"]
    response = inst._on_reply(broken, channel)
    assert (response.code, response.remark) == (ResponseCode.SYSTEM_ERROR, "process reply message fail")


def with_replies(p):
    p.instance.client_id = "10.0.0.5@req"
    p.instance.replies = ReplyWaiters(p.reactor)
    return p


def test_request_sets_the_properties_and_waits_for_the_matching_reply():
    p, api = producer_with({})
    with_replies(p)
    msg = make_message("T", "q")
    d = p.request(msg, 2.5)
    props = msg.properties
    assert props["REPLY_TO_CLIENT"] == "10.0.0.5@req" and props["TTL"] == "2500" and len(props["CORRELATION_ID"]) == 36
    header, as_reply = api.headers[0]
    assert not as_reply and string_to_properties(header.properties)["CORRELATION_ID"] == props["CORRELATION_ID"]
    assert not d.called
    p.instance.replies.deliver(MessageExt(body=b"r", properties={"CORRELATION_ID": props["CORRELATION_ID"]}))
    assert result_of(d).body == b"r"

    p2, _ = producer_with({"broker-a": MQBrokerError("nope", ResponseCode.MESSAGE_ILLEGAL)})
    with_replies(p2)
    failure = result_of(p2.request(make_message("T", "q"), 2.0))
    assert type(failure.value) is MQClientError and failure.value.code == ResponseCode.MESSAGE_ILLEGAL
    assert p2.instance.replies.pending == {}


def test_send_reply_uses_code_325_and_the_broker_of_the_request():
    p, api = producer_with({})
    request = request_message()
    reply = create_reply(request, b"r")
    p.publish_info["C1_REPLY_TOPIC"] = TopicPublishInfo([MessageQueue("C1_REPLY_TOPIC", b, 0)
                                                         for b in ("broker-a", "broker-b")])
    for _ in range(3):  # every time, not by the round robin's chance
        assert isinstance(result_of(p.send_reply(reply, request=request)), SendResult)
    assert [q.broker_name for q in api.calls] == ["broker-b"] * 3 and api.headers[-1][1] is True
    assert isinstance(result_of(p.send_reply(create_reply(request, b"r2"))), SendResult)
    assert api.headers[-1][1] is True
    failure = result_of(p.send_reply(make_message("C1_REPLY_TOPIC", "not a reply")))
    assert "not a reply message" in str(failure.value)
