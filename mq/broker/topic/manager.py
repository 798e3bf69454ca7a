"""TopicConfigManager: the broker's topics (``topics.json``), the system topics and auto-creation."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python import failure

from mq.broker.state_file import JsonStateFile
from mq.common import mixall
from mq.common.names import IllegalName, topic_error
from mq.common.register_body import RegisterBrokerBody
from mq.common.route import (
    PERM_INHERIT,
    PERM_READ,
    PERM_WRITE,
    DataVersion,
    TopicConfig,
)

log = Logger()

PERM_RW = PERM_READ | PERM_WRITE
PERM_ALL = PERM_RW | PERM_INHERIT


class TopicConfigManager(JsonStateFile):
    """The topic table and its data version; every change bumps the version and is persisted.

    ``generation`` counts every change of the table (creation, update, deletion, a load or a slave's copy of
    its master's table), so what was derived from a topic's config (the send checks) knows when to look again.

    ``on_created(topic_config, oneway)`` is called after a topic is created or changed, so the broker can
    tell the NameServers at once (oneway when the creation came from a send, as RocketMQ does).
    """

    INT_KEYS = False

    def __init__(self, config, now_ms: Callable[[], int]) -> None:
        super().__init__(os.path.join(config.config_dir, "topics.json"))
        self.config = config
        self.now_ms = now_ms
        self.table: dict[str, TopicConfig] = {}
        self.data_version = DataVersion()
        self.generation = 0
        self.on_created: Callable[[TopicConfig, bool], None] | None = None
        self.system_topics = set()
        self._add_system_topics()
        #: Whether a subscription group exists (the broker sets it; ``send_rules.group_of`` says why).
        self.known_group: Callable[[str], bool] = lambda group: True
        #: Auto-creations a send asked for past ``maxTopicNums``; the count of plain topics, by generation.
        self.refused_auto_creations = 0
        self._plain: tuple[int, int] = (-1, 0)
        #: Runs a blocking call off the reactor thread, a Deferred of its result (the broker gives the store's).
        #: Without one, a topic a send creates is saved on the spot.
        self.run_blocking: Callable[[Callable[[], None]], defer.Deferred] | None = None
        #: Topics sends created that are not saved yet, and the Deferreds of the sends into them.
        self.unsaved: dict[str, list[defer.Deferred]] = {}
        self._saving = False

    def _add_system_topics(self) -> None:
        c = self.config

        def add(name: str, queues: int, perm: int = PERM_RW) -> None:
            self.table[name] = TopicConfig(name, queues, queues, perm)
            self.system_topics.add(name)

        add(mixall.SELF_TEST_TOPIC, 1)
        if c.auto_create_topic_enable:
            add(mixall.DEFAULT_TOPIC, c.default_topic_queue_nums, PERM_ALL)
        add(mixall.BENCHMARK_TOPIC, 1024)
        add(c.broker_cluster_name, 16, PERM_ALL if c.cluster_topic_enable else PERM_INHERIT)
        add(c.broker_name, 1, PERM_ALL if c.broker_topic_enable else PERM_INHERIT)
        add(mixall.OFFSET_MOVED_EVENT, 1)
        add(mixall.SCHEDULE_TOPIC, 18)
        add(mixall.reply_topic(c.broker_cluster_name), 1)
        if c.trace_topic_enable:
            add(c.msg_trace_topic_name, 1)

    # -- persistence --------------------------------------------------------------------------------

    def encode(self) -> dict:
        return {"dataVersion": self.data_version, "topicConfigTable": dict(self.table)}

    def decode(self, data: dict) -> None:
        """Take the topics of a file (or a master's table). What UPDATE_AND_CREATE_TOPIC would refuse, a hand
        edit or a bad copy can hold: a topic with a name no request may use is left out, queue counts past
        1..1024 (a million queues would be looped over by every route and stats answer) are clamped, each
        with a warning line."""
        table = {}
        for name, tc in (data.get("topicConfigTable") or {}).items():
            tc = TopicConfig.from_json(tc)
            why = topic_error(tc.topic_name)
            if why is not None or tc.topic_name != str(name):
                log.warn("{path}: topic {name!r} left out: {why}", path=self.path, name=str(name)[:80],
                         why=why or f"its topicName is {tc.topic_name[:80]!r}")
                continue
            changes = _clamp(tc)
            if changes:
                log.warn("{path}: topic {name} out of range, clamped: {changes}", path=self.path, name=name,
                         changes=", ".join(changes))
            table[tc.topic_name] = tc
        self.table.update(table)
        self.data_version = DataVersion.from_json(data.get("dataVersion"))
        self.generation += 1

    def _changed(self, tc: TopicConfig | None, oneway: bool, save: bool = True) -> None:
        self.generation += 1
        self.data_version.next_version(self.now_ms())
        if save:
            self.persist()
        else:
            self.dirty = True  # saved by the broker's next persist_if_dirty
        if tc is not None and self.on_created is not None:
            self.on_created(tc, oneway)

    # -- queries ------------------------------------------------------------------------------------

    def select(self, topic: str) -> TopicConfig | None:
        return self.table.get(topic)

    def is_order_topic(self, topic: str) -> bool:
        tc = self.table.get(topic)
        return tc is not None and tc.order

    def register_body(self, topics: Iterable[TopicConfig] | None = None) -> RegisterBrokerBody:
        """The REGISTER_BROKER body: these topics (all by default) with the broker's permission applied."""
        perm = self.config.broker_permission
        table = {}
        for tc in self.table.values() if topics is None else topics:
            if perm & PERM_RW != PERM_RW:
                tc = TopicConfig(tc.topic_name, tc.read_queue_nums, tc.write_queue_nums, tc.perm & perm,
                                 tc.topic_filter_type, tc.topic_sys_flag, tc.order)
            table[tc.topic_name] = tc
        return RegisterBrokerBody(DataVersion(self.data_version.timestamp, self.data_version.counter), table)

    def plain_topics(self) -> int:
        """Topics that are not a group's retry or dead-letter topic (those come and go with the groups, which
        have a bound of their own): what ``maxTopicNums`` counts. Counted again only after a change."""
        generation, count = self._plain
        if generation != self.generation:
            count = sum(1 for name in self.table if not (mixall.is_retry_topic(name) or mixall.is_dlq_topic(name)))
            self._plain = (self.generation, count)
        return count

    # -- changes ------------------------------------------------------------------------------------

    def create_in_send(self, topic: str, default_topic: str, client_queue_nums: int,
                       topic_sys_flag: int = 0) -> TopicConfig | None:
        """Create ``topic`` from ``default_topic`` (which must exist and have the inherit bit) on a send."""
        tc = self.table.get(topic)
        if tc is not None:
            return tc
        default = self.table.get(default_topic)
        if default is None or topic_error(topic) is not None:
            return None
        if default_topic == mixall.DEFAULT_TOPIC and not self.config.auto_create_topic_enable:
            return None
        if self.plain_topics() >= self.config.max_topic_nums:
            self.refused_auto_creations += 1
            return None
        if not default.perm & PERM_INHERIT:
            log.warning("cannot create topic {topic}: default topic {d} has no inherit permission",
                     topic=topic, d=default_topic)
            return None
        queues = max(1, min(client_queue_nums, default.write_queue_nums))
        tc = TopicConfig(topic, queues, queues, default.perm & ~PERM_INHERIT, topic_sys_flag=topic_sys_flag)
        log.info("auto-created topic {topic} from {d} with {n} queues", topic=topic, d=default_topic, n=queues)
        self.table[topic] = tc
        if self.run_blocking is None:
            self._changed(tc, True)
        else:
            self.unsaved.setdefault(topic, [])
            self._changed(tc, True, save=False)
            self._save_created()
        return tc

    # -- topics sends created: saved off the reactor, their sends answered once saved ----------------------

    def saved(self, topic: str) -> defer.Deferred | None:
        """None when ``topic``'s config is on disk (or was never a send's creation), else a Deferred fired once
        it is: the answer to a send into it waits for it, as RocketMQ's send waits for its on-the-spot save, so
        a topic a producer was told it wrote into survives a crash."""
        waiting = self.unsaved.get(topic)
        if waiting is None:
            return None
        d = defer.Deferred()
        waiting.append(d)
        return d

    def _save_created(self) -> None:
        """Write the table with every topic created since the last write, in a thread: one write for a burst of
        creations, and the reactor does not wait for the encoding or the fsync. Failed, the table stays dirty
        (the broker's timer saves it within a second) and the sends are answered: their messages are stored."""
        if self._saving or not self.unsaved:
            return
        self._saving = True
        names = list(self.unsaved)
        write = self.snapshot()

        def done(result) -> None:
            self._saving = False
            if isinstance(result, failure.Failure):
                self.dirty = True
                log.warn("saving auto-created topics failed (tried again in a second): {error}",
                         error=result.getErrorMessage())
            for name in names:
                for d in self.unsaved.pop(name, ()):
                    d.callback(None)
            self._save_created()  # those created meanwhile

        self.run_blocking(write).addBoth(done)

    def create_system(self, topic: str, queue_nums: int, perm: int = PERM_RW, topic_sys_flag: int = 0,
                      save: bool = True) -> TopicConfig:
        """Create a broker-owned topic on demand (``%RETRY%group``, ``%DLQ%group``, transaction topics).

        ``save=False`` (a heartbeat's retry topic, created again by the next heartbeat if lost) leaves the
        saving to the broker's next ``persist_if_dirty``."""
        tc = self.table.get(topic)
        if tc is not None:
            return tc
        why = topic_error(topic)
        if why is not None:  # callers check the group a topic is made from; this is the last line
            raise IllegalName(why)
        tc = TopicConfig(topic, queue_nums, queue_nums, perm, topic_sys_flag=topic_sys_flag)
        if save:  # a heartbeat's retry topic comes with its group, whose creation is logged
            log.info("created topic {topic} ({n} queues, perm {perm})", topic=topic, n=queue_nums, perm=perm)
        self.table[topic] = tc
        self._changed(tc, True, save)
        return tc

    def update(self, tc: TopicConfig) -> None:
        """UPDATE_AND_CREATE_TOPIC: store the config as given and register it at once (waiting for answers)."""
        old = self.table.get(tc.topic_name)
        self.table[tc.topic_name] = tc
        log.info("{what} topic {tc}", what="updated" if old else "created", tc=tc)
        self._changed(tc, False)

    def delete(self, topic: str) -> bool:
        if self.table.pop(topic, None) is None:
            return False
        log.info("deleted topic {topic}", topic=topic)
        self._changed(None, False)
        return True


def _clamp(tc: TopicConfig) -> list[str]:
    """Bring the queue counts into 0..MAX_TOPIC_QUEUE_NUMS and the permission into its four bits; what changed."""
    changes = []
    for key, name in (("readQueueNums", "read_queue_nums"), ("writeQueueNums", "write_queue_nums")):
        value = getattr(tc, name)
        if not 0 <= value <= mixall.MAX_TOPIC_QUEUE_NUMS:
            setattr(tc, name, min(max(value, 0), mixall.MAX_TOPIC_QUEUE_NUMS))
            changes.append(f"{key} {value} -> {getattr(tc, name)}")
    if tc.perm & ~0xF:
        changes.append(f"perm {tc.perm} -> {tc.perm & 0xF}")
        tc.perm &= 0xF
    return changes
