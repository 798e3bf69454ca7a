"""The broker's Prometheus metrics.

Hot-path figures (messages and bytes per topic, latencies) are kept in plain dicts and lists and turned
into metric families only when scraped: a ``Counter.labels(topic).inc()`` per send would cost more than
the rest of the accounting. Gauges that mirror state (consumer lag, store disk use, flush lag, held pulls)
are computed at scrape time from the live tables.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Callable, Dict, Iterator, List, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

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


class BrokerStats:
    def __init__(self) -> None:
        self.registry = new_registry()
        self.msgs_in: Dict[str, int] = {}
        self.bytes_in: Dict[str, int] = {}
        self.msgs_out: Dict[str, int] = {}
        self.bytes_out: Dict[str, int] = {}
        self.send_failures: Dict[int, int] = {}
        self.put_latency = FastHistogram()
        self.pull_latency = FastHistogram()
        #: Set by the broker: functions the scrape calls for live gauges.
        self.gauges: List[Callable[[], Iterator]] = []
        self.registry.register(CallbackCollector(self._collect, lambda: []))

    def message_in(self, topic: str, count: int, size: int) -> None:
        self.msgs_in[topic] = self.msgs_in.get(topic, 0) + count
        self.bytes_in[topic] = self.bytes_in.get(topic, 0) + size

    def message_out(self, topic: str, count: int, size: int) -> None:
        self.msgs_out[topic] = self.msgs_out.get(topic, 0) + count
        self.bytes_out[topic] = self.bytes_out.get(topic, 0) + size

    def send_failed(self, code: int) -> None:
        self.send_failures[code] = self.send_failures.get(code, 0) + 1

    def _collect(self):
        for name, doc, table in (
            ("mq_broker_messages_in", "Messages stored, by topic", self.msgs_in),
            ("mq_broker_bytes_in", "Message body bytes stored, by topic", self.bytes_in),
            ("mq_broker_messages_out", "Messages returned by pulls, by topic", self.msgs_out),
            ("mq_broker_bytes_out", "Stored-record bytes returned by pulls, by topic", self.bytes_out),
        ):
            family = CounterMetricFamily(name, doc, labels=["topic"])
            for topic, value in list(table.items()):
                family.add_metric([topic], value)
            yield family
        failures = CounterMetricFamily("mq_broker_send_failures", "Refused or failed sends, by response code",
                                       labels=["code"])
        for code, value in list(self.send_failures.items()):
            failures.add_metric([str(code)], value)
        yield failures
        yield self.put_latency.family("mq_broker_put_latency_seconds",
                                      "Time from a send request to its store result")
        yield self.pull_latency.family("mq_broker_pull_latency_seconds",
                                       "Time to answer a pull that was not held")
        for gauge in self.gauges:
            yield from gauge()


def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)
