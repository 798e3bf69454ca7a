"""PullRequestHoldService: long polling. A pull that finds nothing new is held, not answered.

It is answered when a message for its queue arrives (``notify_message_arriving``, called by the store's
dispatch; the held pull is re-run at once) or when its suspend time runs out (re-run once more, which
then usually answers PULL_NOT_FOUND). Each held pull has its own timer, so a hold ends on time rather than
on RocketMQ's 5 s scan.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

from twisted.internet import defer

Key = Tuple[str, int]


class HeldPull:
    __slots__ = ("key", "request", "channel", "offset", "message_filter", "deferred", "timer", "since")

    def __init__(self, key: Key, request, channel, offset: int, message_filter, since: float) -> None:
        self.key = key
        self.request = request
        self.channel = channel
        self.offset = offset
        self.message_filter = message_filter
        self.deferred: defer.Deferred = defer.Deferred()
        self.timer = None
        self.since = since


class PullRequestHoldService:
    """``rerun(held)`` re-executes a held pull without the right to suspend and returns its response."""

    def __init__(self, reactor, rerun: Callable[[HeldPull], object]) -> None:
        self.reactor = reactor
        self.rerun = rerun
        self.table: Dict[Key, List[HeldPull]] = {}
        self.count = 0
        self.woken_by_arrival = 0
        self.woken_by_timeout = 0
        self.on_released: Optional[Callable[[HeldPull, bool], None]] = None

    def suspend(self, topic: str, queue_id: int, offset: int, request, channel, timeout_s: float,
                message_filter=None) -> defer.Deferred:
        key = (topic, queue_id)
        held = HeldPull(key, request, channel, offset, message_filter, self.reactor.seconds())
        held.timer = self.reactor.callLater(max(0.0, timeout_s), self._expire, held)
        self.table.setdefault(key, []).append(held)
        self.count += 1
        return held.deferred

    def notify_message_arriving(self, topic: str, queue_id: int, max_offset: int, tags_code: Optional[int] = None) -> None:
        """A message was dispatched to ``topic``/``queue_id``; ``max_offset`` is the queue's new next offset."""
        waiting = self.table.get((topic, queue_id))
        if not waiting:
            return
        keep = []
        wake = []
        for held in waiting:
            if held.offset >= max_offset:
                keep.append(held)
                continue
            f = held.message_filter
            if f is not None and tags_code is not None and not f.is_matched_by_consume_queue(tags_code):
                keep.append(held)
                continue
            wake.append(held)
        if not wake:
            return
        if keep:
            self.table[(topic, queue_id)] = keep
        else:
            del self.table[(topic, queue_id)]
        for held in wake:
            self.woken_by_arrival += 1
            self._release(held, False)

    def _expire(self, held: HeldPull) -> None:
        held.timer = None
        waiting = self.table.get(held.key)
        if waiting is None or held not in waiting:
            return
        waiting.remove(held)
        if not waiting:
            del self.table[held.key]
        self.woken_by_timeout += 1
        self._release(held, True)

    def _release(self, held: HeldPull, timed_out: bool) -> None:
        self.count -= 1
        if held.timer is not None and held.timer.active():
            held.timer.cancel()
        held.timer = None
        if self.on_released is not None:
            self.on_released(held, timed_out)
        if not getattr(held.channel, "connected", True):
            held.deferred.callback(None)  # nobody to answer
            return
        try:
            response = self.rerun(held)
        except Exception as e:  # the dispatcher turns the failure into SYSTEM_ERROR
            held.deferred.errback(e)
            return
        held.deferred.callback(response)

    def release_all(self) -> None:
        """Answer every held pull now (graceful stop)."""
        table, self.table = self.table, {}
        for waiting in table.values():
            for held in waiting:
                self._release(held, True)
