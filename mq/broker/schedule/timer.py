"""Timer messages (RocketMQ 5.x, RIP-43): deliver a message at any time up to ``timerMaxDelaySec`` away.

A send with ``TIMER_DELAY_SEC``, ``TIMER_DELAY_MS`` or ``TIMER_DELIVER_MS`` (that precedence; a delay level
wins and removes them) due in the future is stored in ``rmq_sys_wheel_timer`` queue 0 with its destination in
``REAL_TOPIC``/``REAL_QID`` and its due time in ``TIMER_OUT_MS`` (also its ConsumeQueue tags code), so it is in
the CommitLog, replicated and recovered like any message. This service reads that queue, links each timer
into the on-disk wheel (``timer_wheel``), and every tick fires the slots whose time has come: each message
is stored again in its real topic and queue (``delay_level.redeliver``), marked with ``TIMER_ORIGIN_PHY``,
the CommitLog offset of the timer record it came from.

Progress (``config/timerCheckpoint.json``) is saved every ``timerFlushIntervalMs``: the next slot
to fire and how far into it, the timer queue offset read, the log's end, and ``scanFrom``, a CommitLog
offset before every delivery the checkpoint does not account for. After a SIGKILL the wheel is cut back to
the checkpoint, the CommitLog from ``scanFrom`` is read for ``TIMER_ORIGIN_PHY`` marks, and the work since the
checkpoint is done again with those timers skipped: none is lost, none is delivered twice. Lost wheel files
are rebuilt from the timer queue; see docs/timer.md.
"""

from __future__ import annotations

import os
from typing import Dict, Iterator, Optional, Set, Union

import attrs
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from twisted.logger import Logger

from mq.broker.schedule.delay_level import redeliver, stored_properties_string
from mq.broker.schedule.timer_cancel import CANCEL_QUEUE, DEL_KEY, TimerCancels, cancel_tags_code
from mq.broker.schedule.timer_wheel import TimerWheel
from mq.broker.state_file import JsonStateFile
from mq.broker.stats.metrics import FastHistogram
from mq.common.message import MessageConst, MessageExtBrokerInner, MessageSysFlag, string_to_properties
from mq.common.message_record import decode_for_restore, record_tail_positions
from mq.common.topic import SCHEDULE_TOPIC, TIMER_TOPIC
from mq.remoting.codes import ResponseCode

log = Logger()

_C = MessageConst
DELIVER_MS = _C.PROPERTY_TIMER_DELIVER_MS
DELAY_SEC = _C.PROPERTY_TIMER_DELAY_SEC
DELAY_MS = _C.PROPERTY_TIMER_DELAY_MS
OUT_MS = _C.PROPERTY_TIMER_OUT_MS
#: mq's own mark on a delivered timer message: the CommitLog offset of the timer record (docs/timer.md).
ORIGIN = "TIMER_ORIGIN_PHY"
#: What a producer asks with, in RocketMQ 5.x's precedence (HookUtils: seconds, then ms, then a time).
REQUEST_KEYS = (DELAY_SEC, DELAY_MS, DELIVER_MS)
#: What ``park`` looks at on a send: without any of these a message passes unchanged.
TIMER_SEND_KEYS = REQUEST_KEYS + (ORIGIN, DEL_KEY)
#: Precisions (RocketMQ snaps timerPrecisionMs the same way); the wheel's slots are a tenth of it.
PRECISIONS = (100, 200, 500, 1000)
#: The wheel covers two days (RocketMQ's timerRollWindowSlot); later timers are linked at its end and
#: linked again from there when it fires.
SPAN_MS = 2 * 86_400_000
#: Units read (linked or fired) per reactor turn; more work continues on the next turn.
TURN_BUDGET = 2000
LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.5, 2.0, 3.0, 5.0,
                    10.0, 30.0, 60.0, 300.0)
