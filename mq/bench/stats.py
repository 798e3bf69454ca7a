"""Latency and throughput bookkeeping for mq-bench: a line per interval and a final summary.

Latencies go into HdrHistograms (the ``hdrhistogram`` package), one for the interval and one for the run, so
memory stays fixed (about 200 KiB each) however long the run, and percentiles keep three significant digits.
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Dict, Optional, TextIO

from hdrh.histogram import HdrHistogram

#: Latencies are kept in microseconds, 1 µs to an hour; a longer one counts as an hour.
LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_DIGITS = 3


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


class Stats:
    """Counts operations (messages), failures and latencies (ms) per interval and for the whole run."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.cpu_started = cpu_seconds()
        self.ok = 0
        self.failures = 0
        self.all = new_histogram()
        self._window = new_histogram()
        self._window_ok = 0
        self._window_failures = 0
        self._window_start = self.started

    def record(self, latency_ms: Optional[float], messages: int = 1) -> None:
        self.ok += messages
        self._window_ok += messages
        if latency_ms is not None:
            us = min(HIGHEST_US, max(LOWEST_US, int(latency_ms * 1000.0)))
            self.all.record_value(us)
            self._window.record_value(us)

    def fail(self, messages: int = 1) -> None:
        self.failures += messages
        self._window_failures += messages

    @staticmethod
    def _figures(latencies: HdrHistogram, count: int, seconds: float, failures: int) -> Dict[str, float]:
        recorded = latencies.get_total_count() > 0

        def ms(us: float) -> float:
            return round(us / 1000.0, 3) if recorded else 0.0

        return {
            "tps": round(count / seconds, 1) if seconds > 0 else 0.0,
            "rt_avg_ms": ms(latencies.get_mean_value()),
            "rt_p50_ms": ms(latencies.get_value_at_percentile(50)),
            "rt_p99_ms": ms(latencies.get_value_at_percentile(99)),
            "rt_max_ms": ms(latencies.get_max_value()),
            "failures": failures,
        }

    def interval(self) -> Dict[str, float]:
        now = time.monotonic()
        line = self._figures(self._window, self._window_ok, now - self._window_start, self._window_failures)
        line["elapsed_s"] = round(now - self.started, 1)
        self._window.reset()
        self._window_ok, self._window_failures, self._window_start = 0, 0, now
        return line

    def summary(self) -> Dict[str, float]:
        seconds = time.monotonic() - self.started
        cpu = cpu_seconds() - self.cpu_started
        out = self._figures(self.all, self.ok, seconds, self.failures)
        out.update({"messages": self.ok, "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
                    "messages_per_cpu_second": round(self.ok / cpu, 1) if cpu > 0 else 0.0})
        return out


def format_line(line: Dict[str, float], label: str = "") -> str:
    return (f"{label}TPS {line['tps']:,.0f} | RT avg {line['rt_avg_ms']:.2f} ms p50 {line['rt_p50_ms']:.2f} "
            f"p99 {line['rt_p99_ms']:.2f} max {line['rt_max_ms']:.2f} | failures {line['failures']}")


class Reporter:
    """Where the interval lines go: on a terminal one line rewritten in place, else one line per interval
    (for a log or a pipe)."""

    def __init__(self, out: Optional[TextIO] = None) -> None:
        self.out = out if out is not None else sys.stdout
        self.live = bool(getattr(self.out, "isatty", lambda: False)())
        self._shown = False

    def interval(self, text: str) -> None:
        if self.live:
            self.out.write(f"\r{text}\x1b[K")  # carriage return, the line, erase what an older line left
            self._shown = True
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def end_live(self) -> None:
        """Move past the live line, so that what comes next (a warning on stderr) does not overwrite it."""
        if self._shown:
            self.out.write("\n")
            self.out.flush()
            self._shown = False

    def line(self, text: str) -> None:
        """A line that stays (the summary)."""
        self.end_live()
        self.out.write(text + "\n")
        self.out.flush()
