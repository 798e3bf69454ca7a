"""The batch body of SEND_BATCH_MESSAGE (and of sends with ``batch=true``), wire doc §4.5.

Each message is ``TOTALSIZE i32, MAGICCODE i32, BODYCRC i32, FLAG i32, BODYLEN i32 + body, PROPSLEN i16 +
properties``; clients write 0 for the magic and the CRC (the broker computes the CRC when it stores).
``BATCH_ITEM`` is the declaration; ``BATCH_ITEM_HEAD`` (its fixed prefix) is the fast form used to split
a body.
"""

from __future__ import annotations

import struct
from typing import Dict, Iterable, List, Tuple

import construct as c

from mq.common.layout import FixedLayout

BATCH_ITEM = c.Struct(
    "total_size" / c.Int32sb,
    "magic" / c.Int32sb,
    "body_crc" / c.Int32sb,
    "flag" / c.Int32sb,
    "body" / c.Prefixed(c.Int32sb, c.GreedyBytes),
    "properties" / c.PascalString(c.Int16sb, "utf8"),
)

BATCH_ITEM_HEAD = FixedLayout(
    ("total_size", c.Int32sb),
    ("magic", c.Int32sb),
    ("body_crc", c.Int32sb),
    ("flag", c.Int32sb),
    ("body_len", c.Int32sb),
)
_I16 = struct.Struct(">h")


class UniformBatch:
    """Batch members that share their properties but for a UNIQ_KEY each, ready for the store
    (``MessageStore.put_uniform_batch_now``; made by mq.broker.processor.batch_shape)."""

    __slots__ = ("records", "uniq_keys", "largest_body", "properties")

    def __init__(self, records: List[Tuple[int, bytes, bytes, None]], uniq_keys: List[str], largest_body: int,
                 properties: Dict[str, str]) -> None:
        #: (flag, body, stored properties of at most 32767 bytes, None) of each member, as ``encode_records`` takes
        self.records = records
        self.uniq_keys = uniq_keys
        self.largest_body = largest_body
        #: what every member has besides its UNIQ_KEY (no KEYS, no UNIQ_KEY): read it, do not change it
        self.properties = properties


class BatchError(ValueError):
    """A batch body that does not split into whole messages."""


def decode_batch(body: bytes) -> List[Tuple[int, bytes, str]]:
    """(flag, body, properties string) of each message of a batch body."""
    out = []
    pos, end = 0, len(body)
    head = BATCH_ITEM_HEAD.size
    unpack = BATCH_ITEM_HEAD.unpack_from
    while pos < end:
        if end - pos < head + 2:
            raise BatchError(f"truncated message at byte {pos}")
        total, _magic, _crc, flag, body_len = unpack(body, pos)
        body_start = pos + head
        props_pos = body_start + body_len
        if body_len < 0 or props_pos + 2 > end:
            raise BatchError(f"message at byte {pos} has a body length {body_len} past the end")
        (props_len,) = _I16.unpack_from(body, props_pos)
        item_end = props_pos + 2 + props_len
        if props_len < 0 or item_end > end:
            raise BatchError(f"message at byte {pos} has a properties length {props_len} past the end")
        if total != item_end - pos:
            raise BatchError(f"message at byte {pos} says it is {total} bytes but its fields take {item_end - pos}")
        try:
            props = body[props_pos + 2 : item_end].decode("utf-8")
        except UnicodeDecodeError:
            raise BatchError(f"message at byte {pos} has properties that are not UTF-8") from None
        out.append((flag, body[body_start:props_pos], props))
        pos = item_end
    if not out:
        raise BatchError("the batch is empty")
    return out


def encode_batch(messages: Iterable[Tuple[int, bytes, str]]) -> bytes:
    """A batch body from (flag, body, properties string) triples."""
    parts = []
    for flag, body, props in messages:
        raw = props.encode("utf-8")
        total = BATCH_ITEM_HEAD.size + len(body) + 2 + len(raw)
        parts.append(BATCH_ITEM_HEAD.pack(total, 0, 0, flag, len(body)))
        parts.append(body)
        parts.append(_I16.pack(len(raw)))
        parts.append(raw)
    return b"".join(parts)
