"""Remoting benchmarks: codec cost, and pipelined request rates against servers in a separate process.

Run ``python -m benchmarks.remoting_bench`` (``--help`` for options). Figures printed:

(a) codec: decode a SEND_MESSAGE_V2 request frame (Java-style short header keys ``a``..``m``, properties with
    UNIQ_KEY/WAIT/TAGS, 128-byte body) into a typed header, and encode it again; plus the server's half
    (decode request + typed header, encode the send response). µs per operation, JSON and ROCKETMQ.
(b) echo: a bare Twisted length-prefixed echo server, 64 requests in flight on each of 4 connections.
(c) remoting: the same load against a ``RemotingServerFactory`` whose processor answers a tiny response.
(d) route: GET_ROUTEINFO_BY_TOPIC (105) against an in-process ``NamesrvService`` (when mq.namesrv has one).

Every server runs as a subprocess (``serve <kind>``), so the load generator and the server each have a core.
To add a target, add a ``_serve_<kind>`` function returning a listening port and a request frame in
``REQUESTS`` / ``request_for``; ``TARGETS`` lists what the default run measures.
"""

from __future__ import annotations

import argparse
import os
import platform
import struct
import subprocess
import sys
import tempfile
import time
import timeit
from typing import Callable, Dict, List, Optional, Tuple

import attr

from mq.remoting.codes import RequestCode, ResponseCode, SerializeType
from mq.remoting.command import RemotingCommand
from mq.remoting.header import CommandHeader, hfield
from mq.remoting.serialization import decode_command, encode_command

# -- (a) codec ----------------------------------------------------------------------------------------

try:  # the broker's own header classes, when they exist
    from mq.common.broker_headers import SendMessageRequestHeader, SendMessageResponseHeader
except ImportError:  # pragma: no cover - depends on what the broker work has landed

    @attr.s(slots=True)
    class SendMessageRequestHeader(CommandHeader):  # type: ignore[no-redef]
        producer_group = hfield("producerGroup", str, True, short="a")
        topic = hfield("topic", str, True, short="b")
        default_topic = hfield("defaultTopic", str, True, short="c")
        default_topic_queue_nums = hfield("defaultTopicQueueNums", int, True, short="d")
        queue_id = hfield("queueId", int, True, short="e")
        sys_flag = hfield("sysFlag", int, True, short="f")
        born_timestamp = hfield("bornTimestamp", int, True, short="g")
        flag = hfield("flag", int, True, short="h")
        properties = hfield("properties", str, short="i")
        reconsume_times = hfield("reconsumeTimes", int, short="j")
        unit_mode = hfield("unitMode", bool, default=False, short="k")
        max_reconsume_times = hfield("maxReconsumeTimes", int, short="l")
        batch = hfield("batch", bool, default=False, short="m")

    @attr.s(slots=True)
    class SendMessageResponseHeader(CommandHeader):  # type: ignore[no-redef]
        msg_id = hfield("msgId", str, True)
        queue_id = hfield("queueId", int, True)
        queue_offset = hfield("queueOffset", int, True)
        transaction_id = hfield("transactionId", str)


# What a Java 4.9.8 producer sends: SendMessageRequestHeaderV2 with one-letter keys.
SEND_V2_EXT = {
    "a": "please_rename_unique_group_name",
    "b": "BenchmarkTest",
    "c": "TBW102",
    "d": "4",
    "e": "1",
    "f": "0",
    "g": "1718000000000",
    "h": "0",
    "i": "UNIQ_KEY\x017F000001A1B218B4AAC25F3E7C0000\x02WAIT\x01true\x02TAGS\x01TagA",
    "j": "0",
    "k": "false",
    "l": "16",
    "m": "false",
}
SEND_BODY = bytes(range(128))


def send_v2_frame(serialize_type: int) -> bytes:
    cmd = RemotingCommand(RequestCode.SEND_MESSAGE_V2, 42, 0, None, dict(SEND_V2_EXT), SEND_BODY, 0, 409, serialize_type)
    return encode_command(cmd)


