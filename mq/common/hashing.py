"""Java-compatible hashes: ``String.hashCode`` (tag codes, index keys) and the masked body CRC.

RocketMQ computes these in Java, so the numbers on disk and on the wire are Java's: a 31-multiplier
polynomial over UTF-16 code units wrapped to a signed 32-bit int, and ``CRC32 & 0x7FFFFFFF``.
"""

from __future__ import annotations

import struct
import zlib
from operator import mul
from typing import Tuple

from mq.common.hotcache import hot_cache

_MASK = 0xFFFFFFFF
_MAX_FAST = 256
# _POWERS[n] = (31**(n-1), ..., 31, 1) mod 2**32: Horner's rule unrolled so ``sum(map(mul, ...))`` runs in C.
_POWERS: Tuple[Tuple[int, ...], ...] = tuple(
    tuple(pow(31, n - 1 - i, 1 << 32) for i in range(n)) for n in range(_MAX_FAST + 1)
)
_POW31: Tuple[int, ...] = tuple(pow(31, n, 1 << 32) for n in range(_MAX_FAST + 1))
# Public for hot loops that inline the hash of short ASCII keys (see ``java_unsigned_hash``).
HORNER_POWERS = _POWERS
POW31 = _POW31
MAX_FAST = _MAX_FAST


def _units(s: str) -> bytes | Tuple[int, ...]:
    """The UTF-16 code units of ``s`` (bytes for ASCII, where each byte is one unit)."""
    if s.isascii():
        return s.encode("ascii")
    data = s.encode("utf-16-be", "surrogatepass")
    return struct.unpack(f">{len(data) // 2}H", data)


def _unsigned_hash(s: str) -> int:
    units = _units(s)
    n = len(units)
    if n <= _MAX_FAST:
        return sum(map(mul, units, _POWERS[n])) & _MASK
    h = 0
    for u in units:
        h = (31 * h + u) & _MASK
    return h


def java_string_hash(s: str) -> int:
    """Java ``String.hashCode`` of ``s`` as a signed 32-bit int."""
    h = _unsigned_hash(s)
    return h - (1 << 32) if h & 0x80000000 else h


@hot_cache(4096)
def tag_hash_code(tags: str | None) -> int:
    """ConsumeQueue tagsCode of a TAGS value: its Java hash, 0 when empty or missing (cached: tags repeat)."""
    if not tags:
        return 0
    return java_string_hash(tags)


def java_unsigned_hash(s: str, prefix_hash: int = 0) -> int:
    """Java ``String.hashCode`` of ``prefix + s`` as an unsigned 32-bit int, where ``prefix_hash`` is this
    function's value for ``prefix`` (0 for none): a prefix that repeats is hashed once, not on every key."""
    n = len(s)
    if n <= _MAX_FAST and s.isascii():  # the usual key: one C-level pass, no helper calls
        h = sum(map(mul, s.encode("ascii"), _POWERS[n]))
    else:
        n = len(_units(s))
        h = _unsigned_hash(s)
    if prefix_hash:
        h += prefix_hash * (_POW31[n] if n <= _MAX_FAST else pow(31, n, 1 << 32))
    return h & _MASK


def index_key_hash(key: str, prefix_hash: int = 0) -> int:
    """IndexFile key hash: ``abs(String.hashCode(prefix + key))``, 0 when still negative (Integer.MIN_VALUE);
    ``prefix_hash`` as for ``java_unsigned_hash``."""
    h = java_unsigned_hash(key, prefix_hash)
    if h & 0x80000000:
        h = (1 << 32) - h
    return 0 if h > 0x7FFFFFFF else h


def body_crc(body: bytes) -> int:
    """Body CRC as RocketMQ stores it: ``CRC32 & 0x7FFFFFFF``."""
    return zlib.crc32(body) & 0x7FFFFFFF
