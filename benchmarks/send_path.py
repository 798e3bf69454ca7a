"""CPU per send inside the broker, without sockets or the reactor: Java-benchmark frames replayed in-process.

    python -m benchmarks.send_path [--count 20000] [--per-read 8] [--size 128] [--batch 1] [--profile] [--stages]

A real ``BrokerService`` (its store in a temp dir, ASYNC_FLUSH, index on as by default) on a memory reactor;
one connection (``StringTransport``); ``--per-read`` frames are handed to ``dataReceived`` at a time, as the
broker reads them under the Java benchmark's load. Prints CPU µs per message (``time.process_time``) for the
whole path, for each stage alone (``--stages``: frame decode, typed header, properties, store put, response
encode), and with ``--profile`` a cProfile (CPU-time clock) of the whole path by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from twisted.internet.address import IPv4Address  # noqa: E402
from twisted.internet.testing import MemoryReactorClock, StringTransport  # noqa: E402

from benchmarks.profile_broker import print_pstats  # noqa: E402
from mq.bench.java_load import JavaFrames  # noqa: E402
from mq.broker.config import BrokerConfig  # noqa: E402
from mq.broker.service import BrokerService  # noqa: E402
from mq.client.simple import create_topic_request  # noqa: E402
from mq.remoting.serialization import encode_command  # noqa: E402


class Replay:
    def __init__(self, tmp: Path, size: int, batch: int) -> None:
        config = BrokerConfig.from_properties({
            "listenPort": "10911", "storePathRootDir": str(tmp / "store"), "brokerIP1": "127.0.0.1",
            "brokerName": "replay", "namesrvAddr": "", "mappedFileSizeCommitLog": str(1 << 30),
        })
        self.reactor = MemoryReactorClock()
        self.broker = BrokerService(config, self.reactor)
        self.broker.startService()
        self.proto = self.broker.factory.buildProtocol(None)
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 50000))
        self.proto.makeConnection(self.transport)
        self.proto.dataReceived(encode_command(create_topic_request("Replay", 8)))
        self.frames = JavaFrames("Replay", size, batch)
        self.opaque = 0

    def make(self, n: int, per_read: int):
        chunks = []
        for _start in range(0, n, per_read):
            parts = []
            for _ in range(per_read):
                self.opaque += 1
                parts.append(self.frames.frame(self.opaque, self.opaque % 8, int(time.time() * 1000)))
            chunks.append(b"".join(parts))
        return chunks

    def run(self, chunks) -> float:
        received = self.proto.dataReceived
        clear = self.transport.clear
        t0 = time.process_time()
        for chunk in chunks:
            received(chunk)
            clear()
        return time.process_time() - t0

    def stop(self) -> None:
        self.broker.stopService()


def stages(replay: Replay, n: int) -> None:
    """Each stage alone on the same frames (µs per message)."""
    from mq.common.broker_headers import SendMessageRequestHeader
    from mq.common.message import string_to_properties
    from mq.remoting.serialization import decode_frame

    frames = [replay.frames.frame(i, i % 8, int(time.time() * 1000)) for i in range(n)]
    parts = []
    for f in frames:
        hlen = int.from_bytes(f[4:8], "big") & 0xFFFFFF
        parts.append((f[8:8 + hlen], f[8 + hlen:]))

    def timed(label, fn, items):
        t0 = time.process_time()
        out = [fn(x) for x in items]
        print(f"  {label:34s} {1e6 * (time.process_time() - t0) / len(items):7.2f} µs")
        return out

    cmds = timed("decode_frame (JSON header)", lambda p: decode_frame(0, p[0], p[1]), parts)
    headers = timed("SendMessageRequestHeader.decode_short", lambda c: SendMessageRequestHeader.decode_short(c.ext_fields), cmds)
    timed("string_to_properties", lambda h: string_to_properties(h.properties), headers)
    resp = [c.response(0, None, {"msgId": "7F00000100002A9F00000000000A1B2C", "queueId": "3", "queueOffset": "12345",
                                 "MSG_REGION": "DefaultRegion", "TRACE_ON": "true"}) for c in cmds]
    timed("encode_command (send response)", encode_command, resp)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=20000)
    p.add_argument("--per-read", type=int, default=8)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--stages", action="store_true")
    p.add_argument("--top", type=int, default=35)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mq-send-path-"))
    replay = Replay(tmp, args.size, args.batch)
    msgs = args.count * max(1, args.batch)
    try:
        replay.run(replay.make(min(args.count, 5000), args.per_read))  # warm-up
        figures = []
        for _ in range(args.rounds):
            figures.append(1e6 * replay.run(replay.make(args.count, args.per_read)) / msgs)
        print(f"whole path ({args.per_read} frames per read, {args.size} B, batch {args.batch}): median "
              f"{statistics.median(figures):.2f} µs CPU per message (rounds: {', '.join(f'{f:.2f}' for f in figures)})")
        if args.stages:
            stages(replay, min(args.count, 20000))
        if args.profile:
            chunks = replay.make(args.count, args.per_read)
            prof = cProfile.Profile(time.process_time)
            prof.enable()
            replay.run(chunks)
            prof.disable()
            print("cProfile with the CPU-time clock (its overhead inflates small functions):")
            print_pstats(pstats.Stats(prof), msgs, args.top)
    finally:
        replay.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
