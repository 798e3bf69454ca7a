"""What a consumer says of itself in its running info's ``statusTable`` (Java's ConsumerStatsManager).

Per subscribed topic: pull RT (ms, average per pull) and pull TPS (messages pulled per second), consume RT
(ms, average per listener call), consume OK and failed TPS over the last minute, and the messages that failed
in the last hour. Admin tools (``consumerStatus``) and rocketmq-exporter's ``rocketmq_client_*`` metrics read
them. No timer: running totals get a snapshot at most every 10 s when they change or are read, and a rate is
taken against the newest snapshot at least a window old (or the oldest kept), so an idle topic reads 0.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Deque, Dict, Tuple

MINUTE = 60.0
HOUR = 3600.0


class Rolling:
    """A running total and count, with snapshots spaced ``every`` seconds covering ``window`` seconds."""

    __slots__ = ("value", "times", "every", "window", "snaps", "changed_at")

    def __init__(self, every: float = 10.0, window: float = MINUTE) -> None:
        self.value = 0.0
        self.times = 0
        self.every = every
        self.window = window
        self.snaps: Deque[Tuple[float, float, int]] = deque(maxlen=int(window / every) + 3)
        self.changed_at = 0.0

    def _snap(self, now: float) -> None:
        snaps = self.snaps
        if not snaps or now - snaps[-1][0] >= self.every:
            if snaps and snaps[-1][0] < self.changed_at <= now - self.every:
                snaps.append((self.changed_at, self.value, self.times))  # unchanged since: the value then
            snaps.append((now, self.value, self.times))

    def add(self, now: float, value: float, times: int = 1) -> None:
        self._snap(now)
        self.value += value
        self.times += times
        self.changed_at = now

    def since(self, now: float) -> Tuple[float, float, int]:
        """(seconds, value, times) added over about the last window."""
        self._snap(now)
        base = self.snaps[0]
        for snap in self.snaps:
            if snap[0] <= now - self.window:
                base = snap
        return now - base[0], self.value - base[1], self.times - base[2]

    def rate(self, now: float) -> float:
        seconds, value, _ = self.since(now)
        return value / seconds if seconds > 0 else 0.0

    def average(self, now: float) -> float:
        _, value, times = self.since(now)
        return value / times if times > 0 else 0.0


class TopicStats:
    __slots__ = ("pull_rt", "pull_msgs", "consume_rt", "ok", "failed", "failed_hour")

    def __init__(self) -> None:
        self.pull_rt = Rolling()
        self.pull_msgs = Rolling()
        self.consume_rt = Rolling()
        self.ok = Rolling()
        self.failed = Rolling()
        self.failed_hour = Rolling(every=600.0, window=HOUR)


class ConsumerStats:
    """One consumer's figures by topic (bounded by its subscriptions: unknown topics are not kept)."""

    def __init__(self, now: Callable[[], float], topics: Callable[[], object]) -> None:
        self.now = now
        self.topics = topics
        self.table: Dict[str, TopicStats] = {}

    def _of(self, topic: str):
        stats = self.table.get(topic)
        if stats is None:
            if topic not in self.topics():
                return None
            stats = self.table[topic] = TopicStats()
        return stats

    def pulled(self, topic: str, rt_seconds: float, count: int) -> None:
        stats = self._of(topic)
        if stats is not None:
            now = self.now()
            stats.pull_rt.add(now, rt_seconds * 1000)
            stats.pull_msgs.add(now, count)

    def consumed(self, topic: str, rt_seconds: float, ok: int, failed: int) -> None:
        stats = self._of(topic)
        if stats is not None:
            now = self.now()
            stats.consume_rt.add(now, rt_seconds * 1000)
            stats.ok.add(now, ok)
            stats.failed.add(now, failed)
            stats.failed_hour.add(now, failed)

    def status_table(self) -> Dict[str, dict]:
        """The running info's ``statusTable`` (ConsumeStatus per topic)."""
        now = self.now()
        wanted = self.topics()
        table = {}
        for topic in list(self.table):
            if topic not in wanted:
                del self.table[topic]
                continue
            s = self.table[topic]
            table[topic] = {
                "pullRT": s.pull_rt.average(now),
                "pullTPS": s.pull_msgs.rate(now),
                "consumeRT": s.consume_rt.average(now),
                "consumeOKTPS": s.ok.rate(now),
                "consumeFailedTPS": s.failed.rate(now),
                "consumeFailedMsgs": int(s.failed_hour.since(now)[1]),
            }
        return table
