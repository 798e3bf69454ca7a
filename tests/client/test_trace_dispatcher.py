"""The trace dispatcher and hooks on a ``task.Clock`` with a recording producer: batching by time, by queue
length and by size, the bounded queue (drops counted, one log line a second), sends in flight bounded, the
flush on shutdown, and hooks that never disturb the business send or listener."""

from __future__ import annotations

import pytest
from twisted.internet import defer, task
from twisted.python.failure import Failure

from mq.client.instance import ClientConfig
from mq.client.model import ConsumeConcurrentlyStatus, MessageQueue, SendResult, SendStatus
from mq.client.trace import TraceDispatcher, Tracer
from mq.common.message import Message, MessageExt
from mq.common.names import group_error
from mq.common.trace_data import ConsumeReturnType, MessageType, TraceBean, TraceContext, TraceType, decode
from tests.support.logs import logged_lines


class FakeProducer:
    """Records each trace message; each send's Deferred is fired by the test (or at once with ``auto``)."""

    def __init__(self, group, auto=True):
        self.group = group
        self.auto = auto
        self.sent = []
        self.waiting = []
        self.started = self.stopped = False

    def start(self):
        self.started = True

    def shutdown(self):
        self.stopped = True
        return defer.succeed(None)

    def send(self, msg, timeout):
        self.sent.append(msg)
        d = defer.Deferred()
        if self.auto:
            d.callback("ok")
        else:
            self.waiting.append(d)
        return d


def make(clock, auto=True, **kwargs):
    made = []

    def factory(group):
        made.append(FakeProducer(group, auto))
        return made[0]

    d = TraceDispatcher(clock, ClientConfig(), "PG", "PRODUCER", producer_factory=factory, **kwargs)
    d.start()
    return d, made[0]


def ctx(i, keys="k"):
    return TraceContext(TraceType.SubBefore, 1000 + i, "R", "CG", request_id="Q",
                        beans=[TraceBean(msg_id=f"ID{i}", keys=keys)])


def records(producer):
    return [c for m in producer.sent for c in decode(m.body.decode())[0]]


def test_records_are_sent_together_after_the_flush_delay():
    clock = task.Clock()
    d, p = make(clock)
    assert p.group.startswith("_INNER_TRACE_PRODUCER-PG-PRODUCER-")
    for i in range(3):
        assert d.append(ctx(i, keys=f"key{i} shared"))
    assert p.sent == []  # nothing on the caller's turn
    clock.advance(0.49)
    assert p.sent == []
    clock.advance(0.01)
    assert len(p.sent) == 1
    msg = p.sent[0]
    assert msg.topic == "RMQ_SYS_TRACE_TOPIC" and msg.tags is None
    assert msg.keys == ["ID0", "key0", "shared", "ID1", "key1", "ID2", "key2"]
    assert [c.beans[0].msg_id for c in records(p)] == ["ID0", "ID1", "ID2"]


def test_a_full_enough_queue_is_flushed_on_the_next_turn_and_large_batches_are_split():
    clock = task.Clock()
    d, p = make(clock, flush_at=10, batch_chars=200)
    for i in range(10):
        d.append(ctx(i))
    assert p.sent == []
    clock.advance(0)
    # the queue's reaching flush_at sends full trace messages while flush_at are queued; the few left wait
    sent = len(records(p))
    assert 0 < sent < 10 and len(d.pending) == 10 - sent
    assert all(len(m.body) < 200 + 100 for m in p.sent)  # one record may pass the mark
    clock.advance(0.49)
    assert len(records(p)) == sent
    clock.advance(0.01)  # the 500 ms mark sends the rest, however few
    assert len(records(p)) == 10 and [c.timestamp for c in records(p)] == [1000 + i for i in range(10)]


def test_a_steady_stream_makes_full_trace_messages():
    """Records arriving a few at a time: each flush the count starts sends one message of ``flush_at``
    records (none of a leftover few), and the leftovers join the next one."""
    clock = task.Clock()
    d, p = make(clock, flush_at=50)
    for i in range(230):
        d.append(ctx(i))
        if i % 7 == 6:
            clock.advance(0)  # a reactor turn
    clock.advance(0)
    # each flush runs on the turn after the count was reached, with the records of that turn: 56 a time
    assert [len(decode(m.body.decode())[0]) for m in p.sent] == [56, 56, 56, 56] and len(d.pending) == 6
    clock.advance(0.5)
    assert [len(decode(m.body.decode())[0]) for m in p.sent][4:] == [6]
    assert [c.timestamp for c in records(p)] == [1000 + i for i in range(230)]


