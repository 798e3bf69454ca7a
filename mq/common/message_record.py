"""RocketMQ's stored-message record (wire doc §4.1), shared by store, pull and replication.

The record is declared once as a construct schema (``STORED_MESSAGE``). Hot paths use fast forms derived from
it: ``FixedLayout`` structs for the fixed prefix (one per IPv4/IPv6 combination of born and store host) and
hand-written code for the three length-prefixed tails. Hypothesis tests prove both forms produce and read
the same bytes. The message model the record is decoded into is ``mq.common.message``.
"""

from __future__ import annotations

import socket
import struct
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union
from zlib import crc32 as _crc32

import construct as c

from mq.common.hashing import body_crc
from mq.common.hotcache import hot_cache
from mq.common.layout import FixedLayout
from mq.common.message import (
    Host,
    MessageExt,
    MessageExtBrokerInner,
    MessageSysFlag,
    create_offset_msg_id,
    host_ip,
    properties_to_string,
    string_to_properties,
)

Buffer = Union[bytes, bytearray, memoryview]

MESSAGE_MAGIC_CODE = -626843481  # 0xDAA320A7 as a signed int
BLANK_MAGIC_CODE = -875286124  # 0xCBD43194: end-of-file filler in the CommitLog
MAX_PROPERTIES_LENGTH = 32767
MAX_TOPIC_BYTES = 127


def _host_schema(v6_bit: int) -> c.Struct:
    return c.Struct(
        "ip" / c.IfThenElse(lambda ctx: ctx._.sys_flag & v6_bit, c.Bytes(16), c.Bytes(4)),
        "port" / c.Int32sb,
    )


_HEAD_FIELDS: Tuple[Tuple[str, c.Construct], ...] = (
    ("total_size", c.Int32sb),
    ("magic", c.Int32sb),
    ("body_crc", c.Int32sb),
    ("queue_id", c.Int32sb),
    ("flag", c.Int32sb),
    ("queue_offset", c.Int64sb),
    ("physical_offset", c.Int64sb),
    ("sys_flag", c.Int32sb),
)
_BORN_TIMESTAMP = ("born_timestamp", c.Int64sb)
_STORE_TIMESTAMP = ("store_timestamp", c.Int64sb)
_TRAILER_FIELDS: Tuple[Tuple[str, c.Construct], ...] = (
    ("reconsume_times", c.Int32sb),
    ("prepared_transaction_offset", c.Int64sb),
)

STORED_MESSAGE = c.Struct(
    *(name / con for name, con in _HEAD_FIELDS),
    _BORN_TIMESTAMP[0] / _BORN_TIMESTAMP[1],
    "born_host" / _host_schema(MessageSysFlag.BORNHOST_V6_FLAG),
    _STORE_TIMESTAMP[0] / _STORE_TIMESTAMP[1],
    "store_host" / _host_schema(MessageSysFlag.STOREHOSTADDRESS_V6_FLAG),
    *(name / con for name, con in _TRAILER_FIELDS),
    "body" / c.Prefixed(c.Int32sb, c.GreedyBytes),
    "topic" / c.PascalString(c.Int8sb, "utf8"),
    "properties" / c.PascalString(c.Int16sb, "utf8"),
)
"""The stored-message record (wire doc §4.1): the declaration every fast form below is checked against."""

BLANK_RECORD = FixedLayout(("total_size", c.Int32sb), ("magic", c.Int32sb))
"""End-of-file filler: the remaining length of the file and BLANK_MAGIC_CODE."""


def _prefix_layout(born_v6: bool, store_v6: bool) -> FixedLayout:
    """The fixed prefix of a record (TOTALSIZE up to and including BODYLEN) for one host combination.

    IPv4 addresses are one u32, IPv6 addresses two u64 (struct has no 16-byte integer).
    """

    def ip(name: str, v6: bool) -> List[Tuple[str, c.Construct]]:
        if v6:
            return [(name + "_hi", c.Int64ub), (name + "_lo", c.Int64ub)]
        return [(name, c.Int32ub)]

    return FixedLayout(
        *_HEAD_FIELDS,
        _BORN_TIMESTAMP,
        *ip("born_ip", born_v6),
        ("born_port", c.Int32sb),
        _STORE_TIMESTAMP,
        *ip("store_ip", store_v6),
        ("store_port", c.Int32sb),
        *_TRAILER_FIELDS,
        ("body_len", c.Int32sb),
    )


