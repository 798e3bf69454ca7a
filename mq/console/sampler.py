"""``TpsSampler``: the dashboard's figures over time, sampled by the console itself.

Every ``sample_interval`` seconds it asks each master broker for its runtime figures (the 10-second put and
get rates, ``GET_BROKER_RUNTIME_INFO``, which every RocketMQ 4.x broker answers) and the followed topics for
their queue end offsets (``GET_TOPIC_STATS_INFO``); a topic's TPS is the growth of the sum of its end offsets
over the time between two samples. Memory is bounded: at most ``history_points`` samples per series, one
series per broker and per followed topic (at most ``sampled_topics``), series of vanished brokers or topics
dropped. One round runs at a time.
"""

from __future__ import annotations

import collections
from typing import Deque, Dict, Optional, Tuple

import attr
from twisted.internet import defer, task
from twisted.logger import Logger

from mq.admin.api import AdminError, MQAdminAPI
from mq.admin.values import route_masters
from mq.common import mixall
from mq.common.topic import BENCHMARK_TOPIC, DEFAULT_TOPIC, NOT_ALLOWED_SEND_TOPICS, SYSTEM_TOPIC_PREFIX, TRACE_TOPIC
from mq.console.history import DayHistory

log = Logger()

#: Topics every broker has, shown as "system" and not sampled for the dashboard.
SYSTEM_TOPICS = NOT_ALLOWED_SEND_TOPICS | {DEFAULT_TOPIC, BENCHMARK_TOPIC, TRACE_TOPIC}
MAX_BROKER_SERIES = 256
REPLY_SUFFIX = "_" + mixall.REPLY_TOPIC_POSTFIX


def topic_kind(topic: str, cluster_names: frozenset = frozenset()) -> str:
    """``retry``, ``dlq``, ``system`` (a broker's own topics, and its cluster's and broker's names, which
    RocketMQ registers as topics) or ``normal``: the topic list's filter."""
    if mixall.is_retry_topic(topic):
        return "retry"
    if mixall.is_dlq_topic(topic):
        return "dlq"
    if topic in SYSTEM_TOPICS or topic.startswith(SYSTEM_TOPIC_PREFIX) or topic in cluster_names:
        return "system"
    if topic.endswith(REPLY_SUFFIX) and topic[: -len(REPLY_SUFFIX)] in cluster_names:
        return "system"  # <cluster>_REPLY_TOPIC, made by every broker for request-reply
    return "normal"


def first_rate(text: str) -> float:
    """The 10-second rate of a ``"10s 1min 10min"`` rate string; 0 when the broker wrote something else."""
    try:
        return float(str(text).split()[0])
    except (IndexError, ValueError):
        return 0.0


@attr.s(slots=True)
class Series:
    """(time in ms, value...) samples, the oldest dropped past ``points``."""

    points: Deque[Tuple[float, ...]] = attr.ib()

    @classmethod
    def of(cls, size: int) -> "Series":
        return cls(collections.deque(maxlen=size))


