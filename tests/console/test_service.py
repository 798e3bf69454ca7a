"""``twistd console``'s options, ``twistd mq``'s console options, and what a busy port does to each."""

from __future__ import annotations

import os

import pytest
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage

from mq import standalone
from mq.console import tap
from mq.console.config import ConsoleConfig
from mq.console.service import ConsoleService
from tests.support.processes import free_port


class BusyReactor(MemoryReactorClock):
    def listenTCP(self, port, factory, backlog=50, interface=""):
        raise CannotListenError(interface, port, OSError(98, "Address already in use"))


def parse(options: usage.Options, *argv: str) -> usage.Options:
    options.parseOptions(list(argv))
    return options


def test_console_options_fill_the_config(monkeypatch):
    monkeypatch.delenv("NAMESRV_ADDR", raising=False)
    options = parse(tap.Options(), "--namesrv", "10.0.0.1:9876;10.0.0.2:9876", "--port", "9090",
                    "--sample-interval", "2", "--history-points", "100")
    config = options.config
    assert (config.namesrv_addr, config.port, config.bind) == ("10.0.0.1:9876;10.0.0.2:9876", 9090, "127.0.0.1")
    assert (config.sample_interval, config.history_points) == (2.0, 100)
    assert config.login is False
    assert parse(tap.Options(), "--namesrv", "h:1", "--login").config.login is True
    assert config.data_dir == os.path.expanduser("~/mq-console/dashboard")  # the per-day history, by default
    kept = parse(tap.Options(), "--namesrv", "h:1", "--data-dir", "rel", "--history-days", "30",
                 "--history-step", "10").config
    assert (kept.data_dir, kept.history_days, kept.history_step) == (os.path.abspath("rel/dashboard"), 30, 10.0)
    assert parse(tap.Options(), "--namesrv", "h:1", "--data-dir", "").config.data_dir == ""


def test_a_users_file_is_read_at_start_and_a_bad_one_stops_it(tmp_path):
    users = tmp_path / "users.properties"
    users.write_text("admin=admin,1\n")
    assert parse(tap.Options(), "--namesrv", "h:1", "--users", str(users)).config.users_file == str(users)
    users.write_text("admin=admin,7\n")
    with pytest.raises(SystemExit, match="role '7' of admin is neither"):
        parse(tap.Options(), "--namesrv", "h:1", "--users", str(users))
    base = ("--store", str(tmp_path / "store"), "--kv-config", str(tmp_path / "kv.json"))
    with pytest.raises(SystemExit, match="--console-users .*role '7' of admin is neither"):
        parse(standalone.Options(), *base, "--console-users", str(users))
    users.write_text("viewer=viewPass\n")
    assert parse(standalone.Options(), *base, "--console-users", str(users)).console_config.users_file == str(users)


@pytest.mark.parametrize("argv, error", [
    ((), SystemExit),
    (("--namesrv", "h:1", "--port", "0"), SystemExit),
    (("--namesrv", "h:1", "--access-key", "ak"), SystemExit),
    (("--namesrv", "h:1", "--port", "70000"), SystemExit),
    (("--namesrv", "no-port"), SystemExit),
    (("--namesrv", "h:1", "--sample-interval", "0"), SystemExit),
    (("--namesrv", "h:1", "--history-points", "99999999"), SystemExit),
    (("--namesrv", "h:1", "--history-days", "0"), SystemExit),
    (("--namesrv", "h:1", "--history-days", "367"), SystemExit),
    (("--namesrv", "h:1", "--history-step", "0.5"), SystemExit),
    (("--namesrv", "h:1", "--users", "/nonexistent/users.properties"), SystemExit),
])
def test_bad_console_options_stop_the_start(monkeypatch, argv, error):
    monkeypatch.delenv("NAMESRV_ADDR", raising=False)
    with pytest.raises(error):
        parse(tap.Options(), *argv)


def test_mq_serves_the_console_on_loopback_by_default_and_not_with_port_0(tmp_path):
    # makeService checks that the ports are free: the broker's and NameServer's are picked free, since other
    # runtimes' suites run beside this one (only the console's default is under test)
    namesrv_port = free_port()
    base = ("--store", str(tmp_path / "store"), "--kv-config", str(tmp_path / "kv.json"),
            "--namesrv-port", str(namesrv_port), "--port", str(free_port()))
    options = parse(standalone.Options(), *base)
    assert (options.console_config.port, options.console_config.bind) == (8080, "127.0.0.1")
    assert options.console_config.namesrv_addr == f"127.0.0.1:{namesrv_port}"
    assert options.console_config.data_dir == str(tmp_path / "store" / "console" / "dashboard")
    consoles = [s for s in standalone.makeService(options) if isinstance(s, ConsoleService)]
    assert len(consoles) == 1 and consoles[0].required is False
    off = parse(standalone.Options(), *base, "--console-port", "0")
    assert not [s for s in standalone.makeService(off) if isinstance(s, ConsoleService)]
    with pytest.raises(SystemExit):
        parse(standalone.Options(), *base, "--console-port", "-1")


def test_a_busy_port_stops_twistd_console_but_not_the_broker_beside_it(log_events):
    with pytest.raises(CannotListenError):
        ConsoleService(ConsoleConfig(), BusyReactor()).startService()
    beside = ConsoleService(ConsoleConfig(), BusyReactor(), required=False)
    beside.startService()
    assert beside.running and beside.port is None
    assert any("console not started" in (e.get("log_format") or "") for e in log_events)
    beside.stopService()


def test_the_console_listens_where_it_is_told_and_samples_until_stopped():
    reactor = MemoryReactorClock()
    config = ConsoleConfig()
    config.set_option("port", "18080")
    console = ConsoleService(config, reactor)
    console.startService()
    port, factory, _, interface = reactor.tcpServers[0]
    assert (port, interface, factory) == (18080, "127.0.0.1", console.site)
    assert console.sampler._loop.running
    console.stopService()
    assert not console.sampler._loop.running
