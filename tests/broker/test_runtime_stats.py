"""Rates and daily totals in GET_BROKER_RUNTIME_INFO, as admin tools (clusterList) read them."""

from __future__ import annotations

import pytest_twisted

from mq.broker.stats.runtime import RuntimeStats
from mq.common import fastjson
from mq.remoting.codes import RequestCode


class Counters:
    def __init__(self) -> None:
        self.now = 1000.0
        self.day = 1
        self.put = 0
        self.get = 0

    def stats(self) -> RuntimeStats:
        return RuntimeStats(("put", "get"), lambda: (self.put, self.get), lambda: self.now, lambda t: self.day)

    def tick(self, stats: RuntimeStats, puts: int, gets: int = 0) -> None:
        self.now += 1
        self.put += puts
        self.get += gets
        stats.sample()


def test_rates_over_ten_seconds_a_minute_and_ten_minutes():
    c = Counters()
    stats = c.stats()
    assert stats.tps_text("put") == "0.00 0.00 0.00"  # nothing sampled yet: numbers all the same
    stats.sample()
    for second in range(700):
        c.tick(stats, 100 if second >= 650 else 10, 3)  # 10/s, then 100/s for the last 50 s
    # a minute: (10×10 + 50×100) / 60; ten minutes: (550×10 + 50×100) / 600
    assert stats.tps_text("put") == "100.00 85.00 17.50"
    assert stats.tps_text("get") == "3.00 3.00 3.00"


def test_rates_over_less_than_a_window_use_what_was_sampled():
    c = Counters()
    stats = c.stats()
    stats.sample()
    for _ in range(4):
        c.tick(stats, 5)
    assert stats.tps_text("put") == "5.00 5.00 5.00"


def test_totals_at_the_last_two_midnights():
    c = Counters()
    c.put = 7  # counted before the stats began: the first morning
    stats = c.stats()
    c.tick(stats, 10)
    assert stats.daily("put") == {"YesterdayMorning": 7, "TodayMorning": 7}
    c.day = 2
    c.tick(stats, 20)
    assert stats.daily("put") == {"YesterdayMorning": 7, "TodayMorning": 37}
    c.tick(stats, 5)
    c.day = 3
    c.tick(stats, 1)
    assert stats.daily("put") == {"YesterdayMorning": 37, "TodayMorning": 43}


@pytest_twisted.inlineCallbacks
def test_runtime_info_carries_what_cluster_list_reads(client, addr, broker):
    now = [5000.0]
    broker.runtime_stats.now = lambda: now[0]
    broker.runtime_stats.sample()
    for _ in range(6):
        yield client.send(addr, "RtStats", b"x", queue_id=0)
    now[0] += 2
    broker.runtime_stats.sample()
    r = yield client.invoke(addr, RequestCode.GET_BROKER_RUNTIME_INFO)
    table = fastjson.loads(r.body)["table"]
    assert table["putTps"].split() == ["3.00", "3.00", "3.00"]
    assert [float(x) for x in table["getTransferedTps"].split()] == [0.0, 0.0, 0.0]
    assert table["msgPutTotalTodayNow"] == "6" and table["msgPutTotalTodayMorning"] == "0"
    assert table["msgPutTotalYesterdayMorning"] == "0" and table["msgGetTotalTodayMorning"] == "0"
    assert int(table["bootTimestamp"]) > 0 and table["pageCacheLockTimeMills"] == "0"
    assert int(table["earliestMessageTimeStamp"]) > 0 and float(table["commitLogDiskRatio"]) >= 0
    assert table["sendThreadPoolQueueSize"] == table["pullThreadPoolQueueHeadWaitTimeMills"] == "0"
