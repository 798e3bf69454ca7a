"""SEND_BATCH_MESSAGE's one-pass path: members that differ only in their UNIQ_KEY value.

A producer's batch members carry the same properties but for their UNIQ_KEY (the Java, C++ and mq clients give
each member one; WAIT is the same for all, and TAGS usually). The general path decodes each member's
properties into a dict and re-encodes them for the record. Here the first member is taken apart the general way
and gives a ``Shape``: the member's properties bytes before and after its UNIQ_KEY value, the stored properties
around it (``WAIT`` left out, the batch's own properties and ``CLUSTER`` after), and the properties every member
then has (without the UNIQ_KEY). A member whose bytes are that head + a value + that tail (the value non-empty,
without a separator) has the same checks, tags code and stored properties but for the value, so ``split``
copies bytes and decodes no dict. Anything else (another shape, KEYS, a size past a limit, a malformed body)
gives None, and the caller takes the general path, which refuses or stores exactly as before: this path never
refuses anything itself. ``tests/broker/test_batch_shape.py`` compares the two paths byte for byte.
"""

from __future__ import annotations

import struct
from typing import Dict, List, Optional, Tuple

from mq.common.message import MessageConst, string_to_properties
from mq.common.message_batch import UniformBatch
from mq.common.message_record import MAX_PROPERTIES_LENGTH

_UNIQ = MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX
_UNIQ_ITEM = _UNIQ + "\x01"
_KEYS = MessageConst.PROPERTY_KEYS
_DELAY = MessageConst.PROPERTY_DELAY_TIME_LEVEL
_TRAN = MessageConst.PROPERTY_TRANSACTION_PREPARED
_PROBE = "\x03"  # stands for the UNIQ_KEY value while the stored form of a shape is worked out
_HEAD = struct.Struct(">iiiii")  # total size, magic, body CRC, flag, body length
_PROPS_LEN = struct.Struct(">h")

class Shape:
    """What the members of one shape share; see the module docstring."""

    __slots__ = ("head", "tail", "stored_head", "stored_tail", "max_value", "properties", "suffix")

    def __init__(self, head: bytes, tail: bytes, stored_head: bytes, stored_tail: bytes, properties: Dict[str, str],
                 suffix: str) -> None:
        self.head = head
        self.tail = tail
        self.stored_head = stored_head
        self.stored_tail = stored_tail
        #: the longest UNIQ_KEY value (bytes) whose stored properties stay within the record's limit
        self.max_value = MAX_PROPERTIES_LENGTH - len(stored_head) - len(stored_tail)
        self.properties = properties
        self.suffix = suffix


def derive_shape(text: str, batch_props: Dict[str, str], suffix: str, stored_properties) -> Optional[Shape]:
    """The shape of a member whose properties string is ``text``, or None when it has none this path takes:
    no UNIQ_KEY item (or an empty one, or one a later item overrides), KEYS, a delay level or a transaction
    flag (the general path refuses those), or stored properties that do not keep the value in one place.
    ``stored_properties`` is the send processor's function of that name (its rules are what a shape keeps)."""
    i = text.find(_UNIQ_ITEM)
    if i < 0 or (i > 0 and text[i - 1] != "\x02"):
        return None
    k = i + len(_UNIQ_ITEM)
    j = text.find("\x02", k)
    if j < 0:
        j = len(text)
    value = text[k:j]
    props = string_to_properties(text)
    if not value or "\x01" in value or props.get(_UNIQ) != value or _KEYS in props:
        return None
    if _UNIQ in batch_props or _KEYS in batch_props:
        return None
    delay = props.get(_DELAY)
    tran = props.get(_TRAN)
    if (delay is not None and delay not in ("", "0")) or (tran is not None and tran.lower() == "true"):
        return None
    probe = text[:k] + _PROBE + text[j:]
    stored = stored_properties(probe, string_to_properties(probe), suffix)
    if stored.count(_PROBE) != 1:
        return None
    stored_head, stored_tail = stored.split(_PROBE)
    if stored_properties(text, props, suffix) != stored_head + value + stored_tail:
        return None
    props.update(batch_props)
    del props[_UNIQ]
    return Shape(text[:k].encode(), text[j:].encode(), stored_head.encode(), stored_tail.encode(), props, suffix)


def split(body: bytes, shape: Shape, limit: int) -> Optional[UniformBatch]:
    """The members of a batch body when every one has ``shape`` and a body of at most ``limit`` bytes, else None.

    One loop, no dict, no closure: the member's header, its body sliced out, its UNIQ_KEY value found between
    the shape's head and tail and put between the stored head and tail."""
    records: List[Tuple[int, bytes, bytes, None]] = []
    uniq: List[str] = []
    head, tail = shape.head, shape.tail
    stored_head, stored_tail = shape.stored_head, shape.stored_tail
    lh = len(head)
    lt = len(tail)
    max_value = shape.max_value
    unpack = _HEAD.unpack_from
    unpack_len = _PROPS_LEN.unpack_from
    add = records.append
    add_uniq = uniq.append
    largest = 0
    pos, end = 0, len(body)
    while pos < end:
        if end - pos < 22:
            return None
        total, _magic, _crc, flag, body_len = unpack(body, pos)
        props_at = pos + 20 + body_len
        if body_len < 0 or body_len > limit or props_at + 2 > end:
            return None
        props_len = unpack_len(body, props_at)[0]
        props_at += 2
        item_end = props_at + props_len
        value_end = item_end - lt
        value_at = props_at + lh
        if (total != item_end - pos or item_end > end or props_len > MAX_PROPERTIES_LENGTH
                or value_end <= value_at or value_end - value_at > max_value
                or not body.startswith(head, props_at, value_at) or not body.endswith(tail, value_end, item_end)):
            return None
        value = body[value_at:value_end]
        if not value.isalnum():  # the usual key is hex: ASCII letters and digits, so no separator in it
            if b"\x01" in value or b"\x02" in value:
                return None
            try:
                add_uniq(value.decode())
            except UnicodeDecodeError:
                return None
        else:
            add_uniq(value.decode("ascii"))
        add((flag, body[pos + 20 : props_at - 2], stored_head + value + stored_tail, None))
        if body_len > largest:
            largest = body_len
        pos = item_end
    if not records:
        return None
    return UniformBatch(records, uniq, largest, shape.properties)
