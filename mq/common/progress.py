"""Long server work (recovery of a CommitLog, a slave or a DLedger follower catching up) logged while it lasts.

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
    """``update(done, total)`` as the work goes (cheap when not due), ``finish()`` when it ends. ``unit``
    "bytes" shows MiB; any other unit (``entries``) is counted as is, with how many are still to go."""

    def __init__(self, what: str, total: int = 0, clock: Optional[Callable[[], float]] = None,
                 every: float = LOG_EVERY, logger: Logger = log, unit: str = "bytes") -> None:
        self.what = what
        self.unit = unit
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
        text = f"{self._number(self.done)} of {self._amount(self.total)}"
        if self.total > 0:
            text += f" ({min(100.0, 100.0 * self.done / self.total):.0f}%)"
        if self.unit != "bytes":
            text += f", {max(0, self.total - self.done):,} to go"
        elapsed = now - self.started
        if elapsed > 0:
            text += f", {self._amount(self.done / elapsed)}/s"
        return text

    def _number(self, n: float) -> str:
        return f"{n / _MIB:,.1f}" if self.unit == "bytes" else f"{n:,.0f}"

    def _amount(self, n: float) -> str:
        return f"{self._number(n)} {'MiB' if self.unit == 'bytes' else self.unit}"

    def finish(self) -> None:
        if self.logged:
            self.logged = False
            self.log.info("{what}: done, {amount} in {secs:.1f} s", what=self.what, amount=self._amount(self.done),
                          secs=self.clock() - self.started)
