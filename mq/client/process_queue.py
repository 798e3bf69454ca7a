"""``ProcessQueue``: the messages pulled from one queue and not yet consumed (Java ``ProcessQueue``).

Offsets arrive in increasing order, so an insertion-ordered dict keyed by queue offset is also a sorted map:
its first key is the lowest offset still being worked on, which is the offset safe to commit. The counts
and sizes drive flow control: the consumer stops pulling a queue that holds more than 1,000 messages or
100 MiB until the listener catches up.
"""

from __future__ import annotations

from typing import Dict, Iterable, List

from mq.common.message import MessageExt

#: A client's own queue lock counts as expired after 30 s without a renewal (the broker's lasts 60 s).
LOCK_MAX_LIVE = 30.0


class ProcessQueue:
    """Pulled-but-unconsumed messages of one message queue, with the state of the queue's pulling."""

    def __init__(self) -> None:
        self.messages: Dict[int, MessageExt] = {}
        #: orderly consumption: messages handed to the listener and not yet committed
        self.consuming: Dict[int, MessageExt] = {}
        self.count = 0
        self.size = 0
        self.max_offset = -1  # highest queue offset ever put
        self.dropped = False
        self.locked = False
        self.last_lock_time = 0.0
        self.last_pull_time = 0.0
        self.last_consume_time = 0.0
        self.consuming_now = False  # orderly: a consume loop runs for this queue

    def put(self, msgs: Iterable[MessageExt]) -> int:
        """Add pulled messages; how many were new."""
        added = 0
        table = self.messages
        for m in msgs:
            off = m.queue_offset
            if off in table or off in self.consuming:
                continue
            table[off] = m
            added += 1
            self.size += len(m.body)
            if off > self.max_offset:
                self.max_offset = off
        self.count += added
        return added

    def remove(self, msgs: Iterable[MessageExt]) -> int:
        """Forget consumed messages; the offset to commit (the lowest one still held, or the next after the
        highest seen), or -1 if the queue held nothing."""
        table = self.messages
        if not table:
            return -1
        for m in msgs:
            if table.pop(m.queue_offset, None) is not None:
                self.count -= 1
                self.size -= len(m.body)
        if table:
            return next(iter(table))
        return self.max_offset + 1

    @property
    def max_span(self) -> int:
        """Distance between the lowest and highest offsets held (concurrent flow control: 2,000)."""
        if not self.messages:
            return 0
        return next(reversed(self.messages)) - next(iter(self.messages))

    def first_offset(self) -> int:
        return next(iter(self.messages)) if self.messages else -1

    # -- orderly ---------------------------------------------------------------------------------------

    def take(self, n: int) -> List[MessageExt]:
        """Move the ``n`` lowest messages to the consuming set and return them."""
        out = []
        table = self.messages
        while table and len(out) < n:
            off = next(iter(table))
            m = table.pop(off)
            self.consuming[off] = m
            out.append(m)
        return out

    def commit(self) -> int:
        """Orderly: the messages being consumed are done; the offset to commit (-1 if there were none)."""
        if not self.consuming:
            return -1
        last = max(self.consuming)
        self.count -= len(self.consuming)
        self.size -= sum(len(m.body) for m in self.consuming.values())
        self.consuming.clear()
        return last + 1

    def consume_again(self, msgs: Iterable[MessageExt]) -> None:
        """Orderly: put taken messages back in front, to be consumed again."""
        back = {}
        for m in sorted(msgs, key=lambda m: m.queue_offset):
            if self.consuming.pop(m.queue_offset, None) is not None:
                back[m.queue_offset] = m
        back.update(self.messages)
        self.messages = back

    def lock_expired(self, now: float) -> bool:
        return now - self.last_lock_time > LOCK_MAX_LIVE

    def clear(self) -> None:
        self.messages.clear()
        self.consuming.clear()
        self.count = self.size = 0
