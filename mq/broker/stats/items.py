"""RocketMQ's broker stats items (BrokerStatsManager): counters by name and key, with minute/hour/day windows.

Admin tools read them through VIEW_BROKER_STATS_DATA (315): ``mqadmin statsAll`` prints each topic's in/out
TPS and 24-hour counts from TOPIC_PUT_NUMS and GROUP_GET_NUMS, rocketmq-exporter turns BROKER_PUT_NUMS into
``rocketmq_broker_tps`` and rocketmq-dashboard draws its charts from them. Each item is two running totals,
``value`` (messages, bytes or milliseconds) and ``times`` (how many additions), as Java's StatsItem. One timer
snapshots every item every 10 s (7 snapshots: the last minute), every 10 min (7: the last hour) and every
hour (25: the last day); a window's figure is last minus first snapshot, its TPS that over the time between
them, and its average per addition (avgpt) that over the additions between them, as StatsItem computes them.

The hot path finds the items a send or a pull adds to with one dict lookup and adds to their integers.

Bounds: each stats name holds at most ``max_keys`` keys (brokerConfig ``maxStatsKeys``); an addition for a new
key past that is not counted (``dropped`` counts them, logged once per name) until keys go away: with their
topic or group (as Java's onTopicDeleted/onGroupDeleted), or after a whole day without a change (Java keeps
them forever).
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Deque, Dict, Iterator, Optional, Tuple

import attr
from twisted.logger import Logger

log = Logger()

TOPIC_PUT_NUMS = "TOPIC_PUT_NUMS"
TOPIC_PUT_SIZE = "TOPIC_PUT_SIZE"
GROUP_GET_NUMS = "GROUP_GET_NUMS"
GROUP_GET_SIZE = "GROUP_GET_SIZE"
GROUP_GET_LATENCY = "GROUP_GET_LATENCY"
SNDBCK_PUT_NUMS = "SNDBCK_PUT_NUMS"
BROKER_PUT_NUMS = "BROKER_PUT_NUMS"
BROKER_GET_NUMS = "BROKER_GET_NUMS"
#: Per queue: Java 4.9.8 fills them for the delay-level topic only (a delayed send puts into
#: ``SCHEDULE_TOPIC_XXXX@level-1``; a delivery gets from it as ``SCHEDULE_CONSUMER``), and so does mq.
QUEUE_PUT_NUMS = "QUEUE_PUT_NUMS"
QUEUE_PUT_SIZE = "QUEUE_PUT_SIZE"
QUEUE_GET_NUMS = "QUEUE_GET_NUMS"
QUEUE_GET_SIZE = "QUEUE_GET_SIZE"
#: Messages a pull returned that were past the page-cache window (Java's in-disk rule: CommitLog max offset minus
#: the message's offset above ``accessMessageInMemoryMaxRatio`` % of RAM), by ``topic@group`` and by cluster name.
#: Java 4.9.8 creates these items but no longer adds to them (RocketMQ 3.x's store did, per message, by these
#: keys); mq fills them, so a tool that asks gets the figure rather than "not exist".
GROUP_GET_FROM_DISK_NUMS = "GROUP_GET_FROM_DISK_NUMS"
GROUP_GET_FROM_DISK_SIZE = "GROUP_GET_FROM_DISK_SIZE"
BROKER_GET_FROM_DISK_NUMS = "BROKER_GET_FROM_DISK_NUMS"
BROKER_GET_FROM_DISK_SIZE = "BROKER_GET_FROM_DISK_SIZE"
#: The group a delay-level delivery counts as having got the message.
SCHEDULE_CONSUMER = "SCHEDULE_CONSUMER"

#: The names this broker fills, and how their keys are built (Java's buildStatsKey).
FILLED = (TOPIC_PUT_NUMS, TOPIC_PUT_SIZE, GROUP_GET_NUMS, GROUP_GET_SIZE, GROUP_GET_LATENCY, SNDBCK_PUT_NUMS,
          BROKER_PUT_NUMS, BROKER_GET_NUMS, QUEUE_PUT_NUMS, QUEUE_PUT_SIZE, QUEUE_GET_NUMS, QUEUE_GET_SIZE,
          GROUP_GET_FROM_DISK_NUMS, GROUP_GET_FROM_DISK_SIZE, BROKER_GET_FROM_DISK_NUMS, BROKER_GET_FROM_DISK_SIZE)
#: Names a 4.9.8 broker also knows but does not fill either (commercial figures): asking for them is valid and
#: answered "not exist", as Java answers.
KNOWN = FILLED + (
    "COMMERCIAL_SEND_TIMES", "COMMERICAL_SNDBCK_TIMES", "COMMERCIAL_RCV_TIMES", "COMMERCIAL_RCV_EPOLLS", "COMMERCIAL_SEND_SIZE",
    "COMMERCIAL_RCV_SIZE", "COMMERCIAL_PERM_FAILURES",
)

SAMPLE_SECONDS = 10
#: (snapshots kept, sample ticks between two) of the minute, hour and day windows
WINDOWS = {"minute": (7, 1), "hour": (7, 60), "day": (25, 360)}

Snapshot = Tuple[float, int, int]  # (seconds, times, value)


@attr.s(frozen=True, slots=True)
class StatsSnapshot:
    sum: int = attr.ib()
    tps: float = attr.ib()
    avgpt: float = attr.ib()
    times: int = attr.ib()

    def to_json(self) -> dict:
        return {"sum": self.sum, "tps": self.tps, "avgpt": self.avgpt}


def compute(snapshots: Deque[Snapshot]) -> StatsSnapshot:
    """A window's figures from its snapshots (StatsItem.computeStatsData; 0 TPS rather than Java's NaN
    when the window has a single snapshot)."""
    if not snapshots:
        return StatsSnapshot(0, 0.0, 0.0, 0)
    first_at, first_times, first_value = snapshots[0]
    last_at, last_times, last_value = snapshots[-1]
    total = last_value - first_value
    elapsed = last_at - first_at
    times = last_times - first_times
    return StatsSnapshot(total, total / elapsed if elapsed > 0 else 0.0, total / times if times > 0 else 0.0, times)


class StatsItem:
    __slots__ = ("key", "value", "times", "minute", "hour", "day")

    def __init__(self, key: str) -> None:
        self.key = key
        self.value = 0
        self.times = 0
        self.minute: Deque[Snapshot] = deque(maxlen=WINDOWS["minute"][0])
        self.hour: Deque[Snapshot] = deque(maxlen=WINDOWS["hour"][0])
        self.day: Deque[Snapshot] = deque(maxlen=WINDOWS["day"][0])

    def sample(self, window: Deque[Snapshot], now: float, period: float) -> None:
        if not window:  # as Java: the first snapshot pretends the item started at zero one period ago
            window.append((now - period, 0, 0))
        window.append((now, self.times, self.value))

    def in_minute(self) -> StatsSnapshot:
        return compute(self.minute)

    def in_hour(self) -> StatsSnapshot:
        return compute(self.hour)

    def in_day(self) -> StatsSnapshot:
        return compute(self.day)

    def idle_for_a_day(self) -> bool:
        day = self.day
        return len(day) == day.maxlen and day[0][1:] == day[-1][1:] and day[-1][1:] == (self.times, self.value)


class StatsItemSet:
    """The items of one stats name, at most ``max_keys`` of them."""

    def __init__(self, name: str, max_keys: Callable[[], int]) -> None:
        self.name = name
        self.items: Dict[str, StatsItem] = {}
        self.max_keys = max_keys
        self.dropped = 0

    def add(self, key: str, value: int, times: int = 1) -> None:
        item = self.items.get(key)
        if item is None:
            item = self.create(key)
            if item is None:
                return
        item.value += value
        item.times += times

    def create(self, key: str) -> Optional[StatsItem]:
        """A new item for ``key``, or None (counted as dropped) when the set is full."""
        if len(self.items) >= self.max_keys():
            if not self.dropped:
                log.warn("stats {name}: {n} keys already (maxStatsKeys); new keys are not counted until some go",
                         name=self.name, n=len(self.items))
            self.dropped += 1
            return None
        item = self.items[key] = StatsItem(key)
        return item

    def get(self, key: str) -> Optional[StatsItem]:
        return self.items.get(key)

    def remove_where(self, keep: Callable[[str], bool]) -> None:
        for key in [k for k in self.items if not keep(k)]:
            del self.items[key]


def _count(items: Tuple[StatsItem, ...], count: int, size: int) -> None:
    """One addition of ``count`` messages of ``size`` bytes to (…_NUMS, …_SIZE, BROKER_…_NUMS) items."""
    nums, sizes, broker = items[0], items[1], items[2]
    nums.value += count
    nums.times += 1
    sizes.value += size
    sizes.times += 1
    broker.value += count
    broker.times += 1


def topic_group_key(topic: str, group: str) -> str:
    return f"{topic}@{group}"


def queue_topic_group_key(queue_id: int, topic: str, group: str) -> str:
    return f"{queue_id}@{topic}@{group}"


def topic_queue_key(topic: str, queue_id: int) -> str:
    return f"{topic}@{queue_id}"


class BrokerStatsManager:
    """Every stats name's item set, the calls the processors make, and the sampling timer's work.

    The hot path finds the items a put or a get adds to with one dict lookup (``_puts`` by topic, ``_gets``
    by (topic, group, queue)), then adds to their integers; those caches are rebuilt from the sets whenever
    keys go away, and a key refused by the cap is looked up again (and counted as dropped) each time.
    """

    def __init__(self, cluster_name: str, now: Callable[[], float], max_keys: Callable[[], int]) -> None:
        self.cluster_name = cluster_name
        self.now = now
        self.sets: Dict[str, StatsItemSet] = {name: StatsItemSet(name, max_keys) for name in FILLED}
        self._ticks = 0
        self._puts: Dict[str, Tuple[StatsItem, StatsItem, StatsItem]] = {}
        self._gets: Dict[Tuple[str, str, int], Tuple[StatsItem, ...]] = {}

    def _items(self, *pairs: Tuple[str, str]) -> Optional[Tuple[StatsItem, ...]]:
        """The items of (name, key) pairs, created as needed; None if one is refused by the cap."""
        found = []
        for name, key in pairs:
            items = self.sets[name]
            item = items.get(key) or items.create(key)
            if item is None:
                return None
            found.append(item)
        return tuple(found)

    # -- what the processors count (hot path) ---------------------------------------------------------

    def put(self, topic: str, count: int, size: int) -> None:
        """Messages stored (TOPIC_PUT_NUMS counts one addition per send, as Java's incTopicPutNums)."""
        items = self._puts.get(topic)
        if items is None:
            items = self._items((TOPIC_PUT_NUMS, topic), (TOPIC_PUT_SIZE, topic), (BROKER_PUT_NUMS, self.cluster_name))
            if items is None:
                return
            self._puts[topic] = items  # type: ignore[assignment]
        _count(items, count, size)

    def get(self, group: str, topic: str, queue_id: int, count: int, size: int, latency_ms: int) -> None:
        """Messages a pull returned, and the milliseconds it took (GROUP_GET_LATENCY)."""
        items = self._gets.get((topic, group, queue_id))
        if items is None:
            key = topic_group_key(topic, group)
            items = self._items((GROUP_GET_NUMS, key), (GROUP_GET_SIZE, key), (BROKER_GET_NUMS, self.cluster_name),
                                (GROUP_GET_LATENCY, queue_topic_group_key(queue_id, topic, group)))
            if items is None:
                return
            self._gets[(topic, group, queue_id)] = items
        _count(items, count, size)
        latency = items[3]
        latency.value += latency_ms
        latency.times += 1

    def get_from_disk(self, group: str, topic: str, count: int, size: int) -> None:
        """Of a pull's messages, those read from past the page-cache window (called only when there are some)."""
        key = topic_group_key(topic, group)
        self.sets[GROUP_GET_FROM_DISK_NUMS].add(key, count, count)
        self.sets[GROUP_GET_FROM_DISK_SIZE].add(key, size, count)
        self.sets[BROKER_GET_FROM_DISK_NUMS].add(self.cluster_name, count, count)
        self.sets[BROKER_GET_FROM_DISK_SIZE].add(self.cluster_name, size, count)

    def send_back(self, group: str, topic: str) -> None:
        self.sets[SNDBCK_PUT_NUMS].add(topic_group_key(topic, group), 1)

    def queue_put(self, topic: str, queue_id: int, count: int, size: int) -> None:
        """QUEUE_PUT_NUMS/SIZE (the delay-level topic's puts, as Java counts them)."""
        key = topic_queue_key(topic, queue_id)
        self.sets[QUEUE_PUT_NUMS].add(key, count)
        self.sets[QUEUE_PUT_SIZE].add(key, size)

    def queue_get(self, group: str, topic: str, queue_id: int, count: int, size: int) -> None:
        """A delay-level delivery as Java counts it: QUEUE_GET_* by ``topic@queue@group`` and GROUP_GET_* by
        ``topic@group`` (no BROKER_GET_NUMS, no latency: no pull was served)."""
        key = f"{topic_queue_key(topic, queue_id)}@{group}"
        self.sets[QUEUE_GET_NUMS].add(key, count)
        self.sets[QUEUE_GET_SIZE].add(key, size)
        pair = topic_group_key(topic, group)
        self.sets[GROUP_GET_NUMS].add(pair, count)
        self.sets[GROUP_GET_SIZE].add(pair, size)

    # -- reading -----------------------------------------------------------------------------------

    def item(self, name: str, key: str) -> Optional[StatsItem]:
        items = self.sets.get(name)
        return items.get(key) if items is not None else None

    def minute_tps(self, name: str, key: str) -> float:
        item = self.item(name, key)
        return item.in_minute().tps if item is not None else 0.0

    def each(self, name: str) -> Iterator[StatsItem]:
        return iter(list(self.sets[name].items.values()))

    # -- upkeep ------------------------------------------------------------------------------------

    def sample(self) -> None:
        """Every SAMPLE_SECONDS: the minute snapshots, and the hour and day ones when their turn comes."""
        now = self.now()
        tick = self._ticks
        self._ticks += 1
        for window, (_, every) in WINDOWS.items():
            if tick % every:
                continue
            period = every * SAMPLE_SECONDS
            for items in self.sets.values():
                for item in items.items.values():
                    item.sample(getattr(item, window), now, period)
                if window == "day":
                    items.remove_where(lambda key, items=items: not items.items[key].idle_for_a_day())
        if tick % WINDOWS["day"][1] == 0:
            self._forget()

    def _forget(self) -> None:
        """Keys went away: the hot path's caches are rebuilt from the sets as puts and gets come."""
        self._puts.clear()
        self._gets.clear()

    def on_topic_deleted(self, topic: str) -> None:
        self._forget()
        for name in (TOPIC_PUT_NUMS, TOPIC_PUT_SIZE):
            self.sets[name].remove_where(lambda key: key != topic)
        prefix = topic + "@"
        for name in (GROUP_GET_NUMS, GROUP_GET_SIZE, SNDBCK_PUT_NUMS, QUEUE_PUT_NUMS, QUEUE_PUT_SIZE, QUEUE_GET_NUMS,
                     QUEUE_GET_SIZE, GROUP_GET_FROM_DISK_NUMS, GROUP_GET_FROM_DISK_SIZE):
            self.sets[name].remove_where(lambda key: not key.startswith(prefix))
        self.sets[GROUP_GET_LATENCY].remove_where(lambda key: key.partition("@")[2].rpartition("@")[0] != topic)

    def on_group_deleted(self, group: str) -> None:
        self._forget()
        for name in (GROUP_GET_NUMS, GROUP_GET_SIZE, SNDBCK_PUT_NUMS, GROUP_GET_LATENCY, QUEUE_GET_NUMS, QUEUE_GET_SIZE,
                     GROUP_GET_FROM_DISK_NUMS, GROUP_GET_FROM_DISK_SIZE):
            self.sets[name].remove_where(lambda key: key.rpartition("@")[2] != group)
