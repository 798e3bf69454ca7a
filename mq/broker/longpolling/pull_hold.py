"""PullRequestHoldService: long polling. A pull that finds nothing new is held, not answered.

It is answered when a message for its queue arrives (``notify_message_arriving``, called by the store's
dispatch; the held pull is re-run at once) or when its suspend time runs out (re-run once more, which
then usually answers PULL_NOT_FOUND). Each held pull has its own timer, so a hold ends on time rather than
on RocketMQ's 5 s scan.

Every hold is bounded: the processor clamps its time (``pullHoldMaxTimeMills``), a connection may have at most
``max_per_connection()`` holds and ``MAX_BYTES_PER_CONNECTION`` of held headers at once (``refusal``), and a
closed connection's holds are dropped at once (``channel_closed``): nobody is left to answer, and its holds
must not wait for a message or a timer to free their memory.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

from twisted.internet import defer
from twisted.logger import Logger

log = Logger()

Key = Tuple[str, int]

#: Bytes of held pull headers (mostly subscription expressions) one connection may keep at once: a header may be
#: as large as a frame, and thousands of held copies of one would be gigabytes.
MAX_BYTES_PER_CONNECTION = 16 * 1024 * 1024
#: What one hold costs besides its header (the objects, the timer, the Deferred and its callbacks), in bytes.
HOLD_OVERHEAD = 1024


class HeldPull:
    __slots__ = ("key", "request", "channel", "offset", "message_filter", "deferred", "timer", "since", "size")

    def __init__(self, key: Key, request, channel, offset: int, message_filter, since: float, size: int) -> None:
        self.key = key
        self.request = request
        self.channel = channel
        self.offset = offset
        self.message_filter = message_filter
        self.deferred: defer.Deferred = defer.Deferred()
        self.timer = None
        self.since = since
        self.size = size


class PullRequestHoldService:
    """``rerun(held)`` re-executes a held pull without the right to suspend and returns its response."""

    def __init__(self, reactor, rerun: Callable[[HeldPull], object],
                 max_per_connection: Callable[[], int] = lambda: 10_000) -> None:
        self.reactor = reactor
        self.rerun = rerun
        self.max_per_connection = max_per_connection
        #: Held pulls by queue, in arrival order (dicts: a hold leaves its queue in O(1), however many wait there).
        self.table: Dict[Key, Dict[HeldPull, None]] = {}
        #: Held pulls by connection, and the bytes they hold.
        self.by_channel: Dict[object, Dict[HeldPull, None]] = {}
        self.channel_bytes: Dict[object, int] = {}
        self.count = 0
        self.woken_by_arrival = 0
        self.woken_by_timeout = 0
        self.dropped_by_close = 0
        self.on_released: Optional[Callable[[HeldPull, bool], None]] = None

    def refusal(self, channel, size: int) -> Optional[str]:
        """Why ``channel`` may not have one more pull of ``size`` header bytes held, or None."""
        holds = len(self.by_channel.get(channel, ()))
        limit = self.max_per_connection()
        if holds >= limit:
            return (f"the connection from {getattr(channel, 'peer', '?')} already has {holds} pulls held "
                    f"(pullHoldMaxPerConnection {limit}): try again later")
        held_bytes = self.channel_bytes.get(channel, 0)
        if held_bytes + size + HOLD_OVERHEAD > MAX_BYTES_PER_CONNECTION:
            return (f"the connection from {getattr(channel, 'peer', '?')} already has {held_bytes} bytes of pulls "
                    f"held, a {size}-byte one more is past {MAX_BYTES_PER_CONNECTION}: try again later")
        return None

    def suspend(self, topic: str, queue_id: int, offset: int, request, channel, timeout_s: float,
                message_filter=None, size: int = 0) -> defer.Deferred:
        """Hold a pull for at most ``timeout_s`` (the caller clamps it and checks ``refusal`` first)."""
        key = (topic, queue_id)
        held = HeldPull(key, request, channel, offset, message_filter, self.reactor.seconds(), size + HOLD_OVERHEAD)
        held.timer = self.reactor.callLater(max(0.0, timeout_s), self._expire, held)
        self.table.setdefault(key, {})[held] = None
        self.by_channel.setdefault(channel, {})[held] = None
        self.channel_bytes[channel] = self.channel_bytes.get(channel, 0) + held.size
        self.count += 1
        return held.deferred

    def notify_message_arriving(self, topic: str, queue_id: int, max_offset: int, tags_code: Optional[int] = None) -> None:
        """A message was dispatched to ``topic``/``queue_id``; ``max_offset`` is the queue's new next offset."""
        waiting = self.table.get((topic, queue_id))
        if not waiting:
            return
        wake = []
        for held in waiting:
            if held.offset >= max_offset:
                continue
            f = held.message_filter
            if f is not None and tags_code is not None and not f.is_matched_by_consume_queue(tags_code):
                continue
            wake.append(held)
        if not wake:
            return
        for held in wake:
            del waiting[held]
        if not waiting:
            del self.table[(topic, queue_id)]
        for held in wake:
            self.woken_by_arrival += 1
            self._release(held, False)

    def _expire(self, held: HeldPull) -> None:
        held.timer = None
        waiting = self.table.get(held.key)
        if waiting is None or held not in waiting:
            return
        del waiting[held]
        if not waiting:
            del self.table[held.key]
        self.woken_by_timeout += 1
        self._release(held, True)

    def _forget(self, held: HeldPull) -> None:
        """Take a hold out of its connection's index and stop its timer (it left its queue's table already)."""
        self.count -= 1
        if held.timer is not None and held.timer.active():
            held.timer.cancel()
        held.timer = None
        channel = held.channel
        mine = self.by_channel.get(channel)
        if mine is None or held not in mine:
            return
        del mine[held]
        if mine:
            self.channel_bytes[channel] -= held.size
        else:
            del self.by_channel[channel]
            del self.channel_bytes[channel]

    def _release(self, held: HeldPull, timed_out: bool) -> None:
        self._forget(held)
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

    def channel_closed(self, channel) -> int:
        """Drop every pull ``channel`` has held, unanswered (the connection is gone); how many there were."""
        mine = self.by_channel.get(channel)
        if not mine:
            return 0
        dropped = list(mine)
        for held in dropped:
            waiting = self.table.get(held.key)
            if waiting is not None and held in waiting:
                del waiting[held]
                if not waiting:
                    del self.table[held.key]
            self._forget(held)
            held.deferred.callback(None)
        self.dropped_by_close += len(dropped)
        log.info("dropped {n} held pulls of the closed connection from {peer}", n=len(dropped),
                 peer=getattr(channel, "peer", "?"))
        return len(dropped)

    def release_all(self) -> None:
        """Answer every held pull now (graceful stop)."""
        table, self.table = self.table, {}
        for waiting in table.values():
            for held in waiting:
                self._release(held, True)
