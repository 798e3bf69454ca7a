"""Timer benchmark: a million pending timers on the wheel, and delivery lateness at a high fire rate.

Run: ``python -m benchmarks.timer_bench [--pending 1000000] [--rate 10000] [--seconds 5] [--fire 50000]
[--dir DIR]``.

1. Pending: ``--pending`` timer messages, due uniformly from 1 s to 3 days away, are stored in the timer topic
   (as the send path stores them), then linked into the wheel by the timer service. Resident memory (and its
   anonymous part, the Python heap: the store's mapped files are the rest) is sampled as they are linked,
   with the µs per link.
2. Lateness: ``--rate`` × ``--seconds`` timers due in the same ``--seconds`` window, fired by the service on a
   real reactor; lateness (delivery time minus due time) p50/p99/max, and the fire rate reached. With
   ``--together`` they are fired by the service that holds the pending timers of step 1 (its store and
   wheel reopened on the real clock), with its resident memory before and after.
3. Fire cost: ``--fire`` stored timers delivered one by one (``TimerMessageService.deliver``, no reactor), CPU
   µs per fire, beside the same run's baseline: a plain put of the same message (what a fire cannot avoid).
   Rounds alternate, each in a fresh store; medians.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from types import SimpleNamespace
from typing import Dict, List

from twisted.internet import defer, reactor, task

from mq.broker.schedule.timer import TimerMessageService
from mq.common.message import MessageExtBrokerInner
from mq.common.message_record import record_properties
from mq.common.topic import TIMER_TOPIC
from mq.store import MessageStore, MessageStoreConfig

DAY_MS = 86_400_000


def status() -> Dict[str, float]:
    """VmRSS and RssAnon in MiB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                out[key] = int(value.split()[0]) / 1024
    return out


def open_store(root: str, clock, now_ms) -> MessageStore:
    config = MessageStoreConfig(store_path_root_dir=root, mapped_file_size_commit_log=256 << 20,
                                delete_when="99")
    store = MessageStore(config, reactor=clock, store_host=("127.0.0.1", 10911), now_ms=now_ms,
                         disk_usage=lambda path: 0.10,
                         **({"run_blocking": defer.maybeDeferred} if isinstance(clock, task.Clock) else {}))
    store.start()
    return store


def service_on(root: str, store, clock, now_ms) -> TimerMessageService:
    config = SimpleNamespace(config_dir=root + "/config", store_path_root_dir=root, is_slave=False,
                             timer_wheel_enable=True, timer_precision_ms=1000, timer_max_delay_sec=3 * 86_400,
                             timer_flush_interval_ms=1000)
    broker = SimpleNamespace(config=config, store=store, reactor=clock, now_ms=now_ms,
                             topic_config_manager=SimpleNamespace(create_system=lambda *a, **k: None))
    return TimerMessageService(broker)


def park_and_put(service, store, due_ms: int, body: bytes) -> None:
    msg = MessageExtBrokerInner(topic="BenchTimer", body=body, queue_id=0,
                                properties={"TIMER_DELIVER_MS": str(due_ms)}, born_host=("127.0.0.1", 1),
                                store_host=("127.0.0.1", 10911))
    parked = service.park(msg)
    d = store.put_message(parked)
    d.addErrback(lambda f: print("put failed", f))


def on_clock(root: str, start_s: float = 1_800_000_000):
    """A store and a recovered timer service on a ``task.Clock`` (no reactor) set to ``start_s``."""
    clock = task.Clock()
    clock.advance(start_s)
    now_ms = lambda: int(clock.seconds() * 1000)  # noqa: E731
    store = open_store(root, clock, now_ms)
    service = service_on(root, store, clock, now_ms)
    service.recover()
    return clock, now_ms, store, service