# Indexed by (sys_flag >> 4) & 3: bit 0 = born host v6, bit 1 = store host v6.
PREFIX_LAYOUTS: Tuple[FixedLayout, ...] = (
    _prefix_layout(False, False),
    _prefix_layout(True, False),
    _prefix_layout(False, True),
    _prefix_layout(True, True),
)
PREFIX_V4 = PREFIX_LAYOUTS[0]
_V6_SHIFT = 4
_HOSTS_MASK = MessageSysFlag.BORNHOST_V6_FLAG | MessageSysFlag.STOREHOSTADDRESS_V6_FLAG
_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
HEAD = FixedLayout(*_HEAD_FIELDS)
"""The first 40 bytes, identical for every host combination: what dispatch and read checks look at."""

SYS_FLAG_POS = 36
BORN_TIMESTAMP_POS = 40
BORN_HOST_POS = 48


def store_timestamp_pos(sys_flag: int) -> int:
    """Offset of STORETIMESTAMP inside a record (it moves when the born host is IPv6)."""
    return 68 if sys_flag & MessageSysFlag.BORNHOST_V6_FLAG else 56


def record_size(sys_flag: int, body_len: int, topic_len: int, props_len: int) -> int:
    """TOTALSIZE of a record: 91 + lengths for IPv4/IPv4, 12 more per IPv6 host."""
    return PREFIX_LAYOUTS[(sys_flag & _HOSTS_MASK) >> _V6_SHIFT].size + body_len + 1 + topic_len + 2 + props_len


@hot_cache(4096)
def _ip_fields(host: str) -> Tuple[bool, Tuple[int, ...]]:
    v6, packed = host_ip(host)
    if v6:
        return True, struct.unpack(">QQ", packed)
    return False, (int.from_bytes(packed, "big"),)


@hot_cache(1024)
def topic_field(topic: str) -> bytes:
    """TOPICLEN + topic bytes (cached per topic: the same few topics repeat on every put)."""
    raw = topic.encode("utf-8")
    if len(raw) > MAX_TOPIC_BYTES:
        raise ValueError("topic longer than 127 bytes")
    return _I8.pack(len(raw)) + raw


def host_sys_flag(sys_flag: int, born_host: Host, store_host: Host) -> int:
    """``sys_flag`` with the two IPv6 bits set from the actual host addresses."""
    return (
        (sys_flag & ~_HOSTS_MASK)
        | (MessageSysFlag.BORNHOST_V6_FLAG if _ip_fields(born_host[0])[0] else 0)
        | (MessageSysFlag.STOREHOSTADDRESS_V6_FLAG if _ip_fields(store_host[0])[0] else 0)
    )


@hot_cache(4096)
def record_hosts(born_host: Host, store_host: Host) -> Tuple[int, Any, int, Tuple[int, ...], Tuple[int, ...]]:
    """What every record between two hosts shares: (v6 bits of SYSFLAG, prefix ``pack``, prefix size, born host
    fields, store host fields). Cached: a broker sees few distinct peers."""
    b6, bip = _ip_fields(born_host[0])
    s6, sip = _ip_fields(store_host[0])
    bits = (MessageSysFlag.BORNHOST_V6_FLAG if b6 else 0) | (MessageSysFlag.STOREHOSTADDRESS_V6_FLAG if s6 else 0)
    layout = PREFIX_LAYOUTS[bits >> _V6_SHIFT]
    return bits, layout.pack, layout.size, (*bip, born_host[1]), (*sip, store_host[1])


RecordItem = Tuple[int, bytes, bytes, Optional[int]]
"""(flag, body, encoded properties, body CRC or None): what differs between the records of a batch."""


