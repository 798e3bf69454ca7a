"""mq-bench beside the official C++ client, against the same broker in the same run.

    python -m benchmarks.client_bench [--seconds 8] [--json]

Starts ``twistd namesrv`` and ``twistd broker`` (ASYNC_FLUSH), then runs each load in its own process, one
after the other: ``mq-bench producer`` (sync with 8 workers, like the C++ client's 8 threads; async with 64
in flight; batches of 32), the C++ client's ``send_sync`` from 8 threads (``benchmarks/cpp_bench_client.py``,
PyPI ``rocketmq`` 0.4.4), and ``mq-bench consumer`` draining what was sent. Each load's CPU time is its
process's user + system time (``RUSAGE_CHILDREN``), so "msg per CPU s" compares client cost, not broker cost.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.local_broker import start_namesrv_and_broker
from mq.client.simple import create_topic_request
from tests.broker.wire import call
from tests.support.processes import REPO, child_env


def cpu_children() -> float:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def timed(cmd, timeout):
    c0, t0 = cpu_children(), time.monotonic()
    out = subprocess.run(cmd, capture_output=True, env=child_env(), cwd=str(REPO), timeout=timeout)
    return out, cpu_children() - c0, time.monotonic() - t0


def bench(namesrv, args, *extra, timeout=120):
    cmd = [sys.executable, "-m", "mq.bench.cli", *extra[:1], "-n", namesrv, *extra[1:], "--json"]
    out, cpu, wall = timed(cmd, timeout)
    lines = [ln for ln in out.stdout.decode().splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(out.stderr.decode()[-2000:])
    result = json.loads(lines[-1])
    result["process_cpu_s"] = round(cpu, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--cpp-python", default=os.environ.get("MQ_CPP_PYTHON", "/tmp/venv-cpp/bin/python"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mq-client-bench-"))
    procs, rows = [], []
    try:
        started, namesrv, broker_addr = start_namesrv_and_broker(tmp, "mappedFileSizeCommitLog=268435456\n")
        procs.extend(started)
        for topic in ("BenchSync", "BenchAsync", "BenchBatch", "BenchCpp"):
            assert call(broker_addr, create_topic_request(topic, queues=8)).code == 0
        time.sleep(1.0)  # let the NameServer see the new topics (routes are polled by the clients anyway)
        s = str(args.seconds)
        phases = [
            ("mq-bench producer, sync, 8 workers, 128 B", ("producer", "-t", "BenchSync", "--mode", "sync", "-w", "8",
                                                            "-d", s)),
            ("mq-bench producer, async, 64 in flight, 128 B", ("producer", "-t", "BenchAsync", "-w", "64", "-d", s)),
            ("mq-bench producer, batches of 32 x 128 B, 4 in flight", ("producer", "-t", "BenchBatch", "-b", "32",
                                                                        "-w", "4", "-d", s)),
        ]
        for label, extra in phases:
            r = bench(namesrv, args, *extra)
            rows.append({"phase": label, **r})
        if args.cpp_python and os.path.exists(args.cpp_python):
            out, cpu, wall = timed([args.cpp_python, str(REPO / "benchmarks" / "cpp_bench_client.py"), namesrv,
                                    "BenchCpp", "128", "8", s], args.seconds * 4 + 60)
            lines = [ln for ln in out.stdout.decode().splitlines() if ln.startswith("{")]
            if lines:
                r = json.loads(lines[-1])
                rows.append({"phase": "C++ client send_sync, 8 threads, 128 B", "messages": r["sends"],
                             "tps": round(r["tps"], 1), "rt_avg_ms": round(r["avg_ms"], 3), "rt_p50_ms": None,
                             "rt_p99_ms": round(r["p99_ms"], 3), "rt_max_ms": round(r["max_ms"], 3),
                             "failures": r["errors"], "process_cpu_s": round(cpu, 2)})
        sent = sum(row["messages"] for row in rows if row["phase"].startswith("mq-bench producer, sync"))
        r = bench(namesrv, args, "consumer", "-t", "BenchSync", "-g", "BenchConsumer", "--from-first", "-c", str(sent),
                  "-d", str(args.seconds * 6))
        rows.append({"phase": f"mq-bench consumer, push, drains {sent:,} messages", **r})
    finally:
        for proc in reversed(procs):
            proc.stop(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(rows))
        return
    print("| phase | messages | msg/s | RT avg ms | p50 | p99 | max | failures | client CPU s | msg per CPU s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        per_cpu = r["messages"] / r["process_cpu_s"] if r["process_cpu_s"] else 0
        print(f"| {r['phase']} | {r['messages']:,} | {r['tps']:,.0f} | {r['rt_avg_ms']} | {r['rt_p50_ms'] or '-'} | "
              f"{r['rt_p99_ms']} | {r['rt_max_ms']} | {r['failures']} | {r['process_cpu_s']} | {per_cpu:,.0f} |")


if __name__ == "__main__":
    main()
