"""The remoting ``Protocol``: one per connection, on both the server and the client side.

It frames the byte stream, hands requests to a ``RequestDispatcher`` and matches responses to the
Deferreds of the requests it sent, by ``opaque``. Bad input closes this connection only, with a log line
that names the peer and the reason.
"""

from __future__ import annotations

import itertools
from typing import Callable, Dict, List, Optional

from twisted.internet import defer, tcp
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from mq.remoting.codes import FLAG_ONEWAY, FLAG_RESPONSE, ResponseCode, code_name
from mq.remoting.command import RemotingCommand
from mq.remoting.header import HeaderFieldError
from mq.remoting.memo import ResponseMemo
from mq.remoting.serialization import (
    DEFAULT_MAX_FRAME_LENGTH,
    FRAME_LENGTH,
    FRAME_PREFIX,
    FrameError,
    decode_frame,
    encode_command,
)

log = Logger()

_unpack_prefix = FRAME_PREFIX.unpack_from
_unpack_length = FRAME_LENGTH.unpack_from
_opaques = itertools.count(1)
#: Output collected while one read is handled goes out once it passes this size, and the rest of that read's
#: output through Twisted's buffer and its limit (which pauses reading): large answers are held no longer.
OUTPUT_BATCH_BYTES = 64 * 1024


def next_opaque() -> int:
    """A request id, unique in this process (kept within 31 bits, as the C++ client does)."""
    return next(_opaques) & 0x7FFFFFFF


class RemotingError(Exception):
    """A request that got no response."""


class RemotingTimeoutError(RemotingError):
    """No response within the request's timeout."""


class RemotingConnectionError(RemotingError):
    """The connection closed, or could not be made, before a response came."""


Processor = Callable[[RemotingCommand, "RemotingProtocol"], object]


class RequestDispatcher:
    """The processor table: request code → callable returning a response, a Deferred of one, or None.

    A code with no processor gets ``REQUEST_CODE_NOT_SUPPORTED`` with a remark naming the code. A header
    that does not decode gets ``SYSTEM_ERROR`` naming the field; any other exception gets ``SYSTEM_ERROR``
    with its text, and is logged. Oneway requests are never answered.
    """

    def __init__(self, observer: Optional[Callable[[int, int], None]] = None, answer_unknown: bool = True) -> None:
        self.processors: Dict[int, Processor] = {}
        #: Called with (request code, response code) for each request that got a response.
        self.observer = observer
        #: False for the NameServer, which sends no response at all to codes it does not know (wire §0.10).
        self.answer_unknown = answer_unknown
        #: Runs before every processor when set (the broker's ACL): returns None to go on, or the remark of
        #: the SYSTEM_ERROR answer that refuses the request (a refused oneway request is dropped).
        self.access_check: Optional[Callable[[RemotingCommand, "RemotingProtocol"], Optional[str]]] = None

    def register(self, code: int, processor: Processor) -> None:
        self.processors[int(code)] = processor

    def dispatch(self, request: RemotingCommand, channel: "RemotingProtocol") -> None:
        if self.access_check is not None:
            denied = self.access_check(request, channel)
            if denied is not None:
                if request.flag & FLAG_ONEWAY:
                    log.debug("oneway {code} from {peer} refused: {denied}", code=request.code,
                              peer=channel.peer, denied=denied)
                    return
                self._respond(request, channel, request.response(ResponseCode.SYSTEM_ERROR, denied))
                return
        processor = self.processors.get(request.code)
        if processor is None:
            if not self.answer_unknown:
                log.debug("no processor for {code} from {peer}", code=request.code, peer=channel.peer)
                return
            self._respond(
                request,
                channel,
                request.response(
                    ResponseCode.REQUEST_CODE_NOT_SUPPORTED,
                    f"request code {request.code} ({code_name(request.code)}) is not supported",
                ),
            )
            return
        try:
            result = processor(request, channel)
        except Exception:
            self._respond(request, channel, self._error_response(request, Failure()))
            return
        # ``type(...) is`` first: Deferred's isinstance goes through ABCMeta (an Awaitable), 0.13 µs more a call
        if type(result) is not RemotingCommand and isinstance(result, defer.Deferred):
            result.addErrback(lambda f: self._error_response(request, f))
            result.addCallback(lambda resp: self._respond(request, channel, resp))
            result.addErrback(lambda f: log.failure("responding to {peer}", f, peer=channel.peer))
        else:
            self._respond(request, channel, result)

    def _error_response(self, request: RemotingCommand, failure: Failure) -> RemotingCommand:
        if failure.check(HeaderFieldError):
            return request.response(ResponseCode.SYSTEM_ERROR, str(failure.value))
        log.failure(
            "processing request {code} ({name})",
            failure,
            code=request.code,
            name=code_name(request.code),
        )
        return request.response(
            ResponseCode.SYSTEM_ERROR, f"{failure.type.__name__}: {failure.getErrorMessage()}"
        )

    def _respond(
        self, request: RemotingCommand, channel: "RemotingProtocol", response: Optional[RemotingCommand]
    ) -> None:
        if response is None:
            return
        if self.observer is not None:
            self.observer(request.code, response.code)
        if request.flag & FLAG_ONEWAY:
            return
        try:
            channel.send_response(response)
        except Exception:
            # A response that cannot be encoded (not a RemotingCommand, a code out of range for the
            # ROCKETMQ header): the client still gets an answer rather than a timeout.
            log.failure(
                "encoding the response to {code} ({name}) for {peer}",
                code=request.code,
                name=code_name(request.code),
                peer=channel.peer,
            )
            channel.send_response(
                request.response(ResponseCode.SYSTEM_ERROR, "the response could not be encoded")
            )