def encode_records(
    items: Sequence[RecordItem],
    queue_id: int,
    queue_offset: int,
    physical_offset: int,
    sys_flag: int,
    born_timestamp: int,
    born_host: Host,
    store_timestamp: int,
    store_host: Host,
    reconsume_times: int,
    prepared_transaction_offset: int,
    topic: str,
    queue_step: int = 1,
) -> Tuple[bytes, List[int]]:
    """Build consecutive stored records (fast form of ``STORED_MESSAGE.build``) in one buffer: (bytes, sizes).

    Record *i* gets physical offset ``physical_offset`` + the sizes before it and queue offset ``queue_offset``
    + *i* × ``queue_step``; the v6 bits of SYSFLAG follow the hosts. Properties must be at most 32767 bytes
    (callers check). One join, so a batch is copied into the CommitLog once.
    """
    bits, pack, prefix_size, born, store = record_hosts(born_host, store_host)
    sys_flag = (sys_flag & ~_HOSTS_MASK) | bits
    tfield = topic_field(topic)
    fixed = prefix_size + len(tfield) + 2
    pack_len = _I16.pack
    if len(items) == 1:  # a single send: one pack of the whole prefix
        flag, body, props, crc = items[0]
        body_len = len(body)
        total = fixed + body_len + len(props)
        if crc is None:
            crc = _crc32(body) & 0x7FFFFFFF
        head = pack(
            total, MESSAGE_MAGIC_CODE, crc, queue_id, flag, queue_offset, physical_offset, sys_flag, born_timestamp,
            *born, store_timestamp, *store, reconsume_times, prepared_transaction_offset, body_len,
        )  # fmt: skip
        return b"".join((head, body, tfield, pack_len(len(props)), props)), [total]
    # A batch: the prefix fields from SYSFLAG to PREPAREDTRANSACTIONOFFSET are the same for every record, packed
    # once; each record packs the seven before them, those, and BODYLEN in one call.
    shared = pack(0, 0, 0, 0, 0, 0, 0, sys_flag, born_timestamp, *born, store_timestamp, *store, reconsume_times,
                  prepared_transaction_offset, 0)[_VARYING_HEAD:-4]  # fmt: skip
    head_pack = _batch_head(len(shared)).pack
    parts: List[bytes] = []
    sizes: List[int] = []
    add = parts.extend
    add_size = sizes.append
    phy = physical_offset
    for flag, body, props, crc in items:
        body_len = len(body)
        total = fixed + body_len + len(props)
        if crc is None:
            crc = _crc32(body) & 0x7FFFFFFF
        add((head_pack(total, MESSAGE_MAGIC_CODE, crc, queue_id, flag, queue_offset, phy, shared, body_len), body,
             tfield, pack_len(len(props)), props))  # fmt: skip
        add_size(total)
        phy += total
        queue_offset += queue_step
    return b"".join(parts), sizes


_VARYING_HEAD = 36  # TOTALSIZE, MAGICCODE, BODYCRC, QUEUEID, FLAG (i32 each), QUEUEOFFSET, PHYSICALOFFSET (i64 each)


@hot_cache(16)
def _batch_head(shared: int) -> struct.Struct:
    """A record prefix as the seven fields that vary within a batch, ``shared`` bytes and BODYLEN."""
    return struct.Struct(">iiiiiqq%dsi" % shared)


def encode_record(
    *,
    queue_id: int,
    flag: int,
    queue_offset: int,
    physical_offset: int,
    sys_flag: int,
    born_timestamp: int,
    born_host: Host,
    store_timestamp: int,
    store_host: Host,
    reconsume_times: int,
    prepared_transaction_offset: int,
    body: bytes,
    topic: str,
    properties: Union[str, bytes],
    crc: Optional[int] = None,
) -> bytes:
    """Build one stored record (fast form of ``STORED_MESSAGE.build``); the v6 bits follow the hosts."""
    props = properties.encode("utf-8") if isinstance(properties, str) else properties
    if len(props) > MAX_PROPERTIES_LENGTH:
        raise ValueError("properties longer than 32767 bytes")
    return encode_records(
        ((flag, body, props, crc),), queue_id, queue_offset, physical_offset, sys_flag, born_timestamp, born_host,
        store_timestamp, store_host, reconsume_times, prepared_transaction_offset, topic,
    )[0]  # fmt: skip


def encode_message_ext(msg: MessageExt, properties: Optional[str] = None) -> bytes:
    """Encode a MessageExt as a stored record (its own offsets, hosts and CRC of its body)."""
    return encode_record(
        queue_id=msg.queue_id,
        flag=msg.flag,
        queue_offset=msg.queue_offset,
        physical_offset=msg.commit_log_offset,
        sys_flag=msg.sys_flag,
        born_timestamp=msg.born_timestamp,
        born_host=msg.born_host,
        store_timestamp=msg.store_timestamp,
        store_host=msg.store_host,
        reconsume_times=msg.reconsume_times,
        prepared_transaction_offset=msg.prepared_transaction_offset,
        body=msg.body,
        topic=msg.topic,
        properties=properties_to_string(msg.properties) if properties is None else properties,
    )


