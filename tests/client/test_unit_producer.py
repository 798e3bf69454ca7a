"""Unit tests (no network): allocation strategies, fault-latency avoidance, producer retries."""

from __future__ import annotations

from twisted.internet import defer, task

from mq.client.allocate import (
    ConsistentHashAllocator,
    allocate_averagely,
    allocate_averagely_by_circle,
    md5_hash,
)
from mq.client.latency_fault import FaultStrategy, not_available_duration
from mq.client.model import MessageQueue, MQBrokerError, MQClientError, SendResult, SendStatus
from mq.client.producer import Producer, TopicPublishInfo, make_message
from mq.remoting.codes import ResponseCode
from mq.remoting.protocol import RemotingTimeoutError

QUEUES = [MessageQueue("T", b, q) for b in ("broker-a", "broker-b") for q in range(4)]


def ids(mqs):
    return [QUEUES.index(mq) for mq in mqs]


def test_averagely_gives_contiguous_blocks_larger_first():
    cids = ["c0", "c1", "c2"]
    assert [ids(allocate_averagely(c, QUEUES, cids)) for c in cids] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    five = QUEUES[:5]
    assert [allocate_averagely(c, five, cids) for c in cids] == [five[0:2], five[2:4], five[4:5]]
    # More clients than queues: the last ones get nothing.
    many = [f"c{i}" for i in range(10)]
    assert [len(allocate_averagely(c, QUEUES, many)) for c in many] == [1] * 8 + [0, 0]
    assert allocate_averagely("stranger", QUEUES, cids) == []


def test_by_circle_deals_queues_like_cards():
    cids = ["c0", "c1", "c2"]
    assert [ids(allocate_averagely_by_circle(c, QUEUES, cids)) for c in cids] == [[0, 3, 6], [1, 4, 7], [2, 5]]


def test_consistent_hash_partitions_and_moves_little():
    alloc = ConsistentHashAllocator(virtual_nodes=10)
    queues = [MessageQueue("T", f"b{b}", q) for b in range(4) for q in range(8)]
    cids = [f"10.0.0.{i}@1" for i in range(4)]
    shares = {c: set(alloc(c, queues, cids)) for c in cids}
    assert set().union(*shares.values()) == set(queues)
    assert sum(len(s) for s in shares.values()) == len(queues)
    # A client leaves: only its queues move.
    rest = cids[:3]
    after = {c: set(alloc(c, queues, rest)) for c in rest}
    for c in rest:
        assert shares[c] <= after[c]
    # Java's ring key and hash: the first four MD5 bytes of the text, big-endian.
    assert md5_hash("abc") == 0x90015098
    assert repr(queues[0]) == "MessageQueue [topic=T, brokerName=b0, queueId=0]"


def test_not_available_duration_follows_the_java_table():
    assert [not_available_duration(ms) for ms in (0, 99, 100, 549, 550, 1000, 2000, 3000, 15000, 30000)] == [
        0, 0, 0, 0, 30000, 60000, 120000, 180000, 600000, 600000]


def test_fault_strategy_skips_a_failed_broker_until_its_time_is_up():
    clock = task.Clock()
    fault = FaultStrategy(clock, enabled=True)
    fault.update("broker-a", 10, isolation=True)
    picks = {fault.select(QUEUES, n, None).broker_name for n in range(20)}
    assert picks == {"broker-b"}
    clock.advance(599)
    assert {fault.select(QUEUES, n, None).broker_name for n in range(20)} == {"broker-b"}
    clock.advance(1)
    assert {fault.select(QUEUES, n, None).broker_name for n in range(20)} == {"broker-a", "broker-b"}
    # A slow answer (600 ms) keeps the broker out for 30 s; a fast one does not.
    fault.update("broker-b", 600, isolation=False)
    assert {fault.select(QUEUES, n, None).broker_name for n in range(8)} == {"broker-a"}
    clock.advance(30)
    fault.update("broker-a", 20, isolation=False)
    assert {fault.select(QUEUES, n, None).broker_name for n in range(8)} == {"broker-a", "broker-b"}


def test_fault_strategy_uses_the_least_bad_broker_when_all_are_out():
    clock = task.Clock()
    fault = FaultStrategy(clock, enabled=True)
    fault.update("broker-a", 30000, isolation=True)
    clock.advance(1)
    fault.update("broker-b", 30000, isolation=True)
    assert fault.select(QUEUES, 3, None).broker_name in ("broker-a", "broker-b")


def test_disabled_strategy_round_robins_and_avoids_the_last_broker():
    fault = FaultStrategy(task.Clock(), enabled=False)
    assert [fault.select(QUEUES, n, None) for n in range(8)] == QUEUES
    assert all(fault.select(QUEUES, n, "broker-a").broker_name == "broker-b" for n in range(8))


class FakeAPI:
    def __init__(self, behaviour):
        self.behaviour = behaviour  # broker name -> exception or None
        self.calls = []
        self.headers = []  # (header, sent as a reply)

    def send(self, addr, header, body, mq, uniq, timeout, batch=False, reply=False):
        self.calls.append(mq)
        self.headers.append((header, reply))
        error = self.behaviour.get(mq.broker_name)
        if error is not None:
            return defer.fail(error)
        return defer.succeed(SendResult(SendStatus.SEND_OK, uniq, "X", mq, 1))


class FakeInstance:
    def __init__(self, api):
        self.api = api
        self.unknown = set()  # broker names without a master address until a route update
        self.route_updates = 0

    def master_addr(self, name):
        return None if name in self.unknown else f"{name}:1"

    def update_route(self, topic):
        self.route_updates += 1
        self.unknown.clear()
        return defer.succeed(None)


