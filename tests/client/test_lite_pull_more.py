"""Lite pull, the rest of Java's ``DefaultLitePullConsumer``: pause/resume, offset_for_timestamp, auto commit
switched while running, commit of given queues or offsets, assignment, unsubscribe, queue listeners and the
tag expression of assigned queues; against real NameServer and broker processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import pytest_twisted
from twisted.internet import defer

from mq.client import ConsumeFromWhere, LitePullConsumer, MessageQueue, MQClientError, make_message
from tests.client.helpers import setup_topic
from tests.client.test_consumers_more import poll_bodies
from tests.support.polling import poll
from tests.support.processes import REPO, child_env

FIRST = ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET


def queue(topic: str, qid: int, broker: str = "broker-a") -> MessageQueue:
    return MessageQueue(topic, broker, qid)


@defer.inlineCallbacks
def send_to(producer, mq: MessageQueue, bodies, **kwargs):
    for body in bodies:
        yield producer.send(make_message(mq.topic, body, **kwargs), queue=mq)


def manual_consumer(cluster, unique, group, **kwargs) -> LitePullConsumer:
    """A lite pull consumer of this test from the first offset, committing only when told (by default)."""
    kwargs.setdefault("consume_from_where", FIRST)
    kwargs.setdefault("auto_commit", False)
    return LitePullConsumer(group, cluster.namesrv_addr, instance_name=unique, **kwargs)


@defer.inlineCallbacks
def fill_two_queues(producer, topic):
    """a0..a2 in queue 0 and b0..b2 in queue 1 of ``topic`` on broker-a; the two queues."""
    q0, q1 = queue(topic, 0), queue(topic, 1)
    yield send_to(producer, q0, ["a0", "a1", "a2"])
    yield send_to(producer, q1, ["b0", "b1", "b2"])
    return q0, q1


@defer.inlineCallbacks
def committed_offsets(lite, queues):
    return (yield defer.gatherResults([lite.committed(mq) for mq in queues]))


@defer.inlineCallbacks
def nothing_polled(lite, rounds=3):
    """``rounds`` polls of 0.3 s each came back empty."""
    for _ in range(rounds):
        got = yield lite.poll(0.3)
        assert got == []


@pytest_twisted.inlineCallbacks
def test_paused_queue_is_neither_pulled_nor_polled_and_resume_continues_there(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique, ["broker-a"], queues=2)
    lite = manual_consumer(cluster, unique, group)
    try:
        q0, q1 = yield fill_two_queues(producer, topic)
        yield lite.assign([q0, q1])
        lite.pause([q0])
        assert lite.is_paused(q0) and not lite.is_paused(q1)
        yield lite.start()
        assert (yield poll_bodies(lite, 3)) == ["b0", "b1", "b2"]
        yield nothing_polled(lite)
        assert q0 in lite._parked  # its pulling stopped at the start offset
        yield send_to(producer, q0, ["a3", "a4"])
        yield nothing_polled(lite, 1)
        lite.resume([q0])
        assert (yield poll_bodies(lite, 5)) == ["a0", "a1", "a2", "a3", "a4"]
    finally:
        yield lite.shutdown()
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_pause_holds_back_batches_already_pulled_until_resume(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique, ["broker-a"], queues=1)
    q0 = queue(topic, 0)
    lite = manual_consumer(cluster, unique, group)
    try:
        yield send_to(producer, q0, ["m0", "m1"])
        yield lite.assign([q0])
        yield lite.start()
        yield poll(lambda: sum(len(b[2]) for b in lite._buffer), lambda n: n == 2, 30, what="2 messages buffered")
        lite.pause([q0])
        waiting = lite.poll(30)  # a poll already waiting gets the batch when the queue is resumed
        yield nothing_polled(lite, 1)
        assert not waiting.called
        lite.resume([q0])
        got = yield waiting
        assert [m.body for m in got] == [b"m0", b"m1"]
        yield lite.commit()
        assert (yield lite.committed(q0)) == 2
    finally:
        yield lite.shutdown()
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_offset_for_timestamp_finds_the_first_message_stored_at_or_after_it(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique, ["broker-b"], queues=1)
    q0 = queue(topic, 0, "broker-b")
    lite = manual_consumer(cluster, unique, group)
    try:
        with pytest.raises(MQClientError):
            yield lite.offset_for_timestamp(q0, 0)  # not running yet
        yield send_to(producer, q0, [f"m{i}" for i in range(6)])
        yield lite.assign([q0])
        yield lite.start()
        msgs = []
        yield poll(lambda: lite.poll(0.5).addCallback(lambda ms: msgs.extend(ms) or msgs), lambda m: len(m) >= 6,
                   30, what="6 messages")
        stamps = [m.store_timestamp for m in msgs]
        target = stamps[3]
        expected = min(i for i, ts in enumerate(stamps) if ts >= target)
        assert (yield lite.offset_for_timestamp(q0, target)) == expected
        assert (yield lite.offset_for_timestamp(q0, 0)) == 0
        assert (yield lite.offset_for_timestamp(q0, int(time.time() * 1000) + 3_600_000)) == 6
        lite.seek(q0, (yield lite.offset_for_timestamp(q0, target)))
        assert (yield poll_bodies(lite, 6 - expected)) == [f"m{i}" for i in range(expected, 6)]
    finally:
        yield lite.shutdown()
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_auto_commit_switched_on_and_off_while_running(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique, ["broker-a"], queues=2)
    queues = [queue(topic, 0), queue(topic, 1)]
    lite = manual_consumer(cluster, unique, group, auto_commit_interval=0.2)
    lite.subscribe(topic, "*")
    try:
        yield lite.start()
        assert lite.auto_commit is False and lite._commit_loop is None
        yield send_to(producer, queues[0], ["m0", "m1"])
        yield send_to(producer, queues[1], ["m2", "m3"])
        assert sorted((yield poll_bodies(lite, 4))) == ["m0", "m1", "m2", "m3"]
        assert all(c <= 0 for c in (yield committed_offsets(lite, queues)))
        lite.auto_commit = True
        yield poll(lambda: committed_offsets(lite, queues), lambda c: c == [2, 2], 30, what="auto commit")
        lite.auto_commit = False
        assert not lite._commit_loop.running
    finally:
        yield lite.shutdown()
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_commit_of_given_queues_and_of_given_offsets(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique, ["broker-a"], queues=2)
    lite = manual_consumer(cluster, unique, group)
    try:
        q0, q1 = yield fill_two_queues(producer, topic)
        yield lite.assign([q0, q1])
        yield lite.start()
        assert lite.assignment() == {q0, q1}
        yield poll_bodies(lite, 6)
        yield lite.commit([q0])
        c0, c1 = yield committed_offsets(lite, [q0, q1])
        assert c0 == 3 and c1 <= 0
        yield lite.commit({q1: 1})
        assert (yield lite.committed(q1)) == 1
        yield lite.commit({q1: 2}, persist=False)  # kept in memory only
        assert (yield lite.committed(q1)) == 1
        yield lite.commit([q1], persist=True)
        assert (yield lite.committed(q1)) == 3
    finally:
        yield lite.shutdown()
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_queue_listener_assignment_and_unsubscribe(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique, ["broker-a"], queues=2)
    changes = []
    lite = manual_consumer(cluster, unique, group, auto_commit=True)
    lite.subscribe(topic, "*", queue_listener=lambda t, everything, mine: changes.append((t, everything, mine)))
    try:
        yield lite.start()
        all_queues = {queue(topic, 0), queue(topic, 1)}
        yield poll(lambda: changes, lambda c: len(c) >= 1, 30, what="the queue listener")
        assert changes[0] == (topic, all_queues, all_queues)
        assert lite.assignment() == all_queues
        yield lite.unsubscribe(topic)
        assert lite.assignment() == set() and topic not in lite.subscriptions
        yield producer.send(make_message(topic, "after"))
        yield nothing_polled(lite, 2)
        with pytest.raises(MQClientError):
            lite.set_sub_expression_for_assign(topic, "TagA")  # only before start
    finally:
        yield lite.shutdown()
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_assigned_queues_pulled_with_the_expression_set_for_their_topic(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique, ["broker-b"], queues=1)
    q0 = queue(topic, 0, "broker-b")
    lite = manual_consumer(cluster, unique, group, auto_commit=True)
    try:
        for i in range(6):
            yield producer.send(make_message(topic, f"m{i}", tags="TagA" if i % 2 == 0 else "TagB"), queue=q0)
        lite.set_sub_expression_for_assign(topic, "TagA")
        with pytest.raises(MQClientError):
            lite.subscribe(topic, "*")  # assign mode now
        yield lite.assign([q0])
        yield lite.start()
        assert (yield poll_bodies(lite, 3)) == ["m0", "m2", "m4"]
        yield nothing_polled(lite, 1)
    finally:
        yield lite.shutdown()
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_topic_queue_change_listener_hears_new_queues(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique, ["broker-a"], queues=2)
    heard = []
    lite = manual_consumer(cluster, unique, group, consume_from_where=ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
                           auto_commit=True)
    yield lite.register_topic_message_queue_change_listener(topic, lambda t, qs: heard.append((t, qs)))
    lite.subscribe(topic, "*")
    try:
        yield lite.start()
        assert heard == []  # the queues at start are the first state, not a change
        lite.update_name_server_address(cluster.namesrv_addr)
        assert lite.instance.namesrv == [cluster.namesrv_addr]
        cluster.create_topic(topic, queues=4, brokers=["broker-a"])
        # the route is read every 30 s; ask now until the NameServer has the new queues
        yield poll(lambda: lite.instance.update_route(topic).addCallback(lambda _: heard), lambda h: len(h) >= 1,
                   30, what="the topic listener")
        assert heard[0] == (topic, {queue(topic, i) for i in range(4)})
    finally:
        yield lite.shutdown()
        yield producer.shutdown()


BLOCKING_PROGRAM = """
import json, sys
from mq.client import ConsumeFromWhere, MessageQueue, make_message
from mq.client.blocking import BlockingLitePullConsumer, BlockingProducer

