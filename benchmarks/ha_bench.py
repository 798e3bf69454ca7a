"""Replication benchmark: a master and a slave ``twistd broker`` (no NameServer: ``haMasterAddress``).

    python -m benchmarks.ha_bench [--seconds 8] [--connections 4] [--window 64] [--preload-mb 64]

Phases, in one run:

* ASYNC_MASTER + slave, then SYNC_MASTER + slave: peak SEND_MESSAGE_V2 (128 B and 1 KiB bodies,
  ``connections`` × ``window`` in flight) — master TPS, MB/s and RT beside the slave's replication rate (from
  its CommitLog end) and the slave's lag (``mq_broker_ha_slave_lag_seconds/bytes`` scraped every 0.25 s), and
  how long the slave takes to catch up once the load stops;
* catch-up: an empty slave copying ``preload-mb`` of CommitLog from an idle master, for several
  ``haTransferBatchSize`` values (this is how the default was chosen).

Everything shares the machine's cores (load generator, master, slave).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from twisted.internet import defer, task, threads

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.broker_bench import Load, summary  # noqa: E402
from mq.client.simple import create_topic_request, send_batch_request, send_request  # noqa: E402
from tests.support.processes import TwistdProcess, free_port  # noqa: E402

_METRIC = re.compile(r"^(mq_broker_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$", re.M)


def scrape(port):
    """{metric name: value} of a broker's /metrics (labelled metrics: the max over labels)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for name, _labels, value in _METRIC.findall(text):
        out[name] = max(out.get(name, float("-inf")), float(value))
    return out


class Pair:
    def __init__(self, tmp, role, batch=None):
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.role = role
        self.port, self.sport = free_port(), free_port()
        self.mport, self.smport = free_port(), free_port()
        self.batch = batch
        self.master = self.slave = None

    def conf(self, name, extra=""):
        path = self.tmp / f"{name}.conf"
        text = "brokerName=bench-ha\nbrokerClusterName=Bench\nhaSendHeartbeatInterval=1000\n"
        text += "haSlaveReconnectInterval=200\n"
        if self.batch:
            text += f"haTransferBatchSize={self.batch}\n"
        path.write_text(text + extra)
        return str(path)

    def start_master(self):
        self.master = TwistdProcess("broker", [
            "--port", str(self.port), "--store", str(self.tmp / "m"), "--ip", "127.0.0.1", "--namesrv", "",
            "--role", self.role, "--metrics-port", str(self.mport), "--config", self.conf("master")],
            self.tmp / "mlog").start().wait_port(self.port)

    def start_slave(self, name="s"):
        self.slave = TwistdProcess("broker", [
            "--port", str(self.sport), "--store", str(self.tmp / name), "--ip", "127.0.0.1", "--namesrv", "",
            "--role", "SLAVE", "--broker-id", "1", "--metrics-port", str(self.smport),
            "--config", self.conf("slave", f"haMasterAddress=127.0.0.1:{self.port + 1}\n")],
            self.tmp / f"slog-{name}").start().wait_port(self.sport)

    def stop(self):
        for p in (self.slave, self.master):
            if p is not None:
                p.stop()


@defer.inlineCallbacks
def wait_caught_up(reactor, pair, timeout=120):
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        m = yield threads.deferToThread(scrape, pair.mport)
        s = yield threads.deferToThread(scrape, pair.smport)
        if s.get("mq_broker_commitlog_max_offset") == m.get("mq_broker_commitlog_max_offset"):
            return time.perf_counter() - started, m["mq_broker_commitlog_max_offset"]
        yield task.deferLater(reactor, 0.05, lambda: None)
    raise RuntimeError("the slave did not catch up")