def test_full_queue_drops_counts_and_logs_once_a_second(log_events):
    clock = task.Clock()
    d, p = make(clock, auto=False, max_pending=5, flush_at=5, max_in_flight=1)
    for i in range(5):
        assert d.append(ctx(i))
    clock.advance(0)  # one trace message in flight, the queue empty again
    assert len(p.sent) == 1 and len(d.pending) == 0
    results = [d.append(ctx(i)) for i in range(12)]
    assert results == [True] * 5 + [False] * 7 and d.dropped == 7
    clock.advance(0)
    assert len(p.sent) == 1  # the in-flight bound holds the queued records back
    assert logged_lines(log_events, "dropped") == []
    clock.advance(1.0)
    lines = logged_lines(log_events, "trace: dropped")
    assert lines == ["trace: dropped 7 record(s), the queue of 5 was full (7 dropped in all)"]
    d.append(ctx(99))
    clock.advance(5)
    assert len(logged_lines(log_events, "trace: dropped")) == 2
    p.waiting.pop().callback("ok")  # the send returns: the queued records go
    assert len(p.sent) == 2 and len(records(p)) == 10


def test_shutdown_sends_everything_queued_and_waits_for_sends_in_flight():
    clock = task.Clock()
    d, p = make(clock, auto=False, max_in_flight=1, batch_chars=50)
    for i in range(4):
        d.append(ctx(i))
    done = d.shutdown()
    # every queued record sent, in two messages though only one may be in flight otherwise
    assert len(records(p)) == 4 and len(p.sent) == 2 and not done.called
    for w in p.waiting:
        w.callback("ok")
    assert done.called and p.stopped and not d.append(ctx(5))


def test_shutdown_does_not_wait_forever_for_a_send():
    clock = task.Clock()
    d, p = make(clock, auto=False)
    d.append(ctx(0))
    done = d.shutdown(wait=2.0)
    clock.advance(2.0)
    assert done.called and p.stopped


def test_a_failed_trace_send_is_logged_and_counted(log_events):
    clock = task.Clock()
    d, p = make(clock, auto=False)
    d.append(ctx(0))
    clock.advance(0.5)
    p.waiting.pop().errback(Failure(RuntimeError("broker gone")))
    assert d.failed_messages == 1
    assert logged_lines(log_events, "broker gone")


def test_the_trace_producer_group_stays_a_legal_group_name():
    d, _ = make(task.Clock())
    assert d.group.startswith("_INNER_TRACE_PRODUCER-PG-PRODUCER-")
    long_host = TraceDispatcher(task.Clock(), ClientConfig(), "G" * 255, "CONSUMER")
    assert group_error(long_host.group) is None and len(long_host.group) == 255
    assert "G-CONSUMER-" in long_host.group


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError):
        TraceDispatcher(task.Clock(), ClientConfig(), "PG", "PRODUCER", max_pending=0)


# -- hooks --------------------------------------------------------------------------------------------------


def send_result(region="DefaultRegion", trace_on=True, status=SendStatus.SEND_OK):
    return SendResult(status, "UNIQ1", "OFFSET1", MessageQueue("T", "b", 0), 5, None, region, trace_on)


def test_pub_records_the_result_and_passes_it_through():
    clock = task.Clock()
    d, p = make(clock)
    tracer = Tracer(d, "PG")
    msg = Message("T", b"hello", properties={"TAGS": "A", "KEYS": "k1 k2", "DELAY": "3"})
    send = defer.Deferred()
    out = tracer.sent(send, msg, "1.2.3.4:10911")
    result = send_result(status=SendStatus.FLUSH_DISK_TIMEOUT)
    send.callback(result)
    assert out.result is result
    clock.advance(0.5)
    (pub,) = records(p)
    b = pub.beans[0]
    assert (pub.trace_type, pub.group_name, pub.region_id, pub.success) == (TraceType.Pub, "PG", "DefaultRegion", False)
    assert (b.msg_id, b.offset_msg_id, b.topic, b.tags, b.keys, b.store_host, b.body_length, b.msg_type) == (
        "UNIQ1", "OFFSET1", "T", "A", "k1 k2", "1.2.3.4:10911", 5, MessageType.Delay_Msg)


