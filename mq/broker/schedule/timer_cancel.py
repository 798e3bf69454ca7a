"""Cancelling a pending timer message (RocketMQ 5.x ``TIMER_DEL_UNIQKEY``).

A send with ``TIMER_DEL_UNIQKEY`` = ``<topic>+<UNIQ_KEY>`` (5.3's form; 5.0-5.2 sent the bare UNIQ_KEY, read
here with the message's own topic) and a delivery time in the future cancels the timer of that topic and id
due in the same precision window (5.x: the same slot; a window is ``(due - 1) // precision``, as 5.x rounds).
Every timer with that id in the window is cancelled (a producer's retry stored twice, say), and the
cancellation itself is never delivered. A cancellation with no time in the future is refused (MESSAGE_ILLEGAL),
as in 5.x.

Cancellations are parked like timers, in queue 0 of ``rmq_sys_wheel_timer`` as RocketMQ 5.x parks them
(HookUtils puts every timer message there), with the due time negated as their ConsumeQueue tags code
(``cancel_tags_code``) so the service tells them from timers without reading the CommitLog. The service links
timers and takes cancellations in queue order, every one stored before anything fires, and keeps the pending
ones in a dict (``(key, window)`` → where they are), at most ``MAX_PENDING`` (beyond, a cancellation is
refused with SYSTEM_ERROR, as 5.x's flow control); a window's are dropped once it has fired. The checkpoint
keeps the queue offset of the oldest pending one (``cancelFrom0``): a restart reads the cancellations again
from there up to where linking goes on, so a timer cancelled before a crash is cancelled again when the work
since the checkpoint is redone.

A store written by an earlier mq (which put cancellations in queue 1, ``LEGACY_QUEUE``, its checkpoint's
``cancelFrom`` the oldest pending one's offset there) is read as it was: queue 1 from ``cancelFrom`` is read
before anything fires, so cancellations stored by the old version are honoured after the upgrade; nothing new
is written there.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

from twisted.logger import Logger

from mq.common.message import MessageConst
from mq.common.message_record import record_properties
from mq.common.topic import TIMER_TOPIC

log = Logger()

DEL_KEY = MessageConst.PROPERTY_TIMER_DEL_UNIQKEY
#: Where cancellations are parked: with the timers (RocketMQ 5.x).
CANCEL_QUEUE = 0
#: Where earlier versions of mq parked them; read (never written) so an upgraded store honours them.
LEGACY_QUEUE = 1
#: Cancellations held at once; one is ~200 bytes of memory.
MAX_PENDING = 100_000
_REAL_TOPIC = MessageConst.PROPERTY_REAL_TOPIC
_UNIQ = MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX


def cancel_key(value: str, topic: str) -> str:
    """``<topic>+<UNIQ_KEY>`` for a ``TIMER_DEL_UNIQKEY`` value of either form (a topic has no ``+``)."""
    return value if "+" in value else f"{topic}+{value}"


def cancel_tags_code(due: int) -> int:
    """A cancellation's ConsumeQueue tags code in the timer queue: its due time negated (a timer's is its due
    time, always positive)."""
    return -due


class TimerCancels:
    """The pending cancellations of one timer service (``precision`` its window, ms)."""

    def __init__(self, store, precision: int, max_pending: int = MAX_PENDING) -> None:
        self.store = store
        self.precision = precision
        self.max_pending = max_pending
        #: (key, window) → (queue id, queue offset) of the cancellation.
        self.pending: Dict[Tuple[str, int], Tuple[int, int]] = {}
        #: The next legacy-queue offset to read.
        self.offset = 0
        #: The next timer-queue offset to look at for cancellations (ahead of linking: every cancellation
        #: stored is known before any timer is delivered, even one linked late and delivered at once).
        self.ahead = 0
        #: Timers cancelled, since the start.
        self.cancelled = 0

    def window(self, due: int) -> int:
        return (due - 1) // self.precision

    def full(self) -> bool:
        """Whether a new cancellation is to be refused: the pending ones and every entry not yet read that
        may be one (timer-queue entries are read as they come, so few are unread but in a burst of sends)
        reach the bound."""
        unread = 0
        for queue_id, read in ((LEGACY_QUEUE, self.offset), (CANCEL_QUEUE, self.ahead)):
            cq = self.store.consume_queue(TIMER_TOPIC, queue_id)
            if cq is not None:
                unread += max(0, cq.max_offset - max(read, cq.min_offset))
        return len(self.pending) + unread >= self.max_pending

    def restart(self, legacy_from: Optional[int], timer_from: int) -> None:
        """Read again: the legacy queue from ``legacy_from`` (a checkpoint's ``cancelFrom``; None: its first),
        the timer queue's cancellations from ``timer_from`` (``cancelFrom0``, or where linking goes on)."""
        self.pending.clear()
        cq = self.store.consume_queue(TIMER_TOPIC, LEGACY_QUEUE)
        first = cq.min_offset if cq is not None else 0
        self.offset = first if legacy_from is None else max(legacy_from, first)
        self.ahead = timer_from

    def _take(self, queue_id: int, offset: int, phy: int, size: int, due: int, oldest: int) -> None:
        """Hold the cancellation stored at ``phy`` if its window has not fired."""
        window = self.window(due)
        if window < oldest:
            return
        raw = self.store.look_message_by_offset(phy, size)
        if raw is None:
            log.warn("the timer cancellation at CommitLog offset {phy} is gone: not applied", phy=phy)
            return
        props = record_properties(raw)
        value, topic = props.get(DEL_KEY), props.get(_REAL_TOPIC)
        if value and topic:
            self.pending[(cancel_key(value, topic), window)] = (queue_id, offset)

    def read(self, fired_before_ms: int, budget: int) -> int:
        """Load, at most ``budget`` entries read, the new cancellations of the legacy queue and of the timer
        queue whose window has not fired; returns the budget left."""
        oldest = self.window(fired_before_ms)
        self.offset, budget = self._scan(LEGACY_QUEUE, self.offset, budget, oldest)
        self.ahead, budget = self._scan(CANCEL_QUEUE, self.ahead, budget, oldest)
        return budget

    def _scan(self, queue_id: int, offset: int, budget: int, oldest: int) -> Tuple[int, int]:
        """Take the cancellations of one queue from ``offset`` on (every entry of the legacy queue, the
        negative tags codes of the timer queue); (the next offset, the budget left)."""
        cq = self.store.consume_queue(TIMER_TOPIC, queue_id)
        if cq is None:
            return offset, budget
        offset = max(offset, cq.min_offset)
        end = cq.max_offset
        while offset < end and budget > 0:
            entry = cq.entry(offset)
            if entry is None:
                if queue_id == CANCEL_QUEUE:
                    break  # linking waits for this entry too
                # a hole in the legacy queue's files: skipped, never waited for
                log.warn("timer cancellation queue offset {offset} is unreadable: skipped", offset=offset)
            elif queue_id == LEGACY_QUEUE or entry[2] < 0:
                self._take(queue_id, offset, entry[0], entry[1], abs(entry[2]), oldest)
            offset += 1
            budget -= 1
        return offset, budget

    def caught_up(self) -> bool:
        """Every cancellation stored so far read (a hole in the timer queue ends what can be read)."""
        cq = self.store.consume_queue(TIMER_TOPIC, LEGACY_QUEUE)
        if cq is not None and self.offset < cq.max_offset:
            return False
        cq = self.store.consume_queue(TIMER_TOPIC, CANCEL_QUEUE)
        return cq is None or self.ahead >= cq.max_offset or cq.entry(self.ahead) is None

    def cancels(self, props: Dict[str, str], due: int) -> bool:
        """Whether the timer with these (stored) properties, due at ``due``, is cancelled; counted if so."""
        uniq, topic = props.get(_UNIQ), props.get(_REAL_TOPIC)
        if uniq and topic and (f"{topic}+{uniq}", self.window(due)) in self.pending:
            self.cancelled += 1
            return True
        return False

    def sweep(self, fired_before_ms: int) -> Tuple[int, int]:
        """Drop the cancellations of windows that have fired; returns where a restart reads from: in the
        legacy queue and in the timer queue, the oldest pending one's offset or else the next to read."""
        oldest = self.window(fired_before_ms)
        if self.pending:
            self.pending = {k: where for k, where in self.pending.items() if k[1] >= oldest}
        legacy = [off for q, off in self.pending.values() if q == LEGACY_QUEUE]
        timer = [off for q, off in self.pending.values() if q == CANCEL_QUEUE]
        return min(legacy, default=self.offset), min(timer, default=self.ahead)
