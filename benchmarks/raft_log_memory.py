"""Memory of the Raft log: N entries written as a node writes them, with the body cache bounded
(``dLegerCacheBytes``) beside the same run with every body kept; then a restart (streamed recovery beside a
recovery that loads every entry) and a follower's catch-up read from disk.

Run: ``python -m benchmarks.raft_log_memory [--entries 200000] [--size 1024] [--cache-bytes 1048576]``.
Each mode runs in a child process twice: once under tracemalloc (the Python heap the log holds) and once
without it (RSS, RssAnon and wall time), so neither figure carries the other's overhead.
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
import tracemalloc

from mq.dledger.log import DEFAULT_CACHE_BYTES, MemoryLog, RaftLog
from mq.dledger.messages import Entry
from mq.dledger.store import DurableLog

BATCH = 1000  # entries per fsync, as a busy leader's group commit
MIB = 1 << 20


def proc_mib() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmRSS", "RssAnon"):
                out[key] = int(line.split()[1]) / 1024
    return out


def write(directory: str, n: int, size: int, cache_bytes: int) -> RaftLog:
    """Append, write, fsync and apply batch by batch (what the driver and the node do)."""
    log = RaftLog.from_store(DurableLog(directory), cache_bytes)
    body = os.urandom(size)
    for first in range(1, n + 1, BATCH):
        batch = [Entry(i, 1, body[: size - 8] + i.to_bytes(8, "big")) for i in range(first, min(n, first + BATCH - 1) + 1)]
        log.append(batch)
        log.store.append(batch)
        log.store.sync()
        log.release(batch[-1].index)
    return log


def child(mode: str, directory: str, n: int, size: int, cache_bytes: int, traced: bool) -> dict:
    if traced:
        tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0] if traced else 0
    t0 = time.perf_counter()
    if mode in ("bounded", "unbounded"):
        log = write(directory, n, size, cache_bytes if mode == "bounded" else 1 << 62)
        log.store.close()
    elif mode == "recover_streamed":
        log = RaftLog.from_store(DurableLog(directory), cache_bytes)
    elif mode == "recover_all":  # the former recovery: every entry into a MemoryLog
        store = DurableLog(directory)
        store.recover()
        log = MemoryLog(store.iter_entries())
    elif mode == "catch_up":  # a follower n entries behind: the leader reads them back in append batches
        log = RaftLog.from_store(DurableLog(directory), cache_bytes)
        index, count = 1, 0
        while index <= log.last_index:
            batch = log.slice(index, 256, MIB)
            index += len(batch)
            count += len(batch)
        assert count == n
    else:
        raise SystemExit(f"unknown mode {mode}")
    seconds = time.perf_counter() - t0
    out = {"seconds": seconds, "cached_mib": log.cached_bytes / MIB, **proc_mib()}
    if traced:
        out["heap_mib"] = (tracemalloc.get_traced_memory()[0] - base) / MIB
    return out


def run_child(mode, directory, args, traced) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.raft_log_memory", "--child", mode, "--dir", directory,
           "--entries", str(args.entries), "--size", str(args.size), "--cache-bytes", str(args.cache_bytes)]
    if traced:
        cmd.append("--traced")
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--entries", type=int, default=200_000)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--cache-bytes", type=int, default=1 * MIB,
                   help=f"the budget of the bounded run (the broker's default is {DEFAULT_CACHE_BYTES // MIB} MiB)")
    p.add_argument("--dir", default=None)
    p.add_argument("--child", default=None)
    p.add_argument("--traced", action="store_true")
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.dir, args.entries, args.size, args.cache_bytes, args.traced)))
        return
    root = tempfile.mkdtemp(prefix="raftlog-", dir=args.dir)
    print(f"{args.entries:,} entries of {args.size} B ({args.entries * args.size / MIB:.0f} MiB of bodies), "
          f"fsync every {BATCH}; bounded budget {args.cache_bytes / MIB:.2f} MiB; Python {sys.version.split()[0]}")
    print(f"{'phase':<34}{'heap MiB':>10}{'RSS MiB':>10}{'anon MiB':>10}{'cached MiB':>12}{'seconds':>9}")
    try:
        for mode, label in (("unbounded", "write, every body kept"), ("bounded", "write, bounded cache"),
                            ("recover_all", "restart, every entry loaded"),
                            ("recover_streamed", "restart, streamed (from_store)"),
                            ("catch_up", "catch-up read of all from disk")):
            directory = os.path.join(root, "bounded" if mode != "unbounded" else "unbounded")
            if mode in ("bounded", "unbounded"):
                traced = run_child(mode, directory + "-traced", args, True)
                shutil.rmtree(directory + "-traced")
                plain = run_child(mode, directory, args, False)
            else:
                traced = run_child(mode, directory, args, True)
                plain = run_child(mode, directory, args, False)
            print(f"{label:<34}{traced['heap_mib']:>10.2f}{plain['VmRSS']:>10.1f}{plain['RssAnon']:>10.1f}"
                  f"{plain['cached_mib']:>12.2f}{plain['seconds']:>9.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
