"""The broker's Prometheus metrics.

Hot-path figures (messages and bytes per topic, latencies) are kept in plain dicts and lists and turned
into metric families only when scraped: a ``Counter.labels(topic).inc()`` per send would cost more than
the rest of the accounting. Gauges that mirror state (consumer lag, store disk use, flush lag, held pulls)
are computed at scrape time from the live tables.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from typing import Callable, Dict, Iterator, List, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from mq.broker.stats.items import (
    GROUP_GET_NUMS,
    GROUP_GET_SIZE,
    SCHEDULE_CONSUMER,
    TOPIC_PUT_NUMS,
    TOPIC_PUT_SIZE,
    BrokerStatsManager,
)
from mq.broker.stats.put_latency import PutTimeDistribution
from mq.common.topic import SCHEDULE_TOPIC
from mq.metrics import CallbackCollector, new_registry

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class FastHistogram:
    """A histogram as bucket counters (seconds); exported as a Prometheus histogram family."""

    __slots__ = ("bounds", "counts", "total", "count", "max")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0
        self.count = 0
        self.max = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds
        self.count += 1
        if seconds > self.max:
            self.max = seconds

    def family(self, name: str, doc: str) -> HistogramMetricFamily:
        buckets = []
        running = 0
        for bound, n in zip(self.bounds, self.counts):
            running += n
            buckets.append((repr(bound), running))
        buckets.append(("+Inf", self.count))
        return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=self.total)


class PutLatency(FastHistogram):
    """The send latency histogram, also counted in Java's per-minute put time bands (ms)."""

    __slots__ = ("minute",)

    def __init__(self) -> None:
        super().__init__()
        self.minute = PutTimeDistribution()

    def observe(self, seconds: float) -> None:
        FastHistogram.observe(self, seconds)
        self.minute.observe_ms(int(seconds * 1000))


class BrokerStats:
    """The broker's counters: RocketMQ's stats items (``items``) and latency histograms, read at scrape time.

    ``mq_broker_messages_in``/``bytes_in``/``messages_out``/``bytes_out`` by topic are the stats items'
    totals, so they share the items' key cap and go away with their topic.
    """

    def __init__(self, cluster_name: str = "DefaultCluster", now: Callable[[], float] = time.time,
                 max_keys: Callable[[], int] = lambda: 2000) -> None:
        self.registry = new_registry()
        self.items = BrokerStatsManager(cluster_name, now, max_keys)
        #: running totals of messages stored and returned by pulls (msgPutTotalTodayNow, msgGetTotalTodayNow)
        self.put_total = 0
        self.get_total = 0
        self.send_failures: Dict[int, int] = {}
        self.put_latency = PutLatency()
        self.pull_latency = FastHistogram()
        #: Set by the broker: functions the scrape calls for live gauges.
        self.gauges: List[Callable[[], Iterator]] = []
        self.registry.register(CallbackCollector(self._collect, lambda: []))

    def message_in(self, topic: str, count: int, size: int, queue_id: int = -1) -> None:
        """Messages stored in ``topic`` (the topic stored in: a delayed message's is the delay-level topic, as
        Java counts it) and the CommitLog bytes written for them."""
        self.put_total += count
        self.items.put(topic, count, size)
        if topic == SCHEDULE_TOPIC:
            self.items.queue_put(topic, queue_id, count, size)

    def delayed_delivered(self, level: int, topic: str, count: int, size: int) -> None:
        """A delay-level message stored in its real ``topic`` when due: got from the delay-level queue by
        SCHEDULE_CONSUMER and put into ``topic`` (Java's enableScheduleMessageStats accounting)."""
        self.items.queue_get(SCHEDULE_CONSUMER, SCHEDULE_TOPIC, level - 1, count, size)
        self.message_in(topic, count, size)

    def message_out(self, topic: str, count: int, size: int, group: str = "", queue_id: int = 0,
                    latency_ms: int = 0) -> None:
        self.get_total += count
        self.items.get(group, topic, queue_id, count, size, latency_ms)

    def send_back(self, group: str, topic: str) -> None:
        self.items.send_back(group, topic)

    def send_failed(self, code: int) -> None:
        self.send_failures[code] = self.send_failures.get(code, 0) + 1

    def _by_topic(self, name: str, group_keys: bool) -> Dict[str, int]:
        totals: Dict[str, int] = {}
        for item in self.items.each(name):
            topic = item.key.partition("@")[0] if group_keys else item.key
            totals[topic] = totals.get(topic, 0) + item.value
        return totals

    def _collect(self):
        for name, doc, stats_name, group_keys in (
            ("mq_broker_messages_in", "Messages stored, by topic", TOPIC_PUT_NUMS, False),
            ("mq_broker_bytes_in", "Stored-record bytes written, by topic (TOPIC_PUT_SIZE)", TOPIC_PUT_SIZE, False),
            ("mq_broker_messages_out", "Messages returned by pulls, by topic", GROUP_GET_NUMS, True),
            ("mq_broker_bytes_out", "Stored-record bytes returned by pulls, by topic", GROUP_GET_SIZE, True),
        ):
            family = CounterMetricFamily(name, doc, labels=["topic"])
            for topic, value in self._by_topic(stats_name, group_keys).items():
                family.add_metric([topic], value)
            yield family
        failures = CounterMetricFamily("mq_broker_send_failures", "Refused or failed sends, by response code",
                                       labels=["code"])
        for code, value in list(self.send_failures.items()):
            failures.add_metric([str(code)], value)
        yield failures
        dropped = CounterMetricFamily("mq_broker_stats_keys_dropped",
                                      "Additions to a new stats key not counted: maxStatsKeys reached, by stats name",
                                      labels=["stats"])
        for stats_name, items in self.items.sets.items():
            dropped.add_metric([stats_name], items.dropped)
        yield dropped
        yield self.put_latency.family("mq_broker_put_latency_seconds",
                                      "Time from a send request to its store result")
        yield self.pull_latency.family("mq_broker_pull_latency_seconds",
                                       "Time to answer a pull that was not held")
        for gauge in self.gauges:
            yield from gauge()


def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)