@pytest.mark.parametrize("props, kind", [
    ({}, MessageType.Normal_Msg), ({"TRAN_MSG": "true"}, MessageType.Trans_Msg_Half),
    ({"DELAY": "0"}, MessageType.Delay_Msg), ({"__STARTDELIVERTIME": "1"}, MessageType.Delay_Msg),
    ({"TRAN_MSG": "true", "DELAY": "2"}, MessageType.Delay_Msg),  # Java sets Delay_Msg last
    ({"TIMER_DELIVER_MS": "1"}, MessageType.Normal_Msg),  # as Java 5.x's client
])
def test_pub_message_type_is_java_s(props, kind):
    from mq.client.trace import message_type

    assert message_type(props) == int(kind)


@pytest.mark.parametrize("result", [send_result(region=None), send_result(trace_on=False)])
def test_no_pub_without_a_region_or_with_the_broker_trace_switch_off(result):
    clock = task.Clock()
    d, p = make(clock)
    send = defer.Deferred()
    Tracer(d, "PG").sent(send, Message("T", b"x"), "a:1")
    send.callback(result)
    clock.advance(1)
    assert p.sent == []


def test_a_batch_is_one_pub_for_all_its_messages_each_id_a_key():
    clock = task.Clock()
    d, p = make(clock)
    members = [Message("T", b"a", properties={"KEYS": "order1 shared", "TAGS": "X"}), Message("T", b"bb"),
               Message("T", b"c", properties={"KEYS": "order3"})]
    batch = Message("T", b"x" * 150, properties={"WAIT": "true"})
    send = defer.Deferred()
    out = Tracer(d, "PG").sent(send, batch, "1.2.3.4:10911", members)
    result = SendResult(SendStatus.SEND_OK, "U1,U2,U3", "O1,O2,O3", MessageQueue("T", "b", 0), 5, None,
                        "DefaultRegion", True)
    send.callback(result)
    assert out.result is result
    clock.advance(0.5)
    (pub,) = records(p)
    b = pub.beans[0]
    # Java's record of a MessageBatch: no tags or keys, the batch body's length, ids and offset ids joined
    assert (b.msg_id, b.offset_msg_id, b.tags, b.keys, b.body_length, b.msg_type) == (
        "U1,U2,U3", "O1,O2,O3", "null", "null", 150, MessageType.Normal_Msg)
    assert p.sent[0].keys == ["U1", "U2", "U3", "order1", "shared", "order3"]


def test_trace_message_keys_are_bounded(log_events):
    """A record whose keys would pass KEYS_CHARS starts the next trace message; a record about more
    messages than one message's keys can name (a batch's Pub of 2,000 ids, a consumed batch) is split into
    records of consecutive messages, each trace message naming all of its records' ids: none left out."""
    from mq.client.trace import KEYS_CHARS, MAX_KEYS_BYTES

    clock = task.Clock()
    d, p = make(clock)
    long_key = "k" * 999
    n = KEYS_CHARS // 1000 + 5
    for i in range(n):
        d.append(ctx(i, keys=f"{long_key}{i:03d}"))
    clock.advance(0.5)
    assert len(p.sent) == 2 and sum(len(m.keys) for m in p.sent) == 2 * n  # each record's id and key
    assert all(len(" ".join(m.keys)) <= KEYS_CHARS for m in p.sent)
    del p.sent[:]
    ids = [f"{i:032X}" for i in range(2000)]
    offsets = [f"OFF{i:029X}" for i in range(2000)]
    d.append(TraceContext(TraceType.Pub, 1, "R", "PG", 7, beans=[TraceBean(
        msg_id=",".join(ids), offset_msg_id=",".join(offsets), topic="T", body_length=99)]))
    d.append(TraceContext(TraceType.SubBefore, 2, "R", "CG", request_id="Q",
                          beans=[TraceBean(msg_id=i, keys="k") for i in ids[:1500]]))
    clock.advance(0.5)
    assert len(p.sent) >= 3 and all(len(" ".join(m.keys)) <= KEYS_CHARS for m in p.sent)
    pubs = [(m, c) for m in p.sent for c in decode(m.body.decode())[0] if c.trace_type is TraceType.Pub]
    assert len(pubs) >= 3
    found = []
    for m, c in pubs:
        b = c.beans[0]
        members = b.msg_id.split(",")
        assert set(members) <= set(m.keys) and b.offset_msg_id.split(",") == [offsets[ids.index(x)] for x in members]
        assert (c.timestamp, c.cost_time, b.body_length, b.topic) == (1, 7, 99, "T")  # the batch's own
        found += members
    assert found == ids  # every id once, in order
    subs = [(m, c) for m in p.sent for c in decode(m.body.decode())[0] if c.trace_type is TraceType.SubBefore]
    assert [c.beans[0].msg_id for _, c in subs] == ids[:1500]
    assert all(c.beans[0].msg_id in m.keys for m, c in subs)
    assert logged_lines(log_events, "left out") == []
    # non-ASCII keys can still pass the broker's bound in bytes: the keys that fit, with a log line
    del p.sent[:]
    d.append(ctx(0, keys=" ".join(f"{i:03d}" + "é" * 96 for i in range(200))))
    clock.advance(0.5)
    (m,) = p.sent
    assert len(" ".join(m.keys).encode()) <= MAX_KEYS_BYTES and m.keys[0] == "ID0" and len(m.keys) > 100
    assert logged_lines(log_events, "keys of a trace message to RMQ_SYS_TRACE_TOPIC left out")
    assert decode(m.body.decode())[0][0].beans[0].keys.count("é") == 96 * 200  # the record itself is whole


