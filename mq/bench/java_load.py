"""The load Apache RocketMQ 4.9's own benchmark producer puts on a broker, rebuilt cheaply.

``org.apache.rocketmq.example.benchmark.Producer`` runs N threads, each with ONE synchronous send in flight,
all over the ONE connection its client keeps per broker. Every send is a SEND_MESSAGE_V2 (310) with a JSON
header as fastjson writes it, the short header fields ``a``..``m`` (``l`` left out: it is null outside retry
topics) as strings, and the properties ``UNIQ_KEY`` and ``WAIT`` in the order of Java's ``HashMap``; batches go
as SEND_BATCH_MESSAGE (320) with a ``UNIQ_KEY`` and ``WAIT`` per member.

This module drives that load from one thread with plain sockets and pre-encoded frames (only the opaque, the
queue id, the born timestamp and the ``UNIQ_KEY`` change), so that the generator costs a few µs per send and the
broker is what is measured. N "workers" are N requests kept in flight: each answer sends that worker's next
request at once, in its own ``send()`` (as Netty flushes each thread's ``writeAndFlush``). Standard library
only, so it runs under PyPy without a virtualenv::

    python -m mq.bench.java_load --addr 127.0.0.1:10911 --topic T --workers 8 --size 128 --seconds 10 \\
        [--batch 32] [--warmup 2] [--queues 8] [--broker-pid PID] [--no-delay] [--rate SENDS] [--rss-every S]

It prints one JSON object: sends, messages, TPS, RT avg/p99/max (ms) over the measured window, this process's
CPU µs per message, and with ``--broker-pid`` the broker's CPU µs per message from ``/proc/PID/stat``.
``--rate`` paces the workers to that many sends per second (RT at a given load, e.g. half the peak);
``--rss-every`` samples the broker's resident memory over the window (each sample: seconds, VmRSS and RssAnon in MiB).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import select
import socket
import struct
import sys
import time
from datetime import datetime
from typing import Dict, List, Optional, Tuple

SEND_MESSAGE_V2 = 310
SEND_BATCH_MESSAGE = 320
#: MQVersion ordinal of the 4.9.8 Java client.
JAVA_VERSION = 409
_CODE = re.compile(rb'"code":(-?\d+)')
_OPAQUE = re.compile(rb'"opaque":(-?\d+)')
_FRAME = struct.Struct(">ii")


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode`` (ASCII keys), spread as ``HashMap`` spreads it."""
    h = 0
    for ch in text:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h ^ (h >> 16)


def java_map_order(keys: List[str], buckets: int = 16) -> List[str]:
    """The iteration order of a small Java ``HashMap`` holding ``keys`` (no collisions among them)."""
    return sorted(keys, key=lambda k: java_string_hash(k) & (buckets - 1))


#: ``UNIQ_KEY`` sorts before ``WAIT`` in a 16-bucket HashMap (buckets 12 and 13).
PROPERTY_ORDER = java_map_order(["WAIT", "UNIQ_KEY"])


class UniqIds:
    """``MessageClientIDSetter``'s ids: 10 fixed bytes (IPv4, low 16 bits of the pid, a class-loader hash),
    then ms since the start of the month (i32) and a counter (i16), as 32 uppercase hex digits."""

    def __init__(self, ip: bytes = b"\x7f\x00\x00\x01", pid: Optional[int] = None, loader: int = 0x1B6D3586):
        pid = os.getpid() if pid is None else pid
        self.prefix = (ip + struct.pack(">H", pid & 0xFFFF) + struct.pack(">I", loader)).hex().upper()
        start = datetime.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        self.month_start_ms = int(start.timestamp() * 1000)
        self.counter = 0

    def next(self, now_ms: int) -> str:
        self.counter = (self.counter + 1) & 0xFFFF
        return "%s%08X%04X" % (self.prefix, (now_ms - self.month_start_ms) & 0xFFFFFFFF, self.counter)


