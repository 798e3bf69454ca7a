"""Message trace for the project's clients (Java ``AsyncTraceDispatcher`` and the trace hooks).

A producer or push consumer made with ``enable_msg_trace=True`` owns one ``TraceDispatcher``. The hooks
(``Tracer.sent``, ``Tracer.consumed``, ``Tracer.ended``) only build a small ``TraceContext`` and append it; the
dispatcher encodes the contexts later, in batches, into trace messages (mq.common.trace_data) and sends them
with its own producer to the trace topic. Its queue is bounded: when full, a record is dropped and counted
(one log line a second says how many), so tracing never blocks or slows a business send; ``shutdown`` sends
what is left. Sends of trace messages that fail are logged and forgotten, as in Java.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from mq.client.model import ConsumeConcurrentlyStatus, ConsumeOrderlyStatus, SendStatus
from mq.common.message import Message, MessageConst, MessageExt
from mq.common.names import GROUP_MAX_LENGTH
from mq.common.topic import TRACE_TOPIC
from mq.common.trace_data import (
    TRACE_INSTANCE_NAME,
    TRACE_PRODUCER_GROUP_PREFIX,
    ConsumeReturnType,
    MessageType,
    TraceBean,
    TraceContext,
    TraceType,
    add_keys,
    encode,
    index_keys,
    pub_record,
)

log = Logger()

#: Java 4.9.8's bounds: 1 024 queued contexts, a trace message of at most 128 000 bytes flushed at
#: 118 000 characters of records or 500 ms after its first record, a 5 s send timeout.
MAX_PENDING = 1024
MAX_MESSAGE_SIZE = 128_000
BATCH_CHARS = MAX_MESSAGE_SIZE - 10_000
FLUSH_DELAY = 0.5
SEND_TIMEOUT = 5.0
#: A trace message's KEYS (ids and keys of the messages it has records about): records stop being added
#: to one trace message once they reach ``KEYS_CHARS``, and a message's KEYS are cut at ``MAX_KEYS_BYTES``
#: (a record holding thousands of ids, a huge batch's Pub): a broker refuses properties over 32 767 bytes.
KEYS_CHARS = 16_000
MAX_KEYS_BYTES = 30_000
#: Trace messages in flight at once (Java: a pool of 10-20 sender threads); beyond it records wait queued.
MAX_IN_FLIGHT = 8
#: Queued contexts that start a flush at once instead of at the 500 ms mark.
FLUSH_AT = MAX_PENDING // 2
#: Seconds between two log lines about dropped records.
DROP_LOG_INTERVAL = 1.0

_SUCCESS = (ConsumeConcurrentlyStatus.CONSUME_SUCCESS, ConsumeOrderlyStatus.SUCCESS)
_dispatchers = itertools.count()


def now_ms() -> int:
    return int(time.time() * 1000)


_HALF, _DELAY, _NORMAL = int(MessageType.Trans_Msg_Half), int(MessageType.Delay_Msg), int(MessageType.Normal_Msg)
_TAGS, _KEYS = MessageConst.PROPERTY_TAGS, MessageConst.PROPERTY_KEYS


def message_type(props: Dict[str, str]) -> int:
    """Java sendKernelImpl's classification of a message with these properties (a MessageType value): delayed
    (a delay level or ``__STARTDELIVERTIME`` present, even on a half message: Java sets it last), half
    message, normal. (5.x's TIMER_* properties leave it normal in Java too.)"""
    if MessageConst.PROPERTY_DELAY_TIME_LEVEL in props or "__STARTDELIVERTIME" in props:
        return _DELAY
    if props.get(MessageConst.PROPERTY_TRANSACTION_PREPARED) == "true":
        return _HALF
    return _NORMAL


class TraceDispatcher:
    """Queues trace contexts and sends them, batched, to the trace topic with its own producer."""

    def __init__(self, reactor, config, host_group: str, kind: str, trace_topic: Optional[str] = None, *,
                 max_pending: int = MAX_PENDING, flush_at: int = FLUSH_AT, flush_delay: float = FLUSH_DELAY,
                 batch_chars: int = BATCH_CHARS, max_in_flight: int = MAX_IN_FLIGHT,
                 producer_factory: Optional[Callable[..., Any]] = None) -> None:
        if max_pending < 1 or flush_at < 1 or max_in_flight < 1 or batch_chars < 1 or flush_delay <= 0:
            raise ValueError("trace dispatcher bounds must be positive")
        self.reactor = reactor
        self.config = config
        self.trace_topic = trace_topic or TRACE_TOPIC
        # The host's group is cut so the name stays a legal group (255 characters): a broker refuses a
        # heartbeat naming a longer one.
        tail = f"-{kind}-{next(_dispatchers)}"
        room = GROUP_MAX_LENGTH - len(TRACE_PRODUCER_GROUP_PREFIX) - 1 - len(tail)
        self.group = f"{TRACE_PRODUCER_GROUP_PREFIX}-{host_group[:room]}{tail}"
        self.max_pending = max_pending
        self.flush_at = min(flush_at, max_pending)
        self.flush_delay = flush_delay
        self.batch_chars = batch_chars
        self.max_in_flight = max_in_flight
        self.pending: Deque[Any] = deque()  # TraceContext or PendingPub
        self.in_flight: Dict[defer.Deferred, None] = {}
        #: Records dropped because the queue was full, since the start; sent and failed trace messages.
        self.dropped = 0
        self.sent_messages = 0
        self.failed_messages = 0
        self._dropped_logged = 0
        self._drop_timer = None
        self._timer = None
        self._timer_soon = False
        self._producer_factory = producer_factory
        self.producer = None
        self.running = False

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self.running:
            return
        if self._producer_factory is not None:
            self.producer = self._producer_factory(self.group)
        else:
            from mq.client.instance import ClientConfig
            from mq.client.producer import Producer

            c = self.config
            own = ClientConfig(namesrv_addr=c.namesrv_addr, client_ip=c.client_ip, credentials=c.credentials,
                               instance_name=f"{TRACE_INSTANCE_NAME}_{c.instance_name or 'DEFAULT'}",
                               request_timeout=c.request_timeout)
            # zlib level 1: a batch of records compresses ~50x at any level, level 1 in a seventh of the time
            self.producer = Producer(self.group, config=own, reactor=self.reactor, send_timeout=SEND_TIMEOUT,
                                     max_message_size=MAX_MESSAGE_SIZE, retry_times=2, compress_level=1)
        self.producer.start()
        self.running = True

    @defer.inlineCallbacks
    def shutdown(self, wait: float = SEND_TIMEOUT):
        """Send every queued record, wait (up to ``wait`` s) for the sends in flight, stop the producer."""
        if not self.running:
            return
        self.running = False
        self._flush(force=True)
        self._log_drops()
        if self.in_flight:
            pending = defer.DeferredList(list(self.in_flight), consumeErrors=True)
            timer = self.reactor.callLater(wait, pending.cancel)
            yield pending.addErrback(lambda f: None)
            if timer.active():
                timer.cancel()
        for t in (self._timer, self._drop_timer):
            if t is not None and t.active():
                t.cancel()
        yield self.producer.shutdown()

    # -- queueing -------------------------------------------------------------------------------------

    def append(self, ctx: Any) -> bool:
        """Queue one context; False (counted, logged within a second) if the queue is full. Never blocks."""
        if not self.running:
            return False
        pending = self.pending
        if len(pending) >= self.max_pending:
            self.dropped += 1
            if self._drop_timer is None:
                self._drop_timer = self.reactor.callLater(DROP_LOG_INTERVAL, self._log_drops)
            return False
        pending.append(ctx)
        if len(pending) >= self.flush_at:
            if not self._timer_soon:
                self._schedule(0)
        elif self._timer is None:
            self._schedule(self.flush_delay)
        return True

    def _schedule(self, delay: float) -> None:
        """Flush after ``delay`` s; 0 (the queue reached ``flush_at``): on the next reactor turn, out of the
        business send's call stack."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = self.reactor.callLater(delay, self._flush)
        self._timer_soon = delay == 0

    def _log_drops(self) -> None:
        self._drop_timer = None
        new = self.dropped - self._dropped_logged
        if new:
            self._dropped_logged = self.dropped
            log.warn("trace: dropped {n} record(s), the queue of {max} was full ({total} dropped in all)",
                     n=new, max=self.max_pending, total=self.dropped)

    # -- sending --------------------------------------------------------------------------------------

    def _flush(self, force: bool = False) -> None:
        """Send queued records as trace messages of at most ``batch_chars`` characters each, while fewer
        than ``max_in_flight`` are in flight (``force``: all of them, at shutdown)."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._timer_soon = False
        pending = self.pending
        while pending and (force or len(self.in_flight) < self.max_in_flight):
            parts: List[str] = []
            keys: Dict[str, None] = {}
            size = key_chars = 0
            while pending and size < self.batch_chars and key_chars < KEYS_CHARS:
                item = pending.popleft()
                known = len(keys)
                if type(item) is PendingPub:
                    text = item.text()
                    item.add_keys(keys)
                else:
                    text = encode(item)
                    index_keys(item, keys)
                parts.append(text)
                size += len(text)
                added = len(keys) - known
                if added:
                    key_chars += added + sum(map(len, itertools.islice(reversed(keys), added)))
            self._send("".join(parts), keys)
        if pending and self._timer is None:
            self._schedule(self.flush_delay)

    def _send(self, text: str, keys: Dict[str, None]) -> None:
        body = text.encode("utf-8")
        msg = Message(self.trace_topic, body)
        if keys:
            msg.keys = fitting_keys(keys, self.trace_topic)
        try:
            d = self.producer.send(msg, SEND_TIMEOUT)
        except Exception as e:  # a producer refusing outright (closed, too large): the batch is lost
            d = defer.fail(e)
        self.in_flight[d] = None
        d.addCallbacks(self._sent, self._failed, errbackArgs=(len(body),))
        d.addBoth(self._done, d)

    def _sent(self, _result) -> None:
        self.sent_messages += 1

    def _failed(self, failure, size: int) -> None:
        self.failed_messages += 1
        log.warn("trace: sending {size} bytes of trace records to {topic} failed: {e}", size=size,
                 topic=self.trace_topic, e=failure.value)

    def _done(self, _result, d: defer.Deferred) -> None:
        self.in_flight.pop(d, None)
        if self.running and len(self.pending) >= self.flush_at:
            self._flush()


def fitting_keys(keys: Dict[str, None], topic: str) -> List[str]:
    """The keys, in order, that fit in ``MAX_KEYS_BYTES``; the rest are left out with a log line (only a
    record about thousands of messages, a huge batch's Pub, is that long: its first ids still find it)."""
    out: List[str] = []
    room = MAX_KEYS_BYTES
    for k in keys:
        room -= len(k.encode("utf-8")) + 1
        if room < 0:
            log.warn("trace: {n} of {total} keys of a trace message to {topic} left out (KEYS would pass "
                     "{max} bytes); those messages' records are not found by id", n=len(keys) - len(out),
                     total=len(keys), topic=topic, max=MAX_KEYS_BYTES)
            break
        out.append(k)
    return out


class PendingPub:
    """A Pub record waiting in the queue: the few values a send leaves, encoded only when flushed (a full
    TraceContext costs several times more on the send path)."""

    __slots__ = ("group", "topic", "tags", "keys", "body_length", "msg_type", "store_host", "timestamp",
                 "cost_time", "region_id", "msg_id", "offset_msg_id", "success", "member_keys")

    def __init__(self, group: str, topic: str, tags: Optional[str], keys: Optional[str], body_length: int,
                 msg_type: int, store_host: str, timestamp: int) -> None:
        self.group, self.topic, self.tags, self.keys = group, topic, tags, keys
        self.body_length, self.msg_type, self.store_host, self.timestamp = body_length, msg_type, store_host, timestamp
        self.cost_time = 0
        self.region_id = self.msg_id = self.offset_msg_id = self.member_keys = None
        self.success = False

    def text(self) -> str:
        return pub_record(self.timestamp, self.region_id, self.group, self.topic, self.msg_id, self.tags, self.keys,
                          self.store_host, self.body_length, self.cost_time, self.msg_type, self.offset_msg_id,
                          self.success)

    def add_keys(self, out: Dict[str, None]) -> None:
        add_keys(self.msg_id, self.keys, out)
        if self.member_keys:
            add_keys(None, self.member_keys, out)


class Tracer:
    """The hooks a traced client calls; each builds a context and appends it (exceptions never escape)."""

    def __init__(self, dispatcher: TraceDispatcher, group: str) -> None:
        self.dispatcher = dispatcher
        self.group = group

    # -- producer -------------------------------------------------------------------------------------

    def sent(self, d: defer.Deferred, msg: Message, broker_addr: str,
             members: Optional[List[Message]] = None) -> defer.Deferred:
        """Record a Pub when ``d`` (one send attempt) fires with a result that allows tracing. For a batch,
        ``msg`` is the batch as sent (its encoded body) and ``members`` its messages: one Pub for them all, as
        Java's hook records a MessageBatch (no tags or keys, the batch body's length, the ids joined by
        commas); the members' keys are added to the trace message's keys (not the record) so they find it."""
        if msg.topic == self.dispatcher.trace_topic:
            return d
        props = msg.properties
        pub = PendingPub(self.group, msg.topic, props.get(_TAGS), props.get(_KEYS), len(msg.body),
                         message_type(props), broker_addr, now_ms())
        if members:
            found = [m.properties.get(MessageConst.PROPERTY_KEYS) for m in members]
            pub.member_keys = MessageConst.KEY_SEPARATOR.join(k for k in found if k) or None
        return d.addCallback(self._pub_done, pub)

    def _pub_done(self, result, pub: "PendingPub"):
        try:
            if result.region_id and result.trace_on:
                pub.cost_time = now_ms() - pub.timestamp
                pub.region_id, pub.msg_id, pub.offset_msg_id = result.region_id, result.msg_id, result.offset_msg_id
                pub.success = result.status is SendStatus.SEND_OK
                self.dispatcher.append(pub)
        except Exception:
            log.failure("trace: recording a send")
        return result

    def ended(self, msg: Message, msg_id: str, broker_addr: Optional[str], state: str, transaction_id: Optional[str],
              region_id: Optional[str], from_check: bool) -> None:
        """Record an EndTransaction (commit, rollback or unknown) of a half message."""
        try:
            bean = TraceBean(msg_id=msg_id, topic=msg.topic, tags=msg.tags,
                             keys=msg.properties.get(MessageConst.PROPERTY_KEYS), store_host=broker_addr,
                             msg_type=MessageType.Trans_msg_Commit, transaction_id=transaction_id,
                             transaction_state=state, from_transaction_check=from_check)
            self.dispatcher.append(TraceContext(TraceType.EndTransaction, now_ms(), region_id, self.group,
                                                beans=[bean]))
        except Exception:
            log.failure("trace: recording an end of transaction")

    # -- push consumer --------------------------------------------------------------------------------

    def consumed(self, msgs: List[MessageExt], call: Callable[[], defer.Deferred]) -> defer.Deferred:
        """Record SubBefore, run the listener (``call``), record SubAfter with its outcome; the listener's
        result (or failure) passes through unchanged."""
        before = self._before(msgs)
        d = call()
        if before is None:
            return d

        def after(result):
            if isinstance(result, Failure):
                code, ok = ConsumeReturnType.EXCEPTION, False
            elif result is None:  # Java's RETURNNULL; the push consumer counts None as success
                code, ok = ConsumeReturnType.RETURNNULL, True
            elif result in _SUCCESS:
                code, ok = ConsumeReturnType.SUCCESS, True
            else:
                code, ok = ConsumeReturnType.FAILED, False
            self._after(before, code, ok)
            return result

        return d.addBoth(after)

    def polled(self, msgs: List[MessageExt]) -> None:
        """A lite pull consumer's ``poll`` handed ``msgs`` over: SubBefore and at once SubAfter, successful
        (Java's DefaultLitePullConsumerImpl.poll runs both hooks back to back with CONSUME_SUCCESS)."""
        before = self._before(msgs)
        if before is not None:
            self._after(before, ConsumeReturnType.SUCCESS, True)

    def _before(self, msgs: List[MessageExt]) -> Optional[TraceContext]:
        """Queue the SubBefore of the messages not marked ``TRACE_ON=false``; it, or None (none to trace)."""
        try:
            traced = [m for m in msgs if m.properties.get(MessageConst.PROPERTY_TRACE_SWITCH) != "false"]
            if not traced:
                return None
            before = TraceContext(TraceType.SubBefore, now_ms(), traced[0].properties.get(
                MessageConst.PROPERTY_MSG_REGION), self.group, request_id=uuid.uuid4().hex.upper(),
                beans=[TraceBean(msg_id=m.unique_key or m.msg_id, topic=m.topic, tags=m.tags,
                                 keys=m.properties.get(MessageConst.PROPERTY_KEYS), body_length=m.store_size,
                                 retry_times=m.reconsume_times, store_host=_host(m.store_host))
                       for m in traced])
            self.dispatcher.append(before)
            return before
        except Exception:
            log.failure("trace: recording a consume")
            return None

    def _after(self, before: TraceContext, code: ConsumeReturnType, ok: bool) -> None:
        try:
            end = now_ms()
            self.dispatcher.append(TraceContext(
                TraceType.SubAfter, end, before.region_id, self.group, (end - before.timestamp) // len(before.beans),
                ok, before.request_id, int(code), beans=before.beans))
        except Exception:
            log.failure("trace: recording a consume's outcome")


def _host(host) -> str:
    return f"{host[0]}:{host[1]}"


def make_tracer(enable: bool, reactor, config, group: str, kind: str, trace_topic: Optional[str]) -> Optional[Tracer]:
    """The tracer of a client made with ``enable_msg_trace`` (None without); started by ``start_tracer``."""
    if not enable:
        return None
    return Tracer(TraceDispatcher(reactor, config, group, kind, trace_topic), group)
