"""Delay levels: ScheduleMessageService parks delayed messages in SCHEDULE_TOPIC_XXXX and delivers them.

A message sent with ``DELAY=n`` (n ≥ 1, clamped to the highest level) is stored in ``SCHEDULE_TOPIC_XXXX``
queue ``n − 1`` with its real topic and queue in ``REAL_TOPIC``/``REAL_QID``. The store gives such a
message's ConsumeQueue entry the delivery time as its tags code (store time + the level's delay, see
``mq.store.dispatch.make_tags_code_fn``), so each level's queue is in delivery order and the service only
ever looks at the head of each queue.

Every ``scheduleTickMillis`` (100 ms, as RocketMQ's per-level timers) the service delivers every message
whose time has come: it is stored again in its real topic and queue, without ``DELAY``, keeping its body,
properties, flags, born host and time and reconsume count. Delivery progress per level is the next offset
in the level's queue (``delayOffset.json``: ``{"offsetTable":{1:0,2:35}}``), written at most once a second
while it changes and at a graceful stop, so a restart resumes where delivery stopped: nothing is lost, and
after a graceful stop nothing is delivered twice (after a crash, at most the last second's deliveries).

No one message can hold a level back: a refusal that is about the store (not running, disk full, page cache
busy) waits for the next tick, but a message refused for what it is (a real topic that is no legal name, a
body over a lowered ``maxMessageSize``) goes to its group's ``%DLQ%`` topic when it was a retry, and is
dropped with a log line otherwise.

The level table is the store's ``messageDelayLevel`` (``1s 5s 10s 30s 1m ... 2h``; units s, m, h, d).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Optional, Tuple

from twisted.internet import defer, task
from twisted.logger import Logger

from mq.broker.state_file import JsonStateFile
from mq.common import fastjson
from mq.common.message import MessageConst, MessageExtBrokerInner, MessageSysFlag, properties_to_string
from mq.common.message_record import decode_for_restore
from mq.common.names import topic_error
from mq.common.topic import RETRY_GROUP_TOPIC_PREFIX, SCHEDULE_TOPIC, dlq_topic
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand
from mq.store.results import PutMessageStatus

log = Logger()

_DELAY = MessageConst.PROPERTY_DELAY_TIME_LEVEL
_REAL_TOPIC = MessageConst.PROPERTY_REAL_TOPIC
_REAL_QID = MessageConst.PROPERTY_REAL_QUEUE_ID
_WAIT = MessageConst.PROPERTY_WAIT_STORE_MSG_OK
_TIMER_KEYS = (MessageConst.PROPERTY_TIMER_DELIVER_MS, MessageConst.PROPERTY_TIMER_DELAY_SEC,
               MessageConst.PROPERTY_TIMER_DELAY_MS)
#: Refusals that are about the store, not the message: delivery waits for the store to take puts again.
STORE_WIDE = frozenset({PutMessageStatus.SERVICE_NOT_AVAILABLE, PutMessageStatus.OS_PAGECACHE_BUSY,
                         PutMessageStatus.CREATE_MAPEDFILE_FAILED})
#: Deliveries per level and tick at most (the rest follow on the next tick, 100 ms later).
MAX_PER_TICK = 2000


def stored_properties_string(props: Dict[str, str]) -> str:
    """The properties as stored: everything but ``WAIT`` (which only steers the put)."""
    return properties_to_string({k: v for k, v in props.items() if k != _WAIT})


def delay_level_of(props: Dict[str, str]) -> int:
    raw = props.get(_DELAY)
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError:
        return 0


def put_now(store, inner: MessageExtBrokerInner):
    """The store's answer if it came at once (the usual case: ``WAIT=false``), else None (it will be stored or
    fail later, logged either way)."""
    result = store.put_message_now(inner)
    if isinstance(result, defer.Deferred):
        result.addErrback(lambda f: log.failure("delivering a parked message to {topic}", f, topic=inner.topic))
        return None
    return result


def redeliver(service, inner: MessageExtBrokerInner, drop: Tuple[str, ...], add: Optional[Dict[str, str]],
              what: Callable[[], str], stored: Optional[Callable[[MessageExtBrokerInner, Any], None]] = None) -> bool:
    """Store a parked record (``inner``, from ``decode_for_restore``: it holds ``REAL_TOPIC``/``REAL_QID``)
    again in its real topic and queue,
    without the ``drop`` properties and with ``add``, keeping body, flags, born host and time and reconsume
    count. False when the store refuses puts now (try again later); True when it is done with: stored, or
    refused for what it is (a retry goes to its ``%DLQ%`` topic, anything else is dropped), with a log line.
    ``service`` has ``broker``, ``store`` and ``undeliverable`` (the delay-level and timer services); ``what``
    names the record in log lines (called only for one: formatting it costs on every delivery); ``stored`` is
    told of a put stored at once (the message, the store's result), for the stats.
    """
    props = inner.properties
    topic = props.get(_REAL_TOPIC)
    try:
        queue_id = int(props.get(_REAL_QID, ""))
    except ValueError:
        topic = None
    if not topic:
        log.warn("{what} has no real topic or queue: dropped", what=what())
        return True
    for key in drop:
        props.pop(key, None)
    props.pop(_WAIT, None)
    if add:
        props.update(add)
    inner.properties_string = properties_to_string(props)
    props[_WAIT] = "false"
    inner.topic = topic
    inner.queue_id = queue_id
    result = put_now(service.store, inner)
    if result is None:
        return True
    if result.is_stored():
        if stored is not None:
            stored(inner, result)
        return True
    if result.status in STORE_WIDE:
        log.warn("delivering {what} to {topic} failed: {status}; retrying later",
                 what=what(), topic=topic, status=result.status.name)
        return False
    # Refused for what it is (an illegal topic, too big for a lowered maxMessageSize...): it would be
    # refused again on every tick, holding back every message behind it.
    group = topic[len(RETRY_GROUP_TOPIC_PREFIX):] if topic.startswith(RETRY_GROUP_TOPIC_PREFIX) else ""
    where = "dropped"
    if group and topic_error(dlq_topic(group)) is None:
        from mq.broker.processor.retry import dead_letter  # retry imports this module

        dead = put_now(service.store, dead_letter(service.broker, inner, group))
        if dead is None or dead.is_stored():
            where = f"moved to {dlq_topic(group)}"
    log.warn("{what} cannot be delivered to {topic!r} ({status}: {reason}): {where}", what=what(), topic=topic,
             status=result.status.name, reason=result.reason, where=where)
    service.undeliverable += 1
    return True


class ScheduleMessageService(JsonStateFile):
    def __init__(self, broker) -> None:
        super().__init__(os.path.join(broker.config.config_dir, "delayOffset.json"))
        self.broker = broker
        self.store = broker.store
        self.reactor = broker.reactor
        self.levels: Dict[int, int] = dict(self.store.delay_levels)
        self.max_level = max(self.levels) if self.levels else 0
        self.offsets: Dict[int, int] = {}
        self.tick_seconds = broker.config.schedule_tick_millis / 1000.0
        self.delivered = 0
        #: Messages that could not be stored in their real topic (moved to their DLQ, or dropped).
        self.undeliverable = 0
        self._loop: Optional[task.LoopingCall] = None
        self._persist_loop: Optional[task.LoopingCall] = None

    # -- state ---------------------------------------------------------------------------------------

    def encode(self) -> dict:
        return {"offsetTable": dict(sorted(self.offsets.items()))}

    def decode(self, data: dict) -> None:
        self.offsets = {int(k): int(v) for k, v in (data.get("offsetTable") or {}).items()}

    # -- life cycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        self.load()
        if self.broker.config.is_slave or not self.levels:
            return
        self._loop = task.LoopingCall(self.tick)
        self._loop.clock = self.reactor
        self._loop.start(self.tick_seconds, now=False).addErrback(
            lambda f: log.failure("delay level delivery stopped", f))
        self._persist_loop = task.LoopingCall(self.persist_if_dirty)
        self._persist_loop.clock = self.reactor
        self._persist_loop.start(1.0, now=False)

    def stop(self) -> None:
        for loop in (self._loop, self._persist_loop):
            if loop is not None and loop.running:
                loop.stop()
        self._loop = self._persist_loop = None
        if self.dirty or not os.path.exists(self.path):
            self.dirty = True
            self.persist_if_dirty()

    # -- parking -------------------------------------------------------------------------------------

    def park(self, inner: MessageExtBrokerInner) -> MessageExtBrokerInner:
        """A message with ``DELAY`` > 0 (not a half or rollback record) is redirected to its level's queue."""
        tran = MessageSysFlag.get_transaction_value(inner.sys_flag)
        if tran not in (MessageSysFlag.TRANSACTION_NOT_TYPE, MessageSysFlag.TRANSACTION_COMMIT_TYPE):
            return inner
        level = delay_level_of(inner.properties)
        if level <= 0 or not self.max_level:
            return inner
        level = min(level, self.max_level)
        props = inner.properties
        props[_DELAY] = str(level)
        for key in _TIMER_KEYS:  # a delay level wins over a timer (RocketMQ 5.x HookUtils)
            props.pop(key, None)
        props[_REAL_TOPIC] = inner.topic
        props[_REAL_QID] = str(inner.queue_id)
        inner.topic = SCHEDULE_TOPIC
        inner.queue_id = level - 1
        inner.properties_string = stored_properties_string(props)
        inner.tags_code = None  # the store computes the delivery time
        return inner

    # -- delivery ------------------------------------------------------------------------------------

    def tick(self) -> None:
        if self.store.space.refusal() is not None:
            return  # a full disk: every delivery would be refused (the store logged it once); wait for room
        now = self.broker.now_ms()
        for level in sorted(self.levels):
            self.deliver_level(level, now)

    def deliver_level(self, level: int, now: int) -> int:
        """Deliver the due messages of one level; returns how many."""
        cq = self.store.consume_queue(SCHEDULE_TOPIC, level - 1)
        if cq is None:
            return 0
        offset = max(self.offsets.get(level, 0), cq.min_offset)
        end = cq.max_offset
        delay = self.levels[level]
        count = 0
        while offset < end and count < MAX_PER_TICK:
            entry = cq.entry(offset)
            if entry is None:
                break
            phy, size, deliver_at = entry
            if deliver_at > now + delay:
                deliver_at = now  # the level table was made shorter since it was parked: due now (as RocketMQ)
            if deliver_at > now:
                break
            raw = self.store.look_message_by_offset(phy, size)
            if raw is not None:
                try:
                    done = self._deliver(raw, level, offset)
                except Exception:  # a record that does not decode: never tried again, so never in the way
                    log.failure("delivering the delayed message at offset {offset} of level {delay_level}: "
                                "dropped", offset=offset, delay_level=level)
                    done = True
                if not done:
                    break  # the store refuses puts now; try again on a later tick
                count += 1
            offset += 1
        if offset != self.offsets.get(level, 0):
            self.offsets[level] = offset
            self.dirty = True
        self.delivered += count
        return count

    def _deliver(self, raw: bytes, level: int, offset: int) -> bool:
        stats = getattr(self.broker, "stats", None)
        counted = None if stats is None else (
            lambda msg, result: stats.delayed_delivered(level, msg.topic, result.append_result.msg_num,
                                                        result.append_result.wrote_bytes))
        return redeliver(self, decode_for_restore(raw), (_DELAY,), None,
                         lambda: f"the delayed message at offset {offset} of level {level}", counted)

    # -- admin -----------------------------------------------------------------------------------------

    def register(self, dispatcher) -> None:
        dispatcher.register(RequestCode.GET_ALL_DELAY_OFFSET, self.get_all_delay_offset)

    def get_all_delay_offset(self, request: RemotingCommand, channel) -> RemotingCommand:
        """GET_ALL_DELAY_OFFSET (45): the body of ``delayOffset.json``."""
        return request.response(ResponseCode.SUCCESS, None, None, fastjson.dumps_bytes(self.encode()))
