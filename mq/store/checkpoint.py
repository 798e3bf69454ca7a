"""The ``checkpoint`` file: RocketMQ's three timestamps, plus the offsets this store recovers from.

Bytes 0-23 are RocketMQ's (store time of the last flushed CommitLog, ConsumeQueue and index data). Bytes
24-63 are ours and ignored by RocketMQ: a marker, the CommitLog offset known flushed, the CommitLog offsets up
to which ConsumeQueue and index entries are known flushed, and a CRC of those. Offsets, unlike timestamps,
say exactly where recovery must start re-dispatching; a torn or foreign checkpoint (bad marker or CRC) makes
recovery rescan the whole CommitLog instead.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import Optional

import attrs
import construct as c

from mq.common.layout import FixedLayout

CHECKPOINT_FILE_SIZE = 4096
CHECKPOINT = FixedLayout(
    ("physic_msg_timestamp", c.Int64sb),
    ("logics_msg_timestamp", c.Int64sb),
    ("index_msg_timestamp", c.Int64sb),
    ("offsets_marker", c.Int64sb),
    ("physic_offset", c.Int64sb),
    ("logics_offset", c.Int64sb),
    ("index_offset", c.Int64sb),
    ("offsets_crc", c.Int64sb),
)
OFFSETS_MARKER = 0x6D71_6F66_6673_0001  # "mqoffs" + version 1


@attrs.define
class Checkpoint:
    physic_msg_timestamp: int = 0
    logics_msg_timestamp: int = 0
    index_msg_timestamp: int = 0
    physic_offset: Optional[int] = None  # None: unknown (no file, or written by RocketMQ)
    logics_offset: Optional[int] = None
    index_offset: Optional[int] = None

    @property
    def recover_from(self) -> Optional[int]:
        """The CommitLog offset from which queues and index must be rebuilt, or None if unknown."""
        if self.physic_offset is None or self.logics_offset is None or self.index_offset is None:
            return None
        return min(self.physic_offset, self.logics_offset, self.index_offset)

    def pack(self) -> bytes:
        if self.physic_offset is None:
            marker, p, lo, i = 0, 0, 0, 0
        else:
            marker, p, lo, i = OFFSETS_MARKER, self.physic_offset, self.logics_offset or 0, self.index_offset or 0
        data = CHECKPOINT.pack(
            self.physic_msg_timestamp, self.logics_msg_timestamp, self.index_msg_timestamp, marker, p, lo, i,
            _crc(marker, p, lo, i),
        )  # fmt: skip
        return data + bytes(CHECKPOINT_FILE_SIZE - len(data))


def _crc(*values: int) -> int:
    return zlib.crc32(struct.pack(">4q", *values))


def load_checkpoint(path: str) -> Checkpoint:
    try:
        with open(path, "rb") as f:
            data = f.read(CHECKPOINT.size)
    except FileNotFoundError:
        return Checkpoint()
    if len(data) < CHECKPOINT.size:
        return Checkpoint()
    pt, lt, it, marker, p, lo, i, crc = CHECKPOINT.unpack(data)
    if marker != OFFSETS_MARKER or crc != _crc(marker, p, lo, i):
        return Checkpoint(pt, lt, it)
    return Checkpoint(pt, lt, it, p, lo, i)


def write_checkpoint(path: str, cp: Checkpoint) -> None:
    """Write and fdatasync the checkpoint in place. Blocking."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, cp.pack(), 0)
        os.fdatasync(fd)
    finally:
        os.close(fd)
