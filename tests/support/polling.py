"""Polling with a deadline from inside the reactor (pytest-twisted tests), never a fixed sleep."""

from __future__ import annotations

import time
from typing import Any, Callable

from twisted.internet import defer, task


@defer.inlineCallbacks
def poll(call: Callable[[], Any], accept: Callable[[Any], bool], timeout: float = 20.0, interval: float = 0.05,
         what: str = "", reactor=None):
    """Call ``call()`` (a value or a Deferred) until ``accept(result)``; return that result, or fail."""
    if reactor is None:
        from twisted.internet import reactor
    deadline = time.monotonic() + timeout
    while True:
        result = yield defer.maybeDeferred(call)
        if accept(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or call}; last result {result!r}")
        yield task.deferLater(reactor, interval, lambda: None)
