"""Many producer connections, one synchronous send in flight on each: the connection-count scaling load.

    pypy3 -m mq.bench.conn_load --addr HOST:PORT --topic T --connections 1000 [--queues 8] [--size 128]
                                [--warmup 3] [--seconds 10] [--broker-pid PID] [--rate N]

``mq.bench.java_load`` keeps N sends in flight over ONE connection (the Java benchmark producer's shape); this
opens N connections (``selectors``, one process) so the broker's per-connection cost shows. Frames are
``JavaFrames``' (SEND_MESSAGE_V2 as the Java 4.9 client writes them); sends go round robin over the topics
(``--topic A,B``) and their queues, across all connections. ``--rate`` paces the total sends per second (0: as
fast as answers come). Prints one JSON line.
Standard library only, so PyPy's ``pypy3`` can run it.
"""

from __future__ import annotations

import argparse
import json
import selectors
import sys
import time
from typing import List, Optional

from mq.bench.java_load import _CODE, _FRAME, JavaFrames, connect, percentile, proc_cpu_times, proc_rss_kib, self_cpu_seconds


class Conn:
    """One connection: its socket, receive buffer and the start time of its one send in flight."""

    __slots__ = ("sock", "buf", "sent_at", "waiting")

    def __init__(self, sock) -> None:
        self.sock = sock
        self.buf = b""
        self.sent_at = 0.0
        self.waiting = False


def run(addr: str, topic: str, connections: int, size: int = 128, queues: int = 8, warmup: float = 3.0,
        seconds: float = 10.0, broker_pid: Optional[int] = None, rate: float = 0.0) -> dict:
    # Several topics (comma-separated) in turn: a topic has at most 1,024 queues, so 8,000 queues are 8 topics.
    all_frames = [JavaFrames(t, size, 1, queues) for t in topic.split(",")]
    n_topics = len(all_frames)
    sel = selectors.DefaultSelector()
    conns = []
    for _ in range(connections):
        sock = connect(addr)
        sock.setblocking(False)
        c = Conn(sock)
        sel.register(sock, selectors.EVENT_READ, c)
        conns.append(c)
    clock = time.perf_counter
    interval = 1.0 / rate if rate > 0 else 0.0
    state = {"opaque": 0, "next_at": clock()}
    idle: List[Conn] = []

    def fire(c: Conn, now: float) -> None:
        if interval:
            if now < state["next_at"]:
                idle.append(c)
                return
            state["next_at"] = max(state["next_at"], now - 1.0) + interval
        state["opaque"] += 1
        c.sent_at = now
        c.waiting = True
        n = state["opaque"]
        frames = all_frames[n % n_topics]
        c.sock.sendall(frames.frame(n, (n // n_topics) % queues, int(time.time() * 1000)))

    start = clock()
    for c in conns:
        fire(c, start)
    measure_at, end_at = start + warmup, start + warmup + seconds
    lat: List[float] = []
    sends = errors = 0
    marks = {}
    while True:
        now = clock()
        if "start" not in marks and now >= measure_at:
            marks["start"] = (now, self_cpu_seconds(), proc_cpu_times(broker_pid) if broker_pid else None)
        if now >= end_at:
            marks["end"] = (now, self_cpu_seconds(), proc_cpu_times(broker_pid) if broker_pid else None)
            break
        timeout = max(0.0, min(end_at - now, state["next_at"] - now)) if idle else end_at - now
        for key, _ in sel.select(timeout):
            c = key.data
            chunk = c.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the broker closed a connection")
            c.buf += chunk
            if len(c.buf) < 8:
                continue
            length, word = _FRAME.unpack_from(c.buf)
            if len(c.buf) < 4 + length:
                continue
            header = c.buf[8:8 + (word & 0xFFFFFF)]
            c.buf = c.buf[4 + length:]
            now = clock()
            if "start" in marks:
                lat.append(now - c.sent_at)
                if int(_CODE.search(header).group(1)) == 0:
                    sends += 1
                else:
                    errors += 1
            c.waiting = False
            fire(c, now)
        now = clock()
        while idle and now >= state["next_at"]:
            fire(idle.pop(), now)
    for c in conns:
        c.sock.close()
    t0, g0, b0 = marks["start"]
    t1, g1, b1 = marks["end"]
    elapsed = t1 - t0
    lat.sort()
    out = {"connections": connections, "topics": n_topics, "queues": queues * n_topics, "size": size,
           "seconds": round(elapsed, 3),
           "messages": sends, "errors": errors, "tps": round(sends / elapsed, 1),
           "rt_avg_ms": round(1000 * sum(lat) / len(lat), 3) if lat else 0.0,
           "rt_p99_ms": round(1000 * percentile(lat, 0.99), 3),
           "generator_cpu_share": round((g1 - g0) / elapsed, 3)}
    if b0 is not None:
        cpu = sum(b1) - sum(b0)
        out["broker_cpu_us_per_msg"] = round(1e6 * cpu / sends, 2) if sends else None
        out["broker_cpu_share"] = round(cpu / elapsed, 3)
        out["broker_rss_mib"] = round(proc_rss_kib(broker_pid) / 1024, 1)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="conn_load", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--addr", required=True)
    p.add_argument("--topic", required=True, help="a topic, or several comma-separated, used in turn")
    p.add_argument("--connections", type=int, default=1)
    p.add_argument("--queues", type=int, default=8, help="queues of each topic (default 8)")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--broker-pid", type=int, default=None)
    p.add_argument("--rate", type=float, default=0.0, help="total sends per second (0: unpaced)")
    a = p.parse_args(argv)
    if not 1 <= a.connections <= 10000 or not 1 <= a.queues <= 1024 or a.topic.count(",") >= 64 or a.seconds <= 0 or a.warmup < 0:
        p.error("--connections 1..10000, --queues 1..1024, at most 64 topics, --seconds > 0, --warmup >= 0")
    print(json.dumps(run(a.addr, a.topic, a.connections, a.size, a.queues, a.warmup, a.seconds, a.broker_pid,
                         a.rate)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
