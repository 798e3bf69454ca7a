"""Hostile peers against a real ``twistd broker`` while a normal client sends, shared by the tests
(tests/robustness/test_flood.py: what must hold) and the benchmark (benchmarks/flood_bench.py: how long the
normal client's sends take meanwhile).

* a partial-frame flood: 40 peers each announce a 16 MiB frame and send 4 MiB of it, and a trickler sends one
  request a byte at a time;
* a heartbeat flood: 3,000 heartbeats, 50 in flight at a time, each naming a new consumer group.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import List, Tuple

import attr

from mq.client.simple import heartbeat_request, send_request
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.serialization import encode_command
from tests.broker.wire import Wire

MiB = 1024 * 1024
TOPIC = "FloodTopic"
CONF = ("partialFramesMaxBytes=33554432\n"  # 32 MiB for all connections together
        "partialFrameTimeoutSeconds=5\n"
        "maxClientGroupNums=1500\n")
#: The heartbeat flood's size: twice maxClientGroupNums, so half of them are refused.
HEARTBEATS = 3000


def vm_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class NormalClient(threading.Thread):
    """Sends one message after the other, noting when each was sent and answered, until stopped."""

    def __init__(self, addr: str) -> None:
        super().__init__(daemon=True)
        self.wire = Wire(addr, timeout=30)
        self.sends: List[Tuple[float, float]] = []  # (sent, answered), time.monotonic()
        self.codes: set = set()
        self.error = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            with self.wire:
                while not self.done.is_set():
                    start = time.monotonic()
                    r = self.wire.call(send_request(TOPIC, b"m" * 256, queue_id=0))
                    self.sends.append((start, time.monotonic()))
                    self.codes.add(r.code)
        except Exception as e:  # a send that timed out or a closed connection: what the test reports
            self.error = e

    def stop(self) -> None:
        self.done.set()
        self.join(60)

    def answered_within(self, begin: float, end: float) -> int:
        """Sends both made and answered between ``begin`` and ``end``."""
        return sum(1 for sent, answered in self.sends if begin <= sent and answered <= end)

    def longest_wait(self) -> float:
        return max(answered - sent for sent, answered in self.sends)

    def latency(self) -> dict:
        lat = sorted(answered - sent for sent, answered in self.sends)
        assert lat, "the normal client sent nothing"
        return {"n": len(lat), "p50": lat[len(lat) // 2], "p99": lat[int(len(lat) * 0.99)], "max": lat[-1]}


def warm_up(addr: str, n: int = 200) -> None:
    with Wire(addr) as w:
        for _ in range(n):
            assert w.call(send_request(TOPIC, b"w" * 256, queue_id=0)).code == RC.SUCCESS


def begin(broker) -> Tuple[int, NormalClient]:
    """Warm the send path, note the broker's RSS, and start the normal client: (RSS, client)."""
    warm_up(broker.addr)
    base = vm_rss(broker.proc.pid)
    client = NormalClient(broker.addr)
    client.start()
    return base, client


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


@attr.s(auto_attribs=True)
class Flood:
    """What one flood did: when it ran, the broker's growth, the normal client that sent meanwhile."""

    client: NormalClient
    began: float
    ended: float
    grown_mib: float
    #: partial-frame flood: the trickler closed by the broker, its address as the broker names it, bytes it
    #: sent, peers all closed
    trickler_closed: bool = False
    trickler_peer: str = ""
    trickled: int = 0
    peers_closed: bool = False
    #: heartbeat flood: answer code -> count, the remarks of the refusals, heartbeats answered
    codes: dict = attr.Factory(dict)
    remarks: set = attr.Factory(set)
    answered: int = 0


def partial_frame_flood(broker, deadline: float = 30.0) -> Flood:
    pid = broker.proc.pid
    port = int(broker.addr.rsplit(":", 1)[1])
    base, client = begin(broker)
    began = time.monotonic()
    peers = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
    trickler = socket.create_connection(("127.0.0.1", port))
    trickler_peer = "%s:%d" % trickler.getsockname()[:2]
    trickle = encode_command(send_request(TOPIC, b"t" * 64, queue_id=0))
    chunk = b"\0" * (64 * 1024)
    peak = base
    alive = list(peers)
    for sock in peers:  # each announces a 16 MiB frame (the largest allowed), then sends 4 MiB of it
        sock.sendall(struct.pack(">iI", 16 * MiB - 8, 2) + b"{}")
    for _ in range(64):
        for sock in list(alive):
            try:
                sock.sendall(chunk)
            except OSError:
                alive.remove(sock)
        peak = max(peak, vm_rss(pid))
    trickler.sendall(trickle[:1])
    started = time.monotonic()
    trickler.setblocking(False)
    for sock in peers:
        sock.setblocking(False)
    # the trickler goes on a byte at a time; the broker closes it once its frame is partialFrameTimeoutSeconds old
    sent = 1
    while not (trickler_closed := closed_by_peer(trickler)) and time.monotonic() < started + deadline:
        try:
            trickler.send(trickle[sent:sent + 1])
            sent += 1
        except OSError:
            break
        peak = max(peak, vm_rss(pid))
        time.sleep(0.25)  # the trickle's pace: this is the attack, not a wait
    # the peers that still hold partial frames are closed after partialFrameTimeoutSeconds too
    until = time.monotonic() + deadline
    while not (closed := all(closed_by_peer(s) for s in peers)) and time.monotonic() < until:
        time.sleep(0.1)
    ended = time.monotonic()
    client.stop()
    for sock in peers + [trickler]:
        sock.close()
    return Flood(client, began, ended, (peak - base) / MiB, trickler_closed=trickler_closed,
                 trickler_peer=trickler_peer, trickled=sent, peers_closed=closed)


def heartbeat_flood(broker, deadline: float = 90.0) -> Flood:  # about 1 s here: the deadline only catches a hang
    pid = broker.proc.pid
    base, client = begin(broker)
    codes: dict = {}
    remarks = set()
    group = 0
    began = time.monotonic()
    with Wire(broker.addr, timeout=30) as w:
        while group < HEARTBEATS and time.monotonic() < began + deadline:
            opaques = []
            for _ in range(50):  # 50 heartbeats in flight, each naming a new consumer group
                group += 1
                hb = heartbeat_request(f"flood@{group}", consumers=[(f"flood-group-{group}", [TOPIC], "CLUSTERING")])
                opaques.append(w.send(hb))
            for opaque in opaques:
                r = w.receive(opaque)
                codes[r.code] = codes.get(r.code, 0) + 1
                if r.code != RC.SUCCESS:
                    remarks.add(r.remark)
        ended = time.monotonic()
        client.stop()
    return Flood(client, began, ended, (vm_rss(pid) - base) / MiB, codes=codes, remarks=remarks,
                 answered=sum(codes.values()))
