"""Hostile peers against a real ``twistd broker``: a partial-frame flood from many connections, a slow-loris
trickler, and a heartbeat flood with new group names, each while a normal client sends. The broker's
resident memory (``VmRSS``) and the normal client's send latency stay within bounds, and it keeps serving.

Before the connection limits, 40 peers announcing 16 MiB frames grew the broker by their whole partial
frames (160 MiB here); before heartbeats got cheap, every new group cost 20 ms and more of broker work, and a
normal send waited behind them (p99 145 ms and growing with the number of groups).
"""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from mq.client.simple import create_topic_request, heartbeat_request, send_request
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.serialization import encode_command
from tests.broker.cluster import broker_starter, processes, start_namesrv
from tests.broker.wire import Wire, call
from tests.support.processes import wait_until

MiB = 1024 * 1024
TOPIC = "FloodTopic"
CONF = ("partialFramesMaxBytes=33554432\n"  # 32 MiB for all connections together
        "partialFrameTimeoutSeconds=5\n"
        "maxClientGroupNums=1500\n")


def vm_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("flood")
    with processes(tmp) as twistd:
        namesrv = start_namesrv(twistd, tmp)
        proc = broker_starter(twistd, tmp, namesrv, CONF)(name="flood-broker")
        assert call(proc.addr, create_topic_request(TOPIC, queues=1)).code == RC.SUCCESS
        yield proc


class NormalClient(threading.Thread):
    """Sends one message after the other and records each send's latency, until stopped."""

    def __init__(self, addr: str) -> None:
        super().__init__(daemon=True)
        self.wire = Wire(addr, timeout=30)
        self.latencies: list = []
        self.codes: set = set()
        self.done = threading.Event()

    def run(self) -> None:
        with self.wire:
            while not self.done.is_set():
                start = time.perf_counter()
                r = self.wire.call(send_request(TOPIC, b"m" * 256, queue_id=0))
                self.latencies.append(time.perf_counter() - start)
                self.codes.add(r.code)

    def stop(self) -> dict:
        self.done.set()
        self.join(60)
        lat = sorted(self.latencies)
        assert lat, "the normal client sent nothing"
        return {"n": len(lat), "p50": lat[len(lat) // 2], "p99": lat[int(len(lat) * 0.99)], "max": lat[-1]}


def warm_up(addr: str) -> None:
    with Wire(addr) as w:
        for _ in range(200):
            assert w.call(send_request(TOPIC, b"w" * 256, queue_id=0)).code == RC.SUCCESS


def begin(broker) -> tuple:
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


def test_partial_frame_flood_and_a_trickler(broker):
    pid = broker.proc.pid
    base, client = begin(broker)
    peers = [socket.create_connection(("127.0.0.1", int(broker.addr.rsplit(":", 1)[1]))) for _ in range(40)]
    trickler = socket.create_connection(("127.0.0.1", int(broker.addr.rsplit(":", 1)[1])))
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
    # the trickler goes on a byte at a time; the broker closes it once its frame is 5 s old
    sent = 1
    deadline = started + 30
    while not closed_by_peer(trickler):
        assert time.monotonic() < deadline, "the trickler was never closed"
        try:
            trickler.send(trickle[sent:sent + 1])
            sent += 1
        except OSError:
            break
        peak = max(peak, vm_rss(pid))
        time.sleep(0.25)  # the trickle's pace: this is the attack, not a wait
    took = time.monotonic() - started
    # the peers that still hold partial frames are closed after partialFrameTimeoutSeconds too
    wait_until(lambda: all(closed_by_peer(s) for s in peers), timeout=30, what="every flooding peer closed")
    latency = client.stop()
    for sock in peers + [trickler]:
        sock.close()

    grown = (peak - base) / MiB
    assert grown < 80, f"the broker grew by {grown:.0f} MiB (partial frames budget 32 MiB)"
    assert 4 <= took <= 20, f"the trickler was closed after {took:.1f} s ({sent} bytes)"
    assert latency["p99"] < 0.2, latency
    assert client.codes == {RC.SUCCESS}, client.codes
    log = broker.log_text()
    assert "partialFramesMaxBytes=33554432" in log and "partialFrameTimeoutSeconds=5" in log
    warm_up(broker.addr)  # still serving
    print(f"partial-frame flood: broker grew {grown:.0f} MiB, trickler closed after {took:.1f} s, "
          f"normal sends {latency}")


def test_heartbeat_flood_with_new_group_names(broker):
    pid = broker.proc.pid
    base, client = begin(broker)
    codes: dict = {}
    remarks = set()
    group = 0
    started = time.monotonic()
    deadline = started + 20
    with Wire(broker.addr, timeout=30) as w:
        while group < 3000 and time.monotonic() < deadline:
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
        took = time.monotonic() - started
        latency = client.stop()
        grown = (vm_rss(pid) - base) / MiB
        print(f"heartbeat flood: {codes} in {took:.1f} s, broker grew {grown:.0f} MiB, normal sends {latency}")
        assert group == 3000, f"only {group} heartbeats answered in 20 s: {codes}"
        # 1,500 groups fit (maxClientGroupNums), the normal client's producer group among them
        assert codes[RC.SUCCESS] in range(1490, 1501) and codes[RC.SYSTEM_BUSY] == 3000 - codes[RC.SUCCESS], codes
        assert remarks and all("maxClientGroupNums=1500" in r for r in remarks), remarks
    assert latency["p99"] < 0.2, latency
    assert client.codes == {RC.SUCCESS}, client.codes
    assert grown < 60, f"the broker grew by {grown:.0f} MiB"
    warm_up(broker.addr)
