"""docs/operations.md's PyPy command starts ``twistd mq`` as written: its GC setting reaches a PyPy process that
serves the NameServer and broker ports. Skipped where no PyPy venv with mq installed is at hand (``.ci/run``
makes ``.venv-pypy`` and runs this under PyPy)."""

from __future__ import annotations

import os
import platform
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import REPO, child_env, free_port, port_open, wait_until

COMMAND = re.compile(r"^((?:PYPY_GC_\w+=\S+ )+)\.venv-pypy/bin/twistd -n --pidfile= mq$", re.M)


def pypy_venv():
    """A PyPy venv whose ``bin/twistd`` runs mq: this interpreter's under PyPy, else the checkout's or
    ``MQ_PYPY_VENV``."""
    if platform.python_implementation() == "PyPy":
        return Path(sys.prefix)
    for candidate in (os.environ.get("MQ_PYPY_VENV"), REPO / ".venv-pypy"):
        if candidate and (Path(candidate) / "bin" / "twistd").exists():
            return Path(candidate)
    return None


def test_the_pypy_command_is_documented_with_its_gc_setting():
    [settings] = COMMAND.findall((REPO / "docs" / "operations.md").read_text())
    assert {"PYPY_GC_NURSERY=32M", "PYPY_GC_MIN=64MB"} <= set(settings.split())


def test_the_documented_pypy_command_starts(tmp_path):
    venv = pypy_venv()
    if venv is None or not (venv / "bin" / "twistd").exists():
        pytest.skip("no PyPy venv with mq installed (.venv-pypy, MQ_PYPY_VENV)")
    [settings] = COMMAND.findall((REPO / "docs" / "operations.md").read_text())
    (tmp_path / ".venv-pypy").symlink_to(venv)
    ns_port, broker_port = free_port(), free_port()
    env = child_env(dict(setting.split("=", 1) for setting in settings.split()))
    args = ["-n", "--pidfile=", "mq", "--namesrv-port", str(ns_port), "--port", str(broker_port), "--ip", "127.0.0.1",
            "--store", "store", "--kv-config", "kv.json", "--console-port", "0"]
    proc = subprocess.Popen([str(tmp_path / ".venv-pypy" / "bin" / "twistd"), *args], cwd=tmp_path, env=env,
                            stdout=open(tmp_path / "out.log", "wb"), stderr=subprocess.STDOUT)
    try:
        def listening() -> bool:
            assert proc.poll() is None, (tmp_path / "out.log").read_text(errors="replace")
            return port_open(ns_port) and port_open(broker_port)

        wait_until(listening, 90, 0.2, "twistd mq on PyPy listening")
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        for setting in settings.split():
            assert setting.encode() in environ
        exe = os.readlink(f"/proc/{proc.pid}/exe")
        assert "pypy" in exe, exe
    finally:  # twistd re-raises the SIGTERM it stopped for once it has shut down cleanly
        proc.send_signal(signal.SIGTERM)
        try:
            returncode = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            returncode = proc.wait()
    assert returncode in (0, -signal.SIGTERM), (tmp_path / "out.log").read_text(errors="replace")
