"""The DLedger keys (``enableDLegerCommitLog``, ``dLegerGroup``, ``dLegerPeers``, ``dLegerSelfId``,
``preferredLeaderId``) as one checked value, so a bad group stops the start with one line.

``dLegerPeers`` is ``n0-host:port;n1-host:port;n2-host:port``: each port is that node's Raft port (DLedger's own
RPC port, not ``listenPort``). Ids are one letter and a number because a follower registers as the slave
``int(selfId[1:]) + 1`` (RocketMQ's DLedgerRoleChangeHandler), so two ids with the same number are refused.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import attrs

from mq.common.names import group_error
from mq.dledger.codec import peer_id_error

#: The most members a group may have (DLedger's groups are 3 or 5; a larger one only slows every commit).
MAX_PEERS = 9


def parse_peers(text: str) -> Dict[str, Tuple[str, int]]:
    """``n0-host:port;n1-host:port`` to {id: (host, port)}, in the order given; ValueError naming the bad part."""
    peers: Dict[str, Tuple[str, int]] = {}
    numbers = set()
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        node, sep, addr = part.partition("-")
        host, _, port = addr.rpartition(":")
        if not sep or not host or not (port.isdecimal() and 0 < int(port) < 65536):
            raise ValueError(f"{part[:60]!r} is not id-host:port (as n0-127.0.0.1:40911)")
        why = peer_id_error(node)
        if why:
            raise ValueError(why)
        if node in peers:
            raise ValueError(f"{node} is listed twice")
        if int(node[1:]) in numbers:
            raise ValueError(f"{node}: another id has the number {int(node[1:])} (it is the slave id less one)")
        numbers.add(int(node[1:]))
        peers[node] = (host, int(port))
    if not peers:
        raise ValueError("no peers (n0-host:port;n1-host:port;n2-host:port)")
    if len(peers) > MAX_PEERS:
        raise ValueError(f"{len(peers)} peers is more than {MAX_PEERS}")
    return peers


def slave_id(self_id: str) -> int:
    """The brokerId a follower registers with: RocketMQ's ``int(selfId[1:]) + 1``, never 0."""
    return int(self_id[1:]) + 1


def check_keys(config) -> None:
    """Each DLedger key on its own (what one source of settings gives); ValueError naming the key."""
    if config.d_leger_group and group_error(config.d_leger_group):
        raise ValueError(f"dLegerGroup: {group_error(config.d_leger_group)}")
    if config.d_leger_peers:
        try:
            parse_peers(config.d_leger_peers)
        except ValueError as e:
            raise ValueError(f"dLegerPeers: {e}") from None
    for key, value in (("dLegerSelfId", config.d_leger_self_id), ("preferredLeaderId", config.preferred_leader_id)):
        for node in (p.strip() for p in value.split(";") if p.strip()):
            if peer_id_error(node):
                raise ValueError(f"{key}: {peer_id_error(node)}")


@attrs.frozen
class DLedgerSettings:
    group: str
    self_id: str
    peers: Dict[str, Tuple[str, int]]
    preferred_leader: Optional[str]

    @property
    def port(self) -> int:
        """This node's Raft port (its own entry in ``dLegerPeers``)."""
        return self.peers[self.self_id][1]

    @property
    def slave_id(self) -> int:
        return slave_id(self.self_id)

    @classmethod
    def from_broker_config(cls, config) -> Optional["DLedgerSettings"]:
        """None unless ``enableDLegerCommitLog``; ValueError naming the key that is wrong."""
        if not config.enable_d_leger_commit_log:
            return None
        group = config.d_leger_group or config.broker_name
        why = group_error(group)
        if why:
            raise ValueError(f"dLegerGroup: {why}")
        try:
            peers = parse_peers(config.d_leger_peers)
        except ValueError as e:
            raise ValueError(f"dLegerPeers: {e}") from None
        self_id = config.d_leger_self_id
        if self_id not in peers:
            raise ValueError(f"dLegerSelfId: {self_id!r} is not one of the dLegerPeers ids ({', '.join(peers)})")
        # RocketMQ allows a ;-separated list: the first is the one leadership moves back to.
        preferred = [p.strip() for p in config.preferred_leader_id.split(";") if p.strip()]
        for p in preferred:
            if p not in peers:
                raise ValueError(f"preferredLeaderId: {p[:40]!r} is not one of the dLegerPeers ids ({', '.join(peers)})")
        return cls(group, self_id, peers, preferred[0] if preferred else None)
