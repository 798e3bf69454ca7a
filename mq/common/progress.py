"""Long server work (recovery of a CommitLog, a slave catching up) logged while it lasts.

A broker has no terminal: its progress is a log line every ``LOG_EVERY`` seconds (how many bytes of how many,
the rate) and one line when it ends, so an operator tailing the log sees that a long start or a slave's
catch-up is moving and how long it has left. Work that ends before the first interval logs nothing.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

from twisted.logger import Logger

#: Seconds between two progress lines of the same work.
LOG_EVERY = 5.0
_MIB = 1 << 20

log = Logger()


class LoggedProgress:
    """``update(done, total)`` as the work goes (cheap when not due), ``finish()`` when it ends."""

    def __init__(self, what: str, total: int = 0, clock: Optional[Callable[[], float]] = None,
                 every: float = LOG_EVERY, logger: Logger = log) -> None:
        self.what = what
        self.total = total
        self.done = 0
        self.clock = clock or time.monotonic
        self.every = every
        self.log = logger
        self.started = self.clock()
        self._next = self.started + every
        #: Whether a line was logged: a short piece of work says nothing at its end either.
        self.logged = False

    def update(self, done: int, total: Optional[int] = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        now = self.clock()
        if now >= self._next:
            self._next = now + self.every
            self.logged = True
            self.log.info("{what}: {line}", what=self.what, line=self.line(now))

    def line(self, now: Optional[float] = None) -> str:
        now = self.clock() if now is None else now
        text = f"{self.done / _MIB:,.1f} of {self.total / _MIB:,.1f} MiB"
        if self.total > 0:
            text += f" ({min(100.0, 100.0 * self.done / self.total):.0f}%)"
        elapsed = now - self.started
        if elapsed > 0:
            text += f", {self.done / _MIB / elapsed:,.1f} MiB/s"
        return text

    def finish(self) -> None:
        if self.logged:
            self.logged = False
            self.log.info("{what}: done, {mib:,.1f} MiB in {secs:.1f} s", what=self.what, mib=self.done / _MIB,
                          secs=self.clock() - self.started)