_DROP = (_C.PROPERTY_REAL_TOPIC, _C.PROPERTY_REAL_QUEUE_ID, ORIGIN)


def snap_precision(ms: int) -> int:
    """The wheel's precision for a ``timerPrecisionMs``: the largest of 100, 200, 500, 1000 not above it."""
    return max([p for p in PRECISIONS if p <= ms] or [PRECISIONS[0]])


@attrs.define
class TimerRefusal:
    """A send the timer rules refuse: its response code and remark."""

    code: int
    remark: str


_CANCEL_NEEDS_TIME = TimerRefusal(ResponseCode.MESSAGE_ILLEGAL, f"timer message illegal, a cancellation "
                                  f"({DEL_KEY}) needs a delivery time in the future")


def _number(key: str, raw: str) -> int:
    text = raw.strip()
    if not (0 < len(text) <= 19 and text.lstrip("-").isdigit() and text.count("-") <= 1 and text[0] != "+"):
        raise ValueError(f"timer message illegal, the property {key} is {raw[:40]!r}, not a number of ms or s")
    return int(text)


def due_time(props: Dict[str, str], now_ms: int) -> Optional[int]:
    """When a message with these properties is due (epoch ms), or None when it asks for no timer.
    Raises ValueError (the remark) for a value that is no integer."""
    raw = props.get(DELAY_SEC)
    if raw is not None:
        return now_ms + _number(DELAY_SEC, raw) * 1000
    raw = props.get(DELAY_MS)
    if raw is not None:
        return now_ms + _number(DELAY_MS, raw)
    raw = props.get(DELIVER_MS)
    if raw is not None:
        return _number(DELIVER_MS, raw)
    return None


