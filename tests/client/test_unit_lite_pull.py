"""LitePullConsumer without a network: the auto-commit timer."""

from __future__ import annotations

from twisted.internet import defer, task

from mq.client.lite_pull import LitePullConsumer


def test_auto_commit_goes_on_after_a_failed_commit():
    clock = task.Clock()
    consumer = LitePullConsumer("g", "127.0.0.1:9876", auto_commit_interval=5.0, reactor=clock)
    outcomes = [defer.fail(ConnectionError("broker away")), defer.succeed(None), defer.succeed(None)]
    calls = []

    def commit(*args, **kwargs):
        calls.append(clock.seconds())
        return outcomes.pop(0)

    consumer.commit = commit
    consumer.running = True
    consumer.auto_commit = True  # starts the timer
    for _ in range(3):
        clock.advance(5.0)
    assert calls == [5.0, 10.0, 15.0]
    consumer.running = False
    consumer.auto_commit = False
