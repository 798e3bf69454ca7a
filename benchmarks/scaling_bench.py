"""How the broker's cost grows (issue 11): connections, queues, a backlog drained under sends, brokers per host.

    python -m benchmarks.scaling_bench [--parts connections,queues,backlog,cluster] [--seconds 10]
                                       [--connections 1,10,100,1000] [--queues 8,8000] [--backlog-gib 2]
                                       [--pypy-python PATH] [--json]

Each part starts its own NameServer and broker(s) (``benchmarks.java_load.Brokers``: ASYNC_FLUSH, store in a temp
dir; PyPy brokers with ``java_load.PYPY_ENV``) and loads them with ``mq.bench.conn_load`` (N connections, one
SEND_MESSAGE_V2 of 128 B in flight on each) in a generator subprocess (``pypy3`` when on PATH). Every row has the
broker's CPU µs per message from ``/proc/PID/stat`` over the window, and every part a baseline from the same run:

* connections: 1, 10, 100, 1,000 connections to one broker, 8 queues (baseline: 1 connection);
* queues: 8 connections on 8 and on 8,000 read/write queues, sends spread over all of them (a topic has at most
  1,024 queues, as in RocketMQ: 8,000 are 8 topics of 1,000);
* backlog: ``--backlog-gib`` of 16 KiB messages written in batches of 32, then paced sends (``--paced-rate``)
  alone and again while one consumer connection drains the backlog with PULL_MESSAGE (32 a pull, every queue in
  turn; the drain starts with the sends' window and ends when every queue is empty); reports send TPS/RT over
  the window and the drain's messages and MiB per second until it ends. Refuses to fill /tmp past 50 %;
* cluster: one broker per core as docs/operations.md runs ``conf/2m-noslave`` (broker-a and broker-b, one
  NameServer, one cluster), each loaded by its own generator at once, against broker-a alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.java_load import PYPY_ENV, Brokers, generator_python, pypy_python  # noqa: E402
from mq.bench.java_load import proc_cpu_seconds, proc_rss_kib  # noqa: E402
from mq.client.simple import pull_request  # noqa: E402
from mq.store.consumequeue import RESERVE_AHEAD  # noqa: E402
from tests.broker.wire import Wire  # noqa: E402
from tests.support.processes import TwistdProcess, child_env, free_port  # noqa: E402

PARTS = ("connections", "queues", "backlog", "cluster")


def parse_ints(text: str, low: int, high: int) -> List[int]:
    """``1,10,100`` -> [1, 10, 100], each within [low, high]."""
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or any(not low <= v <= high for v in values):
        raise argparse.ArgumentTypeError(f"comma-separated integers from {low} to {high}, not {text!r}")
    return values


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default=",".join(PARTS))
    p.add_argument("--seconds", type=float, default=10.0, help="measured window per row (default 10)")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--connections", type=lambda t: parse_ints(t, 1, 10000), default=[1, 10, 100, 1000])
    p.add_argument("--queues", type=lambda t: parse_ints(t, 1, 65535), default=[8, 8000])
    p.add_argument("--queue-connections", type=int, default=8, help="connections of the queues part (default 8)")
    p.add_argument("--cq-entries", type=int, default=300000,
                   help="entries per consume queue file in the queues part (default RocketMQ's 300,000: 5.7 MiB)")
    p.add_argument("--backlog-gib", type=float, default=2.0, help="backlog to write then drain (default 2)")
    p.add_argument("--paced-rate", type=float, default=1000.0, help="sends/s during the drain (default 1000)")
    p.add_argument("--pypy-python", default=None, help="also run every part on this PyPy's broker")
    p.add_argument("--generator-python", default=None)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    parts = [x for x in args.parts.split(",") if x]
    if not parts or any(x not in PARTS for x in parts):
        p.error(f"--parts: some of {','.join(PARTS)}")
    args.parts = parts
    if not 10 <= args.cq_entries <= 300_000 or not 0 < args.backlog_gib <= 64 or args.seconds <= 0 \
            or args.warmup < 0 or args.paced_rate <= 0:
        p.error("--cq-entries 10..300000, --backlog-gib in (0, 64], --seconds > 0, --warmup >= 0, --paced-rate > 0")
    return args


def load(addr: str, topic: str, connections: int, queues: int, args, pid: Optional[int], rate: float = 0.0,
         wait: bool = True):
    """``mq.bench.conn_load`` in a subprocess; its JSON line (or the Popen when ``wait`` is false)."""
    cmd = [generator_python(args.generator_python), "-m", "mq.bench.conn_load", "--addr", addr, "--topic", topic,
           "--connections", str(connections), "--queues", str(queues), "--warmup", str(args.warmup),
           "--seconds", str(args.seconds), "--rate", str(rate)] + (["--broker-pid", str(pid)] if pid else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), cwd=str(REPO))
    return finish(proc, args) if wait else proc


def finish(proc: subprocess.Popen, args) -> dict:
    out, err = proc.communicate(timeout=args.warmup + args.seconds + 120)
    if proc.returncode != 0:
        raise RuntimeError(err.decode(errors="replace")[-2000:])
    return json.loads(out.decode().strip().splitlines()[-1])


def row(part: str, runtime: str, case: str, r: dict, **extra) -> dict:
    return dict({"part": part, "runtime": runtime, "case": case}, **{k: r.get(k) for k in (
        "tps", "rt_avg_ms", "rt_p99_ms", "broker_cpu_us_per_msg", "broker_cpu_share", "broker_rss_mib", "errors")},
        **extra)


def part_connections(runtime: str, python: str, env: dict, args) -> List[dict]:
    brokers = Brokers(python, env).start()
    try:
        brokers.create_topic("Conns", 8)
        return [row("connections", runtime, f"{n} connections", load(brokers.addr, "Conns", n, 8, args, brokers.pid))
                for n in args.connections]
    finally:
        brokers.stop()


def part_queues(runtime: str, python: str, env: dict, args) -> List[dict]:
    # A consume queue file is reserved on disk 80 KiB at a time as it fills (consumequeue.RESERVE_AHEAD), not whole.
    disk_check(tempfile_dir(), max(args.queues) * min(args.cq_entries * 20, RESERVE_AHEAD * 2) * 1.2)
    brokers = Brokers(python, env, f"mappedFileSizeConsumeQueue={args.cq_entries * 20}\n").start()
    try:
        out = []
        for q in args.queues:
            # the broker bounds a topic at 1,024 queues (as RocketMQ): more queues are several topics
            n_topics = -(-q // 1024)
            per_topic = q // n_topics
            topics = [f"Queues{q}_{i}" for i in range(n_topics)]
            for topic in topics:
                brokers.create_topic(topic, per_topic)
            case = f"{per_topic * n_topics} queues" + (f" ({n_topics} topics of {per_topic})" if n_topics > 1 else "")
            # twice: the first window pays for each queue's first message (its consume queue file), the second
            # is the steady state
            for when in ("first", "again"):
                r = load(brokers.addr, ",".join(topics), args.queue_connections, per_topic, args, brokers.pid)
                out.append(row("queues", runtime, f"{case}, {args.queue_connections} connections, {when}", r,
                           note=f"consume queue files of {args.cq_entries:,} entries"))
        return out
    finally:
        brokers.stop()


def disk_check(path: str, extra_bytes: float) -> None:
    usage = shutil.disk_usage(path)
    if usage.used + extra_bytes > 0.5 * usage.total:
        raise SystemExit(f"the backlog would fill {path} past 50 % ({usage.used / 2**30:.0f} GiB used of "
                         f"{usage.total / 2**30:.0f}); use a smaller --backlog-gib")


def fill(brokers: Brokers, topic: str, gib: float, args) -> dict:
    """Batches of 32 x 16 KiB messages until ``gib`` is stored; the write rate."""
    target, size, t0 = gib * 2**30, 16384, time.monotonic()
    stored = 0
    while stored * size < target:
        cmd = [generator_python(args.generator_python), "-m", "mq.bench.java_load", "--addr", brokers.addr,
               "--topic", topic, "--workers", "4", "--size", str(size), "--batch", "32", "--warmup", "0",
               "--seconds", "2"]
        subprocess.run(cmd, check=True, capture_output=True, env=child_env(), cwd=str(REPO), timeout=120)
        stored = brokers.stored(topic, 8)
    elapsed = time.monotonic() - t0
    return {"messages": stored, "gib": round(stored * size / 2**30, 2), "seconds": round(elapsed, 1),
            "write_mib_s": round(stored * size / 2**20 / elapsed, 1)}


class Drain(threading.Thread):
    """One consumer connection pulling ``topic``'s queues in turn from offset 0, counting what comes back."""

    def __init__(self, addr: str, topic: str, queues: int = 8) -> None:
        super().__init__(daemon=True)
        self.addr, self.topic, self.queues = addr, topic, queues
        self.offsets = [0] * queues
        self.messages = self.bytes = 0
        self.stop_at = 0.0
        self.running = True
        self.error: Optional[str] = None
        self.done_at: Optional[float] = None
        self.codes: Dict[int, int] = {}

    def run(self) -> None:
        try:
            self._pull()
        except Exception as e:  # reported beside the figures: a drain that stopped must not read as a slow one
            self.error = repr(e)

    def _pull(self) -> None:
        empty: set = set()
        with Wire(self.addr, timeout=30) as w:
            q = 0
            while self.running:
                r = w.call(pull_request("scaling_drain", self.topic, q, self.offsets[q], max_nums=32))
                self.codes[r.code] = self.codes.get(r.code, 0) + 1
                if r.code != 0:
                    empty.add(q)
                    if len(empty) == self.queues:
                        self.done_at = time.monotonic()
                        return
                else:
                    empty.discard(q)
                nxt = int(r.ext_fields.get("nextBeginOffset", self.offsets[q]))
                self.messages += nxt - self.offsets[q]
                self.bytes += len(r.body or b"")
                self.offsets[q] = nxt
                q = (q + 1) % self.queues