@defer.inlineCallbacks
def load_phase(reactor, pair, args, size, name):
    topic = f"HaBench{size}"
    load = Load(reactor, f"127.0.0.1:{pair.port}", args.connections)
    yield load.clients[0].call(load.addr, create_topic_request(topic, queues=8))
    body = b"x" * size
    samples = []
    sampling = {"on": True}

    @defer.inlineCallbacks
    def sampler():
        while sampling["on"]:
            try:
                m = yield threads.deferToThread(scrape, pair.mport)
                s = yield threads.deferToThread(scrape, pair.smport)
                samples.append((time.perf_counter(), m, s))
            except OSError:
                pass
            yield task.deferLater(reactor, 0.25, lambda: None)

    before_m = yield threads.deferToThread(scrape, pair.mport)
    before_s = yield threads.deferToThread(scrape, pair.smport)
    sampler_done = sampler()
    acks, elapsed, lat, errors = yield load.saturate(
        lambda: [send_request(topic, body, queue_id=q) for q in range(8)], args.window, args.seconds)
    sampling["on"] = False
    yield sampler_done
    after_m = yield threads.deferToThread(scrape, pair.mport)
    after_s = yield threads.deferToThread(scrape, pair.smport)
    catch_up, _ = yield wait_caught_up(reactor, pair)
    for c in load.clients:
        yield c.close()
    master_bytes = after_m["mq_broker_commitlog_max_offset"] - before_m["mq_broker_commitlog_max_offset"]
    slave_bytes = after_s["mq_broker_commitlog_max_offset"] - before_s["mq_broker_commitlog_max_offset"]
    row = summary(f"{name} {size} B", acks, elapsed, lat)
    row.update({
        "errors": errors,
        "master_MBps": round(master_bytes / elapsed / 1e6, 2),
        "slave_MBps": round(slave_bytes / elapsed / 1e6, 2),
        "slave_msgps": round(acks * (slave_bytes / master_bytes) / elapsed) if master_bytes else 0,
        "max_lag_s": round(max((s[1].get("mq_broker_ha_slave_lag_seconds", 0) for s in samples), default=0), 3),
        "max_lag_KiB": round(max((s[1].get("mq_broker_ha_slave_lag_bytes", 0) for s in samples), default=0) / 1024),
        "catch_up_after_load_s": round(catch_up, 3),
    })
    if name == "SYNC_MASTER":
        waits = after_m.get("mq_broker_ha_sync_wait_seconds_sum", 0) - before_m.get("mq_broker_ha_sync_wait_seconds_sum", 0)
        count = after_m.get("mq_broker_ha_sync_wait_seconds_count", 0) - before_m.get("mq_broker_ha_sync_wait_seconds_count", 0)
        row["avg_slave_wait_ms"] = round(1000 * waits / count, 2) if count else None
    return row


@defer.inlineCallbacks
def run(reactor, args):
    rows = []
    tmp_root = Path(tempfile.mkdtemp(prefix="mq-ha-bench-"))
    try:
        for role in ("ASYNC_MASTER", "SYNC_MASTER"):
            pair = Pair(tmp_root / role, role)
            try:
                pair.start_master()
                pair.start_slave()
                pair.slave.wait_log("HA: connected to the master", 30)
                for size in (128, 1024):
                    row = yield load_phase(reactor, pair, args, size, role)
                    print(json.dumps(row), flush=True)
                    rows.append(row)
            finally:
                pair.stop()
        # catch-up of an empty slave, by transfer batch size
        pair = Pair(tmp_root / "catchup", "ASYNC_MASTER")
        pair.start_master()
        try:
            load = Load(reactor, f"127.0.0.1:{pair.port}", 2)
            yield load.clients[0].call(load.addr, create_topic_request("HaPreload", queues=8))
            batch = [(b"p" * 1000, None)] * 64
            sent = 0
            while sent < args.preload_mb * 1_000_000:
                yield defer.gatherResults([c.call(load.addr, send_batch_request("HaPreload", batch, queue_id=i))
                                           for i, c in enumerate(load.clients * 4)])
                sent += 8 * 64 * 1000
            for c in load.clients:
                yield c.close()
            for size in (32 * 1024, 256 * 1024, 1024 * 1024):
                pair.batch = size
                pair.start_slave(f"s{size}")
                seconds, end = yield wait_caught_up(reactor, pair)
                pair.slave.stop()
                row = {"phase": f"catch-up, haTransferBatchSize {size // 1024} KiB", "MB": round(end / 1e6, 1),
                       "seconds": round(seconds, 2), "MBps": round(end / seconds / 1e6, 1)}
                print(json.dumps(row), flush=True)
                rows.append(row)
        finally:
            pair.stop()
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--preload-mb", type=int, default=64)
    args = parser.parse_args()
    task.react(lambda reactor: run(reactor, args).addCallback(lambda _: None))


if __name__ == "__main__":
    main()
