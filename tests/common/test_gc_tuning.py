"""The broker's collector settings: parsed from ``MQ_GC_THRESHOLD`` (bad values refused with one line), applied
once at start on CPython, and left alone on PyPy or with ``default``."""

from __future__ import annotations

import gc
import platform
import subprocess
import sys

import pytest

from mq.common.gc_tuning import BROKER_THRESHOLDS, GcTuning, thresholds_from
from tests.support.processes import TWISTD, child_env, free_port


@pytest.mark.parametrize("text, expected", [
    ("", BROKER_THRESHOLDS), ("default", None), ("1000,10,10", (1000, 10, 10)), (" 7,8,9 ", (7, 8, 9)),
])
def test_thresholds_from_the_environment(text, expected):
    assert thresholds_from({"MQ_GC_THRESHOLD": text} if text else {}) == expected


@pytest.mark.parametrize("text", ["1,2", "1,2,3,4", "a,b,c", "0,10,10", "-1,10,10", "10000001,1,1", "1.5,2,3"])
def test_bad_thresholds_are_refused_by_name(text):
    with pytest.raises(ValueError, match="MQ_GC_THRESHOLD"):
        thresholds_from({"MQ_GC_THRESHOLD": text})


CPYTHON = platform.python_implementation() == "CPython"


@pytest.fixture
def restored_gc():
    if not CPYTHON:  # PyPy's gc module has no thresholds and no freeze
        yield
        return
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


@pytest.mark.skipif(not CPYTHON, reason="CPython's collector only")
def test_applied_at_start(restored_gc):
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    tuning = GcTuning({"MQ_GC_THRESHOLD": "12345,11,12"})
    assert gc.get_threshold() != (12345, 11, 12)
    tuning.startService()
    assert gc.get_threshold() == (12345, 11, 12)
    # What it froze, less what other threads have freed since (a long suite's threads do free some).
    assert tuning.frozen > 1000 and tuning.frozen * 0.99 < gc.get_freeze_count() <= tuning.frozen


@pytest.mark.parametrize("setting", ["default", "1000,10,10"])
def test_default_and_pypy_leave_the_collector_alone(restored_gc, setting):
    before = gc.get_threshold() if CPYTHON else None
    tuning = GcTuning({"MQ_GC_THRESHOLD": setting})
    tuning.startService()
    if setting == "default" or not CPYTHON:
        assert tuning.frozen == 0 and (not CPYTHON or gc.get_threshold() == before)


def test_a_bad_setting_stops_the_broker_with_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-c", TWISTD, "-n", "--pidfile=", "broker", "--port", str(free_port()),
                             "--store", str(tmp_path / "store")], capture_output=True, timeout=60,
                            env=child_env({"MQ_GC_THRESHOLD": "lots"}), cwd=str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines()[-1] == (
        "broker: MQ_GC_THRESHOLD='lots': three integers 1-10000000 (young,middle,old) or 'default'")
