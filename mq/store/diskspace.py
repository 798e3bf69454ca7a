"""Whether the store's disk can take more puts, cheap enough to ask on every put.

Two reasons refuse puts (RocketMQ's ``runningFlags`` DISK_FULL bit, answered SERVICE_NOT_AVAILABLE):

* disk use above ``diskSpaceWarningLevelRatio`` (percent): ``statvfs`` is called at most every
  ``diskSpaceCheckInterval`` ms, and at once after the CommitLog starts a new file (its size is used at once);
* a file, or the part of one about to be written, that could not be reserved (``DiskFullError``): the next put
  may try again ``diskSpaceCheckInterval`` ms later, so a freed disk is noticed without a restart.

RocketMQ 4.9 checks the ratio every 10 s only, and writes into sparse mapped files: a fast fill between two
checks ends in a SIGBUS. Here the 10-second retention run still deletes files, but never decides on puts alone.
"""

from __future__ import annotations

import os
from typing import Callable, Optional

from twisted.logger import Logger

log = Logger()


def disk_used_ratio(path: str) -> float:
    """Used fraction of the filesystem holding ``path`` (0.0 to 1.0)."""
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    if not total:
        return 0.0
    return (total - st.f_bavail * st.f_frsize) / total


class DiskSpace:
    """The cached answer to "may a put be written now?" (None) or why not (the refusal's reason)."""

    def __init__(
        self,
        path: str,
        usage: Callable[[str], float],
        limit_percent: Callable[[], float],
        interval_ms: Callable[[], int],
        now_ms: Callable[[], int],
    ) -> None:
        self.path = path
        self.usage = usage
        self.limit_percent = limit_percent
        self.interval_ms = interval_ms
        self.now_ms = now_ms
        self.ratio = 0.0
        self.reason: Optional[str] = None
        self._next_check = 0  # now_ms() from which the next put reads the disk use again
        self._no_space: Optional[str] = None  # the reservation that failed, until the next check
        self._no_space_at = 0
        self._announced = False  # "puts refused" was logged, "accepted again" not yet

    def refusal(self, now_ms: Optional[int] = None) -> Optional[str]:
        """None if puts may be written, else why not: a comparison with the clock (``now_ms`` if the caller
        read it already), and ``statvfs`` at most every ``diskSpaceCheckInterval`` ms."""
        if (self.now_ms() if now_ms is None else now_ms) >= self._next_check:
            self.refresh()
        return self.reason

    def stale(self) -> None:
        """Check again at the next put (a new file was just created)."""
        self._next_check = 0

    def refresh(self) -> float:
        """Read the disk use now; returns the used ratio."""
        now = self.now_ms()
        self._next_check = now + self.interval_ms()
        try:
            self.ratio = self.usage(self.path)
        except OSError as e:
            log.warn("cannot read the disk use of {path}: {e}", path=self.path, e=e)
        retry = self._no_space is not None and now - self._no_space_at >= self.interval_ms()
        if retry:
            self._no_space = None  # let the next put try the reservation again
        percent = self.ratio * 100
        limit = self.limit_percent()
        if self._no_space is not None:
            reason = f"the broker's disk is full: {self._no_space} ({percent:.1f}% used)"
        elif percent > limit:
            reason = f"the broker's disk is full: {percent:.1f}% used, over diskSpaceWarningLevelRatio {limit:g}%"
        else:
            reason = None
        self._set(reason, percent, quiet=retry)
        return self.ratio

    def no_space(self, problem: str) -> str:
        """A reservation failed for lack of space (``problem`` says which): refuse puts until the next check.
        Returns the reason."""
        self._no_space = problem
        self._no_space_at = self.now_ms()
        self._next_check = self._no_space_at + self.interval_ms()
        reason = f"the broker's disk is full: {problem} ({self.ratio * 100:.1f}% used)"
        self._set(reason, self.ratio * 100)
        return reason

    def _set(self, reason: Optional[str], percent: float, quiet: bool = False) -> None:
        """One warning when puts start being refused, one line when they are taken again (not at a mere
        retry of the reservation, which may fail again)."""
        if reason is not None and not self._announced:
            log.warn("puts refused: {reason}", reason=reason)
            self._announced = True
        elif reason is None and self._announced and not quiet:
            log.info("disk use {p:.1f}%: puts are accepted again", p=percent)
            self._announced = False
        self.reason = reason