class RemotingProtocol(Protocol):
    """Frames, dispatches and correlates RocketMQ remoting commands on one connection."""

    def __init__(
        self,
        dispatcher: Optional[RequestDispatcher] = None,
        reactor: Optional[IReactorTime] = None,
        max_frame_length: int = DEFAULT_MAX_FRAME_LENGTH,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.dispatcher = dispatcher
        self.reactor = reactor
        self.max_frame_length = max_frame_length
        self.peer = "?"
        self.connected = False
        self.closing = False
        #: Free-form per-connection state for processors (e.g. the client id a heartbeat announced).
        self.attributes: Dict[str, object] = {}
        self._pending: Dict[int, tuple] = {}
        self._buf = b""
        self._more: List[bytes] = []
        self._more_len = 0
        self._need = 0
        self._lost_callbacks: List[Callable[["RemotingProtocol"], None]] = []
        #: Server side: the factory whose ``ConnectionLimits`` and partial-frame total this connection shares.
        self._budget = None
        #: Server side, with a per-address bound: the client host it counts against.
        self._address: Optional[str] = None
        self._held = 0  # bytes of partial frames counted in the budget's total
        self._spanned = 0  # counts chunks that completed a frame: tells the scan one partial frame from the next
        self._partial_mark = -1
        self._partial_since = 0.0
        self._active = False  # read or wrote since the last scan
        self._last_active = 0.0
        self._output_paused = False
        #: Set by the factory when repeated read-only requests may be answered from memory (the NameServer).
        self.memo: Optional[ResponseMemo] = None
        self._memo_request: Optional[tuple] = None
        #: While a read is handled: the frames written in it, sent together when it ends (one send per read).
        self._out: Optional[List[bytes]] = None
        self._out_len = 0
        self._direct = False

    # -- connection lifecycle ------------------------------------------------------------------------

    def connectionMade(self) -> None:
        self.connected = True
        peer = self.transport.getPeer()
        host = getattr(peer, "host", "?")
        if host.startswith("::ffff:"):
            host = host[7:]
        self.peer = f"{host}:{getattr(peer, 'port', 0)}"
        # As RocketMQ's Netty remoting on both ends: a small response must not wait for the ACK of the last one.
        no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if no_delay is not None:
            no_delay(True)
        # A plain TCP transport whose buffer ``_flush_output`` can see is empty: answers may go straight out.
        self._direct = isinstance(self.transport, tcp.Connection) and all(
            hasattr(self.transport, name)
            for name in ("TLS", "disconnecting", "_writeDisconnected", "dataBuffer", "_tempDataLen", "writeSomeData")
        )
        if self._budget is not None:
            self._last_active = self.reactor.seconds()
            # Above the transport's buffer size of unsent output, stop reading this peer until it drains.
            self.transport.registerProducer(self, True)

    def notify_on_lost(self, callback: Callable[["RemotingProtocol"], None]) -> None:
        """Call ``callback(self)`` once when this connection closes."""
        self._lost_callbacks.append(callback)

    def connectionLost(self, reason: Failure = None) -> None:
        self.connected = False
        self._release()
        pending, self._pending = self._pending, {}
        for d, timer in pending.values():
            if timer.active():
                timer.cancel()
            d.errback(RemotingConnectionError(f"connection to {self.peer} closed"))
        callbacks, self._lost_callbacks = self._lost_callbacks, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                log.failure("connection-lost callback for {peer}", peer=self.peer)

    def close(self) -> None:
        self._flush_output()  # what this read answered before the close still goes out, as Twisted's buffer does
        self.closing = True
        if self.transport is not None:
            self.transport.loseConnection()

    def _reject(self, reason: str) -> None:
        """Bad input: log it, drop this connection, and ignore anything else it sent."""
        log.warn("closing connection from {peer}: {reason}", peer=self.peer, reason=reason)
        self.closing = True
        self._out = None  # aborted: the answers of this read are dropped with Twisted's buffer
        self._buf = b""
        self._more = []
        self._need = 0
        self._release()
        self.transport.abortConnection()

    # -- limits (server side) ------------------------------------------------------------------------

    def _hold(self, n: int) -> None:
        """Count ``n`` more bytes of a partial frame in the budget of all connections; over it, close."""
        budget = self._budget
        total = budget.partial_bytes + n
        if total > budget.limits.partial_frames_max_bytes:
            self._reject(f"partial frames would hold {total} bytes over all connections, more than "
                         f"{budget.limits.setting('partial_frames_max_bytes')} (this one holds {self._held + n})")
            return
        budget.partial_bytes = total
        self._held += n

    def _release(self) -> None:
        if self._held:
            self._budget.partial_bytes -= self._held
            self._held = 0

    def check_timers(self, now: float) -> None:
        """The factory's periodic look: close this connection when idle, or when a frame is too slow to come."""
        if self.closing or not self.connected:
            return
        limits = self._budget.limits
        if self._active and not self._output_paused:
            self._active = False
            self._last_active = now
        elif limits.server_channel_max_idle_time_seconds and (
            now - self._last_active >= limits.server_channel_max_idle_time_seconds
        ):
            unread = " with responses it does not read" if self._output_paused else ""
            self._reject(f"idle for {now - self._last_active:.0f} s{unread} "
                         f"({limits.setting('server_channel_max_idle_time_seconds')})")
            return
        if (self._need or self._buf) and not self._output_paused:
            if self._partial_mark != self._spanned:
                self._partial_mark = self._spanned
                self._partial_since = now
            elif now - self._partial_since >= limits.partial_frame_timeout_seconds:
                have = len(self._buf) + self._more_len
                self._reject(f"a frame is still incomplete after {now - self._partial_since:.0f} s "
                             f"({have} of {len(self._buf) + self._need} bytes; "
                             f"{limits.setting('partial_frame_timeout_seconds')})")
        else:
            self._partial_mark = -1

    @property
    def output_paused(self) -> bool:
        """The peer is not taking what was sent to it: more unsent output than the transport's buffer size
        (64 KiB) is waiting, and has not drained since. Whoever would push more to this peer should not."""
        return self._output_paused

    # IPushProducer, registered on the transport: its unsent output pauses and resumes reading.

    def pauseProducing(self) -> None:
        self._output_paused = True
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self._output_paused = False
        self._active = True  # the output was written
        if self.closing:
            return
        if self._buf and not self._need:
            self.dataReceived(b"")  # the requests left over when reading paused
            if self._output_paused or self.closing:
                return
        self.transport.resumeProducing()

    def stopProducing(self) -> None:
        pass

    # -- framing -------------------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """Handle every frame ``data`` completes, then send what they answered in one write."""
        if self._out is not None:  # re-entered from a processor: the outer call sends
            self._frames(data)
            return
        self._out = []
        self._out_len = 0
        try:
            self._frames(data)
        finally:
            self._flush_output()

    def _frames(self, data: bytes) -> None:
        if self.closing:
            return
        self._active = True
        if self._need:
            self._more.append(data)
            self._more_len += len(data)
            if self._more_len < self._need:
                if self._budget is not None:
                    self._hold(len(data))
                return
            buf = self._buf + b"".join(self._more)
            self._more = []
            self._more_len = 0
            self._need = 0
            if self._held:
                self._release()
        elif self._buf:
            buf = self._buf + data
        else:
            buf = data
        pos = 0
        end = len(buf)
        # Java's frame decoder counts the 4-byte length prefix in its maximum frame length.
        limit = self.max_frame_length - 4
        while end - pos >= 8:
            length, word = _unpack_prefix(buf, pos)
            if length < 4 or length > limit:
                self._reject(f"frame length {length} is outside 4..{limit}")
                return
            frame_end = pos + 4 + length
            if frame_end > end:
                # Wait for the rest without re-joining the buffer on every chunk.
                self._buf = buf[pos:]
                self._need = frame_end - pos - len(self._buf)
                if pos:
                    self._spanned += 1  # a new partial frame, for the scan's timer
                if self._budget is not None:
                    self._hold(len(self._buf))
                return
            hlen = word & 0xFFFFFF
            if hlen > length - 4:
                self._reject(f"header length {hlen} runs past the end of a {length}-byte frame")
                return
            hstart = pos + 8
            header = buf[hstart : hstart + hlen]
            body = buf[hstart + hlen : frame_end]
            memo = self.memo
            if memo is not None:
                answer = memo.answer(word >> 24, header, body)
                if answer is not None:
                    pos = frame_end
                    if self.connected:
                        self._write(answer)
                    if self._output_paused:
                        break
                    continue
            try:
                cmd = decode_frame(word >> 24, header, body)
            except FrameError as e:
                self._reject(str(e))
                return
            pos = frame_end
            if memo is not None:
                self._memo_request = (word >> 24, header, body, cmd)
            try:
                self._command_received(cmd)
            except Exception:
                # Never let one command's failure escape: Twisted would drop the connection and the
                # frames after it in this chunk would be lost.
                log.failure("handling {code} from {peer}", code=cmd.code, peer=self.peer)
            self._memo_request = None
            if self.closing:
                return
            if self._output_paused:
                # The peer is not reading its responses: the rest of this chunk waits for resumeProducing.
                break
        if end - pos >= 4:
            (length,) = _unpack_length(buf, pos)
            if length < 4 or length > limit:
                self._reject(f"frame length {length} is outside 4..{limit}")
                return
        if pos:
            self._spanned += 1
        self._buf = buf[pos:] if pos < end else b""

    def _command_received(self, cmd: RemotingCommand) -> None:
        if cmd.flag & FLAG_RESPONSE:
            entry = self._pending.pop(cmd.opaque, None)
            if entry is None:
                log.debug("response {opaque} from {peer} matches no request", opaque=cmd.opaque, peer=self.peer)
                return
            d, timer = entry
            if timer.active():
                timer.cancel()
            d.callback(cmd)
        elif self.dispatcher is not None:
            self.dispatcher.dispatch(cmd, self)
        elif not cmd.flag & FLAG_ONEWAY:
            self.send_response(
                cmd.response(ResponseCode.REQUEST_CODE_NOT_SUPPORTED, f"request code {cmd.code} is not supported here")
            )

    # -- sending -------------------------------------------------------------------------------------

    def send_response(self, response: RemotingCommand) -> None:
        if self.connected:
            self._active = True
            data = encode_command(response)
            pending = self._memo_request
            if pending is not None and pending[3].opaque == response.opaque:
                self._memo_request = None
                self.memo.remember(pending[0], pending[1], pending[2], pending[3], response, data)  # type: ignore[union-attr]
            self._write(data)

    def _write(self, data: bytes) -> None:
        out = self._out
        if out is None:
            self.transport.write(data)
            return
        out.append(data)
        self._out_len += len(data)
        if self._out_len >= OUTPUT_BATCH_BYTES:
            self._flush_output()  # and the rest of this read goes through ``transport.write`` and its limit

    def _flush_output(self) -> None:
        """Send the output collected during this read: straight to the socket when Twisted holds none of this
        connection's output (no ``startWriting``/``stopWriting`` pair of ``epoll_ctl`` calls, no second reactor
        turn before the answers leave), through ``transport.write`` otherwise and for whatever the socket
        did not take."""
        out = self._out
        self._out = None
        self._out_len = 0
        if not out or not self.connected:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        t = self.transport
        if (
            self._direct
            and not t.TLS
            and t.connected
            and not t.disconnecting
            and not t._writeDisconnected
            and not t.dataBuffer
            and not t._tempDataLen
        ):
            sent = t.writeSomeData(data)
            if type(sent) is int:  # otherwise the connection is lost: ``write`` below lets Twisted find out
                if sent == len(data):
                    return
                data = data[sent:]
        t.write(data)

    def send_request(self, request: RemotingCommand, timeout: float = 3.0) -> defer.Deferred:
        """Send ``request`` and return a Deferred that fires with its response.

        It fails with ``RemotingTimeoutError`` after ``timeout`` seconds, or ``RemotingConnectionError``
        if the connection closes first.
        """
        if not self.connected:
            return defer.fail(RemotingConnectionError(f"connection to {self.peer} is closed"))
        opaque = request.opaque = next_opaque()
        request.flag &= ~FLAG_ONEWAY
        d = defer.Deferred()
        timer = self.reactor.callLater(timeout, self._timed_out, opaque, request.code, timeout)
        self._pending[opaque] = (d, timer)
        self._write(encode_command(request))
        return d

    def send_oneway(self, request: RemotingCommand) -> None:
        """Send ``request`` with the oneway flag: the peer does not answer."""
        if not self.connected:
            raise RemotingConnectionError(f"connection to {self.peer} is closed")
        request.opaque = next_opaque()
        request.flag |= FLAG_ONEWAY
        self._write(encode_command(request))

    def _timed_out(self, opaque: int, code: int, timeout: float) -> None:
        entry = self._pending.pop(opaque, None)
        if entry is not None:
            entry[0].errback(
                RemotingTimeoutError(
                    f"no response to {code_name(code)} from {self.peer} within {timeout:g} s"
                )
            )
