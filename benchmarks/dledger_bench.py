"""DLedger benchmark: send TPS and latency of a 3-node DLedger group beside a SYNC_MASTER pair and a single
ASYNC_MASTER, in one run, and the failover time (SIGKILL of the leader to the first acknowledged send on the
new leader) over several kills.

    python -m benchmarks.dledger_bench [--seconds 5] [--kills 5]

Load phases (128 B bodies, SEND_MESSAGE_V2 straight to the master or leader): one send at a time on one
connection (each waits for its acknowledgement: the round trip a synchronous producer sees), then 4
connections × 64 in flight (many producers: what group commit is for). Everything shares the machine's cores
(load generator and every broker), so the figures compare setups; they are not a capacity.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from twisted.internet import defer, task, threads

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.broker_bench import Load, summary  # noqa: E402
from benchmarks.ha_bench import Pair  # noqa: E402
from mq.client.simple import create_topic_request, send_request  # noqa: E402
from tests.broker.dledger.group_support import DLedgerCluster  # noqa: E402
from tests.broker.wire import call  # noqa: E402
from tests.support.processes import TwistdProcess, free_port  # noqa: E402

LOADS = (("1 x 1", 1, 1), ("4 x 64", 4, 64))


class Starter:
    """``twistd(plugin, *args)`` as the tests' fixture, every process stopped by ``stop_all``."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.started = []

    def __call__(self, plugin, *args, workdir=None):
        proc = TwistdProcess(plugin, list(args), workdir or self.tmp / f"{plugin}-{len(self.started)}")
        self.started.append(proc)
        return proc.start()

    def stop_all(self):
        for proc in self.started:
            proc.stop()


@defer.inlineCallbacks
def load_phases(reactor, addr, name, seconds):
    rows = []
    topic = "DlBench"
    for label, connections, window in LOADS:
        load = Load(reactor, addr, connections)
        yield load.clients[0].call(addr, create_topic_request(topic, queues=8))
        acks, elapsed, lat, errors = yield load.saturate(
            lambda: [send_request(topic, b"x" * 128, queue_id=q) for q in range(8)], window, seconds)
        for c in load.clients:
            yield c.close()
        row = summary(f"{name}, {label}", acks, elapsed, lat)
        row["errors"] = errors
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


@defer.inlineCallbacks
def failovers(reactor, group, kills):
    """Kill the leader ``kills`` times; seconds from each kill to the first send acknowledged by a new master."""
    times = []
    for _ in range(kills):
        old = group.wait_master()
        node = group.node_of(old)
        group.procs[node].kill()
        killed = time.perf_counter()
        while True:
            new = yield threads.deferToThread(group.master)
            if new is not None and new != old:
                try:
                    r = yield threads.deferToThread(call, new, send_request("DlBench", b"f", queue_id=0), 2.0)
                    if r.code == 0:
                        break
                except OSError:
                    pass
            yield task.deferLater(reactor, 0.01, lambda: None)
        times.append(time.perf_counter() - killed)
        print(json.dumps({"phase": "failover", "kill_to_first_ack_s": round(times[-1], 3)}), flush=True)
        yield threads.deferToThread(group.start, node)
        yield task.deferLater(reactor, 2.0, lambda: None)  # let it catch up before the next kill
    return times


@defer.inlineCallbacks
def run(reactor, args):
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="mq-dledger-bench-"))
    starter = Starter(tmp)
    try:
        single = Pair(tmp / "single", "ASYNC_MASTER")
        single.start_master()
        rows += yield load_phases(reactor, f"127.0.0.1:{single.port}", "ASYNC_MASTER alone", args.seconds)
        single.stop()
        pair = Pair(tmp / "pair", "SYNC_MASTER")
        pair.start_master()
        pair.start_slave()
        pair.slave.wait_log("HA: connected to the master", 30)
        rows += yield load_phases(reactor, f"127.0.0.1:{pair.port}", "SYNC_MASTER + slave", args.seconds)
        pair.stop()
        (tmp / "group").mkdir()
        group = yield threads.deferToThread(lambda: DLedgerCluster(starter, tmp / "group").start_all())
        leader = yield threads.deferToThread(group.wait_master)
        rows += yield load_phases(reactor, leader, "DLedger 3 nodes", args.seconds)
        if args.kills > 0:  # --kills 0: throughput only
            times = yield failovers(reactor, group, args.kills)
            rows.append({"phase": f"failover over {len(times)} kills", "median_s": round(statistics.median(times), 3),
                         "max_s": round(max(times), 3)})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        starter.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--kills", type=int, default=5)
    args = parser.parse_args()
    free_port()  # fail early without loopback
    task.react(lambda reactor: run(reactor, args))


if __name__ == "__main__":
    main()
