"""Store benchmark: appends, reads, key lookups, recovery and memory, each beside raw disk figures.

Run: ``python -m benchmarks.store_bench [--quick] [--dir DIR] [--phases async4096,sync] [--repeat 3] [--batch 16]``.
Everything runs inside a real Twisted reactor, as in the broker: appends go in chunks between reactor turns so
timers and fsync threads run. The raw disk figure is the median of several short runs (it swings with the
page-cache state); ``--repeat`` gives each ASYNC_FLUSH phase's median and range.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from typing import Any, Dict, List

from twisted.internet import defer, reactor, task

from mq.common.message import MessageExtBrokerInner, properties_to_string
from mq.store import FlushDiskType, MessageStore, MessageStoreConfig, PutMessageStatus

CHUNK = 2000
GIB = 1 << 30


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def raw_write_fsync(directory: str, nbytes: int) -> float:
    """MiB/s of sequential 1 MiB writes plus one fsync, the disk's ceiling for the same bytes."""
    path = os.path.join(directory, "raw")
    block = os.urandom(1 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    t = time.perf_counter()
    written = 0
    while written < nbytes:
        written += os.write(fd, block)
    os.fsync(fd)
    elapsed = time.perf_counter() - t
    os.close(fd)
    os.unlink(path)
    return written / elapsed / (1 << 20)


def raw_small_fsyncs(directory: str, size: int, count: int) -> float:
    """Appends/s of ``size``-byte writes each followed by fdatasync: what SYNC_FLUSH costs without grouping."""
    path = os.path.join(directory, "raw-small")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    data = b"x" * size
    t = time.perf_counter()
    for _ in range(count):
        os.write(fd, data)
        os.fdatasync(fd)
    elapsed = time.perf_counter() - t
    os.close(fd)
    os.unlink(path)
    return count / elapsed


def make_messages(n: int, size: int, start: int, batch: int = 1) -> List[MessageExtBrokerInner]:
    """``n`` messages spread over 4 queues, ``batch`` consecutive ones to a queue."""
    body = os.urandom(size)
    out = []
    for i in range(start, start + n):
        props = {"UNIQ_KEY": f"7F0000010F2C18B4AAC2{i:012X}", "TAGS": "TagA", "WAIT": "true"}
        out.append(
            MessageExtBrokerInner(
                topic="BenchTopic", body=body, queue_id=(i // batch) % 4, properties=props,
                properties_string=properties_to_string(props), born_host=("192.168.0.7", 50000),
                born_timestamp=1_700_000_000_000,
            )
        )  # fmt: skip
    return out


STORE_OVERRIDES: Dict[str, Any] = {}  # from the command line (--prefault)


def new_store(root: str, flush: FlushDiskType, **kw: Any) -> MessageStore:
    cfg = MessageStoreConfig(store_path_root_dir=root, flush_disk_type=flush, **{**STORE_OVERRIDES, **kw})
    store = MessageStore(cfg, reactor=reactor, store_host=("10.0.0.5", 10911))
    store.start()
    return store


def yield_to_reactor() -> defer.Deferred:
    return task.deferLater(reactor, 0, lambda: None)


@defer.inlineCallbacks
def bench_async_appends(base: str, size: int, total_bytes: int, results: Dict[str, Any], batch: int = 1) -> Any:
    """Single puts, or with ``batch`` > 1 batches of that many messages to one queue (the broker's path for a
    producer's batch send)."""
    root = os.path.join(base, f"async-{size}")
    store = new_store(root, FlushDiskType.ASYNC_FLUSH)
    n = max(CHUNK, total_bytes // (size + 150))
    n -= n % batch
    done = 0
    elapsed = 0.0
    rss = [rss_mib()]
    while done < n:
        msgs = make_messages(min(CHUNK - CHUNK % batch, n - done), size, done, batch)
        if batch > 1:
            put_batch = store.put_messages
            groups = [msgs[i : i + batch] for i in range(0, len(msgs), batch)]
            t = time.perf_counter()
            for g in groups:
                put_batch(g)
        else:
            put = store.put_message
            t = time.perf_counter()
            for m in msgs:
                put(m)
        elapsed += time.perf_counter() - t
        done += len(msgs)
        yield yield_to_reactor()
        if done % (CHUNK * 50) == 0:
            rss.append(rss_mib())
    t = time.perf_counter()
    yield store.stop()  # the final flush of everything counts
    elapsed += time.perf_counter() - t
    rss.append(rss_mib())
    nbytes = store.stats().put_message_size_total
    results[f"async {size} B"] = dict(
        msgs=n, per_s=n / elapsed, mib_s=nbytes / elapsed / (1 << 20), bytes=nbytes, rss=(min(rss), max(rss))
    )
    return root


@defer.inlineCallbacks
def bench_sync_appends(base: str, size: int, writers: int, seconds: float, results: Dict[str, Any]) -> Any:
    root = os.path.join(base, f"sync-{size}-{writers}")
    store = new_store(root, FlushDiskType.SYNC_FLUSH)
    state = {"done": 0, "bad": 0, "stop": False, "next": 0}
    finished = defer.Deferred()
    active = {"n": writers}
    pool = make_messages(20000, size, 0)

    def one(_: Any = None) -> None:
        if state["stop"]:
            active["n"] -= 1
            if active["n"] == 0:
                finished.callback(None)
            return
        m = pool[state["next"] % len(pool)]
        state["next"] += 1
        store.put_message(m).addCallback(completed)

    def completed(r: Any) -> None:
        if r.status is PutMessageStatus.PUT_OK:
            state["done"] += 1
        else:
            state["bad"] += 1
        one()

    t = time.perf_counter()
    for _ in range(writers):
        one()
    yield task.deferLater(reactor, seconds, lambda: None)
    state["stop"] = True
    yield finished
    elapsed = time.perf_counter() - t
    results[f"sync {size} B x{writers}"] = dict(
        per_s=state["done"] / elapsed, failed=state["bad"], fsyncs=store.flusher.fsync_count,
        puts_per_fsync=state["done"] / max(1, store.flusher.fsync_count),
    )  # fmt: skip
    yield store.stop()
    shutil.rmtree(root)


@defer.inlineCallbacks
def bench_reads(root: str, results: Dict[str, Any], seconds: float) -> Any:
    store = new_store(root, FlushDiskType.ASYNC_FLUSH)
    maxes = [store.get_max_offset_in_queue("BenchTopic", q) for q in range(4)]
    rnd = random.Random(1)
    n_msgs = n_calls = 0
    t = time.perf_counter()
    while time.perf_counter() - t < seconds:
        for _ in range(200):
            q = rnd.randrange(4)
            r = store.get_message("g", "BenchTopic", q, rnd.randrange(max(1, maxes[q] - 32)), 32)
            n_msgs += r.message_count
            n_calls += 1
        yield yield_to_reactor()
    elapsed = time.perf_counter() - t
    results["reads"] = dict(msgs_per_s=n_msgs / elapsed, pulls_per_s=n_calls / elapsed)
    total = sum(maxes)
    lookups = 0
    t = time.perf_counter()
    while time.perf_counter() - t < seconds:
        for _ in range(200):
            i = rnd.randrange(total)
            res = store.query_message("BenchTopic", f"7F0000010F2C18B4AAC2{i:012X}", 32, 0, 2**62)
            assert len(res.message_buffers) == 1
            lookups += 1
        yield yield_to_reactor()
    results["key lookups"] = dict(per_s=lookups / (time.perf_counter() - t))
    yield store.stop()


@defer.inlineCallbacks
def bench_recovery(base: str, file_size: int, results: Dict[str, Any]) -> Any:
    """Fill one CommitLog file of ``file_size`` with 1 KiB messages, 'crash', and time the recovery."""
    root = os.path.join(base, "recovery")
    store = new_store(root, FlushDiskType.ASYNC_FLUSH, mapped_file_size_commit_log=file_size)
    i = 0
    while store.get_max_phy_offset() < file_size - 4096:
        for m in make_messages(CHUNK, 1024 - 200, i):
            if store.get_max_phy_offset() + 1300 >= file_size:
                break
            store.put_message(m)
            i += 1
        yield yield_to_reactor()
    yield store.flusher.drain()
    store.crash_close()  # no clean stop: abort file stays
    fill = store.get_max_phy_offset()
    timings = {}
    for name, wipe in (("from checkpoint", False), ("full rebuild (no checkpoint, no queues, no index)", True)):
        if wipe:
            os.unlink(os.path.join(root, "checkpoint"))
            shutil.rmtree(os.path.join(root, "consumequeue"))
            shutil.rmtree(os.path.join(root, "index"))
        s = MessageStore(store.config, reactor=reactor, store_host=("10.0.0.5", 10911))
        t = time.perf_counter()
        s.start()
        timings[name] = time.perf_counter() - t
        assert s.get_max_phy_offset() == fill, (s.get_max_phy_offset(), fill)
        s.crash_close()
    results["recovery"] = dict(bytes=fill, msgs=i, **timings)
    shutil.rmtree(root)


def median(values: List[float]) -> float:
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def spread(values: List[float], fmt: str = ",.0f") -> str:
    """``median (min-max)`` of repeated runs."""
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


PHASES = ("async128", "async1024", "async4096", "sync", "reads", "recovery")


@defer.inlineCallbacks
def run(args: argparse.Namespace) -> Any:
    base = tempfile.mkdtemp(prefix="store-bench-", dir=args.dir)
    results: Dict[str, Any] = {}
    quick = args.quick
    phases = set(args.phases.split(",")) if args.phases else set(PHASES)
    try:
        volume = (64 if quick else 512) << 20
        # Raw disk: the median of several short runs (one long run swings with the page-cache state).
        raws = [raw_write_fsync(base, volume // 4) for _ in range(args.raw_runs)]
        raw = median(raws)
        results["raw"] = dict(seq_mib_s=raw, seq_runs=raws,
                              fsync_1k_per_s=raw_small_fsyncs(base, 1024, 500 if quick else 3000))  # fmt: skip
        print(f"raw sequential write + fsync ({args.raw_runs} x {volume >> 22} MiB): {spread(raws)} MiB/s;"
              f" 1 KiB write+fdatasync: {results['raw']['fsync_1k_per_s']:,.0f}/s")  # fmt: skip
        roots = {}
        for size in (128, 1024, 4096):
            if f"async{size}" not in phases and not (size == 1024 and "reads" in phases):
                continue
            vol = volume // 4 if size == 128 else volume
            runs = []
            for i in range(args.repeat):
                if i:
                    shutil.rmtree(roots[size])
                roots[size] = yield bench_async_appends(base, size, vol, results, args.batch)
                runs.append(results[f"async {size} B"])
            per_s = [r["per_s"] for r in runs]
            mib_s = [r["mib_s"] for r in runs]
            rss_lo = min(r["rss"][0] for r in runs)
            rss_hi = max(r["rss"][1] for r in runs)
            results[f"async {size} B"] = dict(runs=runs, per_s=median(per_s), mib_s=median(mib_s))
            how = f" in batches of {args.batch}" if args.batch > 1 else ""
            print(f"ASYNC_FLUSH {size:>5} B{how}: {spread(per_s)} appends/s, {spread(mib_s, ',.1f')} MiB/s"
                  f" ({median(mib_s) / raw:.0%} of the raw median)  RSS {rss_lo:.0f}-{rss_hi:.0f} MiB"
                  f" while writing {runs[0]['bytes'] >> 20} MiB")  # fmt: skip
        if "sync" in phases:
            for size in (128, 1024, 4096):
                for writers in (1, 64):
                    yield bench_sync_appends(base, size, writers, 2 if quick else 5, results)
                    r = results[f"sync {size} B x{writers}"]
                    print(f"SYNC_FLUSH  {size:>5} B x{writers:<2}: {r['per_s']:>9,.0f} puts/s"
                          f"  ({r['puts_per_fsync']:.1f} puts per fsync, {r['failed']} not OK)")  # fmt: skip
        if "reads" in phases:
            yield bench_reads(roots[1024], results, 1 if quick else 3)
            print(f"reads: {results['reads']['msgs_per_s']:,.0f} msgs/s ({results['reads']['pulls_per_s']:,.0f} pulls of 32/s);"
                  f" key lookups: {results['key lookups']['per_s']:,.0f}/s")  # fmt: skip
        for root in roots.values():
            shutil.rmtree(root)
        if "recovery" in phases:
            yield bench_recovery(base, (128 << 20) if quick else GIB, results)
            r = results["recovery"]
            print(f"recovery of a {r['bytes'] / (1 << 20):,.0f} MiB CommitLog ({r['msgs']:,} msgs) after a crash: "
                  + ", ".join(f"{k}: {v:.2f} s" for k, v in r.items() if isinstance(v, float)))  # fmt: skip
    finally:
        shutil.rmtree(base, ignore_errors=True)
        reactor.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small volumes: a smoke run in well under a minute")
    parser.add_argument("--dir", default=None, help="where to put the store (default: the temp dir)")
    parser.add_argument("--phases", default=None, help=f"comma-separated subset of {','.join(PHASES)} (default: all)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each ASYNC_FLUSH phase (median and range)")
    parser.add_argument("--raw-runs", type=int, default=5, help="short raw write+fsync runs (median and range)")
    parser.add_argument("--batch", type=int, default=1,
                        help="ASYNC_FLUSH phases append batches of this many messages to one queue (default: single puts)")
    parser.add_argument("--prefault", type=int, default=None, help="commit_log_prefault_ahead in bytes (0: off)")
    args = parser.parse_args()
    if args.prefault is not None:
        STORE_OVERRIDES["commit_log_prefault_ahead"] = args.prefault
    reactor.callWhenRunning(lambda: run(args).addErrback(lambda f: (f.printTraceback(), reactor.stop())))
    reactor.run()


if __name__ == "__main__":
    main()
