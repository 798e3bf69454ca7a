"""The Java benchmark producer's load (``mq.bench.java_load``) against real brokers on CPython and PyPy.

    python -m benchmarks.java_load [--seconds 30] [--warmup 10] [--rounds 2] [--loads 128x8,128x32,...]
                                   [--pypy-python PATH] [--runtimes cpython,pypy] [--cpp] [--json]
                                   [--against CHECKOUT] [--paced 0.5] [--rss-every 30]

For each runtime it starts a ``twistd namesrv`` and a ``twistd broker`` (ASYNC_FLUSH, store in a temp dir,
``PYPY_GC_NURSERY=32M PYPY_GC_MIN=64MB`` for PyPy, as docs/operations.md runs it; ``--pypy-env`` for others),
creates one 8-queue topic per load, and runs each load ``--rounds`` times in a generator subprocess (PyPy's
``pypy3`` when on PATH: it costs least). A load is ``SIZExWORKERS`` or
``bSIZExWORKERSxBATCH`` (batches). Each line: TPS, RT avg/p99/max, the broker's CPU µs per message (from
``/proc/PID/stat`` over the window) and the generator's own CPU; the table shows medians over the rounds.

``--cpp`` adds the official C++ client (``benchmarks/cpp_bench_client.py`` under an interpreter with PyPI
``rocketmq``, 8 threads ``send_sync``, SEND_MESSAGE v1): its TPS in the window is counted from the queues' max
offsets, its RT figures cover the whole run (warm-up included).

``--against CHECKOUT`` runs a second broker from another checkout (``git worktree add /tmp/base main``) beside
this one's, loads the two in turn in every round (order alternating) and prints the per-round ratio of their
CPU per message: on a shared machine the only comparison that holds is one measured minutes apart.

``--paced 0.5`` runs each load again paced to half the TPS just measured (the RT goal's load); ``--rss-every 30``
samples the broker's resident memory through each window (``--seconds 600`` for the 10-minute memory check).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mq.bench.java_load import proc_cpu_seconds  # noqa: E402
from mq.client.simple import create_topic_request, max_offset_request  # noqa: E402
from tests.broker.wire import Wire  # noqa: E402
from tests.support.processes import TwistdProcess, checkout_dropins, child_env, free_port  # noqa: E402

DEFAULT_LOADS = "128x8,128x32,1024x8,1024x32,b128x8x32"
#: As broker_bench: a young generation large enough for the requests in flight (see its comment).
PYPY_ENV = {"PYPY_GC_NURSERY": "32M", "PYPY_GC_MIN": "64MB"}  # docs/operations.md's PyPy command


def parse_load(text: str) -> dict:
    batch = text.startswith("b")
    parts = [int(p) for p in text.lstrip("b").split("x")]
    return {"name": text, "size": parts[0], "workers": parts[1], "batch": parts[2] if batch else 1}


def generator_python(explicit: Optional[str]) -> str:
    """PyPy when available: the generator is plain standard library and costs least there."""
    return explicit or shutil.which("pypy3") or sys.executable


def pypy_python(explicit: Optional[str]) -> Optional[str]:
    """A PyPy with Twisted, attrs, construct and prometheus-client (and the ``mq`` dropin) installed."""
    for candidate in (explicit, os.environ.get("MQ_PYPY_PYTHON"), "/tmp/perf-pypy/bin/python",
                      "/tmp/venv-pypy/bin/python"):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def cpp_python(explicit: Optional[str]) -> Optional[str]:
    for candidate in (explicit, os.environ.get("MQ_CPP_PYTHON"), sys.executable, "/tmp/venv-cpp/bin/python"):
        if candidate and subprocess.run([candidate, "-c", "import rocketmq.client"], capture_output=True).returncode == 0:
            return candidate
    return None


class Brokers:
    """A NameServer and one broker (ASYNC_FLUSH) under ``python``, stores in a temp dir."""

    def __init__(self, python: Optional[str], env: Optional[dict] = None, extra_conf: str = "") -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="mq-java-load-"))
        self.python = python
        self.env = env or {}
        self.extra_conf = extra_conf
        self.procs: List[TwistdProcess] = []

    def start(self) -> "Brokers":
        ns_port, port = free_port(), free_port()
        namesrv = TwistdProcess("namesrv", ["--port", str(ns_port), "--kv-config", str(self.tmp / "kv.json")],
                                self.tmp / "namesrv", python=self.python)
        self.procs.append(namesrv.start())
        namesrv.wait_port(ns_port)
        (self.tmp / "broker.conf").write_text("flushDiskType=ASYNC_FLUSH\nmappedFileSizeCommitLog=268435456\n"
                                              + self.extra_conf)
        broker = TwistdProcess("broker", ["--port", str(port), "--namesrv", f"127.0.0.1:{ns_port}", "--store",
                                          str(self.tmp / "store"), "--ip", "127.0.0.1", "--broker-name", "bench",
                                          "--config", str(self.tmp / "broker.conf")],
                               self.tmp / "broker", python=self.python, env=self.env)
        self.procs.append(broker.start())
        broker.wait_port(port)
        self.broker = broker
        self.addr = f"127.0.0.1:{port}"
        self.namesrv_addr = f"127.0.0.1:{ns_port}"
        return self

    @property
    def pid(self) -> int:
        return self.broker.proc.pid

    def create_topic(self, topic: str, queues: int = 8) -> None:
        with Wire(self.addr) as w:
            r = w.call(create_topic_request(topic, queues=queues))
            assert r.code == 0, r.remark

    def stored(self, topic: str, queues: int = 8) -> int:
        """Messages in ``topic``: the sum of its queues' max offsets."""
        with Wire(self.addr) as w:
            return sum(int(w.call(max_offset_request(topic, q)).ext_fields["offset"]) for q in range(queues))

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(timeout=30)
        shutil.rmtree(self.tmp, ignore_errors=True)


