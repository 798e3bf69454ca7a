"""The producer against real NameServer and broker processes: every send mode, queue choice, attributes."""

from __future__ import annotations

import zlib
from collections import Counter

import pytest_twisted
from twisted.internet import defer, reactor

from mq.client import Producer, make_message, select_by_hash
from mq.client.model import MQClientError, SendStatus
from mq.client.simple import SimpleClient
from mq.common.message import MessageSysFlag
from tests.client.helpers import stored
from tests.support.polling import poll


@pytest_twisted.inlineCallbacks
def test_sync_send_carries_body_tags_keys_properties(cluster, unique):
    topic = f"T_{unique}"
    cluster.create_topic(topic)
    producer = Producer(f"PG_{unique}", cluster.namesrv_addr)
    producer.start()
    client = SimpleClient(reactor)
    try:
        msg = make_message(topic, "hello", tags="TagA", keys=["k1", "k2"], properties={"color": "red"})
        result = yield producer.send(msg)
        assert result.status is SendStatus.SEND_OK
        assert result.msg_id == msg.unique_key and len(result.msg_id) == 32
        assert result.message_queue.topic == topic and result.queue_offset == 0
        assert result.offset_msg_id and result.region_id == "DefaultRegion"
        [got] = yield stored(client, cluster.addr(result.message_queue.broker_name), topic)
        assert got.body == b"hello" and got.tags == "TagA" and got.keys == ["k1", "k2"]
        assert got.properties["color"] == "red" and got.unique_key == result.msg_id
        assert got.queue_id == result.message_queue.queue_id
    finally:
        yield producer.shutdown()
        yield client.close()


@pytest_twisted.inlineCallbacks
def test_round_robin_covers_every_queue_of_both_brokers(cluster, unique):
    topic = f"T_{unique}"
    cluster.create_topic(topic)
    producer = Producer(f"PG_{unique}", cluster.namesrv_addr)
    producer.start()
    try:
        results = yield defer.gatherResults([producer.send(make_message(topic, f"m{i}")) for i in range(16)])
        spread = Counter((r.message_queue.broker_name, r.message_queue.queue_id) for r in results)
        assert len(spread) == 8 and set(spread.values()) == {2}
    finally:
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_async_oneway_and_batch(cluster, unique):
    topic = f"T_{unique}"
    cluster.create_topic(topic, brokers=["broker-a"])
    producer = Producer(f"PG_{unique}", cluster.namesrv_addr)
    producer.start()
    client = SimpleClient(reactor)
    try:
        done = defer.Deferred()
        producer.send_async(make_message(topic, "async"), done.callback, done.errback)
        result = yield done
        assert result.status is SendStatus.SEND_OK
        yield producer.send_oneway(make_message(topic, "oneway"))
        batch = [make_message(topic, f"b{i}", tags="B") for i in range(10)]
        result = yield producer.send_batch(batch)
        assert result.msg_id.split(",") == [m.unique_key for m in batch]
        msgs = yield poll(lambda: stored(client, cluster.addr("broker-a"), topic), lambda m: len(m) == 12,
                          what="12 stored messages")
        bodies = sorted(m.body for m in msgs)
        assert bodies == sorted([b"async", b"oneway"] + [f"b{i}".encode() for i in range(10)])
        assert all(m.tags == "B" for m in msgs if m.body.startswith(b"b"))
    finally:
        yield producer.shutdown()
        yield client.close()


@pytest_twisted.inlineCallbacks
def test_selector_keeps_a_key_on_one_queue(cluster, unique):
    topic = f"T_{unique}"
    cluster.create_topic(topic)
    producer = Producer(f"PG_{unique}", cluster.namesrv_addr)
    producer.start()
    try:
        by_key = {}
        for i in range(30):
            key = f"order-{i % 5}"
            r = yield producer.send(make_message(topic, f"{key}:{i}"), selector=select_by_hash, arg=key)
            by_key.setdefault(key, set()).add(r.message_queue)
        assert all(len(queues) == 1 for queues in by_key.values())
        queues = yield producer.fetch_publish_queues(topic)
        assert by_key["order-1"] == {queues[abs(hash_of("order-1")) % len(queues)]}
    finally:
        yield producer.shutdown()


def hash_of(text):
    from mq.client.selector import java_hash

    return java_hash(text)


@pytest_twisted.inlineCallbacks
def test_large_bodies_are_compressed_and_small_ones_not(cluster, unique):
    topic = f"T_{unique}"
    cluster.create_topic(topic, queues=1, brokers=["broker-b"])
    producer = Producer(f"PG_{unique}", cluster.namesrv_addr)
    producer.start()
    client = SimpleClient(reactor)
    try:
        big = b"abcdefgh" * 2048
        yield producer.send(make_message(topic, big))
        yield producer.send(make_message(topic, b"small"))
        first, second = yield stored(client, cluster.addr("broker-b"), topic, queues=1)
        assert first.sys_flag & MessageSysFlag.COMPRESSED_FLAG and zlib.decompress(first.body) == big
        assert len(first.body) < len(big)
        assert not second.sys_flag & MessageSysFlag.COMPRESSED_FLAG and second.body == b"small"
    finally:
        yield producer.shutdown()
        yield client.close()


@pytest_twisted.inlineCallbacks
def test_unknown_topic_is_created_from_tbw102(cluster, unique):
    topic = f"Auto_{unique}"
    producer = Producer(f"PG_{unique}", cluster.namesrv_addr)
    producer.start()
    try:
        result = yield producer.send(make_message(topic, "first"))
        assert result.status is SendStatus.SEND_OK
        assert result.message_queue.queue_id < 4
    finally:
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_refusals_are_clear(cluster, unique):
    producer = Producer(f"PG_{unique}", cluster.namesrv_addr)
    try:
        with_error = yield producer.send(make_message("T", "x")).addErrback(lambda f: f.value)
        assert isinstance(with_error, MQClientError) and "not running" in str(with_error)
        producer.start()
        for msg, text in ((make_message("bad topic", "x"), "characters"), (make_message("T", b""), "empty"),
                          (make_message("SCHEDULE_TOPIC_XXXX", "x"), "system topic")):
            err = yield producer.send(msg).addErrback(lambda f: f.value)
            assert isinstance(err, MQClientError) and text in str(err)
    finally:
        yield producer.shutdown()
