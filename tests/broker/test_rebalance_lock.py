"""RebalanceLockManager on a fake clock: exclusive per group, renewed by the holder, expired after its life."""

from __future__ import annotations

from twisted.internet import task

from mq.broker.client.rebalance_lock import MAX_BATCH_QUEUES, RebalanceLockManager
from mq.client.simple import lock_batch_request
from mq.common import fastjson
from mq.common.route import TopicConfig
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.serialization import encode_command
from tests.robustness.harness import LogCapture, Peer
from tests.robustness.test_broker_fuzz import in_memory_broker

Q0, Q1 = ("T", "b", 0), ("T", "b", 1)


def manager():
    clock = task.Clock()
    return clock, RebalanceLockManager(lambda: int(clock.seconds() * 1000), lambda: 60_000)


def test_exclusive_renewed_and_expired():
    clock, m = manager()
    assert m.try_lock_batch("g", [Q0, Q1], "a") == [Q0, Q1]
    assert m.try_lock_batch("g", [Q0, Q1], "b") == []
    assert m.try_lock_batch("other", [Q0], "b") == [Q0]  # groups are independent
    clock.advance(50)
    assert m.try_lock_batch("g", [Q0], "a") == [Q0]  # renewal of Q0 only
    clock.advance(11)  # Q1: 61 s old; Q0: 11 s
    assert m.try_lock_batch("g", [Q0, Q1], "b") == [Q1]
    assert (m.holder("g", Q0), m.holder("g", Q1)) == ("a", "b")
    clock.advance(60.001)
    assert m.holder("g", Q0) == ""
    assert m.try_lock_batch("g", [Q0], "b") == [Q0]


def test_unlock_frees_only_the_holders_queues():
    _, m = manager()
    m.try_lock_batch("g", [Q0], "a")
    m.try_lock_batch("g", [Q1], "b")
    m.unlock_batch("g", [Q0, Q1], "a")
    assert (m.holder("g", Q0), m.holder("g", Q1)) == ("", "b")
    m.unlock_batch("g", [Q1], "b")
    assert m.table == {}


def lock_over_the_wire(broker, client_id, topic, queue_ids, unlock=False, group="g"):
    """LOCK_BATCH_MQ (or UNLOCK_BATCH_MQ) on the broker's listener: the queue ids locked (the remark if refused)."""
    peer = Peer(broker.factory)
    peer.feed(encode_command(lock_batch_request(group, client_id, "b", topic, queue_ids, unlock=unlock)))
    [r] = peer.responses()
    if r.code != RC.SUCCESS or unlock:
        return r.code, r.remark
    return [mq["queueId"] for mq in fastjson.loads(r.body)["lockOKMQSet"]]


def test_the_broker_keeps_a_lock_for_its_configured_life(tmp_path):
    """``rebalanceLockMaxLiveTime`` reaches the broker's lock manager: a lock not renewed is another client's
    after that life, not before (LOCK_BATCH_MQ over the wire, on the broker's fake clock)."""
    broker = in_memory_broker(tmp_path, rebalanceLockMaxLiveTime="1500")
    broker.topic_config_manager.update(TopicConfig("T", 4, 4))

    def lock(client_id):
        return lock_over_the_wire(broker, client_id, "T", [1])

    try:
        assert lock("a") == [1]
        broker.reactor.advance(1.0)
        assert lock("a") == [1]  # renewed: its life starts again
        broker.reactor.advance(1.5)
        assert lock("b") == []  # 1.5 s old: not yet
        broker.reactor.advance(0.002)
        assert lock("b") == [1]
        assert lock("a") == []
    finally:
        broker.stopService()


class LockLog(LogCapture):
    """The rebalance lock module's log events while active."""

    def __init__(self) -> None:
        super().__init__()
        self.events = []

    def __call__(self, event: dict) -> None:
        if event.get("log_namespace") == "mq.broker.client.rebalance_lock":
            self.events.append(event)


