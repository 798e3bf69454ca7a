"""Latency and throughput bookkeeping for mq-bench: a line per interval and a final summary."""

from __future__ import annotations

import math
import resource
import time
from array import array
from typing import Dict, List, Optional


def percentile(sorted_values, fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))  # nearest rank
    return sorted_values[index]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Stats:
    """Counts operations (messages), failures and latencies (ms) per interval and for the whole run."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.cpu_started = cpu_seconds()
        self.ok = 0
        self.failures = 0
        self.all: array = array("d")
        self._window: List[float] = []
        self._window_ok = 0
        self._window_failures = 0
        self._window_start = self.started
        self.lines: List[Dict[str, float]] = []

    def record(self, latency_ms: Optional[float], messages: int = 1) -> None:
        self.ok += messages
        self._window_ok += messages
        if latency_ms is not None:
            self.all.append(latency_ms)
            self._window.append(latency_ms)

    def fail(self, messages: int = 1) -> None:
        self.failures += messages
        self._window_failures += messages

    @staticmethod
    def _figures(latencies, count: int, seconds: float, failures: int) -> Dict[str, float]:
        lat = sorted(latencies)
        return {
            "tps": round(count / seconds, 1) if seconds > 0 else 0.0,
            "rt_avg_ms": round(sum(lat) / len(lat), 3) if lat else 0.0,
            "rt_p50_ms": round(percentile(lat, 0.50), 3),
            "rt_p99_ms": round(percentile(lat, 0.99), 3),
            "rt_max_ms": round(lat[-1], 3) if lat else 0.0,
            "failures": failures,
        }

    def interval(self) -> Dict[str, float]:
        now = time.monotonic()
        line = self._figures(self._window, self._window_ok, now - self._window_start, self._window_failures)
        line["elapsed_s"] = round(now - self.started, 1)
        self.lines.append(line)
        self._window, self._window_ok, self._window_failures, self._window_start = [], 0, 0, now
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
