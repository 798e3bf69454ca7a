"""The replicated log's entry: DLedger's layout (``DLedgerEntryCoder``, wire doc §3.3), on disk and on the wire.

| offset | size | field |
|---|---|---|
| 0 | 4 | magic (1) |
| 4 | 4 | total size = 48 + body length |
| 8 | 8 | index |
| 16 | 8 | term |
| 24 | 8 | pos: where the entry starts in the log's byte space (0 on the wire) |
| 32 | 4 | channel (0) |
| 36 | 4 | header CRC (DLedger's reserved ``chainCrc``): CRC32 of bytes 0-35 and 40-47, masked to 31 bits |
| 40 | 4 | body CRC: CRC32 of the body, masked to 31 bits as RocketMQ's ``UtilAll.crc32`` |
| 44 | 4 | body length |
| 48 | n | body (for the broker: one CommitLog record) |

DLedger leaves ``chainCrc`` unused; here it guards the header, so a torn or garbled header is told apart from
a valid entry without trusting its length field. ``ENTRY`` is the declaration; ``ENTRY_HEADER`` the fast form
derived from the same fields (tests/dledger/test_store.py proves they agree).
"""

from __future__ import annotations

import zlib
from typing import List, Optional, Tuple

import construct as c

from mq.common.layout import FixedLayout
from mq.dledger.messages import Entry

MAGIC = 1
HEADER_FIELDS = (
    ("magic", c.Int32sb),
    ("size", c.Int32sb),
    ("index", c.Int64sb),
    ("term", c.Int64sb),
    ("pos", c.Int64sb),
    ("channel", c.Int32sb),
    ("header_crc", c.Int32sb),
    ("body_crc", c.Int32sb),
    ("body_len", c.Int32sb),
)
ENTRY_HEADER = FixedLayout(*HEADER_FIELDS)
HEADER_SIZE = ENTRY_HEADER.size  # 48
ENTRY = c.Struct(*(name / con for name, con in HEADER_FIELDS), "body" / c.Bytes(c.this.body_len))

#: The largest body an entry may declare (guards every length read from disk or a peer).
MAX_BODY = 256 << 20


class EntryError(ValueError):
    """Bytes that are not a whole, intact entry."""


class Incomplete(EntryError):
    """The bytes stop inside an entry: ``need`` bytes from its start would hold it (a header's worth when
    even the header is cut). At a file's end this is a torn write; inside a read window, read more."""

    def __init__(self, message: str, need: int) -> None:
        super().__init__(message)
        self.need = need


def crc31(data) -> int:
    return zlib.crc32(data) & 0x7FFFFFFF


def _header_crc(header: bytes) -> int:
    return crc31(header[:36] + header[40:48])


def encode(entry: Entry, pos: int = 0) -> bytes:
    body = entry.body
    n = len(body)
    head = bytearray(ENTRY_HEADER.pack(MAGIC, HEADER_SIZE + n, entry.index, entry.term, pos, 0, 0, crc31(body), n))
    head[36:40] = _header_crc(bytes(head)).to_bytes(4, "big")
    return bytes(head) + body


def scan_at(buf, offset: int, pos: Optional[int] = None) -> Tuple[int, int, int]:
    """Check the entry at ``offset`` without copying its body: ``(index, term, end)``. ``pos``, if given, must
    be the recorded position. Raises Incomplete for a short buffer, EntryError for a garbled entry."""
    if len(buf) - offset < HEADER_SIZE:
        raise Incomplete(f"{len(buf) - offset} bytes left, a header takes {HEADER_SIZE}", HEADER_SIZE)
    magic, size, index, term, at, _channel, hcrc, bcrc, n = ENTRY_HEADER.unpack_from(buf, offset)
    header = bytes(buf[offset : offset + HEADER_SIZE])
    if magic != MAGIC or hcrc != _header_crc(header):
        raise EntryError(f"bad header at {offset} (magic {magic})")
    if not 0 <= n <= MAX_BODY or size != HEADER_SIZE + n or index < 1 or term < 0:
        raise EntryError(f"bad lengths or numbers at {offset}: size {size}, body {n}, index {index}, term {term}")
    if pos is not None and at != pos:
        raise EntryError(f"entry at {offset} records position {at}, expected {pos}")
    end = offset + size
    if end > len(buf):
        raise Incomplete(f"entry at {offset} needs {size} bytes, {len(buf) - offset} left", size)
    if crc31(memoryview(buf)[offset + HEADER_SIZE : end]) != bcrc:
        raise EntryError(f"body CRC mismatch at {offset}")
    return index, term, end


def decode_at(buf, offset: int, pos: Optional[int] = None) -> Tuple[Entry, int]:
    """The entry at ``offset`` and the offset after it (``scan_at``'s checks, then the body copied)."""
    index, term, end = scan_at(buf, offset, pos)
    return Entry(index, term, bytes(buf[offset + HEADER_SIZE : end])), end


def decode_all(buf) -> List[Entry]:
    """Consecutive wire entries filling ``buf`` exactly."""
    out: List[Entry] = []
    offset = 0
    while offset < len(buf):
        entry, offset = decode_at(buf, offset)
        out.append(entry)
    return out
