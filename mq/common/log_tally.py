"""One log line for a flood of events: a flood of refusals must not become a flood of log lines."""

from __future__ import annotations

from typing import Optional

import attrs


@attrs.define
class LogTally:
    """Counts an event and says when to log it: at most once every ``interval`` seconds, with how many came
    since the last line."""

    interval: float = 10.0
    #: Events counted in all.
    count: int = 0
    _logged: int = 0
    _next: float = float("-inf")

    def add(self, now: float) -> Optional[int]:
        """Count one event at ``now``; the number to report in a line now, or None to stay quiet."""
        self.count += 1
        if now < self._next:
            return None
        since, self._logged, self._next = self.count - self._logged, self.count, now + self.interval
        return since