class TpsSampler:
    def __init__(self, api: MQAdminAPI, clock, interval: float, points: int, max_topics: int,
                 history: Optional[DayHistory] = None) -> None:
        self.api = api
        #: every round's figures also go to the per-day history (kept in files across restarts)
        self.history = history if history is not None else DayHistory(None, clock, 60, 1, MAX_BROKER_SERIES,
                                                                        max_topics)
        self.clock = clock
        self.interval = interval
        self.points = points
        self.max_topics = max_topics
        #: broker label ("name/addr") → samples of (t, put TPS, get TPS)
        self.brokers: Dict[str, Series] = {}
        #: topic → samples of (t, TPS)
        self.topics: Dict[str, Series] = {}
        self._last_offsets: Dict[str, Tuple[float, int]] = {}
        self._loop: Optional[task.LoopingCall] = None
        self.rounds = 0
        self.last_error: Optional[str] = None

    def start(self) -> None:
        self.history.start()
        self._loop = task.LoopingCall(self.sample)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=True)

    def reset(self) -> None:
        """Forget every sample (the console now shows another cluster)."""
        self.brokers.clear()
        self.topics.clear()
        self._last_offsets.clear()
        self.rounds = 0
        self.last_error = None

    def stop(self) -> defer.Deferred:
        """Stop sampling; the Deferred fires once the day's lines are written."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return self.history.stop()

    def sample(self) -> defer.Deferred:
        """One round; its Deferred never fails. The LoopingCall waits for it before the next round is due,
        so a slow cluster makes rounds fewer, never overlapping."""
        return self._round().addErrback(self._failed)

    def _failed(self, failure) -> None:
        self.last_error = failure.getErrorMessage()
        if not failure.check(AdminError):
            log.failure("console: TPS sampling failed", failure)

    @defer.inlineCallbacks
    def _round(self):
        now = self.clock.seconds() * 1000
        info = yield self.api.cluster_info()
        seen = set()
        broker_now: Dict[str, Tuple[float, float]] = {}
        topic_now: Dict[str, float] = {}
        for name in sorted(info.broker_addr_table)[:MAX_BROKER_SERIES]:
            addr = info.broker_addr_table[name].master_addr()
            if not addr:
                continue
            label = f"{name}/{addr}"
            try:
                status = yield self.api.broker_runtime_info(addr)
            except AdminError:
                continue
            seen.add(label)
            series = self.brokers.setdefault(label, Series.of(self.points))
            rates = broker_now[label] = (first_rate(status.get("putTps", "")),
                                         first_rate(status.get("getTransferedTps", "")))
            series.points.append((now, *rates))
        for label in set(self.brokers) - seen:
            del self.brokers[label]
        names = frozenset(info.cluster_addr_table) | frozenset(info.broker_addr_table)
        topics = yield self.api.all_topics()
        followed = [t for t in topics if topic_kind(t, names) == "normal"][: self.max_topics]
        for topic in followed:
            total = yield self._end_offsets(topic)
            if total is None:
                continue
            last = self._last_offsets.get(topic)
            self._last_offsets[topic] = (now, total)
            if last is None or now <= last[0]:
                continue
            tps = topic_now[topic] = round(max(0, total - last[1]) * 1000.0 / (now - last[0]), 2)
            self.topics.setdefault(topic, Series.of(self.points)).points.append((now, tps))
        for topic in set(self._last_offsets) - set(followed):
            self._last_offsets.pop(topic, None)
            self.topics.pop(topic, None)
        self.history.add(now, broker_now, topic_now)
        self.rounds += 1
        self.last_error = None

    @defer.inlineCallbacks
    def _end_offsets(self, topic: str):
        """The sum of the end offsets of the topic's queues on its masters; None when it cannot be read."""
        try:
            route = yield self.api.topic_route(topic)
            total = 0
            for _, addr in sorted(route_masters(route).items()):
                stats = yield self.api.topic_stats(addr, topic)
                total += sum(int(s.get("maxOffset", 0)) for s in stats.values())
        except AdminError:
            return None
        return total

    @defer.inlineCallbacks
    def day(self, day: str, top: int = 10):
        """One kept day's JSON: its broker lines and its ``top`` busiest topics' (by messages that day)."""
        brokers, topics = yield self.history.read(day)

        def carried(points) -> float:  # about the messages the line stands for: TPS times the time it held
            return sum(p[1] * (points[i + 1][0] - p[0]) for i, p in enumerate(points[:-1]))

        busiest = sorted(topics.items(), key=lambda kv: (-carried(kv[1]), kv[0]))[:top]
        return {"day": day, "days": self.history.kept_days(), "step": self.history.step_ms / 1000.0,
                "brokers": dict(sorted(brokers.items())), "topics": dict(busiest)}

    def snapshot(self, top: int = 10) -> dict:
        """The dashboard's JSON: every broker's series and the ``top`` busiest topics' (by their last TPS)."""
        busiest = sorted(self.topics.items(), key=lambda kv: (-(kv[1].points[-1][1] if kv[1].points else 0), kv[0]))
        return {
            "interval": self.interval,
            "rounds": self.rounds,
            "days": self.history.kept_days(),
            "error": self.last_error,
            "brokers": {k: [list(p) for p in s.points] for k, s in sorted(self.brokers.items())},
            "topics": {k: [list(p) for p in s.points] for k, s in busiest[:top]},
        }

