"""The HA replication stream (wire doc §7): raw TCP on the master's HA port, no RemotingCommand framing.

Two messages, declared once as construct schemas; the hot paths use the ``FixedLayout`` fast forms derived
from the same field lists (tests/broker/test_ha_protocol.py proves they agree):

* slave → master, ``OFFSET_REPORT``: the slave's CommitLog max physical offset (bytes it holds). The first
  report tells the master where to start (0 = "the start of your last CommitLog file"); later ones are acks.
* master → slave, ``TRANSFER``: ``TRANSFER_HEADER`` (the physical offset of the first byte, the byte count)
  then that many raw CommitLog bytes. A count of 0 is a heartbeat; its offset is where the master's next
  transfer will start.

These are RocketMQ 4.x's messages byte for byte, so a Java slave can follow an mq master and the reverse.
"""

from __future__ import annotations

import construct as c

from mq.common.layout import FixedLayout

OFFSET_REPORT = FixedLayout(("max_phy_offset", c.Int64sb))

TRANSFER_HEADER = FixedLayout(("phy_offset", c.Int64sb), ("body_size", c.Int32sb))

#: A whole transfer (header and data) as one declaration.
TRANSFER = c.Struct(
    "phy_offset" / c.Int64sb,
    "data" / c.Prefixed(c.Int32sb, c.GreedyBytes),
)

REPORT_SIZE = OFFSET_REPORT.size  # 8
HEADER_SIZE = TRANSFER_HEADER.size  # 12


def encode_report(offset: int) -> bytes:
    return OFFSET_REPORT.pack(offset)


def encode_header(phy_offset: int, size: int) -> bytes:
    return TRANSFER_HEADER.pack(phy_offset, size)


class TransferDecoder:
    """Splits the master's byte stream into ``(phy_offset, data)`` transfers (data ``b""`` = heartbeat)."""

    __slots__ = ("_buf", "_need", "_offset")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._need = -1  # body size of the transfer whose header was read, -1 while reading a header
        self._offset = 0

    def feed(self, data: bytes):
        buf = self._buf
        buf += data
        out = []
        pos = 0
        end = len(buf)
        unpack = TRANSFER_HEADER.unpack_from
        while True:
            if self._need < 0:
                if end - pos < HEADER_SIZE:
                    break
                self._offset, self._need = unpack(buf, pos)
                if self._need < 0:
                    raise ValueError(f"transfer header with a negative size {self._need}")
                pos += HEADER_SIZE
            if end - pos < self._need:
                break
            out.append((self._offset, bytes(buf[pos : pos + self._need])))
            pos += self._need
            self._need = -1
        del buf[:pos]
        return out


class ReportDecoder:
    """Splits the slave's byte stream into offsets; a partial report waits for its remaining bytes."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes):
        buf = self._buf + data
        whole = len(buf) - len(buf) % REPORT_SIZE
        self._buf = buf[whole:]
        unpack = OFFSET_REPORT.unpack_from
        return [unpack(buf, pos)[0] for pos in range(0, whole, REPORT_SIZE)]
