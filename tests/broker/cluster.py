"""A NameServer and brokers as real ``twistd`` processes, for the integration and interop tests."""

from __future__ import annotations

import contextlib
import time

from mq.client.simple import parse_route, route_request
from tests.broker.wire import call
from tests.support.processes import TwistdProcess, free_port

BROKER_CONF = ("brokerClusterName=ITCluster\nmappedFileSizeCommitLog=4194304\n"
               "mappedFileSizeConsumeQueue=1000\nregisterNameServerPeriod=10000\n")


def start_namesrv(twistd, tmp_path, *extra):
    port = free_port()
    proc = twistd("namesrv", "--port", str(port), "--kv-config", str(tmp_path / "kv.json"), *extra)
    proc.wait_port(port)
    proc.addr = f"127.0.0.1:{port}"
    return proc


def broker_starter(twistd, tmp_path, namesrv, conf_extra: str = ""):
    """A function that starts (and restarts) one broker on a fixed port and store (``conf_extra``: more
    ``broker.conf`` lines)."""
    conf = tmp_path / "broker.conf"
    conf.write_text(BROKER_CONF + conf_extra)
    store = tmp_path / "store"
    port = free_port()

    def start(*extra, name="it-broker"):
        proc = twistd("broker", "--port", str(port), "--namesrv", namesrv.addr, "--store", str(store),
                      "--ip", "127.0.0.1", "--broker-name", name, "--config", str(conf), *extra,
                      workdir=tmp_path / f"broker-{time.monotonic_ns()}")
        proc.wait_port(port)
        proc.addr = f"127.0.0.1:{port}"
        return proc

    return start


def route_of(namesrv, topic):
    return parse_route(call(namesrv.addr, route_request(topic)))


@contextlib.contextmanager
def processes(tmp):
    """A ``twistd(plugin, *args)`` starter for module-scoped fixtures; every process is stopped at the end."""
    started = []

    def twistd(plugin, *args, workdir=None):
        proc = TwistdProcess(plugin, list(args), workdir or tmp / f"{plugin}-{len(started)}")
        started.append(proc)
        return proc.start()

    try:
        yield twistd
    finally:
        for proc in started:
            proc.stop(timeout=15)
