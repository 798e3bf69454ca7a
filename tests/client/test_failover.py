"""A broker stopped mid-run: producers fail over to the other broker, consumers resume from committed
offsets when it is back. Its own NameServer and brokers (the shared cluster must not lose a broker)."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer

from mq.client import ConsumeFromWhere, Producer, PushConsumer, make_message
from mq.client.model import MessageQueue, SendStatus
from tests.client.cluster import Cluster
from tests.support.polling import poll


@pytest.fixture
def own_cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        c.start_broker("broker-a")
        c.start_broker("broker-b")
        yield c
    finally:
        c.close()


@pytest_twisted.inlineCallbacks
def test_broker_stopped_mid_run(own_cluster):
    cluster = own_cluster
    topic = "FailoverTopic"
    cluster.create_topic(topic)
    producer = Producer("FailoverPG", cluster.namesrv_addr, send_latency_fault_enable=True)
    producer.start()
    got = []

    def new_consumer(name):
        c = PushConsumer("FailoverCG", cluster.namesrv_addr, instance_name=name,
                         consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET)
        c.subscribe(topic, "*")
        c.register_message_listener(lambda msgs, ctx: got.extend(m.body.decode() for m in msgs))
        return c

    consumer = new_consumer("failover-1")
    sent, results = [], []

    @defer.inlineCallbacks
    def produce(n, broker=None):
        for i in range(n):
            body = f"m{len(sent)}"
            sent.append(body)
            queue = MessageQueue(topic, broker, i % 4) if broker else None
            results.append((yield producer.send(make_message(topic, body), queue=queue)))

    def all_received():
        return poll(lambda: set(got), lambda g: set(sent) <= g, 60, what="every message sent so far")

    try:
        yield consumer.start()
        yield produce(40)
        yield all_received()
        assert {r.message_queue.broker_name for r in results} == {"broker-a", "broker-b"}
        cluster.stop_broker("broker-b")
        yield produce(40)  # every send succeeds, on broker-a
        assert all(r.status is SendStatus.SEND_OK for r in results)
        assert {r.message_queue.broker_name for r in results[40:]} == {"broker-a"}
        yield all_received()
        cluster.start_broker("broker-b")
        yield poll(lambda: producer.instance.update_route(topic),
                   lambda r: r is not None and len(r.queue_datas) == 2, 30, what="broker-b back in the route")
        # broker-b failed, so latency-fault avoidance keeps round-robin sends off it for 10 minutes.
        yield produce(20)
        assert {r.message_queue.broker_name for r in results[80:]} == {"broker-a"}
        yield produce(20, "broker-b")
        yield all_received()
        # broker-b's queues continued where they were: nothing before the stop came again.
        assert all(got.count(b) == 1 for b in sent[:40])
        # A new member of the group, after this one leaves, starts at the committed offsets.
        yield consumer.shutdown()
        got.clear()
        consumer = new_consumer("failover-2")
        yield consumer.start()
        yield produce(20)
        yield poll(lambda: set(got), lambda g: set(sent[120:]) <= g, 60,
                   what="the last 20")
        assert sorted(got) == sorted(sent[120:])
    finally:
        yield consumer.shutdown()
        yield producer.shutdown()
