"""DLedger benchmark: send TPS and latency of a 3-node DLedger group beside a SYNC_MASTER pair and a single
ASYNC_MASTER, in one run, and the failover time (SIGKILL of the leader to the first acknowledged send on the
new leader) over several kills.

    python -m benchmarks.dledger_bench [--seconds 5] [--kills 5] [--pyspy PATH] [--small-files]

Load phases (128 B bodies, SEND_MESSAGE_V2 straight to the master or leader): one send at a time on one
connection (each waits for its acknowledgement: the round trip a synchronous producer sees), then 4
connections × 64 in flight (many producers: what group commit is for). Everything shares the machine's cores
(load generator and every broker), so the figures compare setups; they are not a capacity.

Each phase also prints the CPU (utime + stime from ``/proc``) every broker process and the generator spent per
acknowledged message: the host-independent figure (a group on one host shares its cores; on three hosts each
node has its own). The group's nodes get the lone master's file sizes (``--small-files``: the tests' 1 MiB
CommitLog and 1,000-entry queue files, as runs before 2026-12-06 used). ``--pyspy PATH`` samples every group
node during its 4 x 64 phase and prints the CPU per message by stage (``benchmarks.cpu_stages``).
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

from benchmarks import cpu_stages  # noqa: E402
from benchmarks.broker_bench import Load, summary  # noqa: E402
from benchmarks.ha_bench import Pair  # noqa: E402
from mq.client.simple import create_topic_request, send_request  # noqa: E402
from tests.broker.dledger.group_support import DLedgerCluster  # noqa: E402
from tests.broker.wire import call  # noqa: E402
from tests.support.processes import TwistdProcess, free_port  # noqa: E402

#: (label, connections, in flight per connection or None, paced rate or None). The paced phase offers every
#: setup the same rate, so its CPU per message compares setups (and code versions) at the same batching;
#: the saturating phases' batches grow with the latency, which moves their CPU per message too.
LOADS = (("1 x 1", 1, 1, None), ("4 x 64", 4, 64, None), ("4 x paced 2,000/s", 4, None, 2000))


def loads_with(windows) -> tuple:
    """``LOADS`` with a saturating phase of 4 connections for each window (in flight per connection)."""
    return LOADS[:1] + tuple((f"4 x {w}", 4, w, None) for w in windows) + LOADS[-1:]
#: The lone master's defaults, so the group's nodes roll files no more often than it does.
LONE_MASTER_FILES = "mappedFileSizeCommitLog=1073741824\nmappedFileSizeConsumeQueue=6000000\n"


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
def load_phases(reactor, addr, name, seconds, pids, pyspy=None, tmp=None, loads=LOADS):
    """The load phases against ``addr``; ``pids`` names every broker process of the setup ({role: pid}), whose
    CPU per acknowledged message each row reports (``cpu_us_per_msg``, and ``cpu_us_per_msg_total`` with the
    generator's own beside it)."""
    rows = []
    topic = "DlBench"
    for label, connections, window, rate in loads:
        load = Load(reactor, addr, connections)
        yield load.clients[0].call(addr, create_topic_request(topic, queues=8))
        recorders = {}
        if pyspy and window and window > 1:
            recorders = {role: cpu_stages.Recorder(pyspy, pid, tmp / f"{name}-{role}.raw".replace(" ", "_"), seconds)
                         for role, pid in pids.items()}
        cpu0 = {role: cpu_stages.cpu_seconds(pid) for role, pid in pids.items()}
        threads0 = {role: cpu_stages.thread_cpu_seconds(pid) for role, pid in pids.items()}
        gen0 = cpu_stages.self_cpu_seconds()
        requests = lambda: [send_request(topic, b"x" * 128, queue_id=q) for q in range(8)]  # noqa: E731
        if rate is None:
            acks, elapsed, lat, errors = yield load.saturate(requests, window, seconds)
        else:
            acks, elapsed, lat = yield load.paced(requests, rate, seconds)
            errors = None
        gen = cpu_stages.self_cpu_seconds() - gen0
        cpu = {role: cpu_stages.cpu_seconds(pid) - cpu0[role] for role, pid in pids.items()}
        split = {role: [b - a for a, b in zip(threads0[role], cpu_stages.thread_cpu_seconds(pid))]
                 for role, pid in pids.items()}
        for c in load.clients:
            yield c.close()
        row = summary(f"{name}, {label}", acks, elapsed, lat)
        row["errors"] = errors
        per = max(acks, 1)
        row["cpu_us_per_msg"] = {role: round(1e6 * s / per, 1) for role, s in cpu.items()}
        row["cpu_us_per_msg_main_other_threads"] = {role: [round(1e6 * t / per, 1) for t in ts]
                                                    for role, ts in split.items()}
        row["cpu_us_per_msg_total"] = round(1e6 * sum(cpu.values()) / per, 1)
        row["generator_cpu_us_per_msg"] = round(1e6 * gen / per, 1)
        row["cores_busy"] = round((sum(cpu.values()) + gen) / elapsed, 2)
        print(json.dumps(row), flush=True)
        rows.append(row)
        for role, rec in recorders.items():
            raw = yield threads.deferToThread(rec.result)
            samples = cpu_stages.stages(raw)
            total = sum(samples.values()) or 1
            # samples scaled to the process's measured CPU, so stages add up to cpu_us_per_msg
            scale = 1e6 * cpu[role] / per / total
            account = {stage: round(n * scale, 1) for stage, n in sorted(samples.items(), key=lambda kv: -kv[1])}
            print(json.dumps({"phase": f"{name}, {label}: {role} CPU µs/msg by stage", "samples": total,
                              "stages": account}, ensure_ascii=False), flush=True)
            print(json.dumps({"phase": f"{name}, {label}: {role} top leaf functions (samples)",
                              "leaves": cpu_stages.leaves(raw)}, ensure_ascii=False), flush=True)
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
    out = Path(args.pyspy_out) if args.pyspy_out else tmp
    out.mkdir(parents=True, exist_ok=True)
    try:
        single = Pair(tmp / "single", "ASYNC_MASTER")
        if "single" in args.setups:
            single.start_master()
            rows += yield load_phases(reactor, f"127.0.0.1:{single.port}", "ASYNC_MASTER alone", args.seconds,
                                      {"master": single.master.proc.pid}, args.pyspy, out, args.loads)
            single.stop()
        if "pair" in args.setups:
            pair = Pair(tmp / "pair", "SYNC_MASTER")
            pair.start_master()
            pair.start_slave()
            pair.slave.wait_log("HA: connected to the master", 30)
            rows += yield load_phases(reactor, f"127.0.0.1:{pair.port}", "SYNC_MASTER + slave", args.seconds,
                                      {"master": pair.master.proc.pid, "slave": pair.slave.proc.pid},
                                      loads=args.loads)
            pair.stop()
        if "group" not in args.setups:
            return rows
        (tmp / "group").mkdir()
        sizes = "" if args.small_files else LONE_MASTER_FILES
        group = yield threads.deferToThread(lambda: DLedgerCluster(starter, tmp / "group", extra_conf=sizes).start_all())
        leader = yield threads.deferToThread(group.wait_master)
        lead = group.node_of(leader)
        pids = {"leader": group.procs[lead].proc.pid}
        pids.update({f"follower {n}": group.procs[n].proc.pid for n in group.ids if n != lead})
        rows += yield load_phases(reactor, leader, "DLedger 3 nodes", args.seconds, pids, args.pyspy, out, args.loads)
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
    parser.add_argument("--setups", default="single,pair,group", help="comma-separated: single, pair, group")
    parser.add_argument("--pyspy", default=None, help="py-spy binary: sample the lone master and each group node")
    parser.add_argument("--pyspy-out", default=None, help="keep py-spy's raw stacks in this directory")
    parser.add_argument("--small-files", action="store_true", help="the group on 1 MiB CommitLog files")
    parser.add_argument("--windows", default="64",
                        help="in flight per connection of the saturating 4-connection phases, comma-separated (e.g. "
                             "64,256: a setup's peak is its best phase; a group's longer round needs more in flight)")
    args = parser.parse_args()
    try:
        args.loads = loads_with([int(w) for w in args.windows.split(",")])
    except ValueError:
        parser.error(f"--windows takes comma-separated counts, not {args.windows!r}")
    args.setups = set(args.setups.split(","))
    free_port()  # fail early without loopback
    task.react(lambda reactor: run(reactor, args))


if __name__ == "__main__":
    main()