def test_a_batch_send_of_thousands_is_split_into_pubs_each_found_by_its_ids():
    """A batch's Pub as the hook queues it, split the same way: the members' own keys go with their ids."""
    clock = task.Clock()
    d, p = make(clock)
    members = [Message("T", b"a", properties={"KEYS": f"order{i}"}) for i in range(1200)]
    send = defer.Deferred()
    Tracer(d, "PG").sent(send, Message("T", b"x" * 5000), "1.2.3.4:10911", members)
    ids = [f"{i:032X}" for i in range(1200)]
    send.callback(SendResult(SendStatus.SEND_OK, ",".join(ids), ",".join(f"O{i}" for i in range(1200)),
                             MessageQueue("T", "b", 0), 5, None, "DefaultRegion", True))
    clock.advance(0.5)
    assert len(p.sent) >= 2
    seen = []
    for m in p.sent:
        (pub,) = decode(m.body.decode())[0]
        members_here = pub.beans[0].msg_id.split(",")
        n = [ids.index(x) for x in members_here]
        assert m.keys == members_here + [f"order{i}" for i in n]
        assert pub.beans[0].offset_msg_id == ",".join(f"O{i}" for i in n) and pub.beans[0].body_length == 5000
        seen += members_here
    assert seen == ids


def test_a_failed_send_records_nothing_and_keeps_its_failure():
    clock = task.Clock()
    d, p = make(clock)
    send = defer.Deferred()
    out = Tracer(d, "PG").sent(send, Message("T", b"x"), "a:1")
    send.errback(Failure(RuntimeError("no")))
    clock.advance(1)
    assert p.sent == [] and isinstance(out.result, Failure)
    out.addErrback(lambda f: None)


def consumed(msgs, **ext):
    return [MessageExt(topic="T", body=b"b", msg_id=f"OFF{i}", properties={"UNIQ_KEY": f"U{i}", **ext})
            for i in range(len(msgs))]


@pytest.mark.parametrize("outcome, code, ok", [
    (ConsumeConcurrentlyStatus.CONSUME_SUCCESS, ConsumeReturnType.SUCCESS, True),
    (None, ConsumeReturnType.RETURNNULL, True),  # Java's code for a null; the consumer acks it
    (ConsumeConcurrentlyStatus.RECONSUME_LATER, ConsumeReturnType.FAILED, False),
    (Failure(ValueError("listener bug")), ConsumeReturnType.EXCEPTION, False),
])
def test_sub_before_and_after_share_a_request_id_and_record_the_outcome(outcome, code, ok):
    clock = task.Clock()
    d, p = make(clock)
    msgs = consumed([0, 1])
    listener = defer.Deferred()
    out = Tracer(d, "CG").consumed(msgs, lambda: listener)
    if isinstance(outcome, Failure):
        listener.errback(outcome)
    else:
        listener.callback(outcome)
    clock.advance(0.5)
    kinds = [(c.trace_type, c.beans[0].msg_id) for c in records(p)]
    assert kinds == [(TraceType.SubBefore, "U0"), (TraceType.SubBefore, "U1"), (TraceType.SubAfter, "U0"),
                     (TraceType.SubAfter, "U1")]
    before, after = records(p)[0], records(p)[2]
    assert before.request_id == after.request_id and after.group_name == "CG"
    assert (after.context_code, after.success) == (int(code), ok)
    if isinstance(outcome, Failure):
        assert out.result is outcome
        out.addErrback(lambda f: None)
    else:
        assert out.result is outcome