def part_backlog(runtime: str, python: str, env: dict, args) -> List[dict]:
    disk_check(tempfile_dir(), args.backlog_gib * 2**30 * 1.2)
    brokers = Brokers(python, env).start()
    try:
        brokers.create_topic("Backlog", 8)
        brokers.create_topic("Live", 8)
        written = fill(brokers, "Backlog", args.backlog_gib, args)
        alone = load(brokers.addr, "Live", 8, 8, args, brokers.pid, args.paced_rate)
        # the sends start, and after their warm-up the drain starts with their window, so the two overlap from
        # the drain's first pull; the drain stops once every queue answers it has nothing more
        proc = load(brokers.addr, "Live", 8, 8, args, None, args.paced_rate, wait=False)
        time.sleep(args.warmup)  # the generator's own warm-up: a fixed wait, not a condition
        drain = Drain(brokers.addr, "Backlog")
        c0, t0 = proc_cpu_seconds(brokers.pid), time.monotonic()
        drain.start()
        with_drain = finish(proc, args)
        c1, t1 = proc_cpu_seconds(brokers.pid), time.monotonic()
        drain.running = False
        drain.join(30)
        drain_s = (drain.done_at or t1) - t0
        drained = drain.messages
        elapsed = t1 - t0
        sent = with_drain["tps"] * with_drain["seconds"]
        with_drain["broker_cpu_us_per_msg"] = round(1e6 * (c1 - c0) / (drained + sent), 2)
        with_drain["broker_cpu_share"] = round((c1 - c0) / elapsed, 3)
        with_drain["broker_rss_mib"] = round(proc_rss_kib(brokers.pid) / 1024, 1)
        b1 = drain.bytes
        note = f"backlog {written['gib']} GiB written at {written['write_mib_s']} MiB/s"
        return [row("backlog", runtime, f"sends paced to {args.paced_rate:g}/s alone", alone, note=note),
                row("backlog", runtime, "the same sends while draining", with_drain, note=note,
                    drain_msgs_s=round(drained / drain_s), drain_mib_s=round(b1 / 2**20 / drain_s, 1),
                    drain_seconds=round(drain_s, 1),
                    cpu_note="CPU per message sent or drained",
                    drain_left=brokers.stored("Backlog", 8) - sum(drain.offsets),
                    drain_codes=drain.codes, drain_error=drain.error)]
    finally:
        brokers.stop()


