"""The Raft messages between the members of a group, over remoting connections to each peer's Raft port.

Every node listens on its own ``dLegerPeers`` port and sends to the others over one cached client connection
each (``RemotingClient``); messages are one-way (``mq.dledger.codec``), so a node's answers travel on its own
connection to the asker. Raft tolerates lost messages, so sending never waits and never queues without bound:
a message to a peer whose connection holds ``MAX_UNSENT`` bytes not yet taken by the socket, or that is still
being connected with ``MAX_CONNECTING`` messages waiting, is dropped (the next heartbeat resends from the last
acknowledged entry).

Besides the Raft messages, each node tells its peers its broker address every second (``PEER_INFO``), so a
follower knows its leader's address for the slave sync of topics and offsets, and the port serves DLedger's
LEADERSHIP_TRANSFER request (``mq.broker.dledger.group`` answers it).
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from mq.broker.dledger.settings import DLedgerSettings
from mq.dledger import codec
from mq.dledger.messages import AppendRequest, Entry, Message
from mq.remoting.client import RemotingClient
from mq.remoting.codes import DLEDGER_LEADERSHIP_TRANSFER, FLAG_ONEWAY
from mq.remoting.command import RemotingCommand
from mq.remoting.limits import ConnectionLimits
from mq.remoting.protocol import RequestDispatcher
from mq.remoting.server import RemotingServerFactory

log = Logger()

#: One-way: a node's broker address and the versions of its topic and group tables (ext ``group``, ``src``,
#: ``brokerAddr``, ``configVersion``), sent to every peer every second.
PEER_INFO = 53006
#: DLedger's LEADERSHIP_TRANSFER request code (DLedgerRequestCode 51005): ext or JSON body ``transfereeId``.
LEADERSHIP_TRANSFER = DLEDGER_LEADERSHIP_TRANSFER
#: Every code the Raft port serves: with ``aclEnable`` each needs an admin account's signature.
RAFT_PORT_CODES = codec.CODES | {PEER_INFO, LEADERSHIP_TRANSFER}
#: Bytes a peer's connection may hold unsent before messages to it are dropped.
MAX_UNSENT = 8 << 20
#: Messages that may wait for a connection being made to a peer.
MAX_CONNECTING = 64


#: Connections the DLedger port keeps at once (as the HA port).
MAX_PEER_CONNECTIONS = 64


class RaftTransport:
    def __init__(
        self,
        reactor,
        settings: DLedgerSettings,
        receive: Callable[[Message], None],
        peer_info: Callable[[str, str, str], None],
        limits: Optional[ConnectionLimits] = None,
        client: Optional[RemotingClient] = None,
        signer: Optional[Callable[[RemotingCommand], RemotingCommand]] = None,
    ) -> None:
        self.reactor = reactor
        self.settings = settings
        self.receive = receive
        self.peer_info = peer_info
        self.client = client or RemotingClient(reactor, connect_timeout=1.0, signer=signer)
        self.addrs: Dict[str, str] = {
            node: f"{host}:{port}" for node, (host, port) in settings.peers.items() if node != settings.self_id
        }
        self._connecting: Dict[str, int] = {}
        self._down: set = set()  # peers last found unreachable (logged once until they answer again)
        self.dropped = 0
        self.rejected = 0
        self._encoded: Optional[Tuple[Tuple[Entry, ...], bytes]] = None  # the last AppendRequest's entries
        self.dispatcher = RequestDispatcher()
        for code in codec.CODES:
            self.dispatcher.register(code, self._raft)
        self.dispatcher.register(PEER_INFO, self._info)
        # a group's peers are a handful: the file descriptors are the store's and the clients'
        limits = limits or ConnectionLimits(server_max_connections=MAX_PEER_CONNECTIONS)
        self.factory = RemotingServerFactory(self.dispatcher, reactor, limits=limits)

    # -- receiving ---------------------------------------------------------------------------------------

    def guard(self, check: Callable[[RemotingCommand, object], Optional[str]]) -> None:
        """Run ``check`` (the broker's ACL, ``AccessValidator``) before every command on the Raft port: a
        refused one-way message (anything but a leadership transfer) closes its connection with a log line,
        so a forged vote or append never reaches the Raft core."""

        def checked(request: RemotingCommand, channel) -> Optional[str]:
            denied = check(request, channel)
            if denied is not None and request.flag & FLAG_ONEWAY:
                self._reject(channel, f"refused by the ACL: {denied}")
            return denied

        self.dispatcher.access_check = checked

    def _raft(self, request: RemotingCommand, channel) -> None:
        try:
            group, msg = codec.from_command(request)
        except codec.CodecError as e:
            return self._reject(channel, f"bad Raft message {request.code}: {e}")
        if group != self.settings.group:
            return self._reject(channel, f"Raft message for group {group!r}, this node is in {self.settings.group!r}")
        self.receive(msg)
        return None

    def _info(self, request: RemotingCommand, channel) -> None:
        ext = request.ext_fields or {}
        src, addr, version = ext.get("src", ""), ext.get("brokerAddr", ""), ext.get("configVersion", "")
        if (ext.get("group") != self.settings.group or src not in self.addrs or not 0 < len(addr) <= 255
                or len(version) > 255):
            return self._reject(channel, f"bad peer info from {channel.peer}: {dict(list(ext.items())[:4])}")
        self.peer_info(src, addr, version)
        return None

    def _reject(self, channel, why: str) -> None:
        self.rejected += 1
        log.warn("DLedger: {why}; closing the connection from {peer}", why=why[:300], peer=channel.peer)
        channel.close()

    # -- sending -----------------------------------------------------------------------------------------

    def send(self, msg: Message) -> None:
        body = None
        if type(msg) is AppendRequest and msg.entries:
            # a leader usually sends the same new entries (the same objects, from its log) to every follower
            # in a row: encode them once
            entries = msg.entries
            last = self._encoded
            if last is not None and len(last[0]) == len(entries) and all(a is b for a, b in zip(last[0], entries)):
                body = last[1]
            else:
                body = codec.encode_entries(entries)
                self._encoded = (entries, body)
        self._send(msg.dst, codec.to_command(msg, self.settings.group, body))

    def announce(self, broker_addr: str, config_version: str = "") -> None:
        """Tell every peer this node's broker address and config tables' versions."""
        ext = {"group": self.settings.group, "src": self.settings.self_id, "brokerAddr": broker_addr,
               "configVersion": config_version}
        for node in self.addrs:
            self._send(node, RemotingCommand.request(PEER_INFO, dict(ext), oneway=True))

    def _send(self, node: str, command: RemotingCommand) -> None:
        addr = self.addrs.get(node)
        if addr is None:
            return
        proto = self.client._connections.get(addr)
        if proto is not None and proto.connected:
            t = proto.transport
            if len(t.dataBuffer) + t._tempDataLen > MAX_UNSENT:
                self.dropped += 1
                return
            try:
                if self.client.signer is not None:
                    self.client.signer(command)
                proto.send_oneway(command)
            except Exception:  # noqa: BLE001 - closed under us: Raft resends
                self.dropped += 1
            return
        waiting = self._connecting.get(addr, 0)
        if waiting >= MAX_CONNECTING:
            self.dropped += 1
            return
        self._connecting[addr] = waiting + 1

        def done(result):
            self._connecting[addr] = max(0, self._connecting.get(addr, 1) - 1)
            if not isinstance(result, Failure) and node in self._down:
                self._down.discard(node)
                log.info("DLedger: {node} reachable again", node=node)
            return result

        d = self.client.invoke_oneway(addr, command)
        d.addBoth(done).addErrback(self._unreachable, node)

    def _unreachable(self, failure, node: str) -> None:
        self.dropped += 1
        if node not in self._down:
            self._down.add(node)
            log.info("DLedger: {node} unreachable ({e}); messages to it are dropped until it answers", node=node,
                     e=failure.getErrorMessage())

    def close(self) -> defer.Deferred:
        return self.client.close()