namesrv, topic, group = sys.argv[1:]
q0 = MessageQueue(topic, "broker-a", 0)
with BlockingProducer(group + "_p", namesrv) as producer:
    for i in range(3):
        producer.send(make_message(topic, f"m{i}"), queue=q0)
consumer = BlockingLitePullConsumer(group, namesrv, consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                                    auto_commit=False)
consumer.assign([q0])
consumer.pause([q0])
with consumer:
    paused = consumer.poll(timeout=0.5)
    consumer.resume([q0])
    got = []
    while len(got) < 3:
        got += consumer.poll(timeout=1.0)
    first = consumer.offset_for_timestamp(q0, 0)
    consumer.auto_commit = True
    out = {"paused": len(paused), "got": [m.body.decode() for m in got], "first": first,
           "assignment": [str(q) for q in consumer.assignment()], "auto_commit": consumer.auto_commit}
    consumer.commit([q0])
    out["committed"] = consumer.committed(q0)
print(json.dumps(out))
"""


def test_blocking_facade_pauses_resumes_and_finds_offsets(cluster, unique):
    topic = f"T_{unique}"
    cluster.create_topic(topic, queues=1, brokers=["broker-a"])
    result = subprocess.run([sys.executable, "-c", BLOCKING_PROGRAM, cluster.namesrv_addr, topic, f"G_{unique}"],
                            capture_output=True, timeout=120, env=child_env(), cwd=str(REPO))
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    out = json.loads(result.stdout.decode().splitlines()[-1])
    assert out == {"paused": 0, "got": ["m0", "m1", "m2"], "first": 0, "auto_commit": True,
                   "assignment": [str(MessageQueue(topic, "broker-a", 0))], "committed": 3}
