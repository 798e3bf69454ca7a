"""Connection limits of a server (mq.remoting.limits): partial-frame budget, slow frames, idle connections,
peers that do not read their responses. Unit tests over StringTransport and a fake clock, and one over TCP."""

from __future__ import annotations

import socket
import struct

import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from mq.remoting.codes import ResponseCode
from mq.remoting.command import RemotingCommand
from mq.remoting.limits import ConnectionLimits
from mq.remoting.protocol import RequestDispatcher
from mq.remoting.serialization import encode_command
from mq.remoting.server import RemotingServerFactory
from tests.remoting.support import Recorder, messages
from tests.support.polling import poll

PING = encode_command(RemotingCommand(10, 7, 0, None, {"k": "v"}, b"x"))


class Server:
    """A factory on a fake clock, and connections to it over StringTransports."""

    def __init__(self, answer=None, **limits) -> None:
        self.clock = task.Clock()
        self.recorder = Recorder(answer)
        dispatcher = RequestDispatcher()
        dispatcher.register(10, self.recorder)
        self.factory = RemotingServerFactory(dispatcher, self.clock, limits=ConnectionLimits(**limits))
        self.factory.doStart()  # the scan of the connections' timers runs on the fake clock

    def connect(self, transport=None, port: int = 1000):
        proto = self.factory.buildProtocol(IPv4Address("TCP", "10.0.0.1", port))
        transport = transport or StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.1", port))
        proto.makeConnection(transport)
        return proto, transport

    def advance(self, seconds: float, step: float = 1.0) -> None:
        for _ in range(int(seconds / step)):
            self.clock.advance(step)


def closing_lines(log_events):
    return [m for m in messages(log_events) if "closing connection" in m]


def announce(length: int, have: int = 0) -> bytes:
    """The first ``have`` bytes of a JSON frame of ``length`` bytes after the prefix."""
    return struct.pack(">iI", length, 2) + b"{}" + b"\0" * (have - 10)


def test_partial_frames_of_all_connections_share_one_budget(log_events):
    server = Server(partial_frames_max_bytes=10_000)
    first, first_t = server.connect(port=1)
    second, second_t = server.connect(port=2)
    first.dataReceived(announce(50_000, 4_000))
    first.dataReceived(b"\0" * 4_000)
    assert server.factory.partial_bytes == 8_000
    second.dataReceived(announce(50_000, 1_000))  # fits: 9_000
    assert not second_t.disconnecting
    second.dataReceived(b"\0" * 1_500)  # over 10_000: the one asking for more goes, the other stays
    assert second_t.disconnected and not first_t.disconnecting
    assert server.factory.partial_bytes == 8_000
    [line] = closing_lines(log_events)
    assert "10.0.0.1:2" in line and "partialFramesMaxBytes=10000" in line, line

    third, third_t = server.connect(port=3)
    third.dataReceived(PING)  # whole frames hold nothing and pass
    assert len(server.recorder.calls) == 1 and not third_t.disconnecting
    first_t.loseConnection()
    first.connectionLost(None)
    assert server.factory.partial_bytes == 0  # a closed connection gives its share back


def test_a_completed_frame_gives_its_bytes_back():
    server = Server(partial_frames_max_bytes=100_000)
    proto, transport = server.connect()
    frame = encode_command(RemotingCommand(10, 1, 0, None, {"k": "v"}, b"b" * 60_000))
    for cut in range(0, len(frame), 7_000):
        proto.dataReceived(frame[cut:cut + 7_000])
        assert server.factory.partial_bytes == (0 if cut + 7_000 >= len(frame) else cut + 7_000)
    assert len(server.recorder.calls) == 1 and not transport.disconnecting
    # the budget is per server, not per frame: frames one after the other never add up
    for _ in range(5):
        proto.dataReceived(frame[:50_000])
        proto.dataReceived(frame[50_000:])
    assert server.factory.partial_bytes == 0 and len(server.recorder.calls) == 6