def pending_phase(root: str, count: int, start_s: float = 1_800_000_000) -> None:
    clock, now_ms, store, service = on_clock(root, start_s)
    rng = random.Random(7)
    now = now_ms()
    t = time.perf_counter()
    for i in range(count):
        park_and_put(service, store, now + rng.randint(1000, 3 * DAY_MS), b"timer-%08d" % i)
    put_s = time.perf_counter() - t
    before = status()
    print(f"stored {count:,} timer records in {put_s:.1f} s ({put_s / count * 1e6:.1f} µs each); "
          f"RSS {before['VmRSS']:.0f} MiB (anon {before['RssAnon']:.0f} MiB)")
    step = max(count // 10, 1)
    linked = 0
    t = time.perf_counter()
    while linked < count:
        n = min(step, count - linked)
        chunk_t = time.perf_counter()
        left = service.link_new(now, n)
        linked += n - left
        s = status()
        print(f"  linked {linked:>9,}: {((time.perf_counter() - chunk_t) / n) * 1e6:5.1f} µs/link, "
              f"RSS {s['VmRSS']:.0f} MiB (anon {s['RssAnon']:.0f} MiB), pending {service.pending:,}")
    link_s = time.perf_counter() - t
    after = status()
    print(f"linked {count:,} in {link_s:.1f} s ({link_s / count * 1e6:.1f} µs each); RSS change while linking "
          f"{after['VmRSS'] - before['VmRSS']:+.1f} MiB (anon {after['RssAnon'] - before['RssAnon']:+.1f} MiB); "
          f"timer log {service.wheel.end / 2**20:.0f} MiB on disk")
    service.save()
    service.wheel.close()
    store.crash_close()


def lateness_phase(root: str, rate: int, seconds: int) -> None:
    now_ms = lambda: int(reactor.seconds() * 1000)  # noqa: E731
    store = open_store(root, reactor, now_ms)
    service = service_on(root, store, reactor, now_ms)
    late: List[int] = []
    fired_at: List[float] = []
    deliver = service.deliver

    cpu = [0.0]
    total = rate * seconds
    window = [1 << 62]  # lateness is taken of timers due in the window (not of earlier pending ones)

    def measured(phy, size, due, now):
        c = time.process_time()
        done = deliver(phy, size, due, now)
        cpu[0] += time.process_time() - c
        if done and due >= window[0]:
            late.append(now_ms() - due)
            fired_at.append(time.perf_counter())
        return done

    service.deliver = measured
    before = status()
    service.start()
    start = window[0] = now_ms() + 3000 + total // 2  # after the puts below (well under 500 µs each)
    rng = random.Random(11)
    for i in range(total):
        park_and_put(service, store, start + rng.randrange(seconds * 1000), b"late-%08d" % i)

    def check():
        if len(late) >= total:
            loop.stop()
            reactor.stop()

    loop = task.LoopingCall(check)
    loop.start(0.1)
    reactor.callLater((start - now_ms()) / 1000 + seconds + 120, reactor.stop)
    reactor.run()
    service.stop()
    after = status()
    print(f"  pending {service.pending:,}, fired {service.fired:,}, lost {service.lost}, "
          f"undeliverable {service.undeliverable}; RSS {before['VmRSS']:.0f} -> {after['VmRSS']:.0f} MiB "
          f"(anon {before['RssAnon']:.0f} -> {after['RssAnon']:.0f} MiB)")
    late.sort()
    if not late:
        print("nothing fired")
        return
    span = fired_at[-1] - fired_at[0] if len(fired_at) > 1 else 1.0
    print(f"fired {len(late):,} timers due over {seconds} s ({rate:,}/s asked): {len(late) / span:,.0f}/s reached; "
          f"lateness p50 {late[len(late) // 2]} ms, p99 {late[int(len(late) * 0.99)]} ms, max {late[-1]} ms "
          f"(precision 1000 ms); CPU per delivery {cpu[0] / len(late) * 1e6:.0f} µs "
          f"({len(late) / cpu[0]:,.0f} deliveries per CPU second)")


def _cpu_per(fn, items) -> float:
    c = time.process_time()
    for item in items:
        fn(*item)
    return (time.process_time() - c) / len(items) * 1e6


def fire_round(root: str, count: int) -> Dict[str, float]:
    """CPU µs per fire and per plain put of the same messages, in one fresh store."""
    clock, now_ms, store, service = on_clock(root)
    now = now_ms()
    body = b"f" * 128
    for _i in range(count):
        park_and_put(service, store, now + 5000, body)
    cq = store.consume_queue(TIMER_TOPIC, 0)
    entries = [(*cq.entry(i), now + 6000) for i in range(count)]
    fire = _cpu_per(service.deliver, entries)
    assert service.fired == count, service.fired
    plain = [(MessageExtBrokerInner(topic="BenchTimer", body=body, queue_id=0, born_host=("127.0.0.1", 1),
                                    store_host=("127.0.0.1", 10911), properties=dict(record_properties(raw)),
                                    body_crc=1),)
             for raw in (store.look_message_by_offset(phy, size) for phy, size, _d, _n in entries)]
    put = _cpu_per(store.put_message_now, plain)
    store.crash_close()
    shutil.rmtree(root, ignore_errors=True)
    return {"fire": fire, "put": put}


def fire_phase(root: str, count: int, rounds: int) -> None:
    results = [fire_round(f"{root}-{r}", count) for r in range(rounds)]
    fire = statistics.median(r["fire"] for r in results)
    put = statistics.median(r["put"] for r in results)
    print(f"fire cost ({count:,} timers, {rounds} rounds, CPU medians): {fire:.1f} µs per fire "
          f"({1e6 / fire:,.0f} fires per CPU second); baseline, a plain put of the same message: {put:.1f} µs; "
          f"the fire's own part (read, decode, properties) {fire - put:.1f} µs")
    print("  rounds: " + ", ".join(f"{r['fire']:.1f}/{r['put']:.1f}" for r in results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--fire", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--together", action="store_true",
                        help="fire the lateness phase's timers on the wheel that holds the pending ones")
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="timer-bench-", dir=args.dir)
    try:
        if args.pending:  # --together: on the real clock, so the lateness phase goes on from it
            pending_phase(base + "/pending", args.pending, time.time() if args.together else 1_800_000_000)
        if args.fire:
            fire_phase(base + "/fire", args.fire, args.rounds)
        if args.rate:
            lateness_phase(base + ("/pending" if args.together else "/lateness"), args.rate, args.seconds)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
