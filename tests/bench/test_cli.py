"""mq-bench producer and consumer against real processes: per-interval lines, summary, --json."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import pytest
from twisted.internet import defer, task

from mq.bench import cli
from mq.bench.cli import parse_args
from mq.bench.stats import Reporter, Stats
from tests.support.processes import REPO, child_env


def bench(*args, timeout=120, stderr=False):
    out = subprocess.run([sys.executable, "-m", "mq.bench.cli", *args], capture_output=True, timeout=timeout,
                         env=child_env(), cwd=str(REPO))
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-2000:]
    return (out.stdout.decode(), out.stderr.decode()) if stderr else out.stdout.decode()


def test_percentiles_and_summary():
    stats = Stats()
    for ms in (1.0, 2.0, 3.0, 100.0):
        stats.record(ms)
    stats.fail()
    line = stats.interval()
    assert line["rt_max_ms"] == pytest.approx(100.0, rel=1e-3) and line["rt_p50_ms"] == pytest.approx(2.0, rel=1e-3)
    assert line["failures"] == 1 and line["rt_avg_ms"] == pytest.approx(26.5, rel=1e-3)
    assert stats.interval()["rt_max_ms"] == 0.0  # a new interval starts empty
    summary = stats.summary()
    assert summary["messages"] == 4 and summary["failures"] == 1
    assert summary["rt_p99_ms"] == pytest.approx(100.0, rel=1e-3)


def test_latencies_take_fixed_memory_and_clamp_outliers():
    stats = Stats()
    size = len(stats.all.counts)
    for i in range(50_000):
        stats.record((i % 977) / 10.0)
    stats.record(10 ** 9)  # longer than the histogram's hour: counted as an hour
    assert len(stats.all.counts) == size and stats.all.get_total_count() == 50_001
    assert stats.summary()["rt_max_ms"] == pytest.approx(3_600_000, rel=1e-3)


def test_namesrv_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("NAMESRV_ADDR", "env:9876")
    assert parse_args(["consumer"]).namesrv == "env:9876"
    assert parse_args(["consumer", "-n", "flag:1"]).namesrv == "flag:1"
    monkeypatch.delenv("NAMESRV_ADDR")
    with pytest.raises(SystemExit):
        parse_args(["producer"])


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_view_on_a_terminal_and_lines_elsewhere():
    tty = _Terminal()
    live = Reporter(tty)
    live.interval("TPS 1")
    live.interval("TPS 2")
    live.line("Summary")
    assert tty.getvalue() == "\rTPS 1\x1b[K\rTPS 2\x1b[K\nSummary\n"
    pipe = io.StringIO()
    plain = Reporter(pipe)
    plain.interval("TPS 1")
    plain.line("Summary")
    assert pipe.getvalue() == "TPS 1\nSummary\n"


class _StuckProducer:
    """Answers the warm-up send, then holds every send until the test answers it."""

    def __init__(self, *args, **kwargs) -> None:
        self.pending = []
        self.sent = 0

    def start(self) -> None:
        pass

    def send(self, message) -> defer.Deferred:
        self.sent += 1
        if self.sent == 1:
            return defer.succeed("warm-up")
        d = defer.Deferred()
        self.pending.append(d)
        return d

    def shutdown(self) -> defer.Deferred:
        return defer.succeed(None)


def test_sends_in_flight_at_the_deadline_are_counted_apart(monkeypatch):
    producers = []
    monkeypatch.setattr(cli, "Producer", lambda *a, **k: producers.append(_StuckProducer()) or producers[-1])
    monkeypatch.setattr(cli, "has_route", lambda reactor, args: defer.succeed(True))
    clock = task.Clock()
    args = parse_args(["producer", "-n", "h:1", "-d", "2", "-w", "4", "--json"])
    result = []
    cli.run_producer(clock, args).addCallback(result.append)
    producer = producers[0]
    producer.pending.pop(0).callback("ok")  # one answered in time (its worker sends another)
    clock.advance(2)  # the deadline: four sends unanswered
    for d in producer.pending:
        d.callback("late")  # answered after the deadline: not counted
    [summary] = result
    assert summary["in_flight"] == 4 and summary["messages"] == 1


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
    # a send that failed (timed out under a stall) counts toward -c 300 and may have stored nothing
    stored = 300 - int(re.search(r"Summary: TPS .*\| failures (\d+)", text).group(1))
    result = json.loads(bench("producer", "-n", cluster.namesrv_addr, "-t", topic, "-c", "64", "-b", "8",
                              "--mode", "sync", "-w", "2", "--json"))
    assert result["failures"] == 0 and result["messages"] >= 64 and result["rt_p99_ms"] > 0
    stored += result["messages"]
    consumed = json.loads(bench("consumer", "-n", cluster.namesrv_addr, "-t", topic, "-g", f"G_{unique}",
                                "--from-first", "-c", str(stored), "-d", "60", "--json"))
    assert consumed["messages"] >= stored and consumed["role"] == "consumer"


def test_a_topic_without_route_is_a_warning_not_tps_zero(cluster, unique):
    out, err = bench("consumer", "-n", cluster.namesrv_addr, "-t", f"NoRoute_{unique}", "-d", "1", stderr=True)
    assert f"topic NoRoute_{unique} has no route" in err and "no message received" in err
    out, err = bench("producer", "-n", cluster.namesrv_addr, "-t", f"Auto_{unique}", "-c", "10", "--json",
                     stderr=True)
    assert f"topic Auto_{unique} has no route" in err and "autoCreateTopicEnable" in err
    assert json.loads(out)["messages"] >= 10  # the broker auto-created it
