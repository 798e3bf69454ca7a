"""A normal client's send latency while hostile peers flood the broker (the scenarios of
tests/robustness/floods.py), against the same client with no flood, on one ``twistd broker``.

    python -m benchmarks.flood_bench [--rounds 3] [--quiet-seconds 3] [--json]

Each round: the normal client alone for ``--quiet-seconds``, then during a partial-frame flood (40 peers
holding 4 MiB of 16 MiB frames and a byte-a-time trickler, ~6 s), then during a heartbeat flood (3,000 new
consumer groups, 50 in flight). One line per phase: the normal client's sends (count, p50, p99, max in ms),
how many were answered while the flood went on, and the machine's load average. Goal: p99 under 200 ms in
every flood (the figure tests/robustness/test_flood.py asserted before timed assertions left the tests).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import types
from pathlib import Path

from benchmarks.local_broker import start_namesrv_and_broker
from mq.client.simple import create_topic_request
from mq.remoting.codes import ResponseCode as RC
from tests.broker.cluster import BROKER_CONF
from tests.broker.wire import call
from tests.robustness.floods import CONF, TOPIC, Flood, begin, heartbeat_flood, partial_frame_flood

GOAL_P99_S = 0.2


def quiet(broker, seconds: float) -> Flood:
    """The normal client alone: the baseline the floods are read against."""
    _, client = begin(broker)
    began = time.monotonic()
    time.sleep(seconds)  # the phase's length: the client sends all along
    ended = time.monotonic()
    client.stop()
    return Flood(client, began, ended, 0.0)


def row(phase: str, flood: Flood) -> dict:
    lat = flood.client.latency()
    ms = {k: round(v * 1000, 3) for k, v in lat.items() if k != "n"}
    return {"phase": phase, "sends": lat["n"], "p50_ms": ms["p50"], "p99_ms": ms["p99"], "max_ms": ms["max"],
            "answered_during": flood.client.answered_within(flood.began, flood.ended),
            "phase_s": round(flood.ended - flood.began, 2), "load": os.getloadavg()[0],
            "goal_met": phase == "quiet" or lat["p99"] < GOAL_P99_S}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quiet-seconds", type=float, default=3.0)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="flood-bench-"))
    procs, _ns, addr = start_namesrv_and_broker(tmp, BROKER_CONF + CONF, name="flood-bench")
    try:
        assert call(addr, create_topic_request(TOPIC, queues=1)).code == RC.SUCCESS
        broker = types.SimpleNamespace(addr=addr, proc=procs[-1].proc)
        for n in range(args.rounds):
            for phase, run in (("quiet", lambda: quiet(broker, args.quiet_seconds)),
                               ("partial-frame flood", lambda: partial_frame_flood(broker)),
                               ("heartbeat flood", lambda: heartbeat_flood(broker))):
                r = dict(row(phase, run()), round=n + 1)
                print(json.dumps(r) if args.json else
                      f"round {r['round']} {phase:20} sends {r['sends']:6}  p50 {r['p50_ms']:8.3f} ms  "
                      f"p99 {r['p99_ms']:8.3f} ms  max {r['max_ms']:8.3f} ms  answered during "
                      f"{r['answered_during']:6} in {r['phase_s']} s  load {r['load']:.1f}"
                      + ("" if r["goal_met"] else "  (goal p99 < 200 ms missed)"), flush=True)
    finally:
        for proc in reversed(procs):
            proc.stop(timeout=15)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
