"""QUERY_MESSAGE answers at most ``maxMsgsNumBatch`` messages and about 4 MiB of them whatever ``maxNum`` asks."""

from __future__ import annotations

import pytest

from mq.broker.config import BrokerConfig
from mq.broker.processor.query import MAX_ANSWER_BYTES
from mq.client.simple import query_message_request, send_request
from mq.common.message_record import decode_messages
from mq.remoting.codes import ResponseCode as RC


class _Channel:
    peer = "127.0.0.1:50000"

    def __init__(self):
        self.attributes = {}


def call(b, request):
    r = b.dispatcher.processors[request.code](request, _Channel())
    assert not hasattr(r, "addCallback")  # answered at once: no Deferred in these tests
    return r


def indexed(make_broker, **props):
    """A broker with its message index (the tests' default turns it off) and room for big messages."""
    return make_broker(messageIndexEnable="true", mappedFileSizeCommitLog=str(16 << 20), **props)


def send_many(b, topic, key, count, body=b"q"):
    sent = []
    for _ in range(count):
        r = call(b, send_request(topic, body, keys=key, queue_id=0))
        assert r.code == RC.SUCCESS, r.remark
        sent.append(r)
    return sent


def test_max_msgs_num_batch_caps_a_query_whatever_max_num_asks(make_broker):
    b = indexed(make_broker)
    assert b.store.config.max_msgs_num_batch == 64  # RocketMQ's default
    send_many(b, "QCap", "shared", 70)
    r = call(b, query_message_request("QCap", "shared", max_num=10**9))
    assert r.code == RC.SUCCESS and len(decode_messages(r.body)) == 64
    r = call(b, query_message_request("QCap", "shared", max_num=3))  # a lower maxNum still wins
    assert r.code == RC.SUCCESS and len(decode_messages(r.body)) == 3


def test_max_msgs_num_batch_is_read_from_the_config(make_broker):
    b = indexed(make_broker, maxMsgsNumBatch="5")
    send_many(b, "QFive", "shared", 8)
    r = call(b, query_message_request("QFive", "shared", max_num=10**9))
    assert r.code == RC.SUCCESS and len(decode_messages(r.body)) == 5
    # a lookup by unique key too, whose own cap (defaultQueryMaxNum, 32) is higher (the index holds both kinds)
    r = call(b, query_message_request("QFive", "shared", max_num=10**9, unique_key=True))
    assert r.code == RC.SUCCESS and len(decode_messages(r.body)) == 5


@pytest.mark.parametrize("value", ["0", "10001", "many"])
def test_max_msgs_num_batch_out_of_range_is_refused(value):
    with pytest.raises(ValueError, match="maxMsgsNumBatch"):
        BrokerConfig.from_properties({"maxMsgsNumBatch": value}).check()


def test_a_query_answer_stops_before_4_mib(make_broker):
    b = indexed(make_broker)
    send_many(b, "QBig", "big", 60, b"x" * 100_000)  # 6 MB under the key, fewer than 64 messages
    r = call(b, query_message_request("QBig", "big", max_num=10**9))
    assert r.code == RC.SUCCESS
    records = decode_messages(r.body)
    size = len(r.body) // len(records)
    assert len(r.body) <= MAX_ANSWER_BYTES < len(r.body) + size  # stopped at the cap, not before
    assert len(records) == MAX_ANSWER_BYTES // size < 60


def test_a_query_answers_its_first_record_even_past_4_mib(make_broker):
    b = indexed(make_broker, maxMessageSize=str(5 << 20))
    send_many(b, "QHuge", "huge", 2, b"x" * (MAX_ANSWER_BYTES + 1))
    r = call(b, query_message_request("QHuge", "huge", max_num=10))
    assert r.code == RC.SUCCESS and len(decode_messages(r.body)) == 1
