"""Push consumers against real processes: clustering, tags, rebalance as members join and leave, retries."""

from __future__ import annotations

from collections import Counter

import pytest_twisted
from twisted.internet import defer

from mq.client import (
    ConsumeConcurrentlyStatus,
    ConsumeFromWhere,
    PushConsumer,
    allocate_averagely_by_circle,
    make_message,
)
from tests.client.helpers import setup_topic
from tests.support.polling import poll


class Recorder:
    """A concurrent listener that records what it got (and can fail chosen messages a number of times)."""

    def __init__(self, fail_times=None):
        self.messages = []
        self.fail_times = dict(fail_times or {})

    def __call__(self, msgs, context):
        for m in msgs:
            key = m.body.decode()
            if self.fail_times.get(key, 0) > 0:
                self.fail_times[key] -= 1
                self.messages.append(m)
                return ConsumeConcurrentlyStatus.RECONSUME_LATER
        self.messages.extend(msgs)
        return ConsumeConcurrentlyStatus.CONSUME_SUCCESS

    def bodies(self):
        return [m.body.decode() for m in self.messages]


def consumer(cluster, group, topic, recorder, name, expression="*", **kwargs):
    c = PushConsumer(group, cluster.namesrv_addr, instance_name=name,
                     consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET, **kwargs)
    c.subscribe(topic, expression)
    c.register_message_listener(recorder)
    return c


@defer.inlineCallbacks
def send_all(producer, topic, bodies, **kwargs):
    results = yield defer.gatherResults([producer.send(make_message(topic, b, **kwargs)) for b in bodies])
    return results


@pytest_twisted.inlineCallbacks
def test_clustering_consumer_gets_every_message_with_its_attributes(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique)
    rec = Recorder()
    c = consumer(cluster, group, topic, rec, f"{unique}-1")
    try:
        yield c.start()
        bodies = [f"m{i}" for i in range(40)]
        yield send_all(producer, topic, bodies, tags="TagA", keys="K1 K2", properties={"color": "red"})
        yield poll(lambda: len(set(rec.bodies())), lambda n: n == 40, 30, what="40 messages consumed")
        m = rec.messages[0]
        assert m.topic == topic and m.tags == "TagA" and m.keys == ["K1", "K2"] and m.properties["color"] == "red"
        assert sorted(set(rec.bodies())) == sorted(bodies)
        # 8 queues of the topic + a retry queue per broker. The retry topic's route may take a refresh: the
        # rebalance can ask for it before the broker's registration of it arrives, and then waits for the next
        # route poll (30 s) and rebalance (20 s). The deadline only catches a hang.
        yield poll(lambda: len(c.rebalancer.process_queues), lambda n: n == 10, 90, what="10 queues")
    finally:
        yield c.shutdown()
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_tag_expression_filters_exactly(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique, ["broker-a"])
    rec = Recorder()
    c = consumer(cluster, group, topic, rec, f"{unique}-1", expression="A || C")
    try:
        yield c.start()
        for tag in "ABCAB":
            yield producer.send(make_message(topic, f"{tag}-body", tags=tag))
        yield producer.send(make_message(topic, "last", tags="C"))
        yield poll(lambda: rec.bodies(), lambda b: "last" in b, 30, what="the last message")
        assert sorted(rec.bodies()) == ["A-body", "A-body", "C-body", "last"]
    finally:
        yield c.shutdown()
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_committed_offsets_let_a_restarted_group_continue(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique, ["broker-b"])
    first = Recorder()
    c = consumer(cluster, group, topic, first, f"{unique}-1")
    try:
        yield c.start()
        yield send_all(producer, topic, [f"a{i}" for i in range(10)])
        yield poll(lambda: len(first.messages), lambda n: n == 10, 30, what="first ten")
        yield c.shutdown()  # commits the offsets
        yield send_all(producer, topic, [f"b{i}" for i in range(10)])
        second = Recorder()
        c = consumer(cluster, group, topic, second, f"{unique}-2")
        yield c.start()
        yield poll(lambda: len(second.messages), lambda n: n >= 10, 30, what="the next ten")
        assert sorted(second.bodies()) == sorted(f"b{i}" for i in range(10))
    finally:
        yield c.shutdown()
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_rebalance_as_consumers_join_and_leave_loses_nothing(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique)
    recs = [Recorder(), Recorder(), Recorder()]
    cs = [consumer(cluster, group, topic, r, f"{unique}-{i}", allocate=allocate_averagely_by_circle)
          for i, r in enumerate(recs)]
    sent = []

    @defer.inlineCallbacks
    def produce(n):
        bodies = [f"m{len(sent) + i}" for i in range(n)]
        sent.extend(bodies)
        yield send_all(producer, topic, bodies)

    def received():
        return Counter(b for r in recs for b in r.bodies())

    try:
        yield cs[0].start()
        yield produce(50)
        yield cs[1].start()
        yield produce(50)
        yield cs[2].start()
        # Once everyone has settled, each member owns a third of the 8 queues.
        yield poll(lambda: sorted(len([q for q in c.rebalancer.process_queues if q.topic == topic]) for c in cs),
                   lambda n: n == [2, 3, 3], 30, what="queues shared by three")
        yield produce(50)
        yield cs[0].shutdown()
        yield poll(lambda: sorted(len([q for q in c.rebalancer.process_queues if q.topic == topic])
                                  for c in cs[1:]), lambda n: n == [4, 4], 30, what="queues shared by two")
        yield produce(50)
        got = yield poll(received, lambda r: set(sent) <= set(r), 60, what="every message consumed")
        assert set(got) == set(sent)
        assert all(r.messages for r in recs)
        duplicates = sum(n - 1 for n in got.values())
        assert duplicates <= 100, duplicates  # only around the changes, never a whole replay
    finally:
        for c in cs[1:]:
            yield c.shutdown()
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_reconsume_later_and_exceptions_bring_the_message_back(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique, ["broker-a"])
    rec = Recorder(fail_times={"retry-me": 1})
    raised = []

    def listener(msgs, context):
        if msgs[0].body == b"raise-me" and not raised:
            raised.append(msgs[0])
            raise RuntimeError("boom")
        return rec(msgs, context)

    c = consumer(cluster, group, topic, rec, f"{unique}-1")
    c.register_message_listener(listener)
    try:
        yield c.start()
        yield send_all(producer, topic, ["ok", "retry-me", "raise-me"], tags="T1", keys="KK")
        got = yield poll(lambda: Counter(rec.bodies()), lambda n: n["retry-me"] == 2 and n["raise-me"] == 1,
                         60, what="the failed messages again")
        assert got["ok"] == 1
        again = [m for m in rec.messages if m.body == b"retry-me"][-1]
        assert again.topic == topic and again.tags == "T1" and again.keys == ["KK"]
        assert again.reconsume_times == 1
    finally:
        yield c.shutdown()
        yield producer.shutdown()
