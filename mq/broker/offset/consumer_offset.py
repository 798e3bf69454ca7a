"""ConsumerOffsetManager: committed consumer offsets per ``topic@group`` and queue (``consumerOffset.json``)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from mq.broker.state_file import JsonStateFile
from mq.common.mixall import topic_queue_key


class ConsumerOffsetManager(JsonStateFile):
    """Offsets change on every pull with the commit bit, so they are kept in memory and persisted on a timer
    (every ``flushConsumerOffsetInterval``) and at a graceful stop, as RocketMQ does."""

    def __init__(self, config) -> None:
        super().__init__(os.path.join(config.config_dir, "consumerOffset.json"))
        self.table: dict[str, dict[int, int]] = {}

    def encode(self) -> dict:
        return {"offsetTable": self.table}

    def decode(self, data: dict) -> None:
        table = {}
        for key, queues in (data.get("offsetTable") or {}).items():
            table[str(key)] = {int(q): int(o) for q, o in (queues or {}).items()}
        self.table = table

    def commit(self, group: str, topic: str, queue_id: int, offset: int) -> None:
        key = topic_queue_key(topic, group)
        queues = self.table.get(key)
        if queues is None:
            queues = self.table[key] = {}
        if queues.get(queue_id) != offset:
            queues[queue_id] = offset
            self.dirty = True

    def query(self, group: str, topic: str, queue_id: int) -> int:
        """The committed offset, or -1 when there is none."""
        queues = self.table.get(topic_queue_key(topic, group))
        if queues is None:
            return -1
        return queues.get(queue_id, -1)

    def query_queues(self, group: str, topic: str) -> dict[int, int]:
        return dict(self.table.get(topic_queue_key(topic, group)) or {})

    def topics_of_group(self, group: str) -> set[str]:
        return {topic for topic, g in self.pairs() if g == group}

    def groups_of_topic(self, topic: str) -> set[str]:
        return {group for t, group in self.pairs() if t == topic}

    def pairs(self) -> list[tuple]:
        """(topic, group) of every entry."""
        return [tuple(key.rpartition("@")[::2]) for key in self.table]

    def remove_topics(self, topics: Iterable[str]) -> None:
        topics = set(topics)
        for key in [k for k in self.table if k.rpartition("@")[0] in topics]:
            del self.table[key]
            self.dirty = True

    def remove_group(self, group: str) -> None:
        for key in [k for k in self.table if k.rpartition("@")[2] == group]:
            del self.table[key]
            self.dirty = True
