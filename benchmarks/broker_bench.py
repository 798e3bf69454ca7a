"""End-to-end broker benchmark: a ``twistd namesrv`` and a ``twistd broker`` (ASYNC_FLUSH) as subprocesses,
load from this process with the project's client (``mq.client.SimpleClient``), and optionally from the
official C++ client in another subprocess.

    python -m benchmarks.broker_bench [--seconds 8] [--connections 4] [--window 64] [--cpp-python PATH]
                                      [--server-python /tmp/venv-pypy/bin/python] [--no-cpp]
                                      [--phases single,paced,batch,consume,cpp] [--warmup 1] [--peak N]

Phases, each on a fresh 8-queue topic:

* peak single sends (128 B, 1 KiB): ``connections`` × ``window`` SEND_MESSAGE_V2 in flight;
* paced single sends at half the 128 B peak (RT at a sustainable rate);
* batches of 32 × 128 B (SEND_BATCH_MESSAGE);
* consume: pulls of 32 from every queue of the 128 B topic, one in flight per queue, until caught up;
* C++ ``send_sync`` from 8 threads (if an interpreter with ``rocketmq`` is found).

Latency is request-to-response as the client sees it; both sides share the machine's two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from twisted.internet import defer, task

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mq.client import SimpleClient  # noqa: E402
from mq.client.simple import create_topic_request, pull_request, send_batch_request, send_request  # noqa: E402
from tests.support.processes import TwistdProcess, child_env, free_port  # noqa: E402


def summary(name, count, seconds, latencies, unit="msg"):
    latencies = sorted(latencies)
    n = len(latencies)
    return {
        "phase": name, "count": count, "seconds": round(seconds, 2), "rate": round(count / seconds),
        "unit": unit,
        "avg_ms": round(1000 * sum(latencies) / n, 2) if n else None,
        "p99_ms": round(1000 * latencies[min(n - 1, int(n * 0.99))], 2) if n else None,
        "max_ms": round(1000 * latencies[-1], 2) if n else None,
    }


class Load:
    def __init__(self, reactor, addr, connections):
        self.reactor = reactor
        self.addr = addr
        self.clients = [SimpleClient(reactor, timeout=30) for _ in range(connections)]

    @defer.inlineCallbacks
    def saturate(self, make_requests, window, seconds, per_ack=1):
        """``window`` requests in flight per connection for ``seconds``; (acks × per_ack, elapsed, RTs)."""
        latencies = []
        stats = {"acks": 0, "errors": 0}
        end = self.reactor.seconds() + seconds
        done = []

        def run(client, requests):
            finished = defer.Deferred()
            state = {"inflight": 0, "i": 0}

            def fire():
                request = requests[state["i"] % len(requests)]
                state["i"] += 1
                state["inflight"] += 1
                t0 = time.perf_counter()
                client.call(self.addr, request).addCallbacks(lambda r: ack(r, t0), lambda f: fail(f))

            def ack(response, t0):
                latencies.append(time.perf_counter() - t0)
                if response.code == 0:
                    stats["acks"] += 1
                else:
                    stats["errors"] += 1
                again()

            def fail(f):
                stats["errors"] += 1
                again()

            def again():
                state["inflight"] -= 1
                if self.reactor.seconds() < end:
                    fire()
                elif state["inflight"] == 0 and not finished.called:
                    finished.callback(None)

            for _ in range(window):
                fire()
            return finished

        started = time.perf_counter()
        for client in self.clients:
            done.append(run(client, make_requests()))
        yield defer.gatherResults(done)
        return stats["acks"] * per_ack, time.perf_counter() - started, latencies, stats["errors"]

    @defer.inlineCallbacks
    def paced(self, make_requests, rate, seconds):
        """Send at ``rate``/s spread over the connections; RTs."""
        latencies = []
        tick = 0.002
        per_tick = rate * tick
        requests = [make_requests() for _ in self.clients]
        state = {"credit": 0.0, "n": 0, "pending": 0}
        finished = defer.Deferred()
        end = self.reactor.seconds() + seconds

        def step():
            if self.reactor.seconds() >= end:
                loop.stop()
                return
            state["credit"] += per_tick
            while state["credit"] >= 1:
                state["credit"] -= 1
                i = state["n"]
                state["n"] += 1
                c = i % len(self.clients)
                t0 = time.perf_counter()
                state["pending"] += 1
                d = self.clients[c].call(self.addr, requests[c][i % len(requests[c])])
                d.addBoth(lambda _, t0=t0: done(t0))

        def done(t0):
            latencies.append(time.perf_counter() - t0)
            state["pending"] -= 1
            if not loop.running and state["pending"] == 0 and not finished.called:
                finished.callback(None)

        loop = task.LoopingCall(step)
        started = time.perf_counter()
        yield loop.start(tick)
        if state["pending"]:
            yield finished
        return state["n"], time.perf_counter() - started, latencies

    @defer.inlineCallbacks
    def consume(self, topic, queues, seconds):
        """Pull every queue from 0 until two empty answers in a row or ``seconds``; (messages, elapsed)."""
        client = self.clients[0]
        count = [0]
        end = self.reactor.seconds() + seconds

        @defer.inlineCallbacks
        def one(qid):
            offset, empty = 0, 0
            while empty < 2 and self.reactor.seconds() < end:
                r = yield client.call(self.addr, pull_request("bench_consumer", topic, qid, offset))
                if r.code == 0:
                    empty = 0
                    offset = int(r.ext_fields["nextBeginOffset"])
                    count[0] += r.body.count(b"\xda\xa3\x20\xa7")  # one magic code per record (approximate)
                else:
                    empty += 1

        started = time.perf_counter()
        yield defer.gatherResults([one(q) for q in range(queues)])
        return count[0], time.perf_counter() - started

    def close(self):
        return defer.gatherResults([c.close() for c in self.clients])


# PyPy's default nursery is a few MiB: with 256 requests in flight, their short-lived objects outlive it and the
# old generation's collections put 20-40 ms into the p99. 32 MiB (like the young-generation size RocketMQ's
# runbroker.sh gives the JVM) brings p99 at half the peak back to a few ms. CPython ignores the variable.
SERVER_ENV_DEFAULTS = {"PYPY_GC_NURSERY": "32M", "PYPY_GC_MIN": "64MB"}


def server_env(pairs):
    env = dict(SERVER_ENV_DEFAULTS)
    env.update(kv.split("=", 1) for kv in pairs)
    return {k: v for k, v in env.items() if v}  # KEY= drops a default


def cpp_python(explicit):
    for candidate in (explicit, os.environ.get("MQ_CPP_PYTHON"), "/tmp/venv-cpp/bin/python"):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


@defer.inlineCallbacks
def run(reactor, args):
    tmp = Path(tempfile.mkdtemp(prefix="mq-broker-bench-"))
    ns_port, port = free_port(), free_port()
    procs = []
    results = []
    try:
        namesrv = TwistdProcess("namesrv", ["--port", str(ns_port), "--kv-config", str(tmp / "kv.json")],
                                tmp / "namesrv").start()
        procs.append(namesrv)
        namesrv.wait_port(ns_port)
        (tmp / "broker.conf").write_text("mappedFileSizeCommitLog=268435456\n")
        broker = TwistdProcess("broker", ["--port", str(port), "--namesrv", f"127.0.0.1:{ns_port}", "--store",
                                          str(tmp / "store"), "--ip", "127.0.0.1", "--broker-name", "bench",
                                          "--config", str(tmp / "broker.conf")], tmp / "broker",
                               python=args.server_python,
                               env=child_env(server_env(args.server_env))).start()
        procs.append(broker)
        broker.wait_port(port)
        addr = f"127.0.0.1:{port}"
        load = Load(reactor, addr, args.connections)
        admin = load.clients[0]
        for topic in ("Bench128", "Bench1K", "BenchPaced", "BenchBatch", "BenchCpp"):
            yield admin.call(addr, create_topic_request(topic, queues=8))

        def singles(topic, size):
            body = b"x" * size
            return lambda: [send_request(topic, body, tags="bench", queue_id=i % 8) for i in range(256)]

        phases = set(args.phases.split(","))
        peak = args.peak
        for topic, size in (("Bench128", 128), ("Bench1K", 1024)):
            if "single" not in phases:
                break
            yield load.saturate(singles(topic, size), args.window, args.warmup)  # warm-up
            count, elapsed, lat, errors = yield load.saturate(singles(topic, size), args.window, args.seconds)
            results.append(summary(f"send {size} B, {args.connections}x{args.window} in flight", count, elapsed, lat))
            results[-1]["errors"] = errors
            if size == 128:
                peak = count / elapsed
        if "paced" in phases and peak:
            yield load.paced(singles("BenchPaced", 128), peak / 2, args.warmup)  # warm-up
            count, elapsed, lat = yield load.paced(singles("BenchPaced", 128), peak / 2, args.seconds)
            results.append(summary(f"send 128 B paced at half the peak ({peak / 2:.0f}/s)", count, elapsed, lat))

        def batches():
            return [send_batch_request("BenchBatch", [(b"x" * 128, "bench")] * 32, queue_id=i % 8)
                    for i in range(32)]

        if "batch" in phases:
            yield load.saturate(batches, max(1, args.window // 16), args.warmup, 32)  # warm-up
            count, elapsed, lat, errors = yield load.saturate(batches, max(1, args.window // 16), args.seconds, 32)
            results.append(summary("send batches of 32 x 128 B", count, elapsed, lat))
            results[-1]["errors"] = errors
        if "consume" in phases and "single" in phases:
            count, elapsed = yield load.consume("Bench128", 8, args.seconds * 3)
            results.append(summary("consume (pull 32, 8 queues, 1 in flight each)", count, elapsed, []))
        yield load.close()
        cpp = None if args.no_cpp or "cpp" not in phases else cpp_python(args.cpp_python)
        if cpp:
            for size in (128, 1024):
                out = yield task.deferLater(reactor, 0, subprocess.run, [
                    cpp, str(REPO / "benchmarks" / "cpp_bench_client.py"), f"127.0.0.1:{ns_port}", "BenchCpp",
                    str(size), str(args.cpp_threads), str(args.seconds)], capture_output=True, env=child_env(),
                    timeout=args.seconds * 4 + 30)
                lines = [ln for ln in out.stdout.decode().splitlines() if ln.startswith("{")]
                if lines:
                    r = json.loads(lines[-1])
                    results.append({"phase": f"C++ send_sync {size} B, {args.cpp_threads} threads",
                                    "count": r["sends"], "seconds": round(r["seconds"], 2), "rate": round(r["tps"]),
                                    "unit": "msg", "avg_ms": round(r["avg_ms"], 2), "p99_ms": round(r["p99_ms"], 2),
                                    "max_ms": round(r["max_ms"], 2), "errors": r["errors"]})
                else:
                    results.append({"phase": f"C++ send_sync {size} B", "error": out.stderr.decode()[-500:]})
    finally:
        for proc in reversed(procs):
            proc.stop(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    print("| phase | messages | rate (msg/s) | avg RT ms | p99 RT ms | max RT ms |")
    print("|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['phase']} | failed: {r['error']} | | | | |")
            continue
        print(f"| {r['phase']} | {r['count']:,} | {r['rate']:,} | {r['avg_ms'] or '-'} | {r['p99_ms'] or '-'} "
              f"| {r['max_ms'] or '-'} |")
    if args.json:
        print(json.dumps(results))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--cpp-python", default=None)
    parser.add_argument("--server-python", default=None,
                        help="interpreter for the broker (e.g. /tmp/venv-pypy/bin/python); default: this one")
    parser.add_argument("--no-cpp", action="store_true", help="skip the C++ client phases")
    parser.add_argument("--cpp-threads", type=int, default=8)
    parser.add_argument("--phases", default="single,paced,batch,consume,cpp",
                        help="comma-separated subset of single,paced,batch,consume,cpp (paced needs single or --peak)")
    parser.add_argument("--peak", type=float, default=None, help="128 B peak rate for the paced phase without 'single'")
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the broker (default PYPY_GC_NURSERY=32M and PYPY_GC_MIN=64MB; "
                             "KEY= drops it); repeatable")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before each measured phase")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    task.react(run, [args])


if __name__ == "__main__":
    main()