def test_a_frame_must_arrive_within_the_partial_frame_timeout(log_events):
    """Slowloris: one byte every 5 s keeps the connection from being idle, not from being closed."""
    server = Server(partial_frame_timeout_seconds=30)
    trickler, trickler_t = server.connect(port=1)
    steady, steady_t = server.connect(port=2)
    frame = encode_command(RemotingCommand(10, 1, 0, None, {"k": "v"}, b"b" * 100))
    sent = 0
    for second in range(0, 45, 5):  # noqa: B007 - read after the loop
        trickler.dataReceived(frame[sent:sent + 1])
        sent += 1
        steady.dataReceived(PING)  # whole frames, one after the other, never time out
        server.advance(5)
        if trickler_t.disconnecting:
            break
    assert trickler_t.disconnected and 30 <= second + 5 <= 36, second
    assert not steady_t.disconnecting
    [line] = closing_lines(log_events)
    assert "10.0.0.1:1" in line and "still incomplete" in line and "partialFrameTimeoutSeconds=30" in line, line
    assert server.recorder.calls and all(c.opaque == 7 for c in server.recorder.calls)


def test_the_timer_follows_each_frame_not_the_connection():
    """A connection that always has some partial frame, but a new one each time, is not slow."""
    server = Server(partial_frame_timeout_seconds=10)
    proto, transport = server.connect()
    frame = encode_command(RemotingCommand(10, 1, 0, None, {"k": "v"}, b"b" * 1000))
    proto.dataReceived(frame[:500])
    for _ in range(30):
        server.advance(5)
        proto.dataReceived(frame[500:] + frame[:500])  # completes one frame, begins the next
    assert not transport.disconnecting and len(server.recorder.calls) == 30


def test_idle_connections_are_closed_after_server_channel_max_idle_time(log_events):
    server = Server()  # 120 s, as RocketMQ's serverChannelMaxIdleTimeSeconds
    idle, idle_t = server.connect(port=1)
    busy, busy_t = server.connect(port=2)
    for _ in range(11):
        server.advance(10)
        busy.dataReceived(PING)
    assert not idle_t.disconnecting  # 110 s
    server.advance(12)
    assert idle_t.disconnected and not busy_t.disconnecting
    [line] = closing_lines(log_events)
    assert "10.0.0.1:1" in line and "idle for 120 s" in line and "serverChannelMaxIdleTimeSeconds=120" in line, line
    for _ in range(15):  # a connection that talks every 20 s stays
        server.advance(20)
        busy.dataReceived(PING)
    assert not busy_t.disconnecting
    server.advance(121)
    assert busy_t.disconnected


def test_idle_time_zero_keeps_connections_forever():
    server = Server(server_channel_max_idle_time_seconds=0)
    proto, transport = server.connect()
    server.advance(3600, step=60)
    assert not transport.disconnecting


class BufferingTransport(StringTransport):
    """Twisted's TCP transport as far as producers go: over ``bufferSize`` unsent bytes its streaming producer
    is paused; once everything is written (``drain``) it is resumed."""

    bufferSize = 2 ** 16

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.producer_paused = False

    def write(self, data: bytes) -> None:
        super().write(data)
        if self.producer is not None and self.streaming and len(self.value()) > self.bufferSize:
            if not self.producer_paused:
                self.producer_paused = True
                self.producer.pauseProducing()

    def drain(self) -> bytes:
        out = self.value()
        self.clear()
        if self.producer_paused:
            self.producer_paused = False
            self.producer.resumeProducing()
        return out


def big_answer(request: RemotingCommand) -> RemotingCommand:
    return request.response(ResponseCode.SUCCESS, None, None, b"r" * 10_000)


