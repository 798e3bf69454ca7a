"""Real service processes for integration tests: ``twistd -n <plugin>`` started, awaited, stopped.

The child imports ``mq`` from this checkout (PYTHONPATH), and finds the plugin dropin that
``pip install .`` put into ``twisted/plugins``; a service maker this checkout's ``twisted_plugins`` names but
the installed dropin does not yet (a new ``twistd`` service, before the reinstall) is added through a
generated dropin of its own (``checkout_dropins``), so the installed files are never changed. Readiness is
polled with a deadline, never slept for.
"""

from __future__ import annotations

import atexit
import collections
import functools
import os
import random
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Deque, List, Optional

REPO = Path(__file__).resolve().parents[2]
#: ``twistd`` itself, run by this interpreter (``python -m twisted`` is the other runner, ``twist``).
TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"


@functools.lru_cache(maxsize=None)
def checkout_dropins() -> Optional[str]:
    """A directory to put on PYTHONPATH whose ``twisted/plugins/mq_checkout_services.py`` names the service
    makers of this checkout's dropin that the installed one lacks; None when it lacks none."""
    from twisted.application.service import IServiceMaker
    from twisted.plugin import getPlugins

    installed = {p.tapname for p in getPlugins(IServiceMaker)}
    ours = [v for v in runpy.run_path(str(REPO / "twisted_plugins" / "mq_services.py")).values()
            if hasattr(v, "tapname") and hasattr(v, "module")]
    missing = [m for m in ours if m.tapname not in installed]
    if not missing:
        return None
    root = Path(tempfile.mkdtemp(prefix="mq-dropins-"))
    atexit.register(shutil.rmtree, str(root), True)
    (root / "twisted" / "plugins").mkdir(parents=True)
    lines = ["from twisted.application.service import ServiceMaker", ""]
    lines += [f"{m.tapname} = ServiceMaker({m.name!r}, {m.module!r}, {m.description!r}, {m.tapname!r})"
              for m in missing]
    (root / "twisted" / "plugins" / "mq_checkout_services.py").write_text("\n".join(lines) + "\n")
    return str(root)


def child_env(extra: Optional[dict] = None) -> dict:
    """The environment for a child Python that must import ``mq`` (and its dropins) from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), checkout_dropins(), env.get("PYTHONPATH")]))
    env.setdefault("PYTHONUNBUFFERED", "1")
    if extra:
        env.update(extra)
    return env


def free_port() -> int:
    """A TCP port that is free now (and, for the broker, whose neighbours are free too).

    Picked outside the kernel's ephemeral range: a port the kernel handed out for a bind to 0 is also one it
    may hand to an outgoing connection (a client, a slave's HA link) before the service binds it, which made
    busy runs fail with "Address already in use". Nor is it within 3 of a port this process handed out
    recently: a test picks all its ports before any service binds them (a broker's three, a Raft node's own),
    so "free now" alone could give two of them the same port."""
    ports = _service_ports()
    # the recent picks are a sixteenth of the slice at most: each keeps 7 ports out, so at least half the slice
    # stays open (1,000 remembered in a slice of 2,800 once left none, and a whole suite's last tests failed)
    while len(_handed_out) > max(16, len(ports) // 16):
        _handed_out.popleft()
    near = {given + d for given in _handed_out for d in range(-3, 4)}
    start = random.randrange(len(ports))
    for k in range(len(ports)):  # from a random place, every port of the slice once
        port = ports[(start + k) % len(ports)]
        if port in near:
            continue
        if all(_is_free(p) for p in (port - 2, port, port + 1)):
            _handed_out.append(port)
            return port
    raise RuntimeError(f"no free port found in {ports}")


#: The ports ``free_port`` returned lately, kept apart from the next picks.
_handed_out: Deque[int] = collections.deque()


@functools.lru_cache(maxsize=None)
def _service_ports() -> range:
    """The ports ``free_port`` picks from: this process's slice (``_port_slice``) of the larger stretch of
    10000-65000 outside the ephemeral range."""
    low, high = 32768, 60999  # Linux's default, where /proc does not say
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        pass
    below, above = range(10002, min(low, 65000) - 2), range(max(high, 10000) + 3, 65000)
    ports = max(below, above, key=len)
    index = _port_slice()
    if index is None:
        return ports
    size = len(ports) // _PORT_SLICES
    return range(ports.start + index * size + 2, ports.start + (index + 1) * size - 2)


#: How many test processes on one host get ports of their own (``.ci/run`` runs four suites side by side).
_PORT_SLICES = 8


@functools.lru_cache(maxsize=None)
def _port_slice() -> Optional[int]:
    """The slice of service ports this process holds, by an exclusive lock on a file per slice.

    "Free now" is checked within one process only: two suites running side by side (``.ci/run``) could each
    pick the same free port and race to bind it, and the loser's test then spoke to the winner's service.
    The lock goes with the process, so a killed run leaves no slice taken; None (the whole stretch) when
    every slice is held."""
    import fcntl

    folder = Path(tempfile.gettempdir()) / "mq-test-port-slices"
    folder.mkdir(exist_ok=True)
    for index in range(_PORT_SLICES):
        handle = open(folder / f"slice-{index}.lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _slice_locks.append(handle)  # held (open) as long as this process lives
        return index
    return None


_slice_locks: List = []


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, interval: float = 0.05, what: str = "") -> None:
    """Poll ``predicate`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class TwistdProcess:
    """One ``twistd -n`` service process with its log in ``workdir``."""

    def __init__(self, plugin: str, args: List[str], workdir: Path, env: Optional[dict] = None,
                 python: Optional[str] = None) -> None:
        self.plugin = plugin
        self.python = python or sys.executable  # e.g. a PyPy interpreter for the benchmarks
        self.args = list(args)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logfile = self.workdir / f"{plugin}.log"
        self.env = child_env(env)
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "TwistdProcess":
        cmd = [self.python, "-c", TWISTD, "-n", "--pidfile=", "-l", str(self.logfile), self.plugin, *self.args]
        self.proc = subprocess.Popen(cmd, cwd=str(self.workdir), env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.workdir / f"{self.plugin}.stderr", "ab"))
        return self

    def wait_port(self, port: int, timeout: float = 30.0) -> "TwistdProcess":
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.plugin} exited with {self.proc.returncode}:\n{self.log_text()}")
            return port_open(port)

        wait_until(ready, timeout, what=f"{self.plugin} listening on {port}")
        return self

    def wait_log(self, text: str, timeout: float = 30.0) -> None:
        wait_until(lambda: text in self.log_text(), timeout, what=f"{text!r} in the {self.plugin} log")

    def log_text(self) -> str:
        parts = []
        for path in (self.logfile, self.workdir / f"{self.plugin}.stderr"):
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (a graceful stop) and wait; SIGKILL if it does not exit in time."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, no clean-up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
