"""The running info's statusTable figures a consumer keeps (mq.client.consumer_stats)."""

from __future__ import annotations

import pytest

from mq.client.consumer_stats import ConsumerStats


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


def test_rates_averages_and_the_hour_of_failures():
    clock = Clock()
    topics = {"T": object()}
    stats = ConsumerStats(clock, lambda: topics)
    for _ in range(30):  # a minute: one pull of 4 messages every 2 s, 20 ms each, and one consume of them
        stats.pulled("T", 0.020, 4)
        stats.consumed("T", 0.005, 3, 1)
        clock.now += 2
    row = stats.status_table()["T"]
    assert row["pullRT"] == pytest.approx(20.0) and row["consumeRT"] == pytest.approx(5.0)
    assert row["pullTPS"] == pytest.approx(2.0, rel=0.2) and row["consumeOKTPS"] == pytest.approx(1.5, rel=0.2)
    assert row["consumeFailedTPS"] == pytest.approx(0.5, rel=0.2) and row["consumeFailedMsgs"] == 30
    clock.now += 120  # idle: rates fall to 0, the hour still counts the failures
    row = stats.status_table()["T"]
    assert row["pullTPS"] == 0 and row["consumeOKTPS"] == 0 and row["consumeFailedMsgs"] == 30
    clock.now += 3600
    assert stats.status_table()["T"]["consumeFailedMsgs"] == 0


def test_only_subscribed_topics_are_kept():
    topics = {"T": object()}
    stats = ConsumerStats(Clock(), lambda: topics)
    stats.pulled("Other", 0.01, 1)
    stats.pulled("T", 0.01, 1)
    assert list(stats.status_table()) == ["T"]
    del topics["T"]
    assert stats.status_table() == {} and stats.table == {}