class RecordError(ValueError):
    """The bytes at a position are not one whole, consistent stored record."""


def record_tail_positions(buf: Buffer, pos: int, total: int, sys_flag: int) -> Tuple[int, int, int, int, int, int]:
    """(body start, body len, topic start, topic len, props start, props len) of the record at ``pos``.

    Raises RecordError unless the three lengths add up exactly to ``total``.
    """
    layout = PREFIX_LAYOUTS[(sys_flag & _HOSTS_MASK) >> _V6_SHIFT]
    end = pos + total
    if total < layout.size + 3 or end > len(buf):
        raise RecordError("record size out of range")
    body_start = pos + layout.size
    body_len = _I32.unpack_from(buf, body_start - 4)[0]
    topic_pos = body_start + body_len
    if body_len < 0 or topic_pos + 3 > end:
        raise RecordError("body length out of range")
    topic_len = buf[topic_pos]
    props_pos = topic_pos + 1 + topic_len
    if topic_len > MAX_TOPIC_BYTES or props_pos + 2 > end:
        raise RecordError("topic length out of range")
    props_len = _I16.unpack_from(buf, props_pos)[0]
    if props_pos + 2 + props_len != end:
        raise RecordError("lengths do not add up to the total size")
    return body_start, body_len, topic_pos + 1, topic_len, props_pos + 2, props_len


def record_properties(buf: Buffer, pos: int = 0) -> Dict[str, str]:
    """The properties of the record at ``pos``, without decoding anything else."""
    total, sys_flag = _I32.unpack_from(buf, pos)[0], _I32.unpack_from(buf, pos + SYS_FLAG_POS)[0]
    *_, props_start, props_len = record_tail_positions(buf, pos, total, sys_flag)
    return string_to_properties(bytes(buf[props_start : props_start + props_len]).decode("utf-8", "replace"))


_inet_ntoa = socket.inet_ntoa


def _host_from(v6: bool, fields: Sequence[int], port: int) -> Host:
    if v6:
        packed = struct.pack(">QQ", fields[0], fields[1])
        return socket.inet_ntop(socket.AF_INET6, packed), port
    return socket.inet_ntoa(fields[0].to_bytes(4, "big")), port


def decode_message_ext(buf: Buffer, pos: int = 0, *, check_crc: bool = False, with_body: bool = True) -> MessageExt:
    """Decode the record at ``pos`` (fast form of ``STORED_MESSAGE.parse``); raises RecordError if malformed."""
    if len(buf) - pos < 40:
        raise RecordError("truncated record header")
    total, magic = _I32.unpack_from(buf, pos)[0], _I32.unpack_from(buf, pos + 4)[0]
    if magic != MESSAGE_MAGIC_CODE:
        raise RecordError(f"bad magic code {magic:#x}")
    sys_flag = _I32.unpack_from(buf, pos + SYS_FLAG_POS)[0]
    body_start, body_len, topic_start, topic_len, props_start, props_len = record_tail_positions(
        buf, pos, total, sys_flag
    )
    hosts = (sys_flag & _HOSTS_MASK) >> _V6_SHIFT
    v = PREFIX_LAYOUTS[hosts].unpack_from(buf, pos)
    b6, s6 = bool(hosts & 1), bool(hosts & 2)
    i = 9
    born = _host_from(b6, v[i : i + 2], v[i + 1 + b6])
    i += 2 + b6
    store_ts = v[i]
    i += 1
    store = _host_from(s6, v[i : i + 2], v[i + 1 + s6])
    i += 2 + s6
    body = bytes(buf[body_start : body_start + body_len])
    if check_crc and body_crc(body) != v[2]:
        raise RecordError("body CRC mismatch")
    props = string_to_properties(bytes(buf[props_start : props_start + props_len]).decode("utf-8", "replace"))
    return MessageExt(
        topic=bytes(buf[topic_start : topic_start + topic_len]).decode("utf-8", "replace"),
        body=body if with_body else b"",
        flag=v[4],
        properties=props,
        queue_id=v[3],
        store_size=total,
        queue_offset=v[5],
        sys_flag=sys_flag,
        born_timestamp=v[8],
        born_host=born,
        store_timestamp=store_ts,
        store_host=store,
        msg_id=create_offset_msg_id(store, v[6]),
        commit_log_offset=v[6],
        body_crc=v[2],
        reconsume_times=v[i],
        prepared_transaction_offset=v[i + 1],
    )


