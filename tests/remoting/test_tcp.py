"""RemotingClient and RemotingServerFactory over real loopback TCP."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from mq.remoting.client import RemotingClient, split_address
from mq.remoting.codes import ResponseCode
from mq.remoting.command import RemotingCommand
from mq.remoting.protocol import RemotingConnectionError, RemotingTimeoutError, RequestDispatcher
from mq.remoting.server import RemotingServerFactory


class Server:
    """A listening RemotingServerFactory that counts the connections it accepted."""

    def __init__(self, dispatcher):
        self.factory = RemotingServerFactory(dispatcher, reactor)
        self.accepted = 0
        build = self.factory.buildProtocol

        def counting(addr):
            self.accepted += 1
            return build(addr)

        self.factory.buildProtocol = counting
        self.port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.addr = f"127.0.0.1:{self.port.getHost().port}"

    def stop(self):
        for proto in list(self.factory.connections):
            proto.transport.abortConnection()
        return self.port.stopListening()


def echo_dispatcher():
    dispatcher = RequestDispatcher()
    dispatcher.register(
        105, lambda req, ch: req.response(ResponseCode.SUCCESS, None, {"topic": req.field("topic")}, req.body)
    )
    return dispatcher


@pytest.fixture
def server():
    srv = Server(echo_dispatcher())
    yield srv
    pytest_twisted.blockon(srv.stop())


@pytest.fixture
def client():
    cli = RemotingClient(reactor, connect_timeout=2.0)
    yield cli
    pytest_twisted.blockon(cli.close())


@pytest_twisted.ensureDeferred
async def test_request_response_and_one_reused_connection(server, client):
    first = await client.invoke(server.addr, RemotingCommand.request(105, {"topic": "A"}, b"x"))
    second = await client.invoke(server.addr, RemotingCommand.request(105, {"topic": "B"}))
    assert (first.code, first.field("topic"), first.body) == (ResponseCode.SUCCESS, "A", b"x")
    assert second.field("topic") == "B"
    assert first.opaque != second.opaque
    assert server.accepted == 1
    assert (await client.connection(server.addr)) is (await client.connection(server.addr))


@pytest_twisted.ensureDeferred
async def test_concurrent_first_requests_share_one_connect(server, client):
    ds = [client.invoke(server.addr, RemotingCommand.request(105, {"topic": str(i)})) for i in range(20)]
    responses = await defer.gatherResults(ds)
    assert [r.field("topic") for r in responses] == [str(i) for i in range(20)]
    assert server.accepted == 1


@pytest_twisted.ensureDeferred
async def test_unknown_code_and_oneway_over_tcp(server, client):
    response = await client.invoke(server.addr, RemotingCommand.request(4242))
    assert response.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED and "4242" in response.remark
    await client.invoke_oneway(server.addr, RemotingCommand.request(105, {"topic": "x"}))
    # The oneway request got no answer: the next response is the next request's own.
    response = await client.invoke(server.addr, RemotingCommand.request(105, {"topic": "y"}))
    assert response.field("topic") == "y"


@pytest_twisted.ensureDeferred
async def test_connection_refused(client):
    port = reactor.listenTCP(0, RemotingServerFactory(RequestDispatcher(), reactor), interface="127.0.0.1")
    addr = f"127.0.0.1:{port.getHost().port}"
    await port.stopListening()
    with pytest.raises(RemotingConnectionError, match="cannot connect"):
        await client.invoke(addr, RemotingCommand.request(105))
    with pytest.raises(RemotingConnectionError):
        await client.invoke_oneway(addr, RemotingCommand.request(105))
    with pytest.raises(RemotingConnectionError, match="not a host:port"):
        await client.invoke("nonsense", RemotingCommand.request(105))


@pytest_twisted.ensureDeferred
async def test_server_to_client_requests_go_to_the_client_dispatcher(server):
    asked = []
    client_side = RequestDispatcher()

    def running_info(req, channel):
        asked.append(req.field("consumerGroup"))
        return req.response(ResponseCode.SUCCESS, None, {"answer": "from-client"})

    client_side.register(307, running_info)
    client_side.register(40, lambda req, ch: asked.append("notified"))
    cli = RemotingClient(reactor, dispatcher=client_side)
    try:
        await cli.invoke(server.addr, RemotingCommand.request(105, {"topic": "t"}))
        [channel] = server.factory.connections
        response = await channel.send_request(RemotingCommand.request(307, {"consumerGroup": "g"}), timeout=5)
        assert response.field("answer") == "from-client"
        channel.send_oneway(RemotingCommand.request(40))
        response = await channel.send_request(RemotingCommand.request(999), timeout=5)
        assert response.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
        assert asked == ["g", "notified"]
    finally:
        await cli.close()


@pytest_twisted.ensureDeferred
async def test_close_disconnects_and_refuses_further_requests(server, client):
    gone = defer.Deferred()
    server.factory.on_disconnect.append(lambda proto: gone.callback(proto) if not gone.called else None)
    await client.invoke(server.addr, RemotingCommand.request(105, {"topic": "t"}))
    await client.close()
    proto = await gone
    assert proto not in server.factory.connections and not server.factory.connections
    with pytest.raises(RemotingConnectionError, match="closed"):
        await client.invoke(server.addr, RemotingCommand.request(105))


@pytest_twisted.ensureDeferred
async def test_server_closing_fails_pending_requests_and_the_client_reconnects(client):
    reached = defer.Deferred()

    def never_answers(req, channel):
        if not reached.called:
            reached.callback(channel)
        return defer.Deferred()

    dispatcher = echo_dispatcher()
    dispatcher.register(11, never_answers)
    srv = Server(dispatcher)
    try:
        pending = client.invoke(srv.addr, RemotingCommand.request(11), timeout=30)
        channel = await reached
        channel.transport.loseConnection()
        with pytest.raises(RemotingConnectionError):
            await pending
        response = await client.invoke(srv.addr, RemotingCommand.request(105, {"topic": "again"}))
        assert response.field("topic") == "again"
        assert srv.accepted == 2
        with pytest.raises(RemotingTimeoutError):
            await client.invoke(srv.addr, RemotingCommand.request(11), timeout=0.05)
    finally:
        await srv.stop()


def test_split_address():
    assert split_address("127.0.0.1:9876") == ("127.0.0.1", 9876)
    assert split_address("[::1]:10911") == ("::1", 10911)
    for bad in ("", "host", "host:", ":9876", "h:x"):
        with pytest.raises(ValueError):
            split_address(bad)



@pytest_twisted.ensureDeferred
async def test_both_ends_set_tcp_nodelay(server, client):
    """As RocketMQ's Netty remoting: Nagle off on accepted and on client connections."""
    import socket

    conn = await client.connection(server.addr)
    await client.invoke(server.addr, RemotingCommand.request(105, {"topic": "T"}))
    (accepted,) = server.factory.connections
    for proto in (accepted, conn):
        assert proto.transport.getHandle().getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_remoting_ports_listen_with_javas_backlog(tmp_path):
    """SO_BACKLOG 1024 on the broker's ports and the NameServer's, as RocketMQ's remoting server."""
    from twisted.application import internet
    from twisted.internet.testing import MemoryReactorClock

    from mq.broker.config import BrokerConfig
    from mq.broker.service import BrokerService
    from mq.namesrv.config import NamesrvConfig
    from mq.namesrv.service import NamesrvService
    from mq.remoting.server import LISTEN_BACKLOG

    assert LISTEN_BACKLOG == 1024
    config = BrokerConfig.from_properties({
        "listenPort": "10911", "storePathRootDir": str(tmp_path), "brokerIP1": "127.0.0.1", "namesrvAddr": "",
    })
    broker = BrokerService(config, MemoryReactorClock())
    servers = [s for s in broker if isinstance(s, internet.TCPServer) and s.args[1] in broker.factories]
    assert len(servers) == 2  # the port and the VIP port
    assert all(s.kwargs["backlog"] == LISTEN_BACKLOG for s in servers)
    clock = MemoryReactorClock()
    namesrv = NamesrvService(NamesrvConfig(listen_port=0, kv_config_path=str(tmp_path / "kv.json")), clock)
    namesrv.startService()
    try:
        assert clock.tcpServers[0][2] == LISTEN_BACKLOG
    finally:
        namesrv.stopService()


@pytest_twisted.ensureDeferred
async def test_answers_go_straight_to_the_socket_when_nothing_is_buffered(server, client):
    """With Twisted's buffer empty, a read's answers are sent at once: the server never asks the reactor to
    watch the socket for writing (no epoll_ctl pair and no second reactor turn per burst)."""
    await client.invoke(server.addr, RemotingCommand.request(105, {"topic": "warm"}))
    (accepted,) = server.factory.connections
    watched = []
    start = accepted.transport.startWriting
    accepted.transport.startWriting = lambda: (watched.append(1), start())
    answers = await defer.gatherResults([
        client.invoke(server.addr, RemotingCommand.request(105, {"topic": f"T{i}"}, b"x" * i)) for i in range(8)
    ])
    assert [(a.ext_fields["topic"], a.body) for a in answers] == [(f"T{i}", b"x" * i) for i in range(8)]
    assert watched == []
