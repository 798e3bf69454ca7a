"""Shared fixtures: real service processes in temporary directories."""

from __future__ import annotations

import platform

import pytest
from hypothesis import settings
from twisted.logger import globalLogPublisher

from tests.support.processes import TwistdProcess

if platform.python_implementation() == "PyPy":
    # The JIT's warm-up makes the first examples of a property many times slower than the rest: a per-example
    # deadline there measures compilation, not the code (tests that set their own settings inherit this).
    settings.register_profile("pypy", deadline=None)
    settings.load_profile("pypy")


@pytest.fixture
def log_events():
    """Every event the ``twisted.logger`` loggers emit during the test."""
    events: list = []
    observer = events.append
    globalLogPublisher.addObserver(observer)
    yield events
    globalLogPublisher.removeObserver(observer)


@pytest.fixture
def twistd(tmp_path):
    """A factory of ``twistd -n`` processes, all stopped at the end of the test."""
    started = []

    def start(plugin: str, *args: str, workdir=None, env=None) -> TwistdProcess:
        proc = TwistdProcess(plugin, list(args), workdir or tmp_path / f"{plugin}-{len(started)}", env)
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop(timeout=15)
