"""mq-bench producer and consumer against real processes: per-interval lines, summary, --json."""

from __future__ import annotations

import json
import subprocess
import sys

from mq.bench.cli import parse_args
from mq.bench.stats import Stats, percentile
from tests.support.processes import REPO, child_env


def bench(*args, timeout=120):
    out = subprocess.run([sys.executable, "-m", "mq.bench.cli", *args], capture_output=True, timeout=timeout,
                         env=child_env(), cwd=str(REPO))
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-2000:]
    return out.stdout.decode()


def test_percentiles_and_summary():
    assert percentile(list(range(1, 101)), 0.99) == 99 and percentile([5.0], 0.5) == 5.0
    stats = Stats()
    for ms in (1.0, 2.0, 3.0, 100.0):
        stats.record(ms)
    stats.fail()
    line = stats.interval()
    assert line["rt_max_ms"] == 100.0 and line["failures"] == 1 and line["rt_p50_ms"] == 2.0
    summary = stats.summary()
    assert summary["messages"] == 4 and summary["failures"] == 1


def test_defaults_and_options():
    args = parse_args(["producer", "-n", "h:1", "-b", "8", "--keys", "--tags", "T", "--delay-level", "2"])
    assert (args.duration, args.count, args.concurrency, args.size, args.mode) == (10.0, 0, 64, 128, "async")
    assert args.batch == 8 and args.keys and args.tags == "T" and args.delay_level == 2


def test_producer_then_consumer(cluster, unique):
    topic = f"T_{unique}"
    cluster.create_topic(topic)
    text = bench("producer", "-n", cluster.namesrv_addr, "-t", topic, "-c", "300", "-w", "16", "--keys",
                 "--tags", "B")
    assert "Summary: TPS" in text and "msg per CPU second" in text
    result = json.loads(bench("producer", "-n", cluster.namesrv_addr, "-t", topic, "-c", "64", "-b", "8",
                              "--mode", "sync", "-w", "2", "--json"))
    assert result["failures"] == 0 and result["messages"] >= 64 and result["rt_p99_ms"] > 0
    consumed = json.loads(bench("consumer", "-n", cluster.namesrv_addr, "-t", topic, "-g", f"G_{unique}",
                                "--from-first", "-c", "360", "-d", "60", "--json"))
    assert consumed["messages"] >= 360 and consumed["role"] == "consumer"
