"""Request-reply against real NameServer and broker processes: a requester, a responding PushConsumer,
concurrent requests matched by correlation id, timeouts, a requester that is gone, the stored replies."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from mq.client import (
    ConsumeConcurrentlyStatus,
    ConsumeFromWhere,
    MQClientError,
    Producer,
    PushConsumer,
    RequestTimeoutError,
    create_reply,
    make_message,
    select_by_hash,
)
from mq.client.simple import SimpleClient
from mq.remoting.codes import ResponseCode
from tests.client.helpers import stored

REPLY_TOPIC = "ClientCluster_REPLY_TOPIC"


def start_responder(cluster, unique, topic):
    """A producer and a PushConsumer that answers each request with ``re:<body>``."""
    producer = Producer(f"PG_{unique}_resp", cluster.namesrv_addr, instance_name=f"{unique}-resp")
    producer.start()

    def listener(msgs, context):
        replies = [producer.send_reply(create_reply(m, b"re:" + m.body), request=m) for m in msgs]
        return defer.gatherResults(replies).addCallback(lambda _: ConsumeConcurrentlyStatus.CONSUME_SUCCESS)

    consumer = PushConsumer(f"CG_{unique}", cluster.namesrv_addr, instance_name=f"{unique}-resp",
                            consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET)
    consumer.subscribe(topic, "*")
    consumer.register_message_listener(listener)
    return producer, consumer


@defer.inlineCallbacks
def stored_replies(client, cluster, correlation_ids):
    out = []
    for name in ("broker-a", "broker-b"):
        for m in (yield stored(client, cluster.addr(name), REPLY_TOPIC, queues=1)):
            if m.properties.get("CORRELATION_ID") in correlation_ids:
                out.append(m)
    return out


@pytest_twisted.inlineCallbacks
def test_concurrent_requests_each_get_their_reply(cluster, unique):
    topic = f"T_{unique}"
    cluster.create_topic(topic)
    responder, consumer = start_responder(cluster, unique, topic)
    requester = Producer(f"PG_{unique}_req", cluster.namesrv_addr, instance_name=f"{unique}-req")
    requester.start()
    client = SimpleClient(reactor)
    try:
        yield consumer.start()
        requests = [make_message(topic, f"q{i}") for i in range(8)]
        calls = [requester.request(m, 20.0) for m in requests[:6]]
        calls.append(requester.request(requests[6], 20.0, selector=select_by_hash, arg="order-1"))
        queues = yield requester.fetch_publish_queues(topic)
        calls.append(requester.request(requests[7], 20.0, queue=queues[-1]))
        replies = yield defer.gatherResults(calls)

        for req, rep in zip(requests, replies):
            assert rep.body == b"re:" + req.body
            assert rep.properties["CORRELATION_ID"] == req.properties["CORRELATION_ID"]
            assert rep.properties["REPLY_TO_CLIENT"] == req.properties["REPLY_TO_CLIENT"] == requester.instance.client_id
            assert rep.properties["TTL"] == req.properties["TTL"] == "20000"
            assert rep.properties["MSG_TYPE"] == "reply" and rep.topic == REPLY_TOPIC
            assert int(rep.properties["ARRIVE_TIME"]) >= int(rep.properties["PUSH_REPLY_TIME"]) - 1000
            assert rep.store_host[1] > 0 and rep.born_timestamp > 0
        assert len({r.properties["CORRELATION_ID"] for r in replies}) == 8
        assert requester.instance.replies.pending == {}

        ids = {r.properties["CORRELATION_ID"] for r in replies}
        kept = yield stored_replies(client, cluster, ids)
        assert sorted(m.body for m in kept) == sorted(b"re:q%d" % i for i in range(8))
    finally:
        yield consumer.shutdown()
        yield responder.shutdown()
        yield requester.shutdown()
        yield client.close()


@pytest_twisted.inlineCallbacks
def test_unanswered_request_times_out_and_a_late_reply_finds_the_requester_gone(cluster, unique):
    topic = f"T_{unique}"
    cluster.create_topic(topic, brokers=["broker-a"])
    requester = Producer(f"PG_{unique}_req", cluster.namesrv_addr, instance_name=f"{unique}-req")
    requester.start()
    client = SimpleClient(reactor)
    responder = Producer(f"PG_{unique}_resp", cluster.namesrv_addr, instance_name=f"{unique}-resp")
    responder.start()
    try:
        # when it times out is test_unit_request_reply's (task.Clock); here: the outcome and what it names
        with pytest.raises(RequestTimeoutError, match=f"send request message to <{topic}> OK, but wait reply "
                                                      "message timeout, 1000 ms"):
            yield requester.request(make_message(topic, "anyone?"), 1.0)
        assert requester.instance.replies.pending == {}
        requester_id = requester.instance.client_id
        yield requester.shutdown()

        # a responder that comes too late: the request is stored, its requester gone
        [request] = yield stored(client, cluster.addr("broker-a"), topic)
        assert request.properties["REPLY_TO_CLIENT"] == requester_id and request.properties["TTL"] == "1000"
        with pytest.raises(MQClientError) as caught:
            yield responder.send_reply(create_reply(request, b"too late"), request=request)
        assert caught.value.code == ResponseCode.SYSTEM_ERROR
        assert caught.value.remark == f"push reply message fail, channel of <{requester_id}> not found."
        # the broker stored it all the same
        [kept] = yield stored_replies(client, cluster, {request.properties["CORRELATION_ID"]})
        assert kept.body == b"too late"
    finally:
        yield requester.shutdown()
        yield responder.shutdown()
        yield client.close()