def producer_with(behaviour, **kwargs):
    clock = task.Clock()
    p = Producer("PG", "127.0.0.1:1", reactor=clock, **kwargs)
    api = FakeAPI(behaviour)
    p.instance, p.running = FakeInstance(api), True
    info = TopicPublishInfo(list(QUEUES))
    info.counter = -1  # the first send goes to queue 0 (broker-a)
    p.publish_info["T"] = info
    return p, api


def result_of(d):
    out = []
    d.addBoth(out.append)
    return out[0]


def test_a_failed_send_is_retried_on_another_broker():
    p, api = producer_with({"broker-a": RemotingTimeoutError("slow")})
    result = result_of(p.send(make_message("T", "x")))
    assert isinstance(result, SendResult)
    assert [mq.broker_name for mq in api.calls] == ["broker-a", "broker-b"]


def test_retries_stop_after_retry_times_and_report_the_last_error():
    error = MQBrokerError("busy", ResponseCode.SYSTEM_ERROR)
    p, api = producer_with({"broker-a": error, "broker-b": error}, retry_times=2)
    failure = result_of(p.send(make_message("T", "x")))
    assert isinstance(failure.value, MQClientError) and "failed 3 times" in str(failure.value)
    assert len(api.calls) == 3


def test_a_refusal_that_retrying_cannot_fix_fails_at_once():
    p, api = producer_with({"broker-a": MQBrokerError("too big", ResponseCode.MESSAGE_ILLEGAL)})
    failure = result_of(p.send(make_message("T", "x")))
    assert failure.value.code == ResponseCode.MESSAGE_ILLEGAL and len(api.calls) == 1


def test_latency_fault_avoidance_keeps_later_sends_off_the_failed_broker():
    p, api = producer_with({"broker-a": RemotingTimeoutError("down")}, send_latency_fault_enable=True)
    for _ in range(6):
        assert isinstance(result_of(p.send(make_message("T", "x"))), SendResult)
    assert [mq.broker_name for mq in api.calls].count("broker-a") == 1


def test_an_explicit_queue_on_a_broker_not_seen_yet_asks_for_the_route_first():
    p, api = producer_with({})
    p.instance.unknown.add("broker-b")
    result = result_of(p.send(make_message("T", "x"), queue=MessageQueue("T", "broker-b", 2)))
    assert isinstance(result, SendResult) and api.calls == [MessageQueue("T", "broker-b", 2)]
    assert p.instance.route_updates == 1
    p.instance.unknown.add("broker-c")
    p.instance.update_route = lambda topic: defer.succeed(None)  # the route does not know it either
    failure = result_of(p.send(make_message("T", "x"), queue=MessageQueue("T", "broker-c", 0)))
    assert isinstance(failure.value, MQClientError) and "no master address for broker broker-c" in str(failure.value)


def test_a_traced_send_records_one_pub_per_attempt_answered_on_every_path():
    """The retry loop records its attempts' Pubs itself (no Deferred callback of their own), an explicit
    queue's send through the tracer's hook: each attempt that got a result once, with its broker, none for
    an attempt without an answer, the send's own result unchanged."""
    from mq.client.instance import ClientConfig
    from mq.client.trace import TraceDispatcher, Tracer
    from mq.common.trace_data import decode

    class Recording:
        def __init__(self, group):
            self.sent = []

        def start(self):
            pass

        def send(self, msg, timeout):
            self.sent.append(msg)
            return defer.succeed(None)

    class RegionAPI(FakeAPI):
        def send(self, addr, header, body, mq, uniq, timeout, batch=False, reply=False):
            d = super().send(addr, header, body, mq, uniq, timeout, batch, reply)
            status = SendStatus.FLUSH_DISK_TIMEOUT if mq.broker_name == "broker-b" and len(self.calls) == 2 else \
                SendStatus.SEND_OK
            return d.addCallback(lambda r: SendResult(status, r.msg_id, f"OFF-{mq.broker_name}", mq, 1,
                                                      region_id="DefaultRegion"))

    p, _ = producer_with({"broker-a": RemotingTimeoutError("slow")}, retry_another_broker_when_not_store_ok=True)
    api = p.instance.api = RegionAPI(p.instance.api.behaviour)
    dispatcher = TraceDispatcher(p.reactor, ClientConfig(), "PG", "PRODUCER", producer_factory=Recording)
    dispatcher.start()
    p.tracer = Tracer(dispatcher, "PG")
    msg = make_message("T", "x", keys="k1", tags="TagA")
    result = result_of(p.send(msg))  # a: no answer; b: FLUSH_DISK_TIMEOUT, retried; a again: timeout...
    assert [mq.broker_name for mq in api.calls] == ["broker-a", "broker-b", "broker-a"]
    assert isinstance(result.value, MQClientError)  # three attempts, the last without an answer
    api.behaviour.clear()
    explicit = result_of(p.send(make_message("T", "y"), queue=QUEUES[5]))
    assert explicit.status is SendStatus.SEND_OK
    p.reactor.advance(0.5)
    records = [c for m in dispatcher.producer.sent for c in decode(m.body.decode())[0]]
    assert [(c.beans[0].store_host, c.beans[0].offset_msg_id, c.success, c.beans[0].tags, c.beans[0].keys)
            for c in records] == [("broker-b:1", "OFF-broker-b", False, "TagA", "k1"),
                                  ("broker-b:1", "OFF-broker-b", True, "null", "null")]
    assert records[0].beans[0].msg_id == msg.unique_key and dispatcher.producer.sent[0].keys == [
        msg.unique_key, "k1", records[1].beans[0].msg_id]