def test_a_peer_that_does_not_read_stops_being_read(log_events):
    """Requests that each get 10 kB back, 1,000 in one chunk: the server stops at the high-water mark
    instead of buffering 10 MB, reads nothing more until the output drains, then carries on."""
    server = Server(answer=big_answer)
    proto, transport = server.connect(BufferingTransport())
    proto.dataReceived(PING * 1000)
    assert transport.producerState == "paused"  # reading stopped
    assert len(transport.value()) < 2 ** 16 + 20_000
    answered = len(server.recorder.calls)
    assert answered < 10
    total = 0
    while transport.value():
        total += len(transport.drain())
    assert len(server.recorder.calls) == 1000 and total >= 1000 * 10_000
    assert transport.producerState == "producing"  # reading again

    # a peer that never reads: the connection is idle, however much the broker wanted to write
    proto.dataReceived(PING * 1000)
    assert transport.producerState == "paused"
    server.advance(121)
    assert transport.disconnected
    [line] = closing_lines(log_events)
    assert "responses it does not read" in line, line


@pytest_twisted.ensureDeferred
async def test_over_tcp_a_peer_that_never_reads_holds_bounded_output():
    """Real Twisted transport: the output a non-reading peer makes the server hold stays near 64 KiB."""
    dispatcher = RequestDispatcher()
    dispatcher.register(10, lambda req, ch: big_answer(req))
    factory = RemotingServerFactory(dispatcher, reactor, limits=ConnectionLimits(server_channel_max_idle_time_seconds=2,
                                                                                 scan_interval=0.2))
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    peer = socket.socket()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        peer.connect(("127.0.0.1", port.getHost().port))
        peer.setblocking(False)
        sent = 0
        for _ in range(200):  # 200 x 1,000 requests that would make 2 GB of answers
            try:
                sent += peer.send(PING * 1000)
            except BlockingIOError:
                break
            await task.deferLater(reactor, 0.001, lambda: None)
        [proto] = list(factory.connections)
        await poll(lambda: proto._output_paused, bool, timeout=10, what="reading paused")
        t = proto.transport
        unsent = len(t.dataBuffer) - t.offset + t._tempDataLen
        assert unsent < 2 ** 16 + 20_000, unsent
        await poll(lambda: factory.connections, lambda c: not c, timeout=10, what="the idle peer closed")
    finally:
        peer.close()
        await port.stopListening()


def test_connections_past_server_max_connections_are_closed_at_accept(log_events):
    """The file descriptors a peer can take by opening sockets are bounded; the store needs the rest."""
    server = Server(server_max_connections=3)
    conns = [server.connect(port=p) for p in range(3)]
    assert server.factory.buildProtocol(IPv4Address("TCP", "10.0.0.9", 9)) is None  # Twisted closes the socket
    for p in range(50):
        assert server.factory.buildProtocol(IPv4Address("TCP", "10.0.0.9", 10 + p)) is None
    [line] = [m for m in messages(log_events) if "new connection" in m]  # one line for the flood, not 51
    assert "closed 1 new connection(s), the last from 10.0.0.9:9: 3 open, the most this server keeps" in line
    assert "serverMaxConnections=3" in line
    conns[0][0].connectionLost(None)  # one leaves: one more may come
    assert server.connect(port=7)[0] is not None
    assert server.factory.buildProtocol(IPv4Address("TCP", "10.0.0.9", 99)) is None
    server.clock.advance(10)
    assert server.factory.buildProtocol(IPv4Address("TCP", "10.0.0.9", 100)) is None
    lines = [m for m in messages(log_events) if "new connection" in m]
    assert len(lines) == 2 and "closed 52 new connection(s), the last from 10.0.0.9:100" in lines[1]


def test_two_ports_sharing_a_budget_share_the_connection_bound():
    server = Server(server_max_connections=2)
    vip = RemotingServerFactory(RequestDispatcher(), server.clock, limits=server.factory.limits,
                                share_with=server.factory)
    server.connect(port=1)
    assert vip.buildProtocol(IPv4Address("TCP", "10.0.0.1", 2)) is not None
    assert server.factory.buildProtocol(IPv4Address("TCP", "10.0.0.1", 3)) is None
    assert vip.buildProtocol(IPv4Address("TCP", "10.0.0.1", 4)) is None


