"""Which ConsumeQueue files a logic flush syncs, and what the checkpoint may then say about them.

RocketMQ's rule: a queue is flushed once it has ``flushConsumeQueueLeastPages`` dirty pages, and every dirty
queue at least every ``flushConsumeQueueThoroughInterval``. With thousands of queues taking a few messages a
second each, flushing every dirty one every second was thousands of fdatasyncs a second.

A pass over the queues is cut into chunks of at most ``chunk_files`` files, one flush job each: the store's
fsyncs run one job at a time, and a thorough pass over 8,000 dirty queues (0.37 s of fdatasync here) would
otherwise hold back every SYNC_FLUSH put's group commit behind it. Between two chunks the CommitLog's group
commit goes first. The checkpoint may name queue entries durable up to the CommitLog offset dispatched when
the pass began, once the pass has ended and left no queue dirty: every entry dispatched before then was in
its queue's pages when that queue was synced.
"""

from __future__ import annotations

from typing import Callable, Iterable, List, Optional, Tuple

import attrs

from mq.store.consumequeue import ConsumeQueue
from mq.store.mappedfile import PAGE, MappedFile, MappedFileQueue

CHUNK_FILES = 512  # queue files synced by one flush job at most, unless the pass must be whole


@attrs.define
class QueueChunk:
    """What one flush job does for the queues.

    ``durable_upto``: with the last chunk of a pass, the CommitLog offset up to which every queue entry is now
    durable, or None when the pass left some queue dirty (the checkpoint keeps its previous offset then);
    ``last``: whether the pass ends with this chunk (the job then flushes the index and writes the checkpoint).
    """

    files: List[MappedFile]
    dirs: List[MappedFileQueue]
    flushed: List[Tuple[MappedFileQueue, int]]  # each queue's ``wrote`` when taken: its ``flushed`` after the job
    last: bool
    durable_upto: Optional[int]
    thorough: bool


@attrs.define
class _Pass:
    queues: List[ConsumeQueue]  # still to look at, in reverse (popped from the end)
    dispatched: int
    thorough: bool
    left_dirty: bool = False


class QueueFlushPlanner:
    """Cuts passes over the queues into chunks; keeps when the last thorough pass ended."""

    def __init__(self, least_pages: Callable[[], int], thorough_interval_ms: Callable[[], int],
                 chunk_files: int = CHUNK_FILES) -> None:
        self.least_pages = least_pages
        self.thorough_interval_ms = thorough_interval_ms
        self.chunk_files = chunk_files
        self.thorough_ms = 0  # when a thorough pass last ended (the first pass is thorough)
        self._pass: Optional[_Pass] = None

    @property
    def in_pass(self) -> bool:
        return self._pass is not None

    def next_chunk(self, queues: Iterable[ConsumeQueue], dispatched: int, now_ms: int, whole: bool) -> QueueChunk:
        """The next chunk of the current pass, starting one if none is under way. ``whole``: a thorough pass
        in one chunk, starting afresh (at stop, and after recovery)."""
        p = self._pass
        if whole or p is None:
            thorough = whole or now_ms - self.thorough_ms >= self.thorough_interval_ms()
            p = self._pass = _Pass(list(queues)[::-1], dispatched, thorough)
        least = 0 if p.thorough else self.least_pages()
        limit = None if whole else self.chunk_files
        files: List[MappedFile] = []
        dirs: List[MappedFileQueue] = []
        flushed: List[Tuple[MappedFileQueue, int]] = []
        todo = p.queues
        while todo and (limit is None or len(files) < limit):
            q = todo.pop().files
            if not q.files or (q.wrote <= q.flushed and not q.dir_dirty):  # clean, or deleted since the pass began
                continue
            if least and q.wrote // PAGE - q.flushed // PAGE < least:  # a new file too: recovery re-dispatches
                p.left_dirty = True
                continue
            files.extend(q.dirty_files())
            if q.dir_dirty:
                dirs.append(q)
                q.dir_dirty = False
            flushed.append((q, q.wrote))
        last = not todo
        if last:
            self._pass = None
        return QueueChunk(files, dirs, flushed, last, None if p.left_dirty else p.dispatched, p.thorough)

    def abandon(self) -> None:
        """Forget the pass under way (the store was truncated: its start offset may name entries gone)."""
        self._pass = None

    def pass_ended(self, chunk: QueueChunk, now_ms: int) -> None:
        """The last chunk's job completed and its checkpoint was written."""
        if chunk.thorough:
            self.thorough_ms = now_ms
