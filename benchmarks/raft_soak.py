"""Soak of the Raft core: many more simulation seeds than CI runs, and the failover time at default timings.

    python -m benchmarks.raft_soak --seeds 20000 [--nodes 3,5] [--start 0] [--chaos-ms 4000] [--failovers 200]

Every seed runs tests/dledger/simulation.py (faults for ``chaos-ms``, then the heal phase and its liveness
bound); a failing seed prints its replay command and the exit status is 1. Then ``failovers`` runs of a
3-node group at ``RaftConfig()``'s defaults on a clean 1-8 ms network: the leader crashes at a random moment
and the time until another node leads is measured (simulated ms: the protocol's share of a failover; the
broker adds its registration and the clients' route refresh).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from mq.dledger.config import RaftConfig
from tests.dledger.simulation import Sim, SimulationFailure, run


def soak(seeds: int, start: int, sizes, chaos_ms: int) -> int:
    failures = 0
    recovery = []
    t0 = time.process_time()
    for n in sizes:
        for seed in range(start, start + seeds):
            try:
                sim = run(seed, n, chaos_ms=chaos_ms)
            except SimulationFailure as e:
                failures += 1
                print(f"FAILED {e}", flush=True)
                continue
            recovery.append(sim.stats["recovery_ms"])
    cpu = time.process_time() - t0
    runs = seeds * len(sizes)
    print(f"{runs} runs ({','.join(map(str, sizes))} nodes, {chaos_ms} ms of faults each): {failures} failed; "
          f"{cpu:.1f} s CPU ({1000 * cpu / runs:.1f} ms a run); heal to first commit: median "
          f"{statistics.median(recovery)} ms, max {max(recovery)} ms (simulated, timings / 10)")
    return failures


def failover(count: int) -> None:
    times = []
    for seed in range(count):
        sim = Sim(seed, 3, config=RaftConfig(), chaos_ms=0)
        sim.p_drop = sim.p_dup = sim.p_slow = 0.0
        sim._run_until(5_000 + random.Random(seed).randint(0, 1_000))
        leaders = sim._leaders()
        if len(leaders) != 1:
            continue
        sim._crash(leaders[0])
        crashed = sim.now
        while not sim._leaders() and sim.now < crashed + 60_000:
            sim._run_until(sim.now + 5)
        times.append(sim.now - crashed)
    times.sort()
    print(f"failover at defaults (heartbeat {RaftConfig().heartbeat_ms} ms, election "
          f"{RaftConfig().election_min_ms}-{RaftConfig().election_max_ms} ms), {len(times)} leader crashes: "
          f"median {statistics.median(times)} ms, p99 {times[int(0.99 * (len(times) - 1))]} ms, max {times[-1]} ms")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=2_000)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--nodes", default="3,5")
    p.add_argument("--chaos-ms", type=int, default=4_000)
    p.add_argument("--failovers", type=int, default=200)
    args = p.parse_args(argv)
    failures = soak(args.seeds, args.start, [int(x) for x in args.nodes.split(",")], args.chaos_ms)
    if args.failovers:
        failover(args.failovers)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