def tempfile_dir() -> str:
    import tempfile
    return tempfile.gettempdir()


def part_cluster(runtime: str, python: str, env: dict, args) -> List[dict]:
    """Two brokers of conf/2m-noslave on one NameServer, as docs/operations.md starts them."""
    first = Brokers(python, env)  # its temp dir and process list; its NameServer, the conf/ brokers
    ns_port = free_port()
    namesrv = TwistdProcess("namesrv", ["--port", str(ns_port), "--kv-config", str(first.tmp / "kv.json")],
                            first.tmp / "namesrv", python=python)
    first.procs.append(namesrv.start())
    namesrv.wait_port(ns_port)
    brokers: Dict[str, tuple] = {}
    try:
        for name in ("broker-a", "broker-b"):
            port = free_port()
            b = TwistdProcess("broker", ["-c", str(REPO / "conf" / "2m-noslave" / f"{name}.properties"), "-n",
                                         f"127.0.0.1:{ns_port}", "--port", str(port), "--store",
                                         str(first.tmp / f"store-{name}"), "--ip", "127.0.0.1"],
                              first.tmp / name, python=python, env=env)
            first.procs.append(b.start())
            b.wait_port(port)
            addr = f"127.0.0.1:{port}"
            with Wire(addr) as w:
                from mq.client.simple import create_topic_request
                assert w.call(create_topic_request("Cluster", queues=8)).code == 0
            brokers[name] = (addr, b.proc.pid)
        a_addr, a_pid = brokers["broker-a"]
        one = load(a_addr, "Cluster", 8, 8, args, a_pid)
        procs = [load(addr, "Cluster", 8, 8, args, pid, wait=False) for addr, pid in brokers.values()]
        both = [finish(p, args) for p in procs]
        agg = {"tps": round(sum(r["tps"] for r in both), 1),
               "rt_avg_ms": round(max(r["rt_avg_ms"] for r in both), 3),
               "rt_p99_ms": round(max(r["rt_p99_ms"] for r in both), 3),
               "broker_cpu_us_per_msg": round(sum(r["broker_cpu_us_per_msg"] * r["tps"] for r in both)
                                              / max(1.0, sum(r["tps"] for r in both)), 2),
               "broker_cpu_share": round(sum(r["broker_cpu_share"] for r in both), 3),
               "broker_rss_mib": max(r["broker_rss_mib"] for r in both),
               "errors": sum(r["errors"] for r in both)}
        return [row("cluster", runtime, "broker-a alone, 8 connections", one),
                row("cluster", runtime, "broker-a + broker-b at once, 8 connections each (sum)", agg,
                    per_broker_tps=[r["tps"] for r in both])]
    finally:
        first.stop()


