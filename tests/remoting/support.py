"""Helpers shared by the remoting tests: a sample typed header, frame building and splitting, log capture."""

from __future__ import annotations

import struct
from typing import List, Optional, Tuple

import attr
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent

from mq.remoting.command import RemotingCommand
from mq.remoting.header import CommandHeader, hfield
from mq.remoting.protocol import RemotingProtocol, RequestDispatcher
from mq.remoting.serialization import decode_command

PEER = "192.168.1.1:54321"  # StringTransport's default peer address


@attr.s(slots=True)
class SampleHeader(CommandHeader):
    """Required and optional fields of each kind, some with SEND_MESSAGE_V2-style short names."""

    topic = hfield("topic", str, required=True, short="b")
    queue_id = hfield("queueId", int, required=True, short="e")
    batch = hfield("batch", bool, short="m")
    tags = hfield("tags", str)
    max_times = hfield("maxReconsumeTimes", int, default=16, short="l")


def raw_frame(serialize_type: int, header: bytes, body: bytes = b"", length: Optional[int] = None) -> bytes:
    """A frame written by hand (not by the code under test), with an optional lying length."""
    if length is None:
        length = 4 + len(header) + len(body)
    return struct.pack(">iI", length, (serialize_type << 24) | len(header)) + header + body


def split_frames(data: bytes) -> List[RemotingCommand]:
    """Every command in a byte stream of whole frames, decoded one by one."""
    out = []
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack_from(">i", data, pos)
        out.append(decode_command(data[pos : pos + 4 + length]))
        pos += 4 + length
    assert pos == len(data)
    return out


class Recorder:
    """A processor that records what it is given and returns a fixed answer (default: no response)."""

    def __init__(self, answer=None) -> None:
        self.calls: List[RemotingCommand] = []
        self.answer = answer

    def __call__(self, request: RemotingCommand, channel: RemotingProtocol):
        self.calls.append(request)
        if callable(self.answer):
            return self.answer(request)
        return self.answer


def connect(
    dispatcher: Optional[RequestDispatcher] = None, clock: Optional[Clock] = None, **kwargs
) -> Tuple[RemotingProtocol, StringTransport]:
    proto = RemotingProtocol(dispatcher, clock or Clock(), **kwargs)
    transport = StringTransport()
    proto.makeConnection(transport)
    return proto, transport


def messages(events) -> List[str]:
    return [formatEvent(e) for e in events]


def failures(events) -> list:
    return [e for e in events if "log_failure" in e]
