"""``RuntimeStats``: the rates and daily totals a RocketMQ broker reports in GET_BROKER_RUNTIME_INFO.

Admin tools read them: ``clusterList`` prints ``putTps`` and ``getTransferedTps`` ("TPS over the last 10 s,
1 min and 10 min", space-separated, as Java's StoreStatsService writes them) and, with ``-m``, yesterday's and
today's totals from the counters' values at the last two midnights (Java's BrokerStats). Java's own
``clusterList`` fails on a broker that leaves them out. One sample of the running totals is taken per second.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable, Deque, Dict, Tuple

WINDOWS = (10, 60, 600)  # seconds, as Java's StoreStatsService
MAX_SAMPLES = WINDOWS[-1] + 1

Totals = Tuple[int, ...]


def local_day(seconds: float) -> Tuple[int, int, int]:
    return time.localtime(seconds)[:3]


class RuntimeStats:
    """Samples ``read()`` (running totals, in the order of ``names``) once a second."""

    def __init__(
        self,
        names: Tuple[str, ...],
        read: Callable[[], Totals],
        now: Callable[[], float],
        day_of: Callable[[float], object] = local_day,
    ) -> None:
        self.names = names
        self.read = read
        self.now = now
        self.day_of = day_of
        self.samples: Deque[Tuple[float, Totals]] = deque(maxlen=MAX_SAMPLES)
        first = read()
        self.today_morning: Totals = first
        self.yesterday_morning: Totals = first
        self._day = day_of(now())

    def sample(self) -> None:
        now = self.now()
        totals = self.read()
        day = self.day_of(now)
        if day != self._day:  # past midnight: today's morning becomes yesterday's
            self._day = day
            self.yesterday_morning = self.today_morning
            self.today_morning = totals
        self.samples.append((now, totals))

    def tps(self, index: int, window: int) -> float:
        """Rate of total ``index`` over the last ``window`` seconds (over what was sampled, if less)."""
        samples = self.samples
        if len(samples) < 2:
            return 0.0
        last_at, last = samples[-1]
        first_at, first = samples[max(0, len(samples) - 1 - window)]
        elapsed = last_at - first_at
        return (last[index] - first[index]) / elapsed if elapsed > 0 else 0.0

    def tps_text(self, name: str) -> str:
        index = self.names.index(name)
        return " ".join(f"{self.tps(index, w):.2f}" for w in WINDOWS)

    def daily(self, name: str) -> Dict[str, int]:
        """(yesterday's morning, today's morning) values of total ``name``."""
        index = self.names.index(name)
        return {"YesterdayMorning": self.yesterday_morning[index], "TodayMorning": self.today_morning[index]}
