"""Real ``twistd namesrv`` / ``twistd broker`` processes shared by a module, and ``mqadmin`` run in this
process (the default) or as a subprocess of its own (``process=True``)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import subprocess
import sys
import threading

import attr
import greenlet
import pytest
import pytest_twisted

from tests.support.main_greenlet import pytest_pyfunc_call  # noqa: F401  (tests here block on mqadmin)
from tests.support.processes import TwistdProcess, child_env, free_port, wait_until


@attr.s(slots=True)
class Run:
    code: int = attr.ib()
    out: str = attr.ib()
    err: str = attr.ib()

    def json(self):
        return json.loads(self.out)


def mqadmin(*args: str, namesrv: str = None, env: dict = None, timeout: float = 60, process: bool = False) -> Run:
    """``mqadmin args`` with ``NAMESRV_ADDR`` set to ``namesrv`` (unset when None and ``env`` gives none).

    In this process by default: the command line parsed by ``mq.admin.cli.parse_args`` and run by its
    ``run_command`` on the test reactor, with the same output and exit status as the tool. A new interpreter
    per call cost more than the commands (PyPy's start-up most), and the process boundary is what only a few
    tests are about: those pass ``process=True`` and get ``python -m mq.admin.cli``. A call from inside the
    reactor (a pytest-twisted test) or from another thread cannot block on it, so it runs as a process too."""
    environ = child_env({"NAMESRV_ADDR": namesrv} if namesrv else {})
    environ.update(env or {})
    if not namesrv and "NAMESRV_ADDR" not in (env or {}):
        environ.pop("NAMESRV_ADDR", None)
    if process or greenlet.getcurrent().parent is not None or threading.current_thread() is not threading.main_thread():
        p = subprocess.run([sys.executable, "-m", "mq.admin.cli", *args], env=environ, capture_output=True,
                           text=True, timeout=timeout)
        return Run(p.returncode, p.stdout, p.stderr)
    return _in_process(list(args), environ, timeout)


def _in_process(argv: list, environ: dict, timeout: float) -> Run:
    from twisted.internet import reactor

    from mq.admin import cli

    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environ)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                parsed = cli.parse_args(argv)
            except SystemExit as e:  # help, completion, --version, usage errors: argparse's own exit
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                return Run(code, out.getvalue(), err.getvalue())
            code = pytest_twisted.blockon(cli.run_command(reactor, parsed, out, err).addTimeout(timeout, reactor))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Run(code, out.getvalue(), err.getvalue())


def mqadmin_on_terminal(*args: str, namesrv: str, terminal: str = "stdout", env: dict = None) -> Run:
    """``mqadmin`` with ``terminal`` ("stdout" or "stderr") a pseudo-terminal and the other stream a pipe; the
    Run's field of that stream holds what the terminal got (its line ends as the terminal writes them)."""
    master, slave = pty.openpty()
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, terminal: slave}
    p = subprocess.Popen([sys.executable, "-m", "mq.admin.cli", *args],
                         env=child_env({"NAMESRV_ADDR": namesrv, **(env or {})}), **streams)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    piped = (p.stderr if terminal == "stdout" else p.stdout).read().decode("utf-8")
    seen = b"".join(chunks).decode("utf-8")
    code = p.wait(timeout=60)
    return Run(code, seen, piped) if terminal == "stdout" else Run(code, piped, seen)


def start_namesrv(workdir, *extra: str, env: dict = None) -> TwistdProcess:
    port = free_port()
    proc = TwistdProcess("namesrv", ["--port", str(port), "--kv-config", str(workdir / "kv.json"), *extra], workdir,
                         env=env).start()
    proc.wait_port(port)
    proc.addr = f"127.0.0.1:{port}"
    return proc


def start_broker(workdir, namesrv_addr: str, name: str = "adm-broker", cluster: str = "AdmCluster",
                 conf_extra: str = "", env: dict = None) -> TwistdProcess:
    """A broker; ``conf_extra`` lines are added to its broker.conf (ACL keys...), ``env`` to its environment."""
    conf = workdir / "broker.conf"
    conf.write_text(f"brokerClusterName={cluster}\nmappedFileSizeCommitLog=4194304\n"
                    f"mappedFileSizeConsumeQueue=120000\n{conf_extra}")
    port = free_port()
    proc = TwistdProcess("broker", ["--port", str(port), "--namesrv", namesrv_addr, "--store", str(workdir / "store"),
                                    "--ip", "127.0.0.1", "--broker-name", name, "--config", str(conf)],
                         workdir, env=env).start()
    proc.wait_port(port)
    proc.addr = f"127.0.0.1:{port}"
    proc.name = name
    proc.cluster = cluster
    return proc


@pytest.fixture(scope="module")
def namesrv(tmp_path_factory):
    proc = start_namesrv(tmp_path_factory.mktemp("namesrv"))
    yield proc
    proc.stop(timeout=15)


@pytest.fixture(scope="module")
def broker(namesrv, tmp_path_factory):
    """A broker registered with the module's NameServer (``broker.namesrv`` is its address)."""
    proc = start_broker(tmp_path_factory.mktemp("broker"), namesrv.addr)
    proc.namesrv = namesrv.addr
    wait_until(lambda: mqadmin("topicRoute", "-t", "TBW102", namesrv=namesrv.addr).code == 0, 20,
               what="the broker registered with the NameServer")
    yield proc
    proc.stop(timeout=15)


def adm(broker, *args) -> Run:
    """``mqadmin`` against the broker's NameServer."""
    return mqadmin(*args, namesrv=broker.namesrv)