class TimerMessageService(JsonStateFile):
    INT_KEYS = False

    def __init__(self, broker) -> None:
        config = broker.config
        super().__init__(os.path.join(config.config_dir, "timerCheckpoint.json"))
        self.broker = broker
        self.store = broker.store
        self.reactor = broker.reactor
        self.enabled = config.timer_wheel_enable
        self.precision = snap_precision(config.timer_precision_ms)
        #: The wheel's slot: a tenth of the precision, so a second's timers do not all fall due at once and
        #: a timer is late by a tenth of the precision plus the time to deliver those before it.
        self.step = self.precision // 10
        self.max_delay_ms = config.timer_max_delay_sec * 1000
        self.flush_interval = config.timer_flush_interval_ms / 1000.0
        self.wheel = TimerWheel(os.path.join(config.store_path_root_dir, "timer"), self.step,
                                SPAN_MS // self.step)
        # Progress (the checkpoint's fields).
        self.read_ms = 0  # the next slot to fire
        self.cursor: Optional[int] = None  # where in that slot's list firing goes on (None: not begun)
        self.queue_offset = 0  # the next timer-queue offset to link
        self.scan_from = 0
        self.pending = 0
        #: A rebuild's bound: timers below this queue offset and due at or before ``rebuilt_through_ms`` had
        #: fired before the wheel files were lost.
        self.rebuild_queue_offset = 0
        self.rebuilt_through_ms = 0
        self._slot_scan_from = 0
        #: Timer records already delivered (found by the recovery scan): skipped once when met again.
        self.delivered_before: Set[int] = set()
        self.fired = 0
        self.lost = 0
        self.undeliverable = 0
        self.lateness = FastHistogram(LATENESS_BUCKETS)
        #: Pending cancellations (TIMER_DEL_UNIQKEY, in the timer queue; queue 1 of a store written by an earlier
        #: mq): timer_cancel.
        self.cancels = TimerCancels(self.store, self.precision)
        self._cancel_from: Optional[int] = None
        self._cancel_from0: Optional[int] = None
        self._next = None  # the next tick's DelayedCall
        self._last_save = 0.0
        self._saved: tuple = ()
        self.running = False

    # -- the send side ---------------------------------------------------------------------------------

    def park(self, inner: MessageExtBrokerInner) -> Union[MessageExtBrokerInner, TimerRefusal]:
        """A message asking for a time in the future goes to the timer topic; one asking for a bad time is
        refused; everything else passes unchanged. (Delay levels were parked before, without these keys.)"""
        props = inner.properties
        if DELIVER_MS not in props and DELAY_SEC not in props and DELAY_MS not in props:
            if DEL_KEY in props and inner.topic != SCHEDULE_TOPIC:  # a delay level wins (5.x)
                return _CANCEL_NEEDS_TIME
            if ORIGIN in props:  # only the broker marks deliveries: a sender's mark is dropped
                del props[ORIGIN]
                inner.properties_string = stored_properties_string(props)
            return inner
        tran = MessageSysFlag.get_transaction_value(inner.sys_flag)
        if inner.topic == SCHEDULE_TOPIC or tran not in (MessageSysFlag.TRANSACTION_NOT_TYPE,
                                                         MessageSysFlag.TRANSACTION_COMMIT_TYPE):
            return inner
        now = self.broker.now_ms()
        refusal = self.check(props, now)
        if isinstance(refusal, TimerRefusal):
            return refusal
        due = refusal
        cancel = DEL_KEY in props
        if due is None or due <= now:
            # already due: stored in its topic at once, as RocketMQ does (a cancellation is refused)
            return _CANCEL_NEEDS_TIME if cancel else inner
        if cancel and self.cancels.full():
            return TimerRefusal(ResponseCode.SYSTEM_ERROR, f"timer message is under flow control: "
                                f"{self.cancels.max_pending} timer cancellations are pending")
        props.pop(ORIGIN, None)
        props[_C.PROPERTY_REAL_TOPIC] = inner.topic
        props[_C.PROPERTY_REAL_QUEUE_ID] = str(inner.queue_id)
        props[OUT_MS] = str(due)
        props[_C.PROPERTY_TIMER_ENQUEUE_MS] = str(now)
        inner.topic = TIMER_TOPIC
        inner.queue_id = CANCEL_QUEUE
        inner.properties_string = stored_properties_string(props)
        inner.tags_code = cancel_tags_code(due) if cancel else due
        return inner

    def refusal(self, props: Dict[str, str]) -> Optional[TimerRefusal]:
        """Why a message with these properties would be refused (None: it would not)."""
        if DELIVER_MS not in props and DELAY_SEC not in props and DELAY_MS not in props:
            return _CANCEL_NEEDS_TIME if DEL_KEY in props else None
        due = self.check(props, self.broker.now_ms())
        return due if isinstance(due, TimerRefusal) else None

    def check(self, props: Dict[str, str], now: int) -> Union[Optional[int], TimerRefusal]:
        """The due time the properties ask for (None: no timer), or why it is refused."""
        if not self.enabled:
            return TimerRefusal(ResponseCode.SYSTEM_ERROR,
                                "accurate timer message is not enabled, timerWheelEnable is false")
        try:
            due = due_time(props, now)
        except ValueError as e:
            return TimerRefusal(ResponseCode.MESSAGE_ILLEGAL, str(e))
        if due is not None and due - now > self.max_delay_ms:
            return TimerRefusal(
                ResponseCode.MESSAGE_ILLEGAL,
                f"timer message illegal, the delay time should not be bigger than the max delay "
                f"{self.max_delay_ms}ms (timerMaxDelaySec), this message is due in {due - now}ms")
        return due

    # -- life cycle ----------------------------------------------------------------------------------

    def encode(self) -> dict:
        return {
            "readTimeMs": self.read_ms, "cursor": -1 if self.cursor is None else self.cursor,
            "queueOffset": self.queue_offset, "logEnd": self.wheel.end, "scanFrom": self.scan_from,
            "pending": self.pending, "stepMs": self.step,
            "rebuildQueueOffset": self.rebuild_queue_offset, "rebuiltThroughMs": self.rebuilt_through_ms,
            "files": {str(k): v for k, v in sorted(self.wheel.file_last_slot.items())},
            **dict(zip(("cancelFrom", "cancelFrom0"), self.cancels.sweep(self.read_ms))),
        }

    def decode(self, data: dict) -> None:
        self.read_ms = int(data["readTimeMs"])
        cursor = int(data.get("cursor", -1))
        self.cursor = None if cursor < 0 else cursor
        self.queue_offset = int(data["queueOffset"])
        self._cp_end = int(data["logEnd"])
        self.scan_from = int(data["scanFrom"])
        self.pending = int(data.get("pending", 0))
        self._cp_step = int(data.get("stepMs", self.step))
        self.rebuild_queue_offset = int(data.get("rebuildQueueOffset", 0))
        self.rebuilt_through_ms = int(data.get("rebuiltThroughMs", 0))
        self._cp_files = {int(k): int(v) for k, v in (data.get("files") or {}).items()}
        self._cancel_from = int(data["cancelFrom"]) if "cancelFrom" in data else None
        self._cancel_from0 = int(data["cancelFrom0"]) if "cancelFrom0" in data else None

    def start(self) -> None:
        """Master only: recover (or rebuild) the wheel, then tick: at each slot's time, and every fifth of the
        precision to link new timers."""
        if self.broker.config.is_slave or not self.enabled:
            return  # a slave keeps the timer records (replicated); it fires nothing
        self.broker.topic_config_manager.create_system(TIMER_TOPIC, 1)
        self.recover()
        self.running = True
        self._next = self.reactor.callLater(0, self.tick)

    def recover(self) -> None:
        now = self.broker.now_ms()
        self._cp_end, self._cp_files, self._cp_step = 0, {}, self.step
        self._cancel_from = self._cancel_from0 = None
        had_checkpoint = self.load()
        cq = self.store.consume_queue(TIMER_TOPIC, 0)
        if not had_checkpoint:
            self.read_ms = self.wheel.slot_of(now)
            self.scan_from = self._first_timer_phy(cq)
        intact = had_checkpoint and self._cp_step == self.step and self.wheel.open(
            self._cp_end, self._cp_files, self.read_ms)
        if intact:
            undone = self.wheel.cut(self._cp_end)
            if undone:
                log.info("timer wheel: {n} links made after the last checkpoint undone, linked again",
                         n=undone)
        else:
            self.wheel.reset()
            if had_checkpoint:
                # Timers linked before (queue offset below) and due by the fired slots have been delivered.
                self.rebuild_queue_offset = max(self.rebuild_queue_offset, self.queue_offset)
                self.rebuilt_through_ms = self.read_ms - self._cp_step
                self.read_ms = self.wheel.slot_of(self.read_ms)
            self.queue_offset = cq.min_offset if cq is not None else 0
            self.cursor = None
            self.pending = 0
            log.info("timer wheel: rebuilding from the timer queue (offset {start}), {why}",
                     start=self.queue_offset, why="its files were lost or made for another precision"
                     if had_checkpoint else "no checkpoint")
        # cancellations: the legacy queue's from its checkpointed offset, the timer queue's from the oldest
        # pending one's (a checkpoint without it, an earlier version's or none: from where linking goes on)
        self.cancels.restart(self._cancel_from, self.queue_offset if self._cancel_from0 is None else self._cancel_from0)
        self.delivered_before = self._scan_marks(self.scan_from)
        self._saved = self._state()
        self._slot_scan_from = self.scan_from
        if self.delivered_before:
            log.info("timer wheel: {n} timers delivered after the last checkpoint will not be delivered again",
                     n=len(self.delivered_before))

    def _first_timer_phy(self, cq) -> int:
        if cq is None:
            return self.store.get_max_phy_offset()
        entry = cq.entry(cq.min_offset)
        return entry[0] if entry is not None else self.store.get_max_phy_offset()

    def _scan_marks(self, start: int) -> Set[int]:
        """The timer records delivered from ``start`` on: the ``TIMER_ORIGIN_PHY`` of each stored record."""
        marks: Set[int] = set()
        needle = (ORIGIN + "\x01").encode()
        start = max(start, self.store.get_min_phy_offset())
        for f, rel, size in self.store.commitlog.scan(start, False, self.store.get_max_phy_offset()):
            record = f.mm[rel:rel + size]
            if needle not in record:
                continue
            sys_flag = int.from_bytes(record[36:40], "big")
            _b, _bl, _ts, _tl, p_start, p_len = record_tail_positions(record, 0, size, sys_flag)
            props = string_to_properties(bytes(record[p_start:p_start + p_len]).decode("utf-8", "replace"))
            raw = props.get(ORIGIN, "")
            if raw.isdigit():
                marks.add(int(raw))
        return marks

    def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        if self._next is not None and self._next.active():
            self._next.cancel()
        self.save()
        self.wheel.close()

    def save(self) -> None:
        """The checkpoint, at a quiet point: the wheel's files first, then the state naming them."""
        self.scan_from = self._slot_scan_from if self.cursor is not None else self.store.get_max_phy_offset()
        self.wheel.flush()
        self.wheel.release(self.read_ms)
        self.persist()
        self._last_save = self.reactor.seconds()
        self._saved = self._state()

    # -- the wheel turning ---------------------------------------------------------------------------

    def tick(self) -> None:
        self._next = None
        busy = False
        try:
            busy = self.turn()
        except Exception:  # a bug must not stop timers for good: logged, and the next tick tries again
            log.failure("timer wheel turn failed")
        if not self.running:
            return
        poll = self.precision / 5000.0
        wait = 0.0 if busy else min(poll, max(0.0, self.read_ms / 1000.0 - self.reactor.seconds()))
        self._next = self.reactor.callLater(wait, self.tick)

    def turn(self) -> bool:
        """Link new timers and fire due slots, a bounded amount; True when there is more to do at once."""
        if self.store.space.refusal() is not None:
            return False  # a full disk refuses every delivery: wait for room
        now = self.broker.now_ms()
        half = TURN_BUDGET // 2
        if self.cancels.read(self.read_ms, half) <= 0 or not self.cancels.caught_up():
            return True  # every cancellation stored is read before anything is delivered
        linking = self.link_new(now, half)
        firing = self.fire_due(now, half + linking)
        if linking <= 0 or firing <= 0:
            return True  # more to do: on the next reactor turn
        if self.reactor.seconds() - self._last_save >= self.flush_interval and self._changed():
            self.save()
        return False

    def _changed(self) -> bool:
        """Anything to save: timers linked or fired, or the wheel a minute further (an idle wheel only turns,
        and a restart walks the empty slots since the last save)."""
        return self._state()[:5] != self._saved[:5] or self.read_ms - self._saved[5] >= 60_000

    def _state(self) -> tuple:
        return self.queue_offset, self.wheel.end, self.pending, self.fired, self.cursor, self.read_ms

    def link_new(self, now: int, budget: int) -> int:
        """Link the timer queue's new records (at most ``budget``); returns the budget left."""
        cq = self.store.consume_queue(TIMER_TOPIC, 0)
        if cq is None:
            return budget
        offset = max(self.queue_offset, cq.min_offset)
        end = cq.max_offset
        while offset < end and budget > 0:
            entry = cq.entry(offset)
            if entry is None:
                break
            phy, size, due = entry
            if due < 0:
                pass  # a cancellation (cancel_tags_code): read by self.cancels, never linked
            elif offset < self.rebuild_queue_offset and due <= self.rebuilt_through_ms:
                pass  # fired before the wheel files were lost
            else:
                slot = self.wheel.slot_of(due)
                if slot < self.read_ms or (slot == self.read_ms and self.cursor is not None):
                    if not self.deliver(phy, size, due, now):
                        break  # the store refuses puts: this record is linked on a later tick
                else:
                    self.wheel.link(min(slot, self.read_ms + SPAN_MS - self.step), due, phy, size)
                    self.pending += 1
            offset += 1
            budget -= 1
        self.queue_offset = offset
        if offset >= self.rebuild_queue_offset:
            self.rebuild_queue_offset = self.rebuilt_through_ms = 0
        return budget

    def fire_due(self, now: int, budget: int) -> int:
        """Fire the slots due by ``now`` (at most ``budget`` units and slots); returns the budget left."""
        wheel = self.wheel
        while self.read_ms <= now and budget > 0:
            if self.cursor is None:
                self._slot_scan_from = self.store.get_max_phy_offset()
            units, next_pos = wheel.walk(self.read_ms, self.cursor, budget)
            budget -= 1  # an empty slot costs a read too: catching up after a long stop takes many turns
            for pos, slot_ms, due, phy, size in units:
                budget -= 1
                if due > slot_ms:  # beyond the wheel's span when linked: link again nearer its time
                    wheel.link(min(wheel.slot_of(due), self.read_ms + SPAN_MS - self.step), due, phy, size)
                    continue
                if not self.deliver(phy, size, due, now):
                    self.cursor = pos  # the store refuses puts: fire from this unit on a later tick
                    return 0
                self.pending -= 1
            if next_pos < 0:
                self.read_ms += self.step
                self.cursor = None
            else:
                self.cursor = next_pos
        return budget

    def deliver(self, phy: int, size: int, due: int, now: int) -> bool:
        """Store one due timer in its real topic; False when the store refuses puts now."""
        if phy in self.delivered_before:
            self.delivered_before.discard(phy)
            return True
        raw = self.store.look_message_by_offset(phy, size)
        if raw is None:
            log.warn("the timer record at CommitLog offset {phy} is gone (deleted by retention?): not delivered",
                     phy=phy)
            self.lost += 1
            return True
        add = {ORIGIN: str(phy), _C.PROPERTY_TIMER_DEQUEUE_MS: str(now)}
        try:
            inner = decode_for_restore(raw)
            if self.cancels.pending and self.cancels.cancels(inner.properties, due):
                return True  # cancelled (TIMER_DEL_UNIQKEY): never delivered
            done = redeliver(self, inner, _DROP, add, lambda: f"the timer message at CommitLog offset {phy}",
                             self._counted)
        except Exception:  # a record that does not decode: never tried again, so never in the way
            log.failure("delivering the timer message at CommitLog offset {phy}: dropped", phy=phy)
            return True
        if done:
            self.fired += 1
            self.lateness.observe(max(0, now - due) / 1000.0)
        return done

    def _counted(self, msg: MessageExtBrokerInner, result) -> None:
        """A fired timer is a put into its real topic, counted as Java 5.x's TimerMessageStore.doPut counts it:
        TOPIC_PUT_NUMS/SIZE of that topic and BROKER_PUT_NUMS (its send was counted in the timer topic)."""
        stats = getattr(self.broker, "stats", None)
        if stats is not None:
            stats.message_in(msg.topic, 1, result.append_result.wrote_bytes)

    # -- metrics ---------------------------------------------------------------------------------------

    def metrics(self) -> Iterator:
        yield GaugeMetricFamily("mq_broker_timer_pending", "Timer messages waiting for their time",
                                value=self.pending)
        yield CounterMetricFamily("mq_broker_timer_fired", "Timer messages delivered to their topic",
                                  value=self.fired)
        yield CounterMetricFamily("mq_broker_timer_cancelled", "Timer messages cancelled (TIMER_DEL_UNIQKEY)",
                                  value=self.cancels.cancelled)
        yield self.lateness.family("mq_broker_timer_lateness_seconds",
                                   "Delivery time minus due time of timer messages")
