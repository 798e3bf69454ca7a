"""The store's flush jobs: what each fsync job of ``FlushService`` syncs, and the checkpoint it then writes.

Kept apart from the put path in ``mq.store.store``: the CommitLog job (group commit), the logic job (queues in
chunks: ``mq.store.queue_flush``, then the index and the checkpoint) and the once-a-second tick that asks for
the latter and gives mapped pages back.
"""

from __future__ import annotations

from typing import List, Optional

from twisted.logger import Logger

from mq.store.checkpoint import Checkpoint, write_checkpoint
from mq.store.flush import Job
from mq.store.mappedfile import MappedFile, MappedFileQueue, fsync_dir
from mq.store.queue_flush import QueueChunk

log = Logger()

SWEEP_TICKS = 60  # every 60th logic tick (a minute by default) gives back every queue page reads brought in


class StoreFlushing:
    """Mixed into ``MessageStore``; uses its ``commitlog``, ``queues``, ``index``, ``config``, ``checkpoint``,
    ``checkpoint_path``, ``dispatcher``, ``flusher``, ``queue_flush``, ``reput_offset`` and ``now_ms``."""

    def _prepare_commitlog_flush(self) -> Optional[Job]:
        files = self.commitlog.files
        target = files.wrote
        if target <= files.flushed and not files.dir_dirty:
            return None
        dirty = files.dirty_files()
        sync_dir = files.dir_dirty
        files.dir_dirty = False

        def blocking() -> None:
            for f in dirty:
                f.sync()
            if sync_dir:
                files.sync_dir()

        def complete() -> None:
            if target > files.flushed:
                files.flushed = target

        return blocking, complete

    def _prepare_logic_flush(self, thorough: Optional[bool] = None) -> Optional[Job]:
        """CommitLog, then queues (a chunk of them: ``queue_flush``), then, when a pass over the queues ends,
        the index and the checkpoint naming what is now known durable. ``thorough``: every queue, in one job
        (at stop and after recovery)."""
        cl_job = self._prepare_commitlog_flush()
        now = self.now_ms()
        dispatched = self.reput_offset
        planner = self.queue_flush
        chunk = planner.next_chunk(self.queues.all(), dispatched, now, whole=bool(thorough))
        if not chunk.last:
            return self._queue_chunk_job(cl_job, chunk)
        index_dirty = self.index.collect_dirty() if self.index is not None else []
        dirty = chunk.files + index_dirty
        logics = self.checkpoint.logics_offset if chunk.durable_upto is None else chunk.durable_upto
        if cl_job is None and not dirty and not chunk.dirs and (
                self.checkpoint.logics_offset, self.checkpoint.index_offset) == (logics, dispatched):
            return None
        ts = self.dispatcher.last_store_timestamp
        cp = Checkpoint(ts, ts, ts, self.commitlog.files.wrote, logics, dispatched)
        path = self.checkpoint_path
        failed: List[OSError] = []

        def blocking() -> None:
            self._sync_queue_chunk(cl_job, dirty, chunk.dirs)
            if index_dirty:
                fsync_dir(self.config.index_dir)
            try:
                write_checkpoint(path, cp)
            except OSError as e:  # the old checkpoint still names offsets that are durable: recovery is right
                failed.append(e)

        def complete() -> None:
            _complete_queue_chunk(cl_job, chunk)
            if failed:  # the next logic flush writes it again (self.checkpoint is left behind)
                if not self._checkpoint_failing:
                    log.warn("cannot write {path} ({e}): the previous one is kept; trying again",
                             path=path, e=failed[0].strerror or failed[0])
                self._checkpoint_failing = True
                return
            if self._checkpoint_failing:
                log.info("{path} written again", path=path)
                self._checkpoint_failing = False
            self.checkpoint = cp
            planner.pass_ended(chunk, now)

        return blocking, complete

    def _queue_chunk_job(self, cl_job: Optional[Job], chunk: QueueChunk) -> Job:
        """A chunk of a pass over the queues that is not its last: when done, the next one is asked for (a
        SYNC_FLUSH group commit waiting meanwhile goes first)."""

        def complete() -> None:
            _complete_queue_chunk(cl_job, chunk)
            self.flusher.request_logic()

        return lambda: self._sync_queue_chunk(cl_job, chunk.files, chunk.dirs), complete

    def _sync_queue_chunk(self, cl_job: Optional[Job], files: List[MappedFile], dirs: List[MappedFileQueue]) -> None:
        if cl_job is not None:
            cl_job[0]()
        for f in files:
            f.sync()
        for q in dirs:
            q.sync_dir()
        if dirs:
            fsync_dir(self.config.consume_queue_dir)

    def _logic_tick(self) -> None:
        self.flusher.request_logic()
        # Resident memory stays flat: mapped pages go back to the page cache once a second (a queue's page
        # being written excepted, all its pages at every SWEEP_TICKS-th tick).
        self.commitlog.release_pages()
        self._ticks += 1
        sweep = self._ticks % SWEEP_TICKS == 0
        for cq in self.queues.all():
            cq.release_pages(sweep)
        if self.index is not None:
            self.index.release_pages()


def _complete_queue_chunk(cl_job: Optional[Job], chunk: QueueChunk) -> None:
    if cl_job is not None:
        cl_job[1]()
    for q, wrote in chunk.flushed:
        if wrote > q.flushed:
            q.flushed = wrote
