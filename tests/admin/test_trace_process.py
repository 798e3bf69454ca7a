"""Message trace over real processes: ``twistd namesrv`` + ``twistd broker`` with ``traceTopicEnable`` (and
auto-creation off, so the trace topic can only come from that flag), a traced producer and push consumer of
ours, then ``mqadmin queryMsgTraceById`` in a thread (the reactor keeps serving the clients meanwhile)."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import threads

from mq.client import ConsumeConcurrentlyStatus, ConsumeFromWhere, Producer, PushConsumer, make_message
from mq.client.api import unpack_messages
from mq.client.simple import create_topic_request, parse_route, pull_request, route_request
from mq.common.message_record import decode_messages
from mq.common.trace_data import decode
from mq.remoting.codes import ResponseCode
from tests.admin.conftest import mqadmin, start_broker
from tests.broker.wire import call
from tests.support.polling import poll
from tests.support.processes import wait_until

TRACE_TOPIC = "RMQ_SYS_TRACE_TOPIC"


@pytest.fixture(scope="module")
def broker(namesrv, tmp_path_factory):
    proc = start_broker(tmp_path_factory.mktemp("trace-broker"), namesrv.addr, name="trace-broker",
                        conf_extra="traceTopicEnable=true\nautoCreateTopicEnable=false\n")
    proc.namesrv = namesrv.addr
    wait_until(lambda: _route(namesrv.addr, TRACE_TOPIC) is not None, 20, what="trace topic routed")
    yield proc
    proc.stop(timeout=15)


def _route(namesrv: str, topic: str):
    return parse_route(call(namesrv, route_request(topic)))


def _create(broker, topic: str) -> None:
    assert call(broker.addr, create_topic_request(topic, 2)).code == ResponseCode.SUCCESS
    wait_until(lambda: _route(broker.namesrv, topic) is not None, 20, what=f"route of {topic}")


def _traced_clients(broker, topic: str, producer_group: str, group: str, instance: str, got: list, answer):
    """A traced producer (started) and push consumer (to start) whose listener keeps the messages in ``got``
    and returns ``answer``."""
    producer = Producer(producer_group, broker.namesrv, instance_name=f"{instance}-p", enable_msg_trace=True)

    def listener(msgs, context):
        got.extend(msgs)
        return answer

    consumer = PushConsumer(group, broker.namesrv, instance_name=f"{instance}-c", enable_msg_trace=True,
                            consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET)
    consumer.subscribe(topic)
    consumer.register_message_listener(listener)
    producer.start()
    return producer, consumer


def test_trace_topic_created_at_start_with_one_queue(broker):
    route = _route(broker.namesrv, TRACE_TOPIC)
    assert [(q.broker_name, q.read_queue_nums, q.write_queue_nums, q.perm) for q in route.queue_datas] == [
        ("trace-broker", 1, 1, 6)]


def test_custom_trace_topic_name(namesrv, tmp_path):
    proc = start_broker(tmp_path, namesrv.addr, name="trace-broker-2", cluster="TraceCluster2",
                        conf_extra="traceTopicEnable=true\nmsgTraceTopicName=MyTraceTopic\n")
    try:
        wait_until(lambda: _route(namesrv.addr, "MyTraceTopic") is not None, 20, what="custom trace topic routed")
        names = {q.broker_name for q in _route(namesrv.addr, "MyTraceTopic").queue_datas}
        assert names == {"trace-broker-2"}
    finally:
        proc.stop(timeout=15)


@pytest_twisted.inlineCallbacks
def test_traced_send_and_consume_then_query(broker):
    topic, group = "TraceT1", "TraceCG1"
    _create(broker, topic)
    got = []
    producer, consumer = _traced_clients(broker, topic, "TracePG1", group, "trace", got,
                                         ConsumeConcurrentlyStatus.CONSUME_SUCCESS)
    try:
        yield consumer.start()
        result = yield producer.send(make_message(topic, "traced body", tags="TagT", keys="order-77"))
        yield poll(lambda: len(got), lambda n: n >= 1, 30, what="the message consumed")
    finally:
        yield consumer.shutdown()  # flushes the consumer's trace records
        yield producer.shutdown()  # and the producer's
    msg_id = result.msg_id

    # The trace messages are stored and indexed by the message id.
    def query(*extra):
        return threads.deferToThread(mqadmin, "queryMsgTraceById", "-i", msg_id, *extra, namesrv=broker.namesrv)

    r = yield poll(lambda: query("--json"), lambda r: r.code == 0 and len(r.json()) >= 3, 30,
                   what="Pub, SubBefore and SubAfter found")
    views = {v["msgType"]: v for v in r.json()}
    assert set(views) == {"Pub", "SubBefore", "SubAfter"}
    pub, after = views["Pub"], views["SubAfter"]
    assert (pub["groupName"], pub["topic"], pub["tags"], pub["keys"], pub["status"]) == (
        "TracePG1", topic, "TagT", "order-77", "success")
    assert pub["storeHost"] == broker.addr and pub["offSetMsgId"] == result.offset_msg_id
    assert pub["clientHost"] == "127.0.0.1" and pub["costTime"] >= 0
    assert (after["groupName"], after["status"], after["keys"]) == (group, "success", "order-77")
    assert after["timeStamp"] >= pub["timeStamp"]

    text = (yield query()).out.splitlines()
    assert text[0].split() == ["#Type", "#ProducerGroup", "#ClientHost", "#SendTime", "#CostTimes", "#Status"]
    assert text[1].split()[:3] == ["Pub", "TracePG1", "127.0.0.1"] and text[1].split()[-1] == "success"
    assert text[1].split()[-2].endswith("ms")
    assert text[3].split() == ["#Type", "#ConsumerGroup", "#ClientHost", "#ConsumerTime", "#CostTimes", "#Status"]
    assert text[4].split()[:3] == ["Sub", group, "127.0.0.1"] and text[4].split()[-1] == "success"
    # Java's columns: %-10s %-20s %-20s %-20s %-10s %-10s
    assert text[1].index("TracePG1") == 11 and text[1].index("127.0.0.1") == 32

    # The trace messages themselves: no tags, keys = the message id plus the message's keys.
    response = call(broker.addr, pull_request("trace_reader", TRACE_TOPIC, 0, 0, 32))
    trace_msgs = decode_messages(response.body) if response.code == ResponseCode.SUCCESS else []
    mine = [m for m in trace_msgs if msg_id in m.keys]
    assert mine and all(m.tags is None and "order-77" in m.keys for m in mine)
    kinds = sorted(c.trace_type.value for m in mine for c in decode(m.body.decode())[0] if c.beans[0].msg_id == msg_id)
    assert kinds == ["Pub", "SubAfter", "SubBefore"]


@pytest_twisted.inlineCallbacks
def test_traced_batch_send_and_a_listener_returning_none(broker):
    """A batch is one Pub (Java's record of a MessageBatch) found by each member's id; a listener returning
    None is recorded as RETURNNULL and, as the consumer acknowledged the messages, as a success."""
    topic, group = "TraceBatch1", "TraceBatchCG"
    _create(broker, topic)
    got = []
    producer, consumer = _traced_clients(broker, topic, "TraceBatchPG", group, "trace-b", got, None)
    try:
        yield consumer.start()
        result = yield producer.send_batch(
            [make_message(topic, f"member {i}", keys=f"batch-key-{i}") for i in range(3)])
        yield poll(lambda: len(got), lambda n: n >= 3, 30, what="the batch consumed")
    finally:
        yield consumer.shutdown()
        yield producer.shutdown()
    ids = result.msg_id.split(",")
    assert len(ids) == 3

    def query(msg_id):
        return threads.deferToThread(mqadmin, "queryMsgTraceById", "-i", msg_id, "--json", namesrv=broker.namesrv)

    for i, msg_id in enumerate(ids):
        r = yield poll(lambda m=msg_id: query(m), lambda r: r.code == 0 and len(r.json()) >= 3, 30,
                       what=f"the traces of batch member {i}")
        views = {v["msgType"]: v for v in r.json()}
        assert set(views) == {"Pub", "SubBefore", "SubAfter"}
        pub, after = views["Pub"], views["SubAfter"]
        assert (pub["msgId"], pub["groupName"], pub["topic"], pub["keys"], pub["status"]) == (
            msg_id, "TraceBatchPG", topic, "null", "success")
        assert pub["offSetMsgId"] == result.offset_msg_id.split(",")[i]
        assert (after["contextCode"], after["status"], after["keys"]) == ("RETURNNULL", "success", f"batch-key-{i}")
    # The members' keys find the trace message too.
    response = call(broker.addr, pull_request("trace_reader_b", TRACE_TOPIC, 0, 0, 64))
    pubs = [m for m in decode_messages(response.body) if ids[0] in m.keys and "batch-key-2" in m.keys]
    assert pubs


@pytest_twisted.inlineCallbacks
def test_a_batch_of_1200_is_found_by_every_member_even_the_last(broker):
    """A batch whose ids pass what one trace message's keys hold: its Pub is split over trace messages, and
    queryMsgTraceById finds the first member, members either side of a split, and the last."""
    topic = "TraceBigBatch"
    _create(broker, topic)
    producer = Producer("TraceBigBatchPG", broker.namesrv, instance_name="trace-big-p", enable_msg_trace=True)
    producer.start()
    try:
        result = yield producer.send_batch(
            [make_message(topic, f"member {i}", keys=f"big-key-{i}") for i in range(1200)])
    finally:
        yield producer.shutdown()  # sends the queued records
    dispatcher = producer.tracer.dispatcher
    assert dispatcher.sent_messages >= 2 and (dispatcher.failed_messages, dispatcher.dropped) == (0, 0)
    ids, offsets = result.msg_id.split(","), result.offset_msg_id.split(",")
    assert len(ids) == len(offsets) == 1200

    def query(msg_id):
        return threads.deferToThread(mqadmin, "queryMsgTraceById", "-i", msg_id, "--json", namesrv=broker.namesrv)

    seen = set()
    for i in (0, 1, 399, 400, 401, 799, 800, 801, 1198, 1199):
        r = yield poll(lambda m=ids[i]: query(m), lambda r: r.code == 0 and r.json(), 30,
                       what=f"the trace of batch member {i}")
        (pub,) = r.json()
        assert (pub["msgType"], pub["msgId"], pub["offSetMsgId"], pub["topic"], pub["status"]) == (
            "Pub", ids[i], offsets[i], topic, "success")
        seen.add(pub["timeStamp"])
    assert len(seen) == 1  # the parts of one Pub: the batch's time
    # every member's id is a key of exactly one trace message, which names that member in its record
    members = set(ids)
    parts = [m for m in _trace_messages(broker) if set(m.keys) & members]
    assert len(parts) >= 2 and sorted(i for m in parts for i in m.keys if i in members) == sorted(ids)
    for m in parts:
        (record,) = [c for c in decode(m.body.decode())[0] if c.beans[0].msg_id.split(",")[0] in members]
        assert set(record.beans[0].msg_id.split(",")) == set(m.keys) & members


def _trace_messages(broker):
    """Every message of the trace topic's one queue, bodies inflated."""
    out, offset = [], 0
    while True:
        response = call(broker.addr, pull_request("trace_reader_all", TRACE_TOPIC, 0, offset, 32))
        if response.code != ResponseCode.SUCCESS:
            return out
        out.extend(unpack_messages(response.body, None, 0, 0))
        offset = int(response.ext_fields["nextBeginOffset"])


@pytest_twisted.inlineCallbacks
def test_traced_lite_pull_consumer(broker):
    """What a lite pull consumer's poll hands over is traced as consumed (SubBefore and SubAfter, as Java's)."""
    from mq.client.lite_pull import LitePullConsumer

    topic, group = "TraceLite1", "TraceLiteCG"
    _create(broker, topic)
    producer = Producer("TraceLitePG", broker.namesrv, instance_name="trace-lp", enable_msg_trace=False)
    consumer = LitePullConsumer(group, broker.namesrv, instance_name="trace-lc", enable_msg_trace=True,
                                consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET, poll_timeout=1.0)
    consumer.subscribe(topic)
    producer.start()
    try:
        result = yield producer.send(make_message(topic, "polled", keys="lite-key"))
        yield consumer.start()
        got = []
        for _ in range(30):
            got += yield consumer.poll()
            if got:
                break
    finally:
        yield consumer.shutdown()
        yield producer.shutdown()
    assert [m.body for m in got] == [b"polled"]
    r = yield poll(lambda: threads.deferToThread(mqadmin, "queryMsgTraceById", "-i", result.msg_id, "--json",
                                                 namesrv=broker.namesrv),
                   lambda r: r.code == 0 and len(r.json()) >= 2, 30, what="SubBefore and SubAfter found")
    views = {v["msgType"]: v for v in r.json()}
    assert set(views) == {"SubBefore", "SubAfter"}  # the producer was not traced
    assert (views["SubAfter"]["groupName"], views["SubAfter"]["status"], views["SubAfter"]["contextCode"]) == (
        group, "success", "SUCCESS")


def test_query_unknown_id_and_bad_arguments(broker):
    r = mqadmin("queryMsgTraceById", "-i", "NO_SUCH_ID_0000", namesrv=broker.namesrv)
    assert r.code != 0 and "no trace of message 'NO_SUCH_ID_0000'" in r.err
    r = mqadmin("queryMsgTraceById", "-i", "X", "-t", "bad topic", namesrv=broker.namesrv)
    assert r.code != 0 and "-t:" in r.err
    r = mqadmin("queryMsgTraceById", "-i", "X", "-num", "0", namesrv=broker.namesrv)
    assert r.code != 0 and "must be 1 to 65536" in r.err


@pytest_twisted.inlineCallbacks
def test_traced_transaction_records_its_end(broker):
    from mq.client import TransactionProducer
    from mq.client.model import LocalTransactionState

    topic = "TraceTx1"
    _create(broker, topic)
    producer = TransactionProducer("TraceTxPG", broker.namesrv, instance_name="trace-tx", enable_msg_trace=True,
                                   local_transaction=lambda msg, arg: LocalTransactionState.COMMIT_MESSAGE)
    producer.start()
    try:
        result = yield producer.send_message_in_transaction(make_message(topic, "tx body", keys="tx-key"))
    finally:
        yield producer.shutdown()
    r = yield poll(lambda: threads.deferToThread(mqadmin, "queryMsgTraceById", "-i", result.msg_id, "--json",
                                                 namesrv=broker.namesrv),
                   lambda r: r.code == 0 and len(r.json()) >= 2, 30, what="Pub and EndTransaction found")
    kinds = {v["msgType"]: v for v in r.json()}
    assert set(kinds) == {"Pub", "EndTransaction"}
    end = kinds["EndTransaction"]
    assert (end["groupName"], end["topic"], end["keys"], end["storeHost"]) == ("TraceTxPG", topic, "tx-key",
                                                                                broker.addr)