def test_a_lite_pull_poll_is_recorded_as_consumed_at_once(monkeypatch):
    """Java's lite pull consumer runs both consume hooks in poll(): SubBefore and a successful SubAfter."""
    import mq.client.trace

    wall = iter(range(1_000, 1_000_000, 7))  # a wall clock that moves between any two readings
    monkeypatch.setattr(mq.client.trace, "now_ms", lambda: next(wall))
    clock = task.Clock()
    d, p = make(clock)
    Tracer(d, "LG").polled(consumed([0, 1]))
    Tracer(d, "LG").polled(consumed([0], TRACE_ON="false"))
    clock.advance(0.5)
    got = [(c.trace_type, c.beans[0].msg_id, c.group_name) for c in records(p)]
    assert got == [(TraceType.SubBefore, "U0", "LG"), (TraceType.SubBefore, "U1", "LG"),
                   (TraceType.SubAfter, "U0", "LG"), (TraceType.SubAfter, "U1", "LG")]
    after = records(p)[2]
    # SubAfter's cost is the wall time since SubBefore (one reading apart here) shared by the 2 messages, as Java
    assert (after.success, after.context_code, after.cost_time) == (True, int(ConsumeReturnType.SUCCESS), 7 // 2)


def test_messages_marked_trace_off_are_not_recorded():
    clock = task.Clock()
    d, p = make(clock)
    out = Tracer(d, "CG").consumed(consumed([0], TRACE_ON="false"), lambda: defer.succeed(None))
    clock.advance(1)
    assert out.called and p.sent == []


def test_end_transaction_record():
    clock = task.Clock()
    d, p = make(clock)
    msg = Message("T", b"x", properties={"TAGS": "A", "KEYS": "k", "TRAN_MSG": "true"})
    Tracer(d, "PG").ended(msg, "UNIQ1", "1.2.3.4:10911", "ROLLBACK_MESSAGE", "TX9", "DefaultRegion", True)
    clock.advance(0.5)
    (end,) = records(p)
    b = end.beans[0]
    assert (end.trace_type, end.group_name, end.region_id) == (TraceType.EndTransaction, "PG", "DefaultRegion")
    assert (b.msg_id, b.topic, b.tags, b.keys, b.store_host, b.msg_type, b.transaction_id, b.transaction_state,
            b.from_transaction_check) == ("UNIQ1", "T", "A", "k", "1.2.3.4:10911", MessageType.Trans_msg_Commit,
                                          "TX9", "ROLLBACK_MESSAGE", True)


def test_the_trace_producer_writes_its_sends_headers_in_rocketmq_s_binary_layout():
    """Its own client instance sends SEND_MESSAGE_V2 with the ROCKETMQ header (a trace message's 28,000
    characters of KEYS are copied, not JSON-escaped); the host client's sends stay JSON."""
    from mq.client import Producer
    from mq.client.producer import TopicPublishInfo
    from mq.remoting.codes import SerializeType

    clock = task.Clock()
    host = Producer("HostPG", "127.0.0.1:1", instance_name="ser-test", reactor=clock, enable_msg_trace=True)
    host.start()
    trace = host.tracer.dispatcher.producer
    assert trace.instance is not host.instance
    requests = []
    for producer in (host, trace):
        inst = producer.instance
        inst.broker_addrs["b"] = {0: "127.0.0.1:2"}
        inst.remoting.invoke = lambda addr, request, timeout: requests.append(request) or defer.Deferred()
        producer.publish_info["T"] = TopicPublishInfo([MessageQueue("T", "b", 0)])
    host.send(Message("T", b"x"))
    trace.send(Message("T", b"y"))
    assert [r.serialize_type for r in requests] == [SerializeType.JSON, SerializeType.ROCKETMQ]


def test_records_queued_while_every_send_slot_is_taken_set_no_timer_each_and_go_with_the_next_answer():
    clock = task.Clock()
    d, p = make(clock, auto=False, flush_at=4, max_in_flight=1)
    for i in range(4):
        d.append(ctx(i))
    clock.advance(0)
    assert len(p.sent) == 1 and len(d.in_flight) == 1
    calls = []
    real = clock.callLater
    clock.callLater = lambda *a, **kw: calls.append(a[0]) or real(*a, **kw)
    for i in range(4, 12):
        d.append(ctx(i))
        clock.advance(0)  # a reactor turn each
    assert len(calls) <= 1  # the 500 ms mark at most, not a flush set (and cancelled) every turn
    p.waiting.pop().callback("ok")  # the answer: the queued records go at once
    assert len(p.sent) == 2 and len(records(p)) == 12
