"""The server side: a Factory holding the processor table, the connection listeners and the connection limits."""

from __future__ import annotations

from typing import Callable, Dict, List, Optional

from twisted.internet import task
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger

from mq.common.log_tally import LogTally
from mq.remoting.limits import ConnectionLimits
from mq.remoting.memo import ResponseMemo
from mq.remoting.protocol import RemotingProtocol, RequestDispatcher
from mq.remoting.serialization import DEFAULT_MAX_FRAME_LENGTH

log = Logger()

#: The listen backlog of every remoting port, as RocketMQ's ``com.rocketmq.remoting.socket.backlog`` default
#: (Twisted's default is 50: a burst of producers connecting at once would see refused or retried SYNs).
LISTEN_BACKLOG = 1024


class RemotingServerFactory(ServerFactory):
    """Builds a ``RemotingProtocol`` per accepted connection, all sharing one ``RequestDispatcher``.

    ``on_disconnect`` callbacks run when any connection closes (the NameServer drops a broker's routes
    at once; the broker forgets a client's channels). The factory holds what its connections share of the
    ``ConnectionLimits``: the bytes all of them hold in partial frames, and the scan of their timers.
    """

    def __init__(
        self,
        dispatcher: RequestDispatcher,
        reactor: Optional[IReactorTime] = None,
        max_frame_length: int = DEFAULT_MAX_FRAME_LENGTH,
        memo: Optional[ResponseMemo] = None,
        limits: Optional[ConnectionLimits] = None,
        share_with: Optional["RemotingServerFactory"] = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.dispatcher = dispatcher
        #: Shared by every connection: repeated read-only requests answered from memory (see memo.py).
        self.memo = memo
        self.reactor = reactor
        self.limits = limits if limits is not None else ConnectionLimits(max_frame_length=max_frame_length)
        #: Bytes held in partial frames by all connections together (bounded by ``partial_frames_max_bytes``).
        self.partial_bytes = 0
        #: The factory whose total this one's connections count in (``share_with``: one budget for two ports).
        self.budget = self if share_with is None else share_with.budget
        self.on_disconnect: List[Callable[[RemotingProtocol], None]] = []
        self.connections: "set[RemotingProtocol]" = set()
        #: On the budget's factory: connections open on every port that shares it, and those refused.
        self.open_connections = 0
        #: client host → its connections open (only with a per-address bound)
        self.open_by_address: Dict[str, int] = {}
        self.refused_connections = LogTally()
        self._max_connections = self.limits.max_connections()
        self._max_per_address = self.limits.server_max_connections_per_address
        self.noisy = False
        self._scan: Optional[task.LoopingCall] = None

    def buildProtocol(self, addr) -> Optional[RemotingProtocol]:
        budget = self.budget
        if budget.open_connections >= budget._max_connections:
            self._refuse(addr, f"the most this server keeps (serverMaxConnections={budget._max_connections})")
            return None  # Twisted closes the accepted socket at once
        host = None
        if budget._max_per_address:
            host = str(getattr(addr, "host", addr))
            mine = budget.open_by_address.get(host, 0)
            if mine >= budget._max_per_address:
                self._refuse(addr, f"{mine} from that address, the most one keeps "
                                   f"(serverMaxConnectionsPerAddress={budget._max_per_address})")
                return None
            budget.open_by_address[host] = mine + 1
        budget.open_connections += 1
        proto = RemotingProtocol(self.dispatcher, self.reactor, self.limits.max_frame_length)
        proto.factory = self
        proto._budget = budget
        proto._address = host
        proto.memo = self.memo
        self.connections.add(proto)
        proto.notify_on_lost(self._lost)
        return proto

    def _refuse(self, addr, why: str) -> None:
        """Count a connection closed at accept; one log line every 10 s at most, with the count since the last."""
        budget = self.budget
        n = budget.refused_connections.add(self.reactor.seconds())
        if n is not None:
            log.warn("closed {n} new connection(s), the last from {peer}: {open} open, {why}", n=n,
                     peer=f"{getattr(addr, 'host', addr)}:{getattr(addr, 'port', '')}", open=budget.open_connections,
                     why=why)

    def _lost(self, proto: RemotingProtocol) -> None:
        self.connections.discard(proto)
        budget = self.budget
        budget.open_connections -= 1
        host = proto._address
        if host is not None:
            left = budget.open_by_address.get(host, 1) - 1
            if left > 0:
                budget.open_by_address[host] = left
            else:
                budget.open_by_address.pop(host, None)
        for callback in self.on_disconnect:
            callback(proto)

    # -- timers of every connection ----------------------------------------------------------------

    def startFactory(self) -> None:
        self._scan = task.LoopingCall(self.scan)
        self._scan.clock = self.reactor
        self._scan.start(self.limits.scan_interval, now=False).addErrback(
            lambda f: log.failure("connection scan stopped", f)
        )

    def stopFactory(self) -> None:
        if self._scan is not None and self._scan.running:
            self._scan.stop()
        self._scan = None

    def scan(self) -> None:
        """Close idle connections and those whose frame is too slow to arrive."""
        now = self.reactor.seconds()
        for proto in list(self.connections):
            proto.check_timers(now)