def run_generator(brokers: Brokers, topic: str, load: dict, args, rate: float = 0.0) -> dict:
    cmd = [generator_python(args.generator_python), "-m", "mq.bench.java_load", "--addr", brokers.addr,
           "--topic", topic, "--workers", str(load["workers"]), "--size", str(load["size"]),
           "--batch", str(load["batch"]), "--warmup", str(args.warmup), "--seconds", str(args.seconds),
           "--broker-pid", str(brokers.pid), "--rate", str(rate), "--rss-every", str(args.rss_every)]
    out = subprocess.run(cmd, capture_output=True, env=child_env(), cwd=str(REPO),
                         timeout=args.warmup + args.seconds + 120)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.decode(errors="replace")[-2000:])
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def run_cpp(brokers: Brokers, topic: str, size: int, threads: int, args, python: str) -> dict:
    """The C++ client for warm-up + window; the window's TPS and broker CPU from the broker side."""
    proc = subprocess.Popen([python, str(REPO / "benchmarks" / "cpp_bench_client.py"), brokers.namesrv_addr, topic,
                             str(size), str(threads), str(args.warmup + args.seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), cwd=str(REPO))
    time.sleep(args.warmup)  # a benchmark's fixed warm-up, not a wait for a condition
    n0, c0, t0 = brokers.stored(topic), proc_cpu_seconds(brokers.pid), time.monotonic()
    time.sleep(args.seconds)
    n1, c1, t1 = brokers.stored(topic), proc_cpu_seconds(brokers.pid), time.monotonic()
    stdout, stderr = proc.communicate(timeout=120)
    lines = [ln for ln in stdout.decode().splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(stderr.decode(errors="replace")[-2000:])
    r = json.loads(lines[-1])
    messages = n1 - n0
    return {"tps": round(messages / (t1 - t0), 1), "messages": messages, "errors": r["errors"],
            "rt_avg_ms": round(r["avg_ms"], 3), "rt_p99_ms": round(r["p99_ms"], 3), "rt_max_ms": round(r["max_ms"], 3),
            "broker_cpu_us_per_msg": round(1e6 * (c1 - c0) / messages, 2) if messages else None,
            "broker_cpu_share": round((c1 - c0) / (t1 - t0), 3), "generator_cpu_us_per_msg": None,
            "error_kinds": r.get("error_kinds", {})}


def median_of(rounds: List[dict]) -> dict:
    out = dict(rounds[-1])
    for key in ("tps", "rt_avg_ms", "rt_p99_ms", "rt_max_ms", "broker_cpu_us_per_msg", "broker_sys_us_per_msg",
                "broker_cpu_share",
                "generator_cpu_us_per_msg", "generator_cpu_share"):
        values = [r[key] for r in rounds if r.get(key) is not None]
        if values:
            out[key] = round(statistics.median(values), 3)
    out["rounds"] = len(rounds)
    out["tps_all"] = [r["tps"] for r in rounds]
    out["broker_cpu_all"] = [r.get("broker_cpu_us_per_msg") for r in rounds]
    return out


def against_env(env: dict, checkout: str) -> dict:
    """``env`` for a broker that runs another checkout's code (its ``mq`` first on PYTHONPATH)."""
    path = [str(Path(checkout).resolve()), checkout_dropins(), os.environ.get("PYTHONPATH")]
    return dict(env, PYTHONPATH=os.pathsep.join(p for p in path if p))


def run_runtime(name: str, python: Optional[str], env: dict, args) -> List[dict]:
    brokers = Brokers(python, env, args.broker_conf).start()
    # --against: the other checkout's broker beside this one; each round loads both in turn (order alternating),
    # so every figure has a baseline measured minutes, not a whole run, apart.
    other = Brokers(python, against_env(env, args.against), args.broker_conf).start() if args.against else None
    results = []
    try:
        loads = [parse_load(t) for t in args.loads.split(",") if t]
        for i, load in enumerate(loads):
            topic = f"JavaLoad{i}"
            brokers.create_topic(topic)
            if other is None:
                rounds = [run_generator(brokers, topic, load, args) for _ in range(args.rounds)]
                row = median_of(rounds)
                row.update(runtime=name, load=load["name"])
                results.append(row)
                print_row(row, args, flush=True)
                if args.paced:  # the same load paced to a fraction of the peak just measured: RT at that load
                    rate = args.paced * row["tps"] / load["batch"]
                    paced = median_of([run_generator(brokers, topic, load, args, rate) for _ in range(args.rounds)])
                    paced.update(runtime=name, load=f"{load['name']} paced to {args.paced:g} of the peak")
                    results.append(paced)
                    print_row(paced, args, flush=True)
                continue
            other.create_topic(topic)
            mine: List[dict] = []
            theirs: List[dict] = []
            for r in range(args.rounds):
                pair = ((brokers, mine), (other, theirs)) if r % 2 == 0 else ((other, theirs), (brokers, mine))
                for b, out in pair:
                    out.append(run_generator(b, topic, load, args))
            ratios = [a["broker_cpu_us_per_msg"] / b["broker_cpu_us_per_msg"] for a, b in zip(mine, theirs)
                      if a.get("broker_cpu_us_per_msg") and b.get("broker_cpu_us_per_msg")]
            for label, rounds in ((name, mine), (f"{name} against", theirs)):
                row = median_of(rounds)
                row.update(runtime=label, load=load["name"])
                if label == name and ratios:
                    row["cpu_ratio_paired"] = round(statistics.median(ratios), 3)
                    row["cpu_ratio_all"] = [round(x, 3) for x in ratios]
                results.append(row)
                print_row(row, args, flush=True)
        if args.cpp:
            python_cpp = cpp_python(args.cpp_python)
            if python_cpp:
                brokers.create_topic("JavaLoadCpp")
                rounds = [run_cpp(brokers, "JavaLoadCpp", 128, 8, args, python_cpp) for _ in range(args.rounds)]
                row = median_of(rounds)
                row.update(runtime=name, load="C++ 128x8")
                results.append(row)
                print_row(row, args, flush=True)
    finally:
        brokers.stop()
        if other is not None:
            other.stop()
    return results


def print_row(row: dict, args, flush: bool = False) -> None:
    if args.json:
        return
    print(f"| {row['runtime']} | {row['load']} | {row['tps']:,.0f} | {row['rt_avg_ms']:.2f} | {row['rt_p99_ms']:.2f} "
          f"| {row['rt_max_ms']:.1f} | {row.get('broker_cpu_us_per_msg')} ({row.get('broker_sys_us_per_msg')}) "
          f"| {row.get('broker_cpu_share')} "
          f"| {row.get('generator_cpu_us_per_msg')} | {row.get('errors', 0)} |"
          + (f" broker RSS {rss['first']} -> {rss['last']} MiB (min {rss['min']}, max {rss['max']})"
             if (rss := row.get("broker_rss_mib")) else "")
          + (f" CPU/msg against the other checkout, paired by round: median {row['cpu_ratio_paired']} "
             f"(rounds {row['cpu_ratio_all']})" if "cpu_ratio_paired" in row else ""), flush=flush)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=30.0, help="measured window per round (default 30)")
    p.add_argument("--warmup", type=float, default=10.0, help="load before each window (default 10)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--loads", default=DEFAULT_LOADS, help=f"comma-separated (default {DEFAULT_LOADS})")
    p.add_argument("--runtimes", default="cpython,pypy")
    p.add_argument("--pypy-python", default=None, help="PyPy interpreter with the broker's dependencies")
    p.add_argument("--pypy-env", action="append", default=[], metavar="NAME=VALUE",
                   help="another environment variable for the PyPy broker (e.g. PYPY_GC_MAX=256MB); repeatable")
    p.add_argument("--generator-python", default=None, help="interpreter for the load (default pypy3 if on PATH)")
    p.add_argument("--cpp", action="store_true", help="add the C++ client (8 threads, 128 B)")
    p.add_argument("--cpp-python", default=None)
    p.add_argument("--broker-conf", default="", help="extra broker.conf lines (\\n-separated)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--paced", type=float, default=0.0, metavar="FRACTION",
                   help="after each load, run it again paced to FRACTION of its measured TPS (e.g. 0.5: RT at half "
                        "the peak); not with --against")
    p.add_argument("--rss-every", type=float, default=0.0, metavar="S",
                   help="sample the broker's resident memory every S seconds of each window (--json shows them)")
    p.add_argument("--against", default=None, metavar="CHECKOUT",
                   help="another checkout (e.g. a worktree of main): its broker runs beside this one's and each "
                        "round loads both in turn, order alternating; prints both and the paired CPU/msg ratio")
    args = p.parse_args(argv)
    pypy_env = dict(PYPY_ENV)
    for item in args.pypy_env:
        name, eq, value = item.partition("=")
        if not eq or not name.startswith("PYPY"):
            p.error(f"--pypy-env takes PYPY...=VALUE (PYPY_GC_*, PYPYLOG), not {item!r}")
        pypy_env[name] = value
    if not 0 <= args.paced <= 1 or args.rss_every < 0:
        p.error("--paced is a fraction of the peak (0 to 1), --rss-every seconds (not negative)")
    args.broker_conf = args.broker_conf.replace("\\n", "\n")
    if args.broker_conf and not args.broker_conf.endswith("\n"):
        args.broker_conf += "\n"
    if not args.json:
        print("| runtime | load | TPS | RT avg ms | RT p99 ms | RT max ms | broker CPU µs/msg (of which system) "
              "| broker CPU share "
              "| generator CPU µs/msg | errors |")
        print("|---|---|---|---|---|---|---|---|---|---|")
    results: List[Dict] = []
    for runtime in args.runtimes.split(","):
        if runtime == "cpython":
            results += run_runtime("CPython", sys.executable, {}, args)
        elif runtime == "pypy":
            python = pypy_python(args.pypy_python)
            if python is None:
                print("| PyPy | skipped: no PyPy with the dependencies (--pypy-python) | | | | | | | | |")
                continue
            results += run_runtime("PyPy", python, pypy_env, args)
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
