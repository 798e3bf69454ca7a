"""Cancelling a pending timer message (RocketMQ 5.x ``TIMER_DEL_UNIQKEY``).

A send with ``TIMER_DEL_UNIQKEY`` = ``<topic>+<UNIQ_KEY>`` (5.3's form; 5.0-5.2 sent the bare UNIQ_KEY, read
here with the message's own topic) and a delivery time in the future cancels the timer of that topic and id
due in the same precision window (5.x: the same slot; a window is ``(due - 1) // precision``, as 5.x rounds).
Every timer with that id in the window is cancelled (a producer's retry stored twice, say), and the
cancellation itself is never delivered. A cancellation with no time in the future is refused (MESSAGE_ILLEGAL),
as in 5.x.

Cancellations are parked like timers but in queue 1 of ``rmq_sys_wheel_timer`` (timers are in queue 0), so the
wheel never holds them: the service reads queue 1 before it fires anything and keeps the pending ones in a dict
(``(key, window)`` → queue offset), at most ``MAX_PENDING`` of them (beyond, a cancellation is refused with
SYSTEM_ERROR, as 5.x's flow control). A window's cancellations are dropped once it has fired. The checkpoint
keeps the queue offset of the oldest pending one, so a restart or a crash reads them again from there: a
timer cancelled before a crash is cancelled again when the work since the checkpoint is redone.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

from twisted.logger import Logger

from mq.common.message import MessageConst, record_properties
from mq.common.topic import TIMER_TOPIC

log = Logger()

DEL_KEY = MessageConst.PROPERTY_TIMER_DEL_UNIQKEY
#: The timer topic's queue of cancellations (queue 0 holds the timers).
CANCEL_QUEUE = 1
#: Cancellations held at once; one is ~200 bytes of memory.
MAX_PENDING = 100_000
_REAL_TOPIC = MessageConst.PROPERTY_REAL_TOPIC
_UNIQ = MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX


def cancel_key(value: str, topic: str) -> str:
    """``<topic>+<UNIQ_KEY>`` for a ``TIMER_DEL_UNIQKEY`` value of either form (a topic has no ``+``)."""
    return value if "+" in value else f"{topic}+{value}"


class TimerCancels:
    """The pending cancellations of one timer service (``precision`` its window, ms)."""

    def __init__(self, store, precision: int, max_pending: int = MAX_PENDING) -> None:
        self.store = store
        self.precision = precision
        self.max_pending = max_pending
        self.pending: Dict[Tuple[str, int], int] = {}
        #: The next queue offset to read.
        self.offset = 0
        #: Timers cancelled, since the start.
        self.cancelled = 0

    def window(self, due: int) -> int:
        return (due - 1) // self.precision

    def full(self) -> bool:
        """Whether a new cancellation is to be refused: the pending and the not yet read reach the bound."""
        cq = self.store.consume_queue(TIMER_TOPIC, CANCEL_QUEUE)
        unread = 0 if cq is None else max(0, cq.max_offset - max(self.offset, cq.min_offset))
        return len(self.pending) + unread >= self.max_pending

    def restart(self, offset: Optional[int]) -> None:
        """Read again from ``offset`` (a checkpoint's ``cancelFrom``; None: the queue's first)."""
        self.pending.clear()
        cq = self.store.consume_queue(TIMER_TOPIC, CANCEL_QUEUE)
        first = cq.min_offset if cq is not None else 0
        self.offset = first if offset is None else max(offset, first)

    def read(self, fired_before_ms: int, budget: int) -> int:
        """Load new cancellations (at most ``budget``) whose window has not fired; returns the budget left."""
        cq = self.store.consume_queue(TIMER_TOPIC, CANCEL_QUEUE)
        if cq is None:
            return budget
        offset = max(self.offset, cq.min_offset)
        end = cq.max_offset
        oldest = self.window(fired_before_ms)
        while offset < end and budget > 0:
            entry = cq.entry(offset)
            if entry is None:  # a hole in the queue's files: skipped, never waited for (firing waits on these)
                log.warn("timer cancellation queue offset {offset} is unreadable: skipped", offset=offset)
                offset += 1
                budget -= 1
                continue
            phy, size, due = entry
            raw = self.store.look_message_by_offset(phy, size)
            props = record_properties(raw) if raw is not None else {}
            value, topic = props.get(DEL_KEY), props.get(_REAL_TOPIC)
            window = self.window(due)
            if value and topic and window >= oldest:
                self.pending[(cancel_key(value, topic), window)] = offset
            elif raw is None:
                log.warn("the timer cancellation at CommitLog offset {phy} is gone: not applied", phy=phy)
            offset += 1
            budget -= 1
        self.offset = offset
        return budget

    def caught_up(self) -> bool:
        cq = self.store.consume_queue(TIMER_TOPIC, CANCEL_QUEUE)
        return cq is None or self.offset >= cq.max_offset

    def cancels(self, props: Dict[str, str], due: int) -> bool:
        """Whether the timer with these (stored) properties, due at ``due``, is cancelled; counted if so."""
        uniq, topic = props.get(_UNIQ), props.get(_REAL_TOPIC)
        if uniq and topic and (f"{topic}+{uniq}", self.window(due)) in self.pending:
            self.cancelled += 1
            return True
        return False

    def sweep(self, fired_before_ms: int) -> int:
        """Drop the cancellations of windows that have fired; returns the queue offset to read from after a
        restart (the oldest pending one's, or the next to read)."""
        oldest = self.window(fired_before_ms)
        if self.pending:
            self.pending = {k: off for k, off in self.pending.items() if k[1] >= oldest}
        return min(self.pending.values(), default=self.offset)
