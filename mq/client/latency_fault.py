"""Fault-latency avoidance for producers (Java ``MQFaultStrategy`` / ``LatencyFaultToleranceImpl``).

After every send the producer reports how long the broker took, or that it failed. A broker whose send took
at least 550 ms is not chosen for 30 s, one that took 1 s for 60 s, ... up to 10 minutes for 15 s or a
failure (a failure counts as 30 s). While a broker is out, queue selection skips it; if every broker is
out, the least bad one is used anyway, because sending somewhere beats not sending.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import attr

from mq.client.model import MessageQueue

#: Latency thresholds (ms) and how long (ms) a broker at or above each is avoided (Java's tables).
LATENCY_MAX = (50, 100, 550, 1000, 2000, 3000, 15000)
NOT_AVAILABLE_DURATION = (0, 0, 30000, 60000, 120000, 180000, 600000)
#: The latency a failed send counts as (so a failure isolates a broker for 10 minutes).
ISOLATION_LATENCY_MS = 30000


def not_available_duration(latency_ms: float) -> int:
    """How long (ms) a broker is avoided after a send that took ``latency_ms``."""
    for limit, duration in zip(reversed(LATENCY_MAX), reversed(NOT_AVAILABLE_DURATION)):
        if latency_ms >= limit:
            return duration
    return 0


@attr.s(slots=True)
class FaultItem:
    name: str = attr.ib()
    latency_ms: float = attr.ib()
    start: float = attr.ib()  # clock seconds from which the broker is usable again

    def available(self, now: float) -> bool:
        return now >= self.start


class LatencyFaultTolerance:
    """Per-broker fault items on an injectable clock (anything with ``seconds()``, e.g. the reactor)."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.items: Dict[str, FaultItem] = {}
        self._worst = 0

    def update(self, name: str, latency_ms: float, not_available_ms: int) -> None:
        start = self.clock.seconds() + not_available_ms / 1000.0
        item = self.items.get(name)
        if item is None:
            self.items[name] = FaultItem(name, latency_ms, start)
        else:
            item.latency_ms, item.start = latency_ms, start

    def is_available(self, name: str) -> bool:
        item = self.items.get(name)
        return item is None or item.available(self.clock.seconds())

    def remove(self, name: str) -> None:
        self.items.pop(name, None)

    def pick_one_at_least(self) -> Optional[str]:
        """The least bad broker: available ones first, then by latency, then by when they come back."""
        if not self.items:
            return None
        now = self.clock.seconds()
        ranked = sorted(self.items.values(), key=lambda i: (not i.available(now), i.latency_ms, i.start))
        half = max(1, len(ranked) // 2)
        self._worst += 1
        return ranked[self._worst % half].name


class FaultStrategy:
    """Chooses the queue of each send (round robin, skipping avoided brokers when ``enabled``)."""

    def __init__(self, clock, enabled: bool = False) -> None:
        self.enabled = enabled
        self.tolerance = LatencyFaultTolerance(clock)

    def select(self, queues: Sequence[MessageQueue], counter: int, last_broker: Optional[str]) -> MessageQueue:
        """The queue for send attempt ``counter`` (a per-topic running count); ``queues`` is not empty."""
        n = len(queues)
        if self.enabled:
            for i in range(n):
                mq = queues[(counter + i) % n]
                if self.tolerance.is_available(mq.broker_name):
                    return mq
            best = self.tolerance.pick_one_at_least()
            own = [q for q in queues if q.broker_name == best]
            if own:
                return own[counter % len(own)]
            if best is not None:
                self.tolerance.remove(best)
            return queues[counter % n]
        if last_broker is not None:
            for i in range(n):
                mq = queues[(counter + i) % n]
                if mq.broker_name != last_broker:
                    return mq
        return queues[counter % n]

    def update(self, broker_name: str, latency_ms: float, isolation: bool) -> None:
        """Report a send: its latency, or ``isolation`` for a failure."""
        if self.enabled:
            duration = not_available_duration(ISOLATION_LATENCY_MS if isolation else latency_ms)
            self.tolerance.update(broker_name, latency_ms, duration)
