"""A blocking remoting connection for tests that drive real ``twistd`` processes from plain pytest code."""

from __future__ import annotations

import itertools
import socket
import struct

from mq.client.simple import send_request
from mq.remoting.codes import ResponseCode
from mq.remoting.command import RemotingCommand
from mq.remoting.serialization import decode_command, encode_command

_opaques = itertools.count(1)


class Wire:
    def __init__(self, addr: str, timeout: float = 10.0) -> None:
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        #: requests the peer sent us (broker → client calls), in arrival order
        self.requests: list = []

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Wire":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, request: RemotingCommand) -> int:
        request.opaque = next(_opaques)
        self.sock.sendall(encode_command(request))
        return request.opaque

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _next(self, timeout: float = None) -> RemotingCommand:
        self.sock.settimeout(timeout or self.timeout)
        prefix = self._read(4)
        (length,) = struct.unpack(">i", prefix)
        cmd = decode_command(prefix + self._read(length))
        if not cmd.is_response:
            self.requests.append(cmd)
        return cmd

    def receive(self, opaque: int, timeout: float = None) -> RemotingCommand:
        """The response to ``opaque`` (other responses in between are skipped, requests kept in ``requests``)."""
        while True:
            cmd = self._next(timeout)
            if cmd.is_response and cmd.opaque == opaque:
                return cmd

    def next_request(self, timeout: float = None) -> RemotingCommand:
        """The next request the peer sends us (responses in between are skipped)."""
        if self.requests:
            return self.requests.pop(0)
        while True:
            cmd = self._next(timeout)
            if not cmd.is_response:
                return self.requests.pop(0)

    def call(self, request: RemotingCommand, timeout: float = None) -> RemotingCommand:
        return self.receive(self.send(request), timeout)

    def send_each(self, topic: str, bodies, queues: int = 1, first_queue: int = 0, **kwargs) -> list:
        """Send ``bodies`` one at a time, the i-th to queue ``(first_queue + i) % queues``, each answered
        SUCCESS (asserted, with the remark); the bodies, in order. ``kwargs`` go to ``send_request``."""
        bodies = list(bodies)
        for i, body in enumerate(bodies):
            r = self.call(send_request(topic, body, queue_id=(first_queue + i) % queues, **kwargs))
            assert r.code == ResponseCode.SUCCESS, (r.code, r.remark)
        return bodies


def call(addr: str, request: RemotingCommand, timeout: float = 10.0) -> RemotingCommand:
    with Wire(addr, timeout) as w:
        return w.call(request)
