"""A NameServer and brokers as real ``twistd`` processes, for the integration and interop tests."""

from __future__ import annotations

import contextlib
import signal
import time

from mq.client.simple import parse_route, pull_request, route_request
from mq.common.message_record import decode_messages
from mq.remoting.codes import ResponseCode
from tests.broker.wire import Wire, call
from tests.support.processes import TwistdProcess, free_port

BROKER_CONF = ("brokerClusterName=ITCluster\nmappedFileSizeCommitLog=4194304\n"
               "mappedFileSizeConsumeQueue=20000\nregisterNameServerPeriod=10000\n")


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


def restartable_broker(twistd, tmp, conf_extra: str, name: str) -> dict:
    """A NameServer and one broker: ``{"broker": process, "restart": fn, "start": fn, "conf": broker.conf path}``;
    ``restart()`` stops the broker gracefully and starts it again on the same port and store, ``start()``
    starts it again after it was killed."""
    namesrv = start_namesrv(twistd, tmp)
    start = broker_starter(twistd, tmp, namesrv, conf_extra)
    holder = {"broker": start(name=name), "conf": tmp / "broker.conf", "namesrv": namesrv}

    def restart():
        assert holder["broker"].stop() in (0, -signal.SIGTERM)  # twistd re-raises the signal it stopped on
        holder["broker"] = start(name=name)
        return holder["broker"]

    holder["restart"] = restart
    holder["start"] = lambda: start(name=name)
    return holder


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


def pull_all(addr, topic, queue_id=0, group="it_check", offset=0):
    """Every message of one queue from ``offset`` on (pulls until the broker has no more)."""
    out = []
    with Wire(addr) as w:
        while True:
            r = w.call(pull_request(group, topic, queue_id, offset))
            if r.code != ResponseCode.SUCCESS:
                return out
            out += decode_messages(r.body)
            offset = int(r.ext_fields["nextBeginOffset"])
