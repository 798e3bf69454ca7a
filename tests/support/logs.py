"""Reading what ``twisted.logger`` emitted in a test (events from the ``log_events`` fixture)."""

from __future__ import annotations

from typing import Iterable, List

from twisted.logger import LogLevel, formatEvent


def logged_lines(events: Iterable[dict], text: str, levels=(LogLevel.warn, LogLevel.error)) -> List[str]:
    """The formatted events at one of ``levels`` that contain ``text``."""
    return [formatEvent(e) for e in events if e.get("log_level") in levels and text in formatEvent(e)]


def tracebacks(events: Iterable[dict]) -> List[dict]:
    """Events that carry a failure (``log.failure``: a traceback in the log)."""
    return [e for e in events if e.get("log_failure") is not None]