def _json_string(text: str) -> str:
    """A JSON string as fastjson writes the ASCII ones here (control characters as ``\\u00XX``)."""
    return json.dumps(text)


def properties(uniq: str) -> str:
    values = {"UNIQ_KEY": uniq, "WAIT": "true"}
    return "".join(f"{k}\x01{values[k]}\x02" for k in PROPERTY_ORDER)


def encode_batch_member(body: bytes, props: str) -> bytes:
    """One member of a batch body as ``MessageDecoder.encodeMessage`` writes it (no CRC, magic 0)."""
    p = props.encode("utf-8")
    size = 4 + 4 + 4 + 4 + 4 + len(body) + 2 + len(p)
    return struct.pack(">iiiii", size, 0, 0, 0, len(body)) + body + struct.pack(">h", len(p)) + p


class JavaFrames:
    """Frames as the Java 4.9 client writes them for one topic, body size and batch size."""

    def __init__(self, topic: str, size: int, batch: int = 1, queues: int = 8, group: str = "benchmark_producer",
                 ids: Optional[UniqIds] = None) -> None:
        self.topic = topic
        self.body = b"x" * size
        self.batch = batch
        self.queues = queues
        self.ids = ids or UniqIds()
        self.code = SEND_BATCH_MESSAGE if batch > 1 else SEND_MESSAGE_V2
        self.messages = max(1, batch)
        # fastjson: top-level keys in alphabetical order; extFields (a HashMap of one-letter keys) in a..m order.
        head = '{"code":%d,"extFields":{"a":%s,"b":%s,"c":"TBW102","d":"4","e":"' % (
            self.code, _json_string(group), _json_string(topic))
        self._head = head.encode()
        self._tail_batch = ',"flag":0,"language":"JAVA","opaque":'.encode()
        self._end = (',"serializeTypeCurrentRPC":"JSON","version":%d}' % JAVA_VERSION).encode()
        self._batch_props = "WAIT\x01true\x02"

    def ext_after_queue(self, now_ms: int, props_json: str) -> bytes:
        mflag = "true" if self.batch > 1 else "false"
        return ('","f":"0","g":"%d","h":"0","i":%s,"j":"0","k":"false","m":"%s"}' % (
            now_ms, props_json, mflag)).encode()

    def frame(self, opaque: int, queue_id: int, now_ms: int) -> bytes:
        """The whole frame of the next send (fresh ``UNIQ_KEY``s, born timestamp ``now_ms``)."""
        if self.batch > 1:
            ids = self.ids
            body = b"".join([encode_batch_member(self.body, properties(ids.next(now_ms)))
                             for _ in range(self.batch)])
            props = self._batch_props
        else:
            body = self.body
            props = properties(self.ids.next(now_ms))
        header = b"".join((self._head, b"%d" % queue_id, self.ext_after_queue(now_ms, _json_string(props)),
                           self._tail_batch, b"%d" % opaque, self._end))
        return _FRAME.pack(4 + len(header) + len(body), len(header)) + header + body


