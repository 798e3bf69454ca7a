"""Metrics scrape benchmark: how long a scrape keeps the reactor from its other work.

Run: ``python -m benchmarks.metrics_scrape_bench [--series 20000] [--rounds 5]``.

A registry with ``--series`` gauge series (exporter-shaped labels) is rendered while a 1 ms LoopingCall ticks;
the longest gap between two ticks is how long the reactor could not serve a request. Baseline, in the same run:
the whole text written on the reactor thread (``generate_latest``, as mq did before). Measured: mq.metrics's
``CachedRenderer``, which collects on the reactor thread and writes the text in the thread pool. Rounds
alternate; medians are printed, with the collection and the whole rendering timed alone.
"""

from __future__ import annotations

import argparse
import statistics
import time

from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from twisted.internet import defer, reactor, task

from mq.metrics import CachedRenderer, CallbackCollector, new_registry


def registry_of(series: int):
    registry = new_registry()
    families = 10

    def collect():
        for f in range(families):
            g = GaugeMetricFamily(f"rocketmq_bench_{f}", "x", labels=["cluster", "broker", "topic", "group"])
            for i in range(series // families):
                g.add_metric(["DefaultCluster", "broker-a", f"Topic{i}", f"Group{i}"], i)
            yield g

    registry.register(CallbackCollector(collect))
    return registry


@defer.inlineCallbacks
def longest_gap(render):
    """The longest gap (s) between 1 ms reactor ticks while ``render()`` (a Deferred) runs."""
    gaps = []
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    loop = task.LoopingCall(tick)
    loop.start(0.001)
    yield task.deferLater(reactor, 0.02, lambda: None)
    gaps.clear()
    yield render()
    yield task.deferLater(reactor, 0.02, lambda: None)
    loop.stop()
    return max(gaps)


@defer.inlineCallbacks
def main(args):
    registry = registry_of(args.series)
    t = time.perf_counter()
    list(registry.collect())
    collect_s = time.perf_counter() - t
    t = time.perf_counter()
    size = len(generate_latest(registry))
    whole_s = time.perf_counter() - t
    on, off = [], []
    renderer = CachedRenderer(registry, reactor, cache_seconds=0)  # nothing kept: every round renders
    for _ in range(args.rounds):
        on.append((yield longest_gap(lambda: defer.maybeDeferred(generate_latest, registry))))
        off.append((yield longest_gap(lambda: renderer.render(generate_latest))))
    print(f"{args.series} series, {size / 1e6:.1f} MB of text: collection {collect_s * 1000:.0f} ms, "
          f"collection and text {whole_s * 1000:.0f} ms")
    print(f"longest reactor stall, median of {args.rounds}: text on the reactor thread (baseline) "
          f"{statistics.median(on) * 1000:.0f} ms; text in a thread (CachedRenderer) "
          f"{statistics.median(off) * 1000:.0f} ms")


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    def go():
        main(args).addErrback(lambda f: f.printTraceback()).addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(go)
    reactor.run()


if __name__ == "__main__":
    run()
