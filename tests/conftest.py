"""Shared fixtures: real service processes in temporary directories."""

from __future__ import annotations

import os
import subprocess

import pytest
from hypothesis import HealthCheck, settings
from twisted.logger import globalLogPublisher

from tests.support.processes import TwistdProcess

# No per-example deadline nor "too slow" health check: both are timed assertions, and they measured the machine,
# not the code. On PyPy the JIT's warm-up makes a property's first examples many times slower than the rest, and
# CI runs four suites at once on two cores (docs/ci.md), where 3.9 and 3.13 failed the @given tests of
# tests/acl/test_ip_pattern.py (and none else) at load 10-16. Tests that set their own settings inherit this.
settings.register_profile("mq", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("mq")


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


@pytest.fixture
def small_disk(tmp_path):
    """An 8 MiB tmpfs, unmounted at the end (skipped where mounting is not allowed)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("no mount command here")
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