def proc_cpu_times(pid: int) -> Tuple[float, float]:
    """(user, system) CPU seconds of process ``pid`` (all its threads), from ``/proc/PID/stat``."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        text = f.read()
    fields = text[text.rindex(b")") + 2:].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def proc_rss_kib(pid: int, field: bytes = b"VmRSS") -> int:
    """Resident memory of process ``pid`` in KiB: ``VmRSS`` of ``/proc/PID/status``, or another of its fields
    (``RssAnon``: the heap, without the store's mapped file pages)."""
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(field + b":"):
                return int(line.split()[1])
    return 0


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (all its threads), in seconds."""
    return sum(proc_cpu_times(pid))


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(sorted_values: List[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, max(0, int(fraction * len(sorted_values) + 0.999999) - 1))]


class Run:
    """Keeps ``workers`` sends in flight on one socket; measures a window after a warm-up."""

    def __init__(self, sock: socket.socket, frames: JavaFrames, workers: int, rate: float = 0.0,
                 rss_every: float = 0.0) -> None:
        self.sock = sock
        self.frames = frames
        self.workers = workers
        #: sends per second when paced (a worker whose answer came early waits for the next slot), 0: as fast as
        #: answers come; the slots do not catch up on more than a second of lag
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = 0.0
        self.parked = 0
        self.rss_every = rss_every
        self.rss: List[Tuple[float, int, int]] = []
        self.opaque = 0
        self.queue = 0
        self.inflight: Dict[int, float] = {}
        self.latencies: List[float] = []
        self.sends = 0
        self.errors = 0
        self.codes: Dict[int, int] = {}
        self.recording = False

    def fire(self) -> None:
        self.opaque += 1
        self.queue += 1
        data = self.frames.frame(self.opaque, self.queue % self.frames.queues, int(time.time() * 1000))
        self.inflight[self.opaque] = time.perf_counter()
        self.sock.sendall(data)

    def _next(self, now: float) -> None:
        """A worker is free: its next send now, or parked until the next slot when paced."""
        if self.interval:
            if now < self.next_at:
                self.parked += 1
                return
            self.next_at = max(self.next_at, now - 1.0) + self.interval
        self.fire()

    def run(self, warmup: float, seconds: float, broker_pid: Optional[int] = None) -> dict:
        sock = self.sock
        buf = b""
        clock = time.perf_counter
        start = clock()
        self.next_at = start
        for _ in range(self.workers):
            self._next(start)
        measure_at = start + warmup
        end_at = measure_at + seconds
        rss_at = measure_at
        marks: Dict[str, Tuple[float, float, Optional[float]]] = {}
        stopping = False
        while self.inflight or (self.parked and not stopping):
            if self.parked:  # paced: wait for an answer or the next slot, whichever comes first
                ready, _, _ = select.select([sock], [], [], max(0.0, self.next_at - clock()))
                now = clock()
                while self.parked and now >= self.next_at and not stopping:
                    self.parked -= 1
                    self._next(now)
                if not ready:
                    continue
            chunk = sock.recv(262144)
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            buf = buf + chunk if buf else chunk
            pos, size = 0, len(buf)
            now = clock()
            while size - pos >= 8:
                length, word = _FRAME.unpack_from(buf, pos)
                if size - pos - 4 < length:
                    break
                hlen = word & 0xFFFFFF
                header = buf[pos + 8: pos + 8 + hlen]
                pos += 4 + length
                opaque = int(_OPAQUE.search(header).group(1))
                t0 = self.inflight.pop(opaque, None)
                if t0 is None:
                    continue
                code = int(_CODE.search(header).group(1))
                if self.recording:
                    self.latencies.append(now - t0)
                    if code == 0:
                        self.sends += 1
                    else:
                        self.errors += 1
                        self.codes[code] = self.codes.get(code, 0) + 1
                if not stopping:
                    self._next(now)
            buf = buf[pos:]
            if not self.recording and not stopping and now >= measure_at:
                self.recording = True
                marks["start"] = (clock(), self_cpu_seconds(), proc_cpu_times(broker_pid) if broker_pid else None)
            elif self.recording and now >= end_at:
                # The window closes now: answers still in flight are not counted.
                marks["end"] = (clock(), self_cpu_seconds(), proc_cpu_times(broker_pid) if broker_pid else None)
                self.recording = False
                stopping = True
            if self.rss_every and broker_pid and self.recording and now >= rss_at:
                self.rss.append((round(now - measure_at, 1), proc_rss_kib(broker_pid),
                                 proc_rss_kib(broker_pid, b"RssAnon")))
                rss_at += self.rss_every
        return self.summary(marks)

    def summary(self, marks) -> dict:
        t0, c0, b0 = marks["start"]
        t1, c1, b1 = marks["end"]
        elapsed = t1 - t0
        messages = self.sends * self.frames.messages
        lat = sorted(self.latencies)
        out = {
            "code": self.frames.code, "workers": self.workers, "size": len(self.frames.body),
            "batch": self.frames.batch, "seconds": round(elapsed, 3), "sends": self.sends, "messages": messages,
            "errors": self.errors, "error_codes": self.codes, "tps": round(messages / elapsed, 1),
            "rt_avg_ms": round(1000 * sum(lat) / len(lat), 3) if lat else 0.0,
            "rt_p99_ms": round(1000 * percentile(lat, 0.99), 3), "rt_max_ms": round(1000 * lat[-1], 3) if lat else 0.0,
            "generator_cpu_us_per_msg": round(1e6 * (c1 - c0) / messages, 2) if messages else None,
            "generator_cpu_share": round((c1 - c0) / elapsed, 3),
            "generator": sys.implementation.name,
        }
        if b0 is not None:
            user, system = b1[0] - b0[0], b1[1] - b0[1]
            out["broker_cpu_us_per_msg"] = round(1e6 * (user + system) / messages, 2) if messages else None
            out["broker_sys_us_per_msg"] = round(1e6 * system / messages, 2) if messages else None
            out["broker_cpu_share"] = round((user + system) / elapsed, 3)
        if self.interval:
            out["paced_sends_per_s"] = round(1.0 / self.interval, 1)
        if self.rss:
            kib = [k for _, k, _ in self.rss]
            out["broker_rss_mib"] = {"first": round(kib[0] / 1024, 1), "last": round(kib[-1] / 1024, 1),
                                     "min": round(min(kib) / 1024, 1), "max": round(max(kib) / 1024, 1),
                                     "samples": [(t, round(k / 1024, 1), round(a / 1024, 1)) for t, k, a in self.rss]}
        return out


def connect(addr: str, no_delay: bool = True) -> socket.socket:
    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    if no_delay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Java's NettyClientConfig does
    return sock


def read_frame(sock: socket.socket) -> bytes:
    """One whole frame (length prefix included) from a blocking socket."""
    data = b""
    need = 4
    while len(data) < need:
        chunk = sock.recv(need - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
        if need == 4 and len(data) == 4:
            need = 4 + struct.unpack(">i", data)[0]
    return data


def run_load(addr: str, topic: str, workers: int, size: int, seconds: float, warmup: float = 1.0, batch: int = 1,
             queues: int = 8, broker_pid: Optional[int] = None, no_delay: bool = True, rate: float = 0.0,
             rss_every: float = 0.0) -> dict:
    with connect(addr, no_delay) as sock:
        run = Run(sock, JavaFrames(topic, size, batch, queues), workers, rate, rss_every)
        return run.run(warmup, seconds, broker_pid)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="java_load", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--addr", required=True, help="broker host:port")
    p.add_argument("--topic", required=True)
    p.add_argument("--workers", type=int, default=8, help="sends in flight, one per Java thread (default 8)")
    p.add_argument("--size", type=int, default=128, help="body bytes (default 128)")
    p.add_argument("--batch", type=int, default=1, help="messages per send (>1: SEND_BATCH_MESSAGE)")
    p.add_argument("--queues", type=int, default=8, help="queues of the topic, used round robin (default 8)")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds before the window (default 1)")
    p.add_argument("--seconds", type=float, default=5.0, help="measured window (default 5)")
    p.add_argument("--broker-pid", type=int, default=None, help="measure this process's CPU over the window")
    p.add_argument("--no-nodelay", action="store_true", help="leave Nagle on in this client")
    p.add_argument("--rate", type=float, default=0.0,
                   help="sends per second, the workers paced to it (default 0: each answer sends the next)")
    p.add_argument("--rss-every", type=float, default=0.0,
                   help="sample the broker's resident memory every this many seconds of the window (--broker-pid)")
    a = p.parse_args(argv)
    if a.rate < 0 or a.rss_every < 0:
        p.error("--rate and --rss-every must not be negative")
    print(json.dumps(run_load(a.addr, a.topic, a.workers, a.size, a.seconds, a.warmup, a.batch, a.queues,
                              a.broker_pid, not a.no_nodelay, a.rate, a.rss_every)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
