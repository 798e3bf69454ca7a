"""Flushing: every fsync of the store runs here, one job at a time, off the reactor thread.

Group commit: a SYNC_FLUSH put registers the CommitLog offset it needs on disk. While one fsync runs, new
puts queue up; when it ends, every waiter it covered fires, and one new fsync serves all that queued
meanwhile. A waiter not covered within ``sync_flush_timeout`` gets ``False`` (FLUSH_DISK_TIMEOUT).
Serialising jobs also gives the store safe moments (``when_idle``) to close or delete files.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Deque, List, Optional, Tuple

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()

Job = Tuple[Callable[[], Any], Callable[[], None]]
"""(blocking function run in a thread, completion run in the reactor thread)."""


class FlushService:
    def __init__(
        self,
        reactor: Any,
        run_blocking: Callable[[Callable[[], Any]], defer.Deferred],
        prepare_commitlog: Callable[[], Optional[Job]],
        prepare_logic: Callable[..., Optional[Job]],
        flushed_offset: Callable[[], int],
        sync_timeout_ms: int,
    ) -> None:
        self.reactor = reactor
        self.run_blocking = run_blocking
        self.prepare_commitlog = prepare_commitlog
        self.prepare_logic = prepare_logic
        self.flushed_offset = flushed_offset
        self.sync_timeout = sync_timeout_ms / 1000.0
        self.busy = False
        self.fsync_count = 0
        self._waiters: Deque[List[Any]] = deque()  # [end offset, deadline, Deferred]
        self._want_commitlog = False
        self._want_logic = False
        self._last_logic = False  # whether the last job started was a logic one
        self._idle: List[defer.Deferred] = []
        self._kick_call: Optional[IDelayedCall] = None
        self._timeout_call: Optional[IDelayedCall] = None

    # ------------------------------------------------------------------ requests

    def wait_for(self, end: int) -> defer.Deferred:
        """Deferred[bool]: True once CommitLog bytes up to ``end`` are on disk, False after the timeout."""
        if self.flushed_offset() >= end:
            return defer.succeed(True)
        d: defer.Deferred = defer.Deferred()
        self._waiters.append([end, self.reactor.seconds() + self.sync_timeout, d])
        if self._timeout_call is None:
            self._arm_timeout()
        self._want_commitlog = True
        self._schedule()
        return d

    def request_commitlog(self) -> None:
        self._want_commitlog = True
        self._schedule()

    def request_logic(self) -> None:
        self._want_logic = True
        self._schedule()

    def when_idle(self) -> defer.Deferred:
        """Fires when no fsync is running (immediately if none): the moment to close or delete files."""
        if not self.busy:
            return defer.succeed(None)
        d: defer.Deferred = defer.Deferred()
        self._idle.append(d)
        return d

    def drain(self) -> defer.Deferred:
        """Flush CommitLog, then every queue, index and checkpoint; fires when both are done."""
        d = self.when_idle()
        d.addCallback(lambda _: self._run_now(self.prepare_commitlog()))
        d.addCallback(lambda _: self._run_now(self.prepare_logic(thorough=True)))
        return d

    def stop(self) -> None:
        for call in (self._kick_call, self._timeout_call):
            if call is not None and call.active():
                call.cancel()
        self._kick_call = self._timeout_call = None

    # ------------------------------------------------------------------ running jobs

    def _schedule(self) -> None:
        if self._kick_call is None and not self.busy:
            # Wait for the end of this reactor turn: puts arriving in the same turn share the fsync.
            self._kick_call = self.reactor.callLater(0, self._kick)

    def _kick(self) -> None:
        self._kick_call = None
        if self.busy:
            return
        # CommitLog and logic jobs take turns when both are wanted: under a steady SYNC_FLUSH load there is
        # always a CommitLog job to run, and the queues and checkpoint were never flushed. A logic job flushes
        # the CommitLog first, so waiters are served by either.
        job = None
        logic = False
        if self._want_logic and not self._last_logic:
            self._want_logic = False
            job = self.prepare_logic()
            logic = job is not None
        if job is None and (self._want_commitlog or self._waiters):
            self._want_commitlog = False
            job = self.prepare_commitlog()
            if job is None:
                self._release_waiters()
        if job is None and self._want_logic:
            self._want_logic = False
            job = self.prepare_logic()
            logic = job is not None
        if job is not None:
            self._last_logic = logic
            self._start(job)

    def _start(self, job: Job) -> defer.Deferred:
        blocking, complete = job
        self.busy = True
        self.fsync_count += 1
        d = self.run_blocking(blocking)
        d.addCallbacks(self._done, self._failed, callbackArgs=(complete,))
        return d

    def _run_now(self, job: Optional[Job]) -> Optional[defer.Deferred]:
        if job is None:
            return None
        if self.busy:  # a kick started a job meanwhile: queue behind it
            return self.when_idle().addCallback(lambda _: self._run_now(job))
        return self._start(job)

    def _done(self, _: Any, complete: Callable[[], None]) -> None:
        complete()
        self._finish()
        self._release_waiters()
        if self._waiters:
            self._want_commitlog = True
        if self._want_commitlog or self._want_logic:
            self._schedule()

    def _failed(self, failure: Failure) -> None:
        log.failure("fsync failed; SYNC_FLUSH puts will time out unless a retry succeeds", failure)
        self._finish()
        if self._kick_call is None:
            self._want_commitlog = self._want_commitlog or bool(self._waiters)
            self._kick_call = self.reactor.callLater(0.1, self._kick)

    def _finish(self) -> None:
        self.busy = False
        idle, self._idle = self._idle, []
        for d in idle:
            d.callback(None)

    def _release_waiters(self) -> None:
        flushed = self.flushed_offset()
        waiters = self._waiters
        while waiters and waiters[0][0] <= flushed:
            waiters.popleft()[2].callback(True)

    # ------------------------------------------------------------------ timeouts

    def _arm_timeout(self) -> None:
        if self._waiters:
            delay = max(0.0, self._waiters[0][1] - self.reactor.seconds())
            self._timeout_call = self.reactor.callLater(delay, self._expire)
        else:
            self._timeout_call = None

    def _expire(self) -> None:
        now = self.reactor.seconds()
        waiters = self._waiters
        while waiters and waiters[0][1] <= now:
            waiters.popleft()[2].callback(False)
        self._arm_timeout()

    def fail_all_waiters(self) -> None:
        """At stop: answer everyone still waiting (their bytes get flushed, but not in time to say so)."""
        while self._waiters:
            self._waiters.popleft()[2].callback(False)
