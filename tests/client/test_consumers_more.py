"""Lite pull (subscribe, assign, seek, commit), broadcasting with local offsets, orderly consumption,
transactions, SQL92 subscriptions: against real NameServer and broker processes."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import defer

from mq.client import (
    ConsumeFromWhere,
    ConsumeOrderlyStatus,
    LitePullConsumer,
    LocalTransactionState,
    MessageModel,
    PushConsumer,
    TransactionProducer,
    make_message,
    select_by_hash,
)
from mq.client.offset_store import ENTRY_PATTERN
from tests.client.helpers import setup_topic
from tests.support.polling import poll

FIRST = ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET


@defer.inlineCallbacks
def poll_bodies(consumer, want, timeout=30):
    """Poll until ``want`` messages came back; their bodies in the order polled."""
    got = []
    yield poll(lambda: consumer.poll(0.5).addCallback(lambda ms: got.extend(m.body.decode() for m in ms) or got),
               lambda g: len(g) >= want, timeout, what=f"{want} polled messages")
    return got


@pytest_twisted.inlineCallbacks
def test_lite_pull_subscribe_polls_commits_and_resumes(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique, ["broker-a"])
    lite = LitePullConsumer(group, cluster.namesrv_addr, instance_name=f"{unique}-1", consume_from_where=FIRST,
                            auto_commit=False)
    lite.subscribe(topic, "*")
    try:
        yield lite.start()
        for i in range(12):
            yield producer.send(make_message(topic, f"m{i}"))
        got = yield poll_bodies(lite, 12)
        assert sorted(got) == sorted(f"m{i}" for i in range(12))
        yield lite.commit()
        committed = yield defer.gatherResults([lite.committed(mq) for mq in lite.rebalancer.queues_of(topic)])
        assert sum(committed) == 12
        yield lite.shutdown()
        for i in range(12, 15):
            yield producer.send(make_message(topic, f"m{i}"))
        lite = LitePullConsumer(group, cluster.namesrv_addr, instance_name=f"{unique}-2")
        lite.subscribe(topic, "*")
        yield lite.start()
        got = yield poll_bodies(lite, 3)
        assert sorted(got) == ["m12", "m13", "m14"]
    finally:
        yield lite.shutdown()
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_lite_pull_assign_and_seek(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique, ["broker-b"], queues=2)
    lite = LitePullConsumer(group, cluster.namesrv_addr, instance_name=f"{unique}-1")
    try:
        for i in range(6):
            yield producer.send(make_message(topic, f"m{i}"), selector=select_by_hash, arg=0)
        queues = yield lite.fetch_message_queues(topic)
        assert len(queues) == 2
        q0 = [q for q in queues if q.queue_id == 0]
        yield lite.assign(q0)
        yield lite.start()
        lite.seek(q0[0], 4)
        got = yield poll_bodies(lite, 2)
        assert got == ["m4", "m5"]
        lite.seek(q0[0], 1)
        got = yield poll_bodies(lite, 5)
        assert got == ["m1", "m2", "m3", "m4", "m5"]
    finally:
        yield lite.shutdown()
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_broadcasting_every_member_gets_every_message_and_offsets_stay_local(cluster, unique, tmp_path):
    topic, group, producer = setup_topic(cluster, unique)
    got = [[], []]
    consumers = []
    for i in range(2):
        c = PushConsumer(group, cluster.namesrv_addr, instance_name=f"{unique}-{i}", consume_from_where=FIRST,
                         message_model=MessageModel.BROADCASTING, offset_store_dir=tmp_path / "offsets")
        c.subscribe(topic, "*")
        c.register_message_listener(lambda msgs, ctx, box=got[i]: box.extend(m.body.decode() for m in msgs))
        consumers.append(c)
    try:
        for c in consumers:
            yield c.start()
        yield defer.gatherResults([producer.send(make_message(topic, f"m{i}")) for i in range(20)])
        yield poll(lambda: [len(set(g)) for g in got], lambda n: n == [20, 20], 30, what="20 each")
        yield consumers[0].shutdown()
        saved = consumers[0].offsets.path.read_text()  # the stopped one's (the other's may be saved mid-way)
        assert '"offsetTable"' in saved
        offsets = {(t, b, int(q)): int(o) for b, q, t, o in ENTRY_PATTERN.findall(saved)}
        assert sum(o for (t, _, _), o in offsets.items() if t == topic) == 20
        # Restarted with the same client id, it continues from its file: no replay.
        got[0].clear()
        c = PushConsumer(group, cluster.namesrv_addr, instance_name=f"{unique}-0", consume_from_where=FIRST,
                         message_model=MessageModel.BROADCASTING, offset_store_dir=tmp_path / "offsets")
        c.subscribe(topic, "*")
        c.register_message_listener(lambda msgs, ctx: got[0].extend(m.body.decode() for m in msgs))
        consumers[0] = c
        yield c.start()
        yield producer.send(make_message(topic, "after"))
        yield poll(lambda: got[0], lambda g: "after" in g, 30, what="the new message")
        assert got[0] == ["after"]
    finally:
        for c in consumers:
            yield c.shutdown()
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_orderly_listener_sees_each_queue_in_order_and_retries_locally(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique, ["broker-a"])
    seen = {}
    suspended = []

    def listener(msgs, context):
        for m in msgs:
            key, n = m.body.decode().split(":")
            if key == "k1" and n == "3" and not suspended:
                suspended.append(m.reconsume_times)
                return ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT
            seen.setdefault(key, []).append(int(n))
        return ConsumeOrderlyStatus.SUCCESS

    c = PushConsumer(group, cluster.namesrv_addr, instance_name=f"{unique}-1", consume_from_where=FIRST,
                     suspend_current_queue_time=0.2)
    c.subscribe(topic, "*")
    c.register_orderly_listener(listener)
    try:
        yield c.start()
        for n in range(10):
            for key in ("k0", "k1", "k2"):
                yield producer.send(make_message(topic, f"{key}:{n}"), selector=select_by_hash, arg=key)
        yield poll(lambda: sum(len(v) for v in seen.values()), lambda n: n == 30, 40, what="30 in order")
        assert all(v == list(range(10)) for v in seen.values()), seen
        assert suspended == [0]
        assert all(pq.locked for pq in c.rebalancer.process_queues.values())
    finally:
        yield c.shutdown()
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_transaction_commit_and_rollback(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique, ["broker-b"], queues=1)
    yield producer.shutdown()
    decisions = {"commit-me": LocalTransactionState.COMMIT_MESSAGE,
                 "roll-me-back": LocalTransactionState.ROLLBACK_MESSAGE}
    tp = TransactionProducer(f"TPG_{unique}", cluster.namesrv_addr,
                             local_transaction=lambda msg, arg: decisions[msg.body.decode()],
                             check_listener=lambda msg: LocalTransactionState.COMMIT_MESSAGE)
    tp.start()
    got = []
    c = PushConsumer(group, cluster.namesrv_addr, instance_name=f"{unique}-1", consume_from_where=FIRST)
    c.subscribe(topic, "*")
    c.register_message_listener(lambda msgs, ctx: got.extend(m.body.decode() for m in msgs))
    try:
        for body in ("roll-me-back", "commit-me"):
            result = yield tp.send_message_in_transaction(make_message(topic, body, tags="TX"))
            assert result.local_transaction_state is decisions[body]
        yield c.start()
        yield tp.send(make_message(topic, "plain"))
        yield poll(lambda: got, lambda g: "plain" in g and "commit-me" in g, 30, what="committed message")
        assert "roll-me-back" not in got
    finally:
        yield c.shutdown()
        yield tp.shutdown()


@pytest_twisted.inlineCallbacks
def test_sql92_subscription(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique, ["broker-a"], queues=1)
    got = []
    c = PushConsumer(group, cluster.namesrv_addr, instance_name=f"{unique}-1", consume_from_where=FIRST)
    c.subscribe(topic, "n > 5", "SQL92")
    c.register_message_listener(lambda msgs, ctx: got.extend(m.body.decode() for m in msgs))
    try:
        yield c.start()
        for n in (1, 7, 3, 9):
            yield producer.send(make_message(topic, f"n{n}", properties={"n": str(n)}))
        yield poll(lambda: got, lambda g: "n9" in g, 20, what="n9")
        assert got == ["n7", "n9"]
    finally:
        yield c.shutdown()
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_delay_level_reaches_the_broker(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique, ["broker-a"], queues=1)
    try:
        result = yield producer.send(make_message(topic, "later", delay_level=1))
        assert result.status.value == "SEND_OK"
    finally:
        yield producer.shutdown()
