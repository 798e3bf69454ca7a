"""The server side: a Factory holding the processor table and the connection listeners."""

from __future__ import annotations

from typing import Callable, List, Optional

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import ServerFactory

from mq.remoting.memo import ResponseMemo
from mq.remoting.protocol import RemotingProtocol, RequestDispatcher
from mq.remoting.serialization import DEFAULT_MAX_FRAME_LENGTH


class RemotingServerFactory(ServerFactory):
    """Builds a ``RemotingProtocol`` per accepted connection, all sharing one ``RequestDispatcher``.

    ``on_disconnect`` callbacks run when any connection closes (the NameServer drops a broker's routes
    at once; the broker forgets a client's channels).
    """

    def __init__(
        self,
        dispatcher: RequestDispatcher,
        reactor: Optional[IReactorTime] = None,
        max_frame_length: int = DEFAULT_MAX_FRAME_LENGTH,
        memo: Optional[ResponseMemo] = None,
    ) -> None:
        self.dispatcher = dispatcher
        #: Shared by every connection: repeated read-only requests answered from memory (see memo.py).
        self.memo = memo
        self.reactor = reactor
        self.max_frame_length = max_frame_length
        self.on_disconnect: List[Callable[[RemotingProtocol], None]] = []
        self.connections: "set[RemotingProtocol]" = set()
        self.noisy = False

    def buildProtocol(self, addr) -> RemotingProtocol:
        proto = RemotingProtocol(self.dispatcher, self.reactor, self.max_frame_length)
        proto.factory = self
        proto.memo = self.memo
        self.connections.add(proto)
        proto.notify_on_lost(self._lost)
        return proto

    def _lost(self, proto: RemotingProtocol) -> None:
        self.connections.discard(proto)
        for callback in self.on_disconnect:
            callback(proto)
