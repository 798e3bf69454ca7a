"""RebalanceLockManager on a fake clock: exclusive per group, renewed by the holder, expired after its life."""

from __future__ import annotations

from twisted.internet import task

from mq.broker.client.rebalance_lock import RebalanceLockManager

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
