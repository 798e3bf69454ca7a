"""RebalanceLockManager on a fake clock: exclusive per group, renewed by the holder, expired after its life."""

from __future__ import annotations

from twisted.internet import task

from mq.broker.client.rebalance_lock import RebalanceLockManager
from mq.client.simple import lock_batch_request
from mq.common import fastjson
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.serialization import encode_command
from tests.robustness.harness import Peer
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


def test_the_broker_keeps_a_lock_for_its_configured_life(tmp_path):
    """``rebalanceLockMaxLiveTime`` reaches the broker's lock manager: a lock not renewed is another client's
    after that life, not before (LOCK_BATCH_MQ over the wire, on the broker's fake clock)."""
    broker = in_memory_broker(tmp_path, rebalanceLockMaxLiveTime="1500")

    def lock(client_id):
        peer = Peer(broker.factory)
        peer.feed(encode_command(lock_batch_request("g", client_id, "b", "T", [1])))
        [r] = peer.responses()
        assert r.code == RC.SUCCESS, r.remark
        return [mq["queueId"] for mq in fastjson.loads(r.body)["lockOKMQSet"]]

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
