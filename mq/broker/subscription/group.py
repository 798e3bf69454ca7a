"""SubscriptionGroupManager: consumer group settings (``subscriptionGroup.json``), created on first use."""

from __future__ import annotations

import os
from collections.abc import Callable

import attr
from twisted.logger import Logger

from mq.broker.state_file import JsonStateFile
from mq.common import mixall
from mq.common.names import group_error
from mq.common.route import DataVersion

log = Logger()


@attr.s(slots=True, eq=True)
class SubscriptionGroupConfig:
    group_name: str = attr.ib()
    consume_enable: bool = attr.ib(default=True)
    consume_from_min_enable: bool = attr.ib(default=True)
    consume_broadcast_enable: bool = attr.ib(default=True)
    retry_queue_nums: int = attr.ib(default=1)
    retry_max_times: int = attr.ib(default=16)
    broker_id: int = attr.ib(default=mixall.MASTER_ID)
    which_broker_when_consume_slowly: int = attr.ib(default=1)
    notify_consumer_ids_changed_enable: bool = attr.ib(default=True)

    _KEYS = (
        ("brokerId", "broker_id", int),
        ("consumeBroadcastEnable", "consume_broadcast_enable", bool),
        ("consumeEnable", "consume_enable", bool),
        ("consumeFromMinEnable", "consume_from_min_enable", bool),
        ("groupName", "group_name", str),
        ("notifyConsumerIdsChangedEnable", "notify_consumer_ids_changed_enable", bool),
        ("retryMaxTimes", "retry_max_times", int),
        ("retryQueueNums", "retry_queue_nums", int),
        ("whichBrokerWhenConsumeSlowly", "which_broker_when_consume_slowly", int),
    )

    def to_json(self) -> dict:
        return {key: getattr(self, name) for key, name, _ in self._KEYS}

    #: Bounds of the number fields (RocketMQ has none): ``retryQueueNums`` is the queue count of the
    #: ``%RETRY%`` topic a heartbeat creates, so a topic's bound; ``retryMaxTimes`` -1 (dead-letter at once)
    #: to 1000 (past the 18th delay level each retry waits 2 h: months of retrying); the broker ids those
    #: of ``brokerId`` in the broker's config. 2,000,000 retry queues made one GET_TOPIC_STATS_INFO take 16 s.
    RANGES = {
        "retryQueueNums": (0, mixall.MAX_TOPIC_QUEUE_NUMS),
        "retryMaxTimes": (-1, 1000),
        "brokerId": (0, 1024),
        "whichBrokerWhenConsumeSlowly": (0, 1024),
    }

    @classmethod
    def from_json(cls, data: dict) -> SubscriptionGroupConfig:
        """The config a JSON object describes; ValueError naming the field when a value is not of its type
        (the ranges are checked by ``check`` or ``clamp``, so a file and a request can differ in what they do)."""
        if not isinstance(data, dict) or not data.get("groupName"):
            raise ValueError("a subscription group config needs a groupName")
        config = cls(str(data["groupName"]))
        for key, name, kind in cls._KEYS:
            if key in data and data[key] is not None:
                value = data[key]
                if kind is bool and isinstance(value, str):
                    value = value.lower() == "true"
                try:
                    setattr(config, name, kind(value))
                except (ValueError, TypeError, OverflowError):
                    raise ValueError(f"{key} {str(value)[:64]!r} is not {kind.__name__}") from None
        return config

    def _out_of_range(self) -> list[tuple[str, str, int, int, int]]:
        """(key, attribute, value, low, high) of each number field outside its range."""
        out = []
        for key, name, _ in self._KEYS:
            if key in self.RANGES:
                low, high = self.RANGES[key]
                value = getattr(self, name)
                if not low <= value <= high:
                    out.append((key, name, value, low, high))
        return out

    def check(self) -> None:
        """ValueError naming the first number field out of its range (an admin's request is refused)."""
        for key, _, value, low, high in self._out_of_range():
            raise ValueError(f"{key} {value} is out of range {low}..{high}")

    def clamp(self) -> list[str]:
        """Bring each number field into its range (a hand-edited file); what was changed, for the log."""
        changes = []
        for key, name, value, low, high in self._out_of_range():
            setattr(self, name, min(max(value, low), high))
            changes.append(f"{key} {value} -> {getattr(self, name)}")
        return changes


class SubscriptionGroupManager(JsonStateFile):
    INT_KEYS = False

    def __init__(self, config, now_ms: Callable[[], int]) -> None:
        super().__init__(os.path.join(config.config_dir, "subscriptionGroup.json"))
        self.config = config
        self.now_ms = now_ms
        self.table: dict[str, SubscriptionGroupConfig] = {}
        self.data_version = DataVersion()
        for group in mixall.PRESET_SUBSCRIPTION_GROUPS:
            self.table[group] = SubscriptionGroupConfig(group)

    def encode(self) -> dict:
        return {"dataVersion": self.data_version, "subscriptionGroupTable": dict(self.table)}

    def decode(self, data: dict) -> None:
        for name, sgc in (data.get("subscriptionGroupTable") or {}).items():
            config = self.table[str(name)] = SubscriptionGroupConfig.from_json(sgc)
            changes = config.clamp()
            if changes:  # a hand-edited file: the group keeps its other settings (consumeEnable, say)
                log.warn("{path}: subscription group {group} out of range, clamped: {changes}", path=self.path,
                         group=name, changes=", ".join(changes))
        self.data_version = DataVersion.from_json(data.get("dataVersion"))

    def _changed(self) -> None:
        self.data_version.next_version(self.now_ms())
        self.persist()

    def full(self) -> bool:
        """No more groups may be auto-created (``maxSubscriptionGroupNums``; the admin may still create)."""
        return len(self.table) >= self.config.max_subscription_group_nums

    def find(self, group: str, auto_create: bool | None = None) -> SubscriptionGroupConfig | None:
        """The group's config; created with defaults when unknown, auto-creation is on and the table not full.

        An auto-created group is saved by the broker's next ``persist_if_dirty`` (within a second), not at
        once: a flood of new group names costs a dictionary entry each, not a rewrite of the file each (a
        group lost in a crash is created again by its next heartbeat, with the same defaults).
        """
        sgc = self.table.get(group)
        if sgc is None and (self.config.auto_create_subscription_group if auto_create is None else auto_create):
            if group_error(group) is not None or self.full():
                return None
            sgc = self.table[group] = SubscriptionGroupConfig(group)
            log.info("auto-created subscription group {group}", group=group)
            self.data_version.next_version(self.now_ms())
            self.dirty = True
        return sgc

    def update(self, sgc: SubscriptionGroupConfig) -> None:
        self.table[sgc.group_name] = sgc
        log.info("updated subscription group {sgc}", sgc=sgc)
        self._changed()

    def delete(self, group: str) -> bool:
        if self.table.pop(group, None) is None:
            return False
        self._changed()
        return True
