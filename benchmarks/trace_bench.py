"""Send TPS of mq's producer with message trace off and on, against the same broker in the same run.

    python -m benchmarks.trace_bench [--seconds 6] [--rounds 3] [--inflight 64] [--json]
    python -m benchmarks.trace_bench --paired [--rounds 5] [--seconds 30] [--slice 1.0] [--control] [--json]

Starts ``twistd namesrv`` and ``twistd broker`` (``traceTopicEnable=true``), then runs the load in a child
process per phase, alternating off/on for ``--rounds`` rounds so that drift on a shared machine hits both
alike: async sends of 128 B with ``--inflight`` in flight for ``--seconds``. Each phase reports messages/s,
the client's CPU per message (its process's user + system time), and with trace on the trace records sent
and dropped. The figure compared is the median over rounds (goal: trace on at most 10% lower).

``--paired``: one client process holds two producers, one traced and one not, and alternates them in slices
of ``--slice`` seconds for ``--seconds`` in all, so that the machine's load (other processes on a shared
machine swing msg/s by 2x between runs) falls on both alike. A traced slice ends only when its trace records
are sent (the dispatcher flushed and its sends answered), so every trace cost is counted in it. The objects
of the start are frozen out of the garbage collector first (``gc.freeze``): its full collections, ~0.1 s each,
would otherwise fall on one side or the other by chance. Reports msg/s and client CPU µs per message of
each, the broker's CPU µs per message in each kind of slice (from ``/proc``), and the paired slices' median
ratio. ``--rounds``: that many such runs, each in a fresh client process against the same broker, a row each
with the machine's load average, then the medians over rounds. ``--control``: the "on" producer traces
nothing either (an A/A run: how far two identical sides drift apart on this machine).
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

from benchmarks.local_broker import start_namesrv_and_broker
from mq.client.simple import create_topic_request
from tests.broker.wire import call
from tests.support.processes import REPO, child_env

TOPIC = "TraceBench"


def worker(namesrv: str, trace: bool, seconds: float, inflight: int, size: int) -> None:
    """One phase in this process: send for ``seconds`` with ``inflight`` sends outstanding; print JSON."""
    from twisted.internet import defer, task

    from mq.client import Producer, make_message

    producer = Producer("TraceBenchPG", namesrv, instance_name=f"trace-bench-{trace}", enable_msg_trace=trace)
    body = b"x" * size
    state = {"sent": 0, "failed": 0}

    @defer.inlineCallbacks
    def run():
        producer.start()
        yield producer.send(make_message(TOPIC, body))  # routes and connection ready before timing
        deadline = time.monotonic() + seconds
        c0 = time.process_time()
        t0 = time.monotonic()

        @defer.inlineCallbacks
        def lane():
            while time.monotonic() < deadline:
                try:
                    yield producer.send(make_message(TOPIC, body, keys="bench-key"))
                    state["sent"] += 1
                except Exception:
                    state["failed"] += 1

        yield defer.gatherResults([lane() for _ in range(inflight)])
        wall, cpu = time.monotonic() - t0, time.process_time() - c0
        tracer = producer.tracer
        out = {"trace": trace, "messages": state["sent"], "failures": state["failed"],
               "tps": round(state["sent"] / wall, 1), "cpu_us_per_msg": round(cpu / max(1, state["sent"]) * 1e6, 1)}
        yield producer.shutdown()
        if tracer is not None:
            out.update(trace_messages=tracer.dispatcher.sent_messages, dropped=tracer.dispatcher.dropped,
                       trace_failures=tracer.dispatcher.failed_messages)
        print(json.dumps(out), flush=True)

    task.react(lambda _r: run())


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def paired_worker(namesrv: str, seconds: float, slice_s: float, inflight: int, size: int, broker_pid: int,
                  control: bool = False) -> None:
    """Both producers in this process, alternating slices; print JSON."""
    import gc

    from twisted.internet import defer, task

    from mq.client import Producer, make_message

    body = b"x" * size
    producers = {trace: Producer(f"TraceBenchPG{int(trace)}", namesrv, instance_name=f"trace-paired-{trace}",
                                 enable_msg_trace=trace and not control) for trace in (False, True)}
    totals = {trace: {"sent": 0, "wall": 0.0, "cpu": 0.0, "broker": 0.0, "slices": []} for trace in (False, True)}

    @defer.inlineCallbacks
    def one_slice(trace: bool):
        producer = producers[trace]
        sent = [0]
        deadline = time.monotonic() + slice_s
        c0, t0, b0 = time.process_time(), time.monotonic(), process_cpu(broker_pid)

        @defer.inlineCallbacks
        def lane():
            while time.monotonic() < deadline:
                yield producer.send(make_message(TOPIC, body, keys="bench-key"))
                sent[0] += 1

        yield defer.gatherResults([lane() for _ in range(inflight)])
        if producer.tracer is not None:  # the slice's trace records sent and answered before its clock stops
            dispatcher = producer.tracer.dispatcher
            dispatcher._flush(force=True)
            yield defer.DeferredList(list(dispatcher.in_flight), consumeErrors=True)
        wall, cpu = time.monotonic() - t0, time.process_time() - c0
        t = totals[trace]
        t["broker"] += process_cpu(broker_pid) - b0
        t["sent"] += sent[0]
        t["wall"] += wall
        t["cpu"] += cpu
        t["slices"].append((sent[0] / wall, cpu / max(1, sent[0]) * 1e6))

    @defer.inlineCallbacks
    def run():
        for p in producers.values():
            p.start()
            yield p.send(make_message(TOPIC, body))
        # Startup's objects out of the collector's way: a full collection walks them all (~0.1 s here), and
        # the few that fall in a run would land on one side or the other by chance.
        gc.collect()
        gc.freeze()
        end = time.monotonic() + seconds
        first = False
        while time.monotonic() < end:
            for trace in (first, not first):  # each side goes first in every other pair
                yield one_slice(trace)
            first = not first
        out = {}
        for trace, t in totals.items():
            name = "on" if trace else "off"
            out[name] = {"messages": t["sent"], "tps": round(t["sent"] / t["wall"], 1),
                         "cpu_us_per_msg": round(t["cpu"] / max(1, t["sent"]) * 1e6, 1),
                         "broker_cpu_us_per_msg": round(t["broker"] / max(1, t["sent"]) * 1e6, 1)}
        pairs = list(zip(totals[False]["slices"], totals[True]["slices"]))
        out["median_tps_ratio"] = round(statistics.median(on[0] / off[0] for off, on in pairs), 3)
        out["median_cpu_ratio"] = round(statistics.median(on[1] / off[1] for off, on in pairs), 3)
        out["pairs"] = len(pairs)
        tracer = producers[True].tracer
        if tracer is not None:
            out["on"].update(trace_messages=tracer.dispatcher.sent_messages, dropped=tracer.dispatcher.dropped)
        for p in producers.values():
            yield p.shutdown()
        print(json.dumps(out), flush=True)

    task.react(lambda _r: run())


def phase(namesrv: str, trace: bool, args) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.trace_bench", "--worker", namesrv, "--seconds", str(args.seconds),
           "--inflight", str(args.inflight), "--size", str(args.size)] + (["--trace"] if trace else [])
    out = subprocess.run(cmd, capture_output=True, env=child_env(), cwd=str(REPO), timeout=args.seconds * 4 + 60)
    lines = [ln for ln in out.stdout.decode().splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(out.stderr.decode()[-2000:])
    return json.loads(lines[-1])


def paired_rounds(namesrv: str, broker_pid: int, args) -> None:
    """``--rounds`` paired runs, each in a fresh client process; a row each, then the medians."""
    rows = []
    for n in range(args.rounds):
        cmd = [sys.executable, "-m", "benchmarks.trace_bench", "--worker", namesrv, "--paired", "--seconds",
               str(args.seconds), "--slice", str(args.slice), "--inflight", str(args.inflight), "--size",
               str(args.size), "--broker-pid", str(broker_pid)] + (["--control"] if args.control else [])
        load0 = os.getloadavg()[0]
        out = subprocess.run(cmd, capture_output=True, env=child_env(), cwd=str(REPO), timeout=args.seconds * 4 + 120)
        lines = [ln for ln in out.stdout.decode().splitlines() if ln.startswith("{")]
        if not lines:
            raise RuntimeError(out.stderr.decode()[-2000:])
        r = json.loads(lines[-1])
        r["load"] = [round(load0, 1), round(os.getloadavg()[0], 1)]
        off, on = r["off"], r["on"]
        r["tps_ratio"] = round(on["tps"] / off["tps"], 3)
        for side in (off, on):
            side["total_cpu_us_per_msg"] = round(side["cpu_us_per_msg"] + side["broker_cpu_us_per_msg"], 1)
        rows.append(r)
        if not args.json:
            if n == 0:
                print("| round | load | msg/s off → on (on/off) | paired slices' median on/off | client CPU µs/msg "
                      "off → on | broker CPU µs/msg off → on | client + broker off → on |")
                print("|---|---|---|---|---|---|---|")
            print(f"| {n + 1} | {r['load'][0]}–{r['load'][1]} | {off['tps']:,.0f} → {on['tps']:,.0f} "
                  f"({r['tps_ratio']:.3f}) | {r['median_tps_ratio']:.3f} | {off['cpu_us_per_msg']} → "
                  f"{on['cpu_us_per_msg']} | {off['broker_cpu_us_per_msg']} → {on['broker_cpu_us_per_msg']} | "
                  f"{off['total_cpu_us_per_msg']} → {on['total_cpu_us_per_msg']} |", flush=True)

    def med(f):
        return round(statistics.median(f(r) for r in rows), 3)

    summary = {"rounds": len(rows), "control": args.control, "tps_ratio": med(lambda r: r["tps_ratio"]),
               "slice_tps_ratio": med(lambda r: r["median_tps_ratio"]),
               "client_cpu_us": [med(lambda r: r["off"]["cpu_us_per_msg"]), med(lambda r: r["on"]["cpu_us_per_msg"])],
               "broker_cpu_us": [med(lambda r: r["off"]["broker_cpu_us_per_msg"]),
                                 med(lambda r: r["on"]["broker_cpu_us_per_msg"])],
               "total_cpu_ratio": med(lambda r: r["on"]["total_cpu_us_per_msg"] / r["off"]["total_cpu_us_per_msg"])}
    if args.json:
        print(json.dumps({"rounds": rows, "summary": summary}))
        return
    print(f"\nmedians over {len(rows)} rounds{' (control: neither side traced)' if args.control else ''}: msg/s "
          f"on/off {summary['tps_ratio']}, paired slices {summary['slice_tps_ratio']}; client CPU µs/msg "
          f"{summary['client_cpu_us'][0]} → {summary['client_cpu_us'][1]}, broker {summary['broker_cpu_us'][0]} → "
          f"{summary['broker_cpu_us'][1]}; client + broker CPU on/off {summary['total_cpu_ratio']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--paired", action="store_true")
    parser.add_argument("--slice", type=float, default=1.0)
    parser.add_argument("--worker", metavar="NAMESRV", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--broker-pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--control", action="store_true")
    args = parser.parse_args()
    if args.worker and args.paired:
        paired_worker(args.worker, args.seconds, args.slice, args.inflight, args.size, args.broker_pid, args.control)
        return
    if args.worker:
        worker(args.worker, args.trace, args.seconds, args.inflight, args.size)
        return
    tmp = Path(tempfile.mkdtemp(prefix="mq-trace-bench-"))
    procs, rows = [], []
    try:
        started, namesrv, broker_addr = start_namesrv_and_broker(
            tmp, "mappedFileSizeCommitLog=268435456\ntraceTopicEnable=true\n")
        procs.extend(started)
        assert call(broker_addr, create_topic_request(TOPIC, queues=8)).code == 0
        time.sleep(1.0)  # let the NameServer see the new topic
        if args.paired:
            paired_rounds(namesrv, started[-1].proc.pid, args)
            return
        for _ in range(args.rounds):
            for trace in (False, True):
                rows.append(phase(namesrv, trace, args))
    finally:
        for proc in reversed(procs):
            proc.stop(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    off = [r for r in rows if not r["trace"]]
    on = [r for r in rows if r["trace"]]
    summary = {
        "tps_off_median": statistics.median(r["tps"] for r in off),
        "tps_on_median": statistics.median(r["tps"] for r in on),
        "cpu_us_off_median": statistics.median(r["cpu_us_per_msg"] for r in off),
        "cpu_us_on_median": statistics.median(r["cpu_us_per_msg"] for r in on),
        "dropped": sum(r.get("dropped", 0) for r in on),
    }
    summary["tps_change_pct"] = round((summary["tps_on_median"] / summary["tps_off_median"] - 1) * 100, 1)
    if args.json:
        print(json.dumps({"rounds": rows, "summary": summary}))
        return
    print("| trace | messages | msg/s | client CPU µs/msg | trace messages | dropped | failures |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {'on' if r['trace'] else 'off'} | {r['messages']:,} | {r['tps']:,.0f} | {r['cpu_us_per_msg']} | "
              f"{r.get('trace_messages', '-')} | {r.get('dropped', '-')} | {r['failures']} |")
    print(f"\nmedian msg/s off {summary['tps_off_median']:,.0f}, on {summary['tps_on_median']:,.0f} "
          f"({summary['tps_change_pct']:+.1f}%); client CPU µs/msg off {summary['cpu_us_off_median']}, "
          f"on {summary['cpu_us_on_median']}; {summary['dropped']} records dropped")


if __name__ == "__main__":
    main()