def test_queues_of_unknown_topics_or_out_of_range_ids_are_not_locked(tmp_path):
    """Only a known topic's queues in 0..max(read, write)-1 are locked; the rest are skipped (not refused: a
    client whose topic was just deleted still locks its other queues), with one log line for them all."""
    broker = in_memory_broker(tmp_path)
    broker.topic_config_manager.update(TopicConfig("T", 2, 4))  # write queues 4 > read queues 2
    try:
        with LockLog() as logs:
            assert lock_over_the_wire(broker, "a", "T", [-1, 0, 3, 4, 1 << 31]) == [0, 3]
            assert lock_over_the_wire(broker, "a", "NO_SUCH_TOPIC", [0, 1]) == []
        assert set(broker.rebalance_lock_manager.table["g"]) == {("T", "b", 0), ("T", "b", 3)}
        skipped = [e for e in logs.events if "not locked" in e["log_format"]]
        assert [e["n"] for e in skipped] == [3, 2]
    finally:
        broker.stopService()


def test_a_batch_is_bounded(tmp_path):
    """More than MAX_BATCH_QUEUES queues in one LOCK_BATCH_MQ or UNLOCK_BATCH_MQ: SYSTEM_ERROR naming the count
    and the bound, nothing locked; exactly the bound is served."""
    broker = in_memory_broker(tmp_path)
    broker.topic_config_manager.update(TopicConfig("T", 1024, 1024))
    too_many = [q % 1024 for q in range(MAX_BATCH_QUEUES + 1)]
    try:
        for unlock in (False, True):
            code, remark = lock_over_the_wire(broker, "a", "T", too_many, unlock=unlock)
            assert code == RC.SYSTEM_ERROR
            assert f"mqSet has {MAX_BATCH_QUEUES + 1} queues, more than {MAX_BATCH_QUEUES}" in remark
        assert broker.rebalance_lock_manager.table == {}
        assert len(lock_over_the_wire(broker, "a", "T", too_many[:MAX_BATCH_QUEUES])) == MAX_BATCH_QUEUES
        assert lock_over_the_wire(broker, "a", "T", too_many[:MAX_BATCH_QUEUES], unlock=True)[0] == RC.SUCCESS
        assert broker.rebalance_lock_manager.table == {}
    finally:
        broker.stopService()


def test_one_log_line_per_request_not_per_queue():
    """1,000 queues newly locked, some taken over and some busy: one line saying how many of each; a renewal of
    queues already held logs nothing (an orderly consumer renews every 20 s)."""
    clock, m = manager()
    queues = [("T", "b", q) for q in range(1000)]
    with LockLog() as logs:
        m.try_lock_batch("g", queues[:10], "a")
        clock.advance(61)
        m.try_lock_batch("g", queues[5:10], "c")  # holds 5..9 from now on
        assert len(m.try_lock_batch("g", queues, "b")) == 995
        assert len(m.try_lock_batch("g", queues[:5], "b")) == 5  # a renewal
    assert [(e["new"], e["taken"], e["busy"]) for e in logs.events] == [(10, 0, 0), (0, 5, 0), (990, 5, 5)]


def test_expired_locks_are_dropped_when_looked_at_or_swept():
    """A lock past its life is removed when ``holder`` looks at it and by ``prune``; live locks stay."""
    clock, m = manager()
    m.try_lock_batch("g", [Q0], "a")
    m.try_lock_batch("h", [Q0, Q1], "a")
    clock.advance(30)
    m.try_lock_batch("h", [Q1], "a")  # renewed
    clock.advance(30.001)  # g/Q0 and h/Q0: 60.001 s old; h/Q1: 30.001 s
    assert m.holder("g", Q0) == ""
    assert "g" not in m.table
    assert m.prune() == 1
    assert m.table == {"h": {Q1: m.table["h"][Q1]}}
    assert m.prune() == 0


def test_the_broker_sweeps_expired_locks_on_its_clock(tmp_path):
    """A client that locked and went away leaves nothing after the broker's sweep (every 10 s, on its clock);
    a lock still renewed is kept."""
    broker = in_memory_broker(tmp_path, rebalanceLockMaxLiveTime="1500")
    broker.topic_config_manager.update(TopicConfig("T", 4, 4))
    table = broker.rebalance_lock_manager.table
    try:
        assert lock_over_the_wire(broker, "gone", "T", [0]) == [0]
        assert lock_over_the_wire(broker, "alive", "T", [1], group="other") == [1]
        for _ in range(9):  # the sweep runs 10 s after the start
            broker.reactor.advance(1.0)
            assert table["g"], "swept before the sweep"
            assert lock_over_the_wire(broker, "alive", "T", [1], group="other") == [1]
        broker.reactor.advance(1.0)
        assert "g" not in table
        assert list(table["other"]) == [("T", "b", 1)]
    finally:
        broker.stopService()