def decode_for_restore(buf: Buffer) -> MessageExtBrokerInner:
    """The record in ``buf`` as a message to store again (a parked delayed or timer message going to its real
    topic): only what a put needs (body, flag, properties, sys flag, born time and host, store host,
    reconsume count, body CRC), no msg id, offsets or store time. Raises RecordError if malformed.
    About a third of ``decode_message_ext``'s cost, on the timer fire path."""
    total, sys_flag = _I32.unpack_from(buf, 0)[0], _I32.unpack_from(buf, SYS_FLAG_POS)[0]
    body_start, body_len, topic_start, topic_len, props_start, props_len = record_tail_positions(buf, 0, total, sys_flag)
    hosts = (sys_flag & _HOSTS_MASK) >> _V6_SHIFT
    v = PREFIX_LAYOUTS[hosts].unpack_from(buf, 0)
    b6, s6 = hosts & 1, (hosts & 2) >> 1
    born = _host_from(True, v[9:11], v[11]) if b6 else (_inet_ntoa(v[9].to_bytes(4, "big")), v[10])
    i = 12 + b6  # after the born host and the store time
    store = _host_from(True, v[i : i + 2], v[i + 2]) if s6 else (_inet_ntoa(v[i].to_bytes(4, "big")), v[i + 1])
    return MessageExtBrokerInner(
        topic=bytes(buf[topic_start : topic_start + topic_len]).decode("utf-8", "replace"),
        body=bytes(buf[body_start : body_start + body_len]),
        flag=v[4],
        properties=string_to_properties(bytes(buf[props_start : props_start + props_len]).decode("utf-8", "replace")),
        queue_id=v[3],
        sys_flag=sys_flag,
        born_timestamp=v[8],
        born_host=born,
        store_host=store,
        body_crc=v[2],
        reconsume_times=v[i + 2 + s6],
    )


def iter_records(body: Buffer) -> Iterator[Tuple[int, int]]:
    """(position, size) of each record in a concatenation of records (a pull or query response body)."""
    pos, end = 0, len(body)
    while pos + 4 <= end:
        size = _I32.unpack_from(body, pos)[0]
        if size <= 0 or pos + size > end:
            raise RecordError(f"bad record size {size} at {pos}")
        yield pos, size
        pos += size
    if pos != end:
        raise RecordError("trailing bytes after the last record")


def decode_messages(body: Buffer, *, check_crc: bool = False, with_body: bool = True) -> List[MessageExt]:
    """Split a concatenated body into MessageExt objects, as clients do with pull responses."""
    return [decode_message_ext(body, pos, check_crc=check_crc, with_body=with_body) for pos, _ in iter_records(body)]


def schema_dict(msg: MessageExt, properties: Optional[str] = None) -> Dict[str, Any]:
    """The ``STORED_MESSAGE`` build dict of a MessageExt (for tests and diagnostics: the slow, declared path)."""
    sys_flag = host_sys_flag(msg.sys_flag, msg.born_host, msg.store_host)
    props = properties_to_string(msg.properties) if properties is None else properties
    size = record_size(sys_flag, len(msg.body), len(msg.topic.encode()), len(props.encode()))
    return dict(
        total_size=size,
        magic=MESSAGE_MAGIC_CODE,
        body_crc=body_crc(msg.body),
        queue_id=msg.queue_id,
        flag=msg.flag,
        queue_offset=msg.queue_offset,
        physical_offset=msg.commit_log_offset,
        sys_flag=sys_flag,
        born_timestamp=msg.born_timestamp,
        born_host=dict(ip=host_ip(msg.born_host[0])[1], port=msg.born_host[1]),
        store_timestamp=msg.store_timestamp,
        store_host=dict(ip=host_ip(msg.store_host[0])[1], port=msg.store_host[1]),
        reconsume_times=msg.reconsume_times,
        prepared_transaction_offset=msg.prepared_transaction_offset,
        body=msg.body,
        topic=msg.topic,
        properties=props,
    )