def print_table(rows: List[dict]) -> None:
    print("| part | runtime | case | TPS | RT avg ms | RT p99 ms | broker CPU µs/msg | broker CPU share "
          "| broker RSS MiB | errors | notes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        notes = "; ".join(str(x) for x in (r.get("note"), r.get("cpu_note"),
                                           f"drain {r['drain_msgs_s']:,} msg/s, {r['drain_mib_s']} MiB/s "
                                           f"over {r['drain_seconds']} s, "
                                           f"{r['drain_left']:,} left, pull codes {r['drain_codes']}, "
                                           f"error {r['drain_error']}" if "drain_msgs_s" in r else None,
                                           f"per broker {r['per_broker_tps']}" if "per_broker_tps" in r else None)
                          if x)
        print(f"| {r['part']} | {r['runtime']} | {r['case']} | {r['tps']:,.0f} | {r['rt_avg_ms']:.2f} "
              f"| {r['rt_p99_ms']:.2f} | {r['broker_cpu_us_per_msg']} | {r['broker_cpu_share']} "
              f"| {r['broker_rss_mib']} | {r['errors']} | {notes} |", flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    runtimes = [("CPython", sys.executable, {})]
    if args.pypy_python:
        python = pypy_python(args.pypy_python)
        if python is None:
            raise SystemExit(f"no PyPy at {args.pypy_python}")
        runtimes.append(("PyPy", python, dict(PYPY_ENV)))
    funcs = {"connections": part_connections, "queues": part_queues, "backlog": part_backlog,
             "cluster": part_cluster}
    rows: List[dict] = []
    for part in args.parts:
        for name, python, env in runtimes:
            got = funcs[part](name, python, env, args)
            rows += got
            if not args.json:
                print_table(got)
                print(flush=True)
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