def test_the_default_bound_is_half_the_open_file_limit(monkeypatch):
    from mq.remoting import limits

    monkeypatch.setattr(limits, "open_file_limit", lambda: 20_000)
    assert ConnectionLimits().max_connections() == 10_000
    monkeypatch.setattr(limits, "open_file_limit", lambda: 100)
    assert ConnectionLimits().max_connections() == 64
    assert ConnectionLimits(server_max_connections=5).max_connections() == 5
    monkeypatch.undo()
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert limits.open_file_limit() == (1024 if soft == resource.RLIM_INFINITY else min(soft, 1 << 20))


@pytest_twisted.ensureDeferred
async def test_over_tcp_a_connection_past_the_bound_is_closed_and_the_others_are_served():
    dispatcher = RequestDispatcher()
    dispatcher.register(10, lambda req, ch: req.response(ResponseCode.SUCCESS, "pong"))
    factory = RemotingServerFactory(dispatcher, reactor, limits=ConnectionLimits(server_max_connections=2))
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    addr = ("127.0.0.1", port.getHost().port)
    socks = [socket.create_connection(addr, timeout=10) for _ in range(3)]
    try:
        # the third is accepted by the kernel and closed by the server: it reads end-of-file
        extra = socks[2]
        await poll(lambda: factory.connections, lambda c: len(c) == 2, timeout=10, what="two connections")
        await threads_read(extra, b"")
        for s in socks[:2]:
            s.sendall(PING)
            answer = await threads_read(s)
            assert b"pong" in answer
    finally:
        for s in socks:
            s.close()
        await port.stopListening()


async def threads_read(sock, expect=None) -> bytes:
    from twisted.internet import threads

    data = await threads.deferToThread(sock.recv, 65536)
    if expect is not None:
        assert data == expect
    return data


def test_one_process_shares_its_open_file_limit(tmp_path, monkeypatch):
    """twistd mq runs the NameServer beside the broker: their default bounds leave a quarter for the store."""
    from mq import standalone
    from mq.remoting import limits
    from mq.remoting.limits import ConnectionLimits

    monkeypatch.setattr(limits, "open_file_limit", lambda: 4000)
    monkeypatch.setattr(standalone, "open_file_limit", lambda: 4000)
    options = standalone.Options()
    options.parseOptions(["--store", str(tmp_path / "s"), "--kv-config", str(tmp_path / "kv.json")])
    assert ConnectionLimits.from_config(options.namesrv_config, default_share=0.9).max_connections() == 1000
    assert ConnectionLimits.from_config(options.broker_config).max_connections() == 2000
    assert ConnectionLimits(default_share=0.9).max_connections() == 3600  # a NameServer of its own


def test_one_address_keeps_at_most_server_max_connections_per_address(log_events):
    """So that one client cannot hold every connection the server keeps and shut the others out."""
    server = Server(server_max_connections=10, server_max_connections_per_address=2)

    def accept(host, port):
        return server.factory.buildProtocol(IPv4Address("TCP", host, port))

    greedy = [server.connect(port=p) for p in range(2)]  # 10.0.0.1
    assert accept("10.0.0.1", 3) is None
    [line] = [m for m in messages(log_events) if "new connection" in m]
    assert "the last from 10.0.0.1:3" in line and "2 from that address" in line
    assert "serverMaxConnectionsPerAddress=2" in line
    assert accept("10.0.0.2", 1) is not None and accept("10.0.0.2", 2) is not None  # others still get in
    assert server.factory.open_by_address == {"10.0.0.1": 2, "10.0.0.2": 2}
    greedy[0][0].connectionLost(None)
    assert server.factory.open_by_address["10.0.0.1"] == 1
    assert accept("10.0.0.1", 4) is not None
    greedy[1][0].connectionLost(None)
    assert server.factory.open_connections == 3 and server.factory.open_by_address["10.0.0.1"] == 1


def test_no_per_address_bound_by_default():
    server = Server(server_max_connections=5)
    assert all(server.factory.buildProtocol(IPv4Address("TCP", "10.0.0.1", p)) is not None for p in range(5))
    assert server.factory.open_by_address == {}  # not even counted
