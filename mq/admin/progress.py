"""A one-line live view of long admin work (printMsg over many messages, a reset over many queues).

On a terminal the line is rewritten in place at most every ``EVERY`` seconds and wiped before the result is
printed; when the stream is not a terminal, or the result is asked for as ``--json``, nothing is written at
all, so logs and scripts see exactly what they saw before.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional, TextIO

#: Seconds between two redraws of the live line (a fast scan does not spend its time writing to the terminal).
EVERY = 0.2


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """``begin(what, total)``, ``advance(n)`` as the work goes, ``end()`` before anything else is printed.

    ``live`` decides whether anything is drawn (default: whether ``stream`` is a terminal); ``clock`` gives
    seconds (a ``task.Clock``'s ``seconds`` in tests)."""

    def __init__(self, stream: Optional[TextIO] = None, live: Optional[bool] = None,
                 clock: Optional[Callable[[], float]] = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = is_terminal(self.stream) if live is None else live
        self.clock = clock or time.monotonic
        self.what = ""
        self.total: Optional[int] = None
        self.done = 0
        self._started = 0.0
        self._drawn_at: Optional[float] = None
        self._shown = False

    def begin(self, what: str, total: Optional[int] = None) -> None:
        """Start counting ``what`` (a noun phrase: "messages read"), out of ``total`` when it is known."""
        self.what, self.total, self.done = what, total, 0
        self._started = self.clock()
        self._drawn_at = None

    def add_total(self, more: int) -> None:
        """The total grows as the work is discovered (another queue's window is known)."""
        self.total = (self.total or 0) + more

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more; drawn only once ``begin`` named the work (shared helpers count for every caller,
        and only the long commands begin)."""
        self.done += n
        if not self.live or not self.what:
            return
        now = self.clock()
        if self._drawn_at is None or now - self._drawn_at >= EVERY:
            self._drawn_at = now
            self._draw(now)

    def line(self, now: Optional[float] = None) -> str:
        """What the live view shows: ``what done/total (pct%), rate/s``."""
        now = self.clock() if now is None else now
        text = f"{self.what}: {self.done:,}"
        if self.total:
            text += f"/{self.total:,} ({min(100.0, 100.0 * self.done / self.total):.0f}%)"
        elapsed = now - self._started
        if elapsed > 0:
            text += f", {self.done / elapsed:,.0f}/s"
        return text

    def _draw(self, now: float) -> None:
        self.stream.write(f"\r{self.line(now)}\x1b[K")  # back to the start, the line, erase what an older one left
        self.stream.flush()
        self._shown = True

    def end(self) -> None:
        """Wipe the live line, so the result starts on a clean line."""
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


def silent() -> Progress:
    """A progress that never draws (``--json``, a pipe, an API user)."""
    return Progress(live=False)
