"""The flags a RocketMQ operator types out of habit mean the same on every mq command: ``-c`` is the config
file, ``--bind`` the listen address, ``--metrics-port 0`` is off, ``--version`` prints mq's version; a port in
use stops a real ``twistd`` start with one line."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from mq import __version__
from mq.broker.tap import Options as BrokerOptions
from mq.namesrv.tap import Options as NamesrvOptions
from mq.standalone import Options as StandaloneOptions
from tests.support.processes import TWISTD, child_env, free_port


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60, cwd=cwd,
                          env=child_env())


def twistd(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return run("-c", TWISTD, "-n", "--pidfile=", *args, cwd=cwd)


def test_broker_dash_c_is_the_config_file_and_the_cluster_has_its_own_flag(tmp_path):
    conf = tmp_path / "broker.conf"
    conf.write_text("brokerClusterName=FromFile\nbrokerName=b1\n")
    o = BrokerOptions()
    o.parseOptions(["-c", str(conf), "-n", "h:1", "--store", str(tmp_path)])
    assert (o.config.broker_cluster_name, o.config.broker_name, o.config.namesrv_list) == ("FromFile", "b1", ["h:1"])
    o = BrokerOptions()
    o.parseOptions(["--config", str(conf), "--cluster", "FromFlag", "--store", str(tmp_path)])
    assert o.config.broker_cluster_name == "FromFlag"
    assert "--cluster" in str(BrokerOptions()) and "not -c" in str(BrokerOptions())


@pytest.mark.parametrize("options", [BrokerOptions, NamesrvOptions, StandaloneOptions])
def test_every_service_takes_the_same_config_bind_and_metrics_flags(tmp_path, options):
    conf = tmp_path / "empty.conf"
    conf.write_text("# nothing\n")
    o = options()
    extra = ["--store", str(tmp_path)] if options is not NamesrvOptions else []
    o.parseOptions(["-c", str(conf), "--bind", "127.0.0.1", "--metrics-port", "0", *extra])
    configs = [getattr(o, name) for name in ("config", "broker_config", "namesrv_config") if hasattr(o, name)]
    for config in configs:
        assert config.metrics_port == 0
        assert getattr(config, "bind_address", None) or config.interface == "127.0.0.1"
        assert getattr(config, "bind_address", "127.0.0.1") == "127.0.0.1"


def test_namesrv_keeps_interface_as_the_old_name_of_bind():
    o = NamesrvOptions()
    o.parseOptions(["-i", "127.0.0.2"])
    assert o.config.interface == "127.0.0.2"


@pytest.mark.parametrize("command", [
    ("-c", TWISTD, "broker", "--version"),
    ("-c", TWISTD, "namesrv", "--version"),
    ("-c", TWISTD, "mq", "--version"),
    ("-c", TWISTD, "console", "--version"),
    ("-m", "mq.plugins", "--version"),
    ("-m", "mq.admin.cli", "--version"),
    ("-m", "mq.bench.cli", "--version"),
])
def test_version_on_every_command(command):
    out = run(*command)
    assert out.returncode == 0, out.stderr
    assert f" {__version__} (" in out.stdout and "Twisted" in out.stdout


def _listening(port: int) -> socket.socket:
    s = socket.socket()
    s.bind(("0.0.0.0", port))
    s.listen(1)
    return s


@pytest.mark.parametrize("plugin, taken, key", [
    ("broker", 0, "listenPort"),
    ("broker", 1, "the HA port"),
    ("broker", -2, "the VIP port"),
    ("broker", "metrics", "metricsPort"),
    ("namesrv", 0, "listenPort"),
    ("namesrv", "metrics", "metricsPort"),
    ("mq", 0, "listenPort"),
])
def test_a_port_in_use_is_one_line_not_a_traceback(tmp_path, plugin, taken, key):
    port, metrics = free_port(), free_port()
    busy = _listening(metrics if taken == "metrics" else port + taken)
    try:
        args = {"broker": ["--store", str(tmp_path / "store"), "-n", "127.0.0.1:1"],
                "namesrv": ["--kv-config", str(tmp_path / "kv.json")],
                "mq": ["--store", str(tmp_path / "store"), "--kv-config", str(tmp_path / "kv.json"),
                       "--namesrv-port", str(free_port())]}[plugin]
        out = twistd(plugin, "--port", str(port), "--metrics-port", str(metrics), *args, cwd=tmp_path)
    finally:
        busy.close()
    lines = (out.stdout + out.stderr).strip().splitlines()
    assert out.returncode != 0 and len(lines) == 1, lines
    assert lines[0].startswith(f"{plugin}: port ") and f"({key}" in lines[0] and "is in use" in lines[0], lines
    assert not (tmp_path / "store").exists()  # refused before the store opened
