"""The Raft messages as RocketMQ remoting commands, so brokers can carry them over their usual TCP framing.

Each message is a one-way request (Raft answers with messages of its own, not responses): scalars in
``ext_fields`` (strings, as every remoting header), an AppendRequest's entries in the body in the entry layout
of ``mq.dledger.entry`` (position 0). The codes are ours, 53001-53005: DLedger's own RPC (codes 50000-51005,
JSON bodies) is a different protocol, and no RocketMQ 4.x/5.x request code uses this range.

Decoding trusts nothing: every field is required, numbers are decimal within 0..2**63-1, node ids follow
DLedger's rule (one letter and a number: the broker derives slave ids from it), the group follows RocketMQ's
group-name rule, booleans are ``true``/``false``, entries must be intact (CRCs), consecutive and at most
``max_entries``. Anything else raises ``CodecError`` naming the field; the caller closes that connection.
"""

from __future__ import annotations

import re
from typing import Dict, Optional, Tuple

from mq.common.names import group_error
from mq.dledger import entry as entry_codec
from mq.dledger.messages import AppendRequest, AppendResponse, Message, TimeoutNow, VoteRequest, VoteResponse
from mq.remoting.command import RemotingCommand

VOTE_REQUEST = 53001
VOTE_RESPONSE = 53002
APPEND_REQUEST = 53003
APPEND_RESPONSE = 53004
TIMEOUT_NOW = 53005

_FIELDS = {
    # code: (class, [(attribute, ext key, kind)])
    VOTE_REQUEST: (VoteRequest, [("last_index", "lastIndex", int), ("last_term", "lastTerm", int),
                                 ("pre", "pre", bool), ("transfer", "transfer", bool)]),
    VOTE_RESPONSE: (VoteResponse, [("granted", "granted", bool), ("pre", "pre", bool)]),
    APPEND_REQUEST: (AppendRequest, [("prev_index", "prevIndex", int), ("prev_term", "prevTerm", int),
                                     ("commit", "commit", int)]),
    APPEND_RESPONSE: (AppendResponse, [("success", "success", bool), ("last", "last", int),
                                       ("durable", "durable", int), ("hint", "hint", int)]),
    TIMEOUT_NOW: (TimeoutNow, []),
}
_CODES = {cls: code for code, (cls, _) in _FIELDS.items()}
CODES = frozenset(_FIELDS)

_PEER_ID = re.compile(r"[A-Za-z][0-9]{1,9}")
_MAX_INT = 2**63 - 1


class CodecError(ValueError):
    pass


def peer_id_error(node_id: object) -> Optional[str]:
    """Why ``node_id`` cannot be a DLedger node id (one letter and a number, as ``n0``), or None."""
    if not isinstance(node_id, str) or _PEER_ID.fullmatch(node_id) is None:
        return f"node id {str(node_id)[:40]!r} is not one letter and a number (as n0)"
    return None


def encode_entries(entries) -> bytes:
    """An AppendRequest's body: the entries in the entry layout, position 0."""
    return b"".join([entry_codec.encode(e) for e in entries])


def to_command(msg: Message, group: str, body: Optional[bytes] = None) -> RemotingCommand:
    """``body``: the encoded entries of an AppendRequest, when the caller has them (``encode_entries``)."""
    cls = type(msg)
    code = _CODES[cls]
    ext: Dict[str, str] = {"group": group, "src": msg.src, "dst": msg.dst, "term": str(msg.term)}
    for attr, key, kind in _FIELDS[code][1]:
        value = getattr(msg, attr)
        ext[key] = ("true" if value else "false") if kind is bool else str(value)
    if body is None:
        body = encode_entries(msg.entries) if cls is AppendRequest else b""
    return RemotingCommand.request(code, ext, body, oneway=True)


def from_command(cmd: RemotingCommand, max_entries: int = 65_536) -> Tuple[str, Message]:
    """The group and message a command carries; raises CodecError."""
    spec = _FIELDS.get(cmd.code)
    if spec is None:
        raise CodecError(f"request code {cmd.code} is not a Raft message")
    cls, fields = spec
    ext = cmd.ext_fields or {}
    group = _text(ext, "group")
    error = group_error(group)
    if error:
        raise CodecError(f"group: {error}")
    kwargs = {}
    for key in ("src", "dst"):
        value = _text(ext, key)
        error = peer_id_error(value)
        if error:
            raise CodecError(f"{key}: {error}")
        kwargs[key] = value
    kwargs["term"] = _int(ext, "term")
    for attr, key, kind in fields:
        kwargs[attr] = _bool(ext, key) if kind is bool else _int(ext, key)
    if cls is AppendRequest:
        try:
            entries = entry_codec.decode_all(cmd.body)
        except entry_codec.EntryError as e:
            raise CodecError(f"entries: {e}") from None
        if len(entries) > max_entries:
            raise CodecError(f"entries: {len(entries)} above the limit {max_entries}")
        for k, e in enumerate(entries):
            if e.index != kwargs["prev_index"] + 1 + k:
                raise CodecError(f"entries: index {e.index} does not follow prevIndex {kwargs['prev_index']} in order")
        kwargs["entries"] = tuple(entries)
    elif cmd.body:
        raise CodecError(f"code {cmd.code} carries no body, got {len(cmd.body)} bytes")
    return group, cls(**kwargs)


def _text(ext: Dict[str, str], key: str) -> str:
    value = ext.get(key)
    if not isinstance(value, str):
        raise CodecError(f"{key}: missing")
    return value


def _int(ext: Dict[str, str], key: str) -> int:
    value = _text(ext, key)
    if not value.isascii() or not value.isdigit() or len(value) > 19 or int(value) > _MAX_INT:
        raise CodecError(f"{key}: {value[:40]!r} is not a number within 0..{_MAX_INT}")
    return int(value)


def _bool(ext: Dict[str, str], key: str) -> bool:
    value = _text(ext, key)
    if value not in ("true", "false"):
        raise CodecError(f"{key}: {value[:40]!r} is not true or false")
    return value == "true"