def _per_op_us(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def codec_figures(number: int = 20000) -> Dict[str, float]:
    """µs per op for the request round trip and the server's half, in each serialization."""
    out = {}
    for name, st in (("JSON", SerializeType.JSON), ("ROCKETMQ", SerializeType.ROCKETMQ)):
        frame = send_v2_frame(st)

        def request_round_trip(frame=frame, st=st):
            cmd = decode_command(frame)
            header = SendMessageRequestHeader.decode_short(cmd.ext_fields)
            again = RemotingCommand(cmd.code, cmd.opaque, 0, None, header.encode_short(), cmd.body, 0, 409, st)
            return encode_command(again)

        def server_half(frame=frame):
            cmd = decode_command(frame)
            header = SendMessageRequestHeader.decode_short(cmd.ext_fields)
            ext = SendMessageResponseHeader("7F000001A1B218B4AAC25F3E7C0000", header.queue_id, 7).encode()
            ext["MSG_REGION"] = "DefaultRegion"
            ext["TRACE_ON"] = "true"
            return encode_command(cmd.response(ResponseCode.SUCCESS, None, ext))

        assert decode_command(request_round_trip()).ext_fields == SEND_V2_EXT
        out[f"{name} request decode+typed header+encode"] = _per_op_us(request_round_trip, number)
        out[f"{name} server: request decode+typed header, response encode"] = _per_op_us(server_half, number)
        out[f"{name} frame decode only"] = _per_op_us(lambda frame=frame: decode_command(frame), number)
    return out


# -- servers (run in a subprocess) ----------------------------------------------------------------------


def _serve_echo(reactor) -> int:
    from twisted.internet.protocol import Factory, Protocol

    unpack_length = struct.Struct(">i").unpack_from

    class Echo(Protocol):
        """Length-prefixed frames, each cut out and written back on its own: the per-message floor of
        any framed request/response protocol on Twisted (no header parsing, no dispatch)."""

        def connectionMade(self):
            self.buf = b""

        def dataReceived(self, data):
            buf = self.buf + data if self.buf else data
            pos, end = 0, len(buf)
            write = self.transport.write
            while end - pos >= 4:
                (length,) = unpack_length(buf, pos)
                if end - pos - 4 < length:
                    break
                write(buf[pos : pos + 4 + length])
                pos += 4 + length
            self.buf = buf[pos:]

    return reactor.listenTCP(0, Factory.forProtocol(Echo), interface="127.0.0.1").getHost().port


def _serve_receiver_echo(reactor) -> int:
    """Twisted's own framing protocol, ``Int32StringReceiver``, echoing each frame: the conventional
    "bare Twisted framed echo" (the platform figures' 137,000 req/s baseline was of this kind)."""
    from twisted.internet.protocol import Factory
    from twisted.protocols.basic import Int32StringReceiver

    class ReceiverEcho(Int32StringReceiver):
        MAX_LENGTH = 16 * 1024 * 1024

        def stringReceived(self, string):
            self.sendString(string)

    return reactor.listenTCP(0, Factory.forProtocol(ReceiverEcho), interface="127.0.0.1").getHost().port


def _serve_remoting(reactor) -> int:
    from mq.remoting.protocol import RequestDispatcher
    from mq.remoting.server import RemotingServerFactory

    dispatcher = RequestDispatcher()
    dispatcher.register(RequestCode.HEART_BEAT, lambda request, channel: request.response())
    factory = RemotingServerFactory(dispatcher, reactor)
    return reactor.listenTCP(0, factory, interface="127.0.0.1").getHost().port


def _serve_namesrv(reactor) -> int:
    from mq.common.route import DataVersion, TopicConfig
    from mq.namesrv.config import NamesrvConfig
    from mq.namesrv.service import NamesrvService

    config = NamesrvConfig()
    config.listen_port = 0
    config.interface = "127.0.0.1"
    config.kv_config_path = os.path.join(tempfile.mkdtemp(prefix="bench-namesrv-"), "kvConfig.json")
    service = NamesrvService(config, reactor)

    class Channel:
        def close(self) -> None:
            pass

    service.routes.register_broker(
        "DefaultCluster",
        "127.0.0.1:10911",
        "broker-a",
        0,
        "127.0.0.1:10912",
        DataVersion(1, 1),
        {ROUTE_TOPIC: TopicConfig(ROUTE_TOPIC, 4, 4, 6)},
        [],
        Channel(),
    )
    service.startService()
    return service.port.getHost().port


SERVERS = {
    "echo": _serve_echo,
    "receiver": _serve_receiver_echo,
    "remoting": _serve_remoting,
    "namesrv": _serve_namesrv,
}
ROUTE_TOPIC = "BenchmarkTest"


def serve(kind: str) -> None:
    """Start server ``kind``, print ``PORT <n>``, run until stdin closes."""
    from twisted.internet import reactor, stdio
    from twisted.internet.protocol import Protocol

    port = SERVERS[kind](reactor)

    class StopOnEOF(Protocol):
        def connectionLost(self, reason=None):
            reactor.stop()

    stdio.StandardIO(StopOnEOF())
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    reactor.run()


# -- load generator --------------------------------------------------------------------------------------


def request_for(kind: str) -> bytes:
    """The frame the load generator sends to server ``kind``."""
    if kind == "namesrv":
        cmd = RemotingCommand.request(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": ROUTE_TOPIC})
    else:  # a heartbeat-sized request; the echo server gets the very same bytes
        cmd = RemotingCommand.request(RequestCode.HEART_BEAT, {"clientID": "127.0.0.1@4242"})
    cmd.opaque = 1
    return encode_command(cmd)


def _check_response(kind: str, frame: bytes) -> None:
    if kind in ("echo", "receiver"):
        return
    cmd = decode_command(frame)
    if cmd.code != ResponseCode.SUCCESS or not cmd.is_response:
        raise SystemExit(f"{kind} answered {cmd.code}: {cmd.remark}")


def load(port: int, kind: str, connections: int, in_flight: int, warmup: float, duration: float) -> float:
    """Pipelined requests/s: each response frame received is answered with one new request frame."""
    from twisted.internet import reactor
    from twisted.internet.protocol import ClientFactory, Protocol

    frame = request_for(kind)
    state = {"count": 0, "checked": False, "started": 0.0, "counted_at_start": 0, "rate": 0.0}

    class Pipeline(Protocol):
        def connectionMade(self):
            self.buf = b""
            self.transport.write(frame * in_flight)

        def dataReceived(self, data):
            buf = self.buf + data if self.buf else data
            pos, end, n = 0, len(buf), 0
            while end - pos >= 4:
                (length,) = struct.unpack_from(">i", buf, pos)
                if end - pos - 4 < length:
                    break
                if not state["checked"]:
                    _check_response(kind, buf[pos : pos + 4 + length])
                    state["checked"] = True
                pos += 4 + length
                n += 1
            self.buf = buf[pos:]
            if n:
                state["count"] += n
                self.transport.write(frame * n)

    factory = ClientFactory.forProtocol(Pipeline)
    for _ in range(connections):
        reactor.connectTCP("127.0.0.1", port, factory)

    def start():
        state["started"] = time.perf_counter()
        state["counted_at_start"] = state["count"]
        reactor.callLater(duration, stop)

    def stop():
        elapsed = time.perf_counter() - state["started"]
        state["rate"] = (state["count"] - state["counted_at_start"]) / elapsed
        reactor.stop()

    reactor.callLater(warmup, start)
    reactor.run()
    return state["rate"]


def measure(kind: str, args) -> Optional[float]:
    """Start server ``kind`` in a subprocess and load it from this one (a fresh process per target)."""
    server = subprocess.Popen(
        [args.server_python, "-m", "benchmarks.remoting_bench", "serve", kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    try:
        line = server.stdout.readline().decode()
        if not line.startswith("PORT "):
            print(f"  {kind}: server did not start ({line.strip() or 'no output'})")
            return None
        port = int(line.split()[1])
        # The reactor cannot be restarted, so each load run is its own process too.
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.remoting_bench",
                "load",
                kind,
                str(port),
                str(args.connections),
                str(args.in_flight),
                str(args.warmup),
                str(args.duration),
            ],
            check=True,
            stdout=subprocess.PIPE,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        return float(out.stdout.decode().split()[-1])
    finally:
        server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def namesrv_available() -> bool:
    try:
        from mq.namesrv.service import NamesrvService  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        serve(argv[1])
        return
    if argv[:1] == ["load"]:
        kind, port, connections, in_flight, warmup, duration = argv[1:7]
        print(load(int(port), kind, int(connections), int(in_flight), float(warmup), float(duration)))
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks.remoting_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--codec-only", action="store_true", help="only the codec figures (a)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per target")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds of load before measuring")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--server-python", default=sys.executable, help="interpreter for the server processes")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated: echo,remoting,namesrv")
    args = parser.parse_args(argv)

    print(f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs")
    rows: List[Tuple[str, str]] = []
    print("(a) codec, SEND_MESSAGE_V2 with a 128-byte body, µs per operation:")
    for name, us in codec_figures().items():
        print(f"  {name:58s} {us:7.2f}")
        rows.append((f"codec: {name}", f"{us:.2f} µs"))
    if not args.codec_only:
        targets = [t for t in args.targets.split(",") if t]
        if "namesrv" in targets and not namesrv_available():
            targets.remove("namesrv")
            print("  (no mq.namesrv service yet: route figure skipped)")
        rates = {}
        print(f"pipelined load: {args.in_flight} in flight x {args.connections} connections, "
              f"{args.duration:g} s each, server interpreter {args.server_python}")
        for kind in targets:
            rate = measure(kind, args)
            if rate is not None:
                rates[kind] = rate
                print(f"  {kind:10s} {rate:12,.0f} req/s")
        echo = rates.get("echo")
        receiver = rates.get("receiver")
        for kind, rate in rates.items():
            ratios = []
            if echo and kind not in ("echo", "receiver"):
                ratios.append(f"{rate / echo:.0%} of slicing echo")
            if receiver and kind not in ("echo", "receiver"):
                ratios.append(f"{rate / receiver:.0%} of Int32StringReceiver echo")
            ratio = f" ({', '.join(ratios)})" if ratios else ""
            rows.append((f"{LABELS[kind]}", f"{rate:,.0f} req/s{ratio}"))
    width = max(len(r[0]) for r in rows)
    print()
    print(f"| {'figure':{width}s} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name:{width}s} | {value} |")


TARGETS = ["echo", "receiver", "remoting", "namesrv"]
LABELS = {
    "echo": "(b) bare Twisted length-prefixed echo (frames sliced by hand)",
    "receiver": "(b') Twisted Int32StringReceiver echo",
    "remoting": "(c) RemotingServerFactory, tiny response",
    "namesrv": "(d) NameServer GET_ROUTEINFO_BY_TOPIC",
}
REQUESTS = {kind: (lambda kind=kind: request_for(kind)) for kind in SERVERS}

if __name__ == "__main__":
    main()
