"""The client side: one reused connection per address, requests with timeouts, oneway sends."""

from __future__ import annotations

from typing import Callable, Dict, List, Optional

from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, connectProtocol
from twisted.logger import Logger

from mq.remoting.command import RemotingCommand
from mq.remoting.protocol import RemotingConnectionError, RemotingProtocol, RequestDispatcher
from mq.remoting.serialization import DEFAULT_MAX_FRAME_LENGTH

log = Logger()


def split_address(addr: str) -> "tuple[str, int]":
    """``host:port`` (or ``[v6]:port``) into its parts; a clear ``ValueError`` when it is not one."""
    host, sep, port = addr.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"not a host:port address: {addr!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class RemotingClient:
    """Sends requests to any number of addresses over one cached connection each.

    Requests the peers send back on those connections (a broker asking a consumer to rebalance) go to
    ``dispatcher``.
    """

    def __init__(
        self,
        reactor=None,
        dispatcher: Optional[RequestDispatcher] = None,
        connect_timeout: float = 3.0,
        max_frame_length: int = DEFAULT_MAX_FRAME_LENGTH,
        signer: Optional[Callable[[RemotingCommand], object]] = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.reactor = reactor
        self.dispatcher = dispatcher
        self.connect_timeout = connect_timeout
        self.max_frame_length = max_frame_length
        #: Called with every request before it is sent (ACL: ``Credentials.sign_request`` adds the signature).
        self.signer = signer
        self._connections: Dict[str, RemotingProtocol] = {}
        self._connecting: Dict[str, List[defer.Deferred]] = {}
        self._closed = False

    def connection(self, addr: str) -> defer.Deferred:
        """A Deferred of the open connection to ``addr``, made if there is none yet."""
        if self._closed:
            return defer.fail(RemotingConnectionError("client is closed"))
        proto = self._connections.get(addr)
        if proto is not None and proto.connected:
            return defer.succeed(proto)
        waiters = self._connecting.get(addr)
        d = defer.Deferred()
        if waiters is not None:
            waiters.append(d)
            return d
        self._connecting[addr] = [d]
        try:
            host, port = split_address(addr)
        except ValueError as e:
            self._connect_done(addr, None, RemotingConnectionError(str(e)))
            return d
        endpoint_cls = TCP6ClientEndpoint if ":" in host else TCP4ClientEndpoint
        endpoint = endpoint_cls(self.reactor, host, port, timeout=self.connect_timeout)
        proto = RemotingProtocol(self.dispatcher, self.reactor, self.max_frame_length)
        connecting = connectProtocol(endpoint, proto)
        connecting.addCallbacks(
            lambda p: self._connect_done(addr, p, None),
            lambda f: self._connect_done(
                addr, None, RemotingConnectionError(f"cannot connect to {addr}: {f.getErrorMessage()}")
            ),
        )
        return d

    def _connect_done(self, addr: str, proto: Optional[RemotingProtocol], error: Optional[Exception]) -> None:
        waiters = self._connecting.pop(addr, [])
        if proto is not None:
            if self._closed:
                proto.close()
                error = RemotingConnectionError("client is closed")
            else:
                self._connections[addr] = proto
                proto.notify_on_lost(lambda p: self._lost(addr, p))
        for d in waiters:
            if error is None:
                d.callback(proto)
            else:
                d.errback(error)

    def _lost(self, addr: str, proto: RemotingProtocol) -> None:
        if self._connections.get(addr) is proto:
            del self._connections[addr]

    def invoke(self, addr: str, request: RemotingCommand, timeout: float = 3.0) -> defer.Deferred:
        """Send ``request`` to ``addr``; a Deferred of the response ``RemotingCommand``."""
        if self.signer is not None:
            self.signer(request)
        proto = self._connections.get(addr)
        if proto is not None and proto.connected:
            return proto.send_request(request, timeout)
        return self.connection(addr).addCallback(lambda p: p.send_request(request, timeout))

    def invoke_oneway(self, addr: str, request: RemotingCommand) -> defer.Deferred:
        """Send ``request`` oneway; the Deferred fires once it is written (or fails to connect)."""
        if self.signer is not None:
            self.signer(request)
        return self.connection(addr).addCallback(lambda p: p.send_oneway(request))

    def close_connection(self, addr: str) -> None:
        proto = self._connections.pop(addr, None)
        if proto is not None:
            proto.close()

    def close(self) -> defer.Deferred:
        """Close every connection; the Deferred fires when they are all gone."""
        self._closed = True
        waits = []
        for proto in list(self._connections.values()):
            if proto.connected:
                d = defer.Deferred()
                proto.notify_on_lost(lambda p, d=d: d.callback(None))
                waits.append(d)
                proto.close()
        self._connections.clear()
        return defer.DeferredList(waits)
