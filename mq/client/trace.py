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

import attrs
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from mq.client.model import ConsumeConcurrentlyStatus, ConsumeOrderlyStatus, SendResult, SendStatus
from mq.common.message import Message, MessageConst, MessageExt
from mq.common.names import GROUP_MAX_LENGTH
from mq.common.topic import TRACE_TOPIC
from mq.common.trace_data import (
    BATCH_ID_SEPARATOR,
    TRACE_INSTANCE_NAME,
    TRACE_PRODUCER_GROUP_PREFIX,
    ConsumeReturnType,
    MessageType,
    TraceBean,
    TraceContext,
    TraceType,
    encode,
    index_keys,
    pub_record,
)
from mq.remoting.codes import SerializeType

log = Logger()

#: Java 4.9.8's bounds: 1 024 queued contexts, a trace message of at most 128 000 bytes flushed at
#: 118 000 characters of records or 500 ms after its first record, a 5 s send timeout.
MAX_PENDING = 1024
MAX_MESSAGE_SIZE = 128_000
BATCH_CHARS = MAX_MESSAGE_SIZE - 10_000
FLUSH_DELAY = 0.5
SEND_TIMEOUT = 5.0
#: A trace message's KEYS (ids and keys of the messages it has records about) hold at most ``KEYS_CHARS``
#: characters: a record that would pass it starts the next trace message, and one record that passes it
#: alone (a batch's Pub naming a thousand ids, a consumed batch of a thousand messages) is split into records
#: of fewer messages, each in a trace message of its own, so every id is a key. ``MAX_KEYS_BYTES`` is the
#: last guard (a broker refuses properties over 32 767 bytes): only non-ASCII keys can reach it.
KEYS_CHARS = 28_000
MAX_KEYS_BYTES = 30_000
#: Trace messages in flight at once (Java: a pool of 10-20 sender threads); beyond it records wait queued.
MAX_IN_FLIGHT = 8
#: Queued records that start a flush at once instead of at the 500 ms mark; such a flush sends trace
#: messages while this many are queued and leaves fewer for the next one (or the 500 ms mark), so that
#: trace messages are full: each costs the client and the broker a few hundred µs beyond its records.
FLUSH_AT = MAX_PENDING // 2
#: Seconds between two log lines about dropped records.
DROP_LOG_INTERVAL = 1.0

_SUCCESS = (ConsumeConcurrentlyStatus.CONSUME_SUCCESS, ConsumeOrderlyStatus.SUCCESS)
_dispatchers = itertools.count()


_time = time.time


def now_ms() -> int:
    return int(_time() * 1000)


_HALF, _DELAY, _NORMAL = int(MessageType.Trans_Msg_Half), int(MessageType.Delay_Msg), int(MessageType.Normal_Msg)
_TAGS, _KEYS = MessageConst.PROPERTY_TAGS, MessageConst.PROPERTY_KEYS
_LEVEL, _PREPARED = MessageConst.PROPERTY_DELAY_TIME_LEVEL, MessageConst.PROPERTY_TRANSACTION_PREPARED
_START_DELIVER = "__STARTDELIVERTIME"
_SEND_OK = SendStatus.SEND_OK
_SEP = MessageConst.KEY_SEPARATOR


def message_type(props: Dict[str, str]) -> int:
    """Java sendKernelImpl's classification of a message with these properties (a MessageType value): delayed
    (a delay level or ``__STARTDELIVERTIME`` present, even on a half message: Java sets it last), half
    message, normal. (5.x's TIMER_* properties leave it normal in Java too.)"""
    if _LEVEL in props or _START_DELIVER in props:
        return _DELAY
    if props.get(_PREPARED) == "true":
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
        self.pending: Deque[Any] = deque()  # a TraceContext, or a send's Pub as ``Tracer.sent`` left it
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
        if self._producer_factory is None:
            # its own client instance (instance name above): trace sends' headers in RocketMQ's binary layout
            self.producer.instance.api.send_serialize_type = SerializeType.ROCKETMQ
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
            # with every send slot taken a flush could send nothing: the next answer flushes (``_done``), and
            # no flush is set and cancelled again every reactor turn while the broker is slow
            if not self._timer_soon and len(self.in_flight) < self.max_in_flight:
                self._schedule(0)
        elif self._timer is None:
            self._schedule(self.flush_delay)
        return True

    def _schedule(self, delay: float) -> None:
        """Flush after ``delay`` s; 0 (the queue reached ``flush_at``): on the next reactor turn, out of the
        business send's call stack."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        # the 500 ms mark sends what is queued; the queue's reaching ``flush_at`` sends full messages only
        self._timer = self.reactor.callLater(delay, self._flush, False, delay != 0)
        self._timer_soon = delay == 0

    def _log_drops(self) -> None:
        self._drop_timer = None
        new = self.dropped - self._dropped_logged
        if new:
            self._dropped_logged = self.dropped
            log.warn("trace: dropped {n} record(s), the queue of {max} was full ({total} dropped in all)",
                     n=new, max=self.max_pending, total=self.dropped)

    # -- sending --------------------------------------------------------------------------------------

    def _flush(self, force: bool = False, partial: bool = True) -> None:
        """Send queued records as trace messages of at most ``batch_chars`` characters and ``KEYS_CHARS`` of
        keys each, while fewer than ``max_in_flight`` are in flight (``force``: all of them, at shutdown).
        Not ``partial`` (the queue reached ``flush_at``): only while ``flush_at`` records are queued, so the
        few left over join the next trace message instead of making one of their own."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._timer_soon = False
        pending = self.pending
        least = 1 if partial or force else self.flush_at
        while len(pending) >= least and (force or len(self.in_flight) < self.max_in_flight):
            parts: List[str] = []
            keys: Dict[str, None] = {}
            size = key_chars = 0
            while pending and size < self.batch_chars:
                item = pending[0]
                need = _keys_bound(item)
                if need > KEYS_CHARS:  # one record about too many messages: split, each part fits alone
                    split = _split(item)
                    if len(split) > 1:
                        pending.popleft()
                        pending.extendleft(reversed(split))
                        continue
                if parts and key_chars + need > KEYS_CHARS:
                    break
                pending.popleft()
                if type(item) is tuple:  # a send's Pub, as the hook left it
                    info, result, end = item
                    text = _pub_text(info, result, end)
                    key_chars += _add_pub_keys(info, result, keys)
                else:
                    text = encode(item)
                    known = len(keys)
                    index_keys(item, keys)
                    added = len(keys) - known
                    if added:
                        key_chars += added + sum(map(len, itertools.islice(reversed(keys), added)))
                parts.append(text)
                size += len(text)
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
            self._flush(partial=False)


def fitting_keys(keys: Dict[str, None], topic: str) -> str:
    """The keys, in order, that fit in ``MAX_KEYS_BYTES``, joined; the rest are left out with a log line
    (records are split so that their keys stay under ``KEYS_CHARS``: only non-ASCII keys can pass it)."""
    joined = _SEP.join(keys)
    if len(joined) <= MAX_KEYS_BYTES // 4 or len(joined.encode("utf-8")) <= MAX_KEYS_BYTES:
        return joined
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
    return _SEP.join(out)


# -- a send's Pub, queued as the hook left it --------------------------------------------------------------
#
# The hook queues ``(info, result, end)``: ``info`` the send's values (group, topic, tags, keys, body length,
# message type, broker, start time, a batch's member keys or None), ``result`` the SendResult, ``end`` the
# time it came. Two tuples a send, nothing encoded: the record is written at flush, off the send's path.


def _pub_text(info: tuple, result: SendResult, end: float) -> str:
    group, topic, tags, keys, body_length, msg_type, store_host, start, _members = info
    timestamp = int(start * 1000)
    return pub_record(timestamp, result.region_id, group, topic, result.msg_id, tags, keys, store_host, body_length,
                      int(end * 1000) - timestamp, msg_type, result.offset_msg_id, result.status is _SEND_OK)


def _add_pub_keys(info: tuple, result: SendResult, out: Dict[str, None]) -> int:
    """Add a Pub's keys to ``out`` (its id or a batch's ids, then the message's or the members' keys); the
    characters added, a separator each."""
    msg_id = result.msg_id
    keys = info[3]
    if info[8] is None and msg_id and BATCH_ID_SEPARATOR not in msg_id and (not keys or _SEP not in keys):
        # the usual send: one id, at most one key (often the same key send after send)
        added = 0
        if msg_id not in out:
            out[msg_id] = None
            added = len(msg_id) + 1
        if keys and keys not in out:
            out[keys] = None
            added += len(keys) + 1
        return added
    added = 0
    if msg_id:
        for k in msg_id.split(BATCH_ID_SEPARATOR) if BATCH_ID_SEPARATOR in msg_id else (msg_id,):
            if k and k not in out:
                out[k] = None
                added += len(k) + 1
    for raw in (keys,) if info[8] is None else info[8]:
        if raw:
            for k in raw.split(_SEP) if _SEP in raw else (raw,):
                if k and k not in out:
                    out[k] = None
                    added += len(k) + 1
    return added


def _keys_bound(item: Any) -> int:
    """At most how many characters of keys a queued record adds to a trace message (no duplicates removed)."""
    if type(item) is tuple:
        info, result, _ = item
        n = len(result.msg_id or "") + len(info[3] or "") + 2
        if info[8] is not None:
            n += sum(len(k) + 1 for k in info[8] if k)
        return n
    return sum(len(b.msg_id or "") + len(b.keys or "") + 2 for b in item.beans)


def _chunks(sizes: List[int]) -> List[range]:
    """Consecutive ranges of indexes whose sizes add up to at most ``KEYS_CHARS`` (at least one each)."""
    out, start, total = [], 0, 0
    for i, n in enumerate(sizes):
        if i > start and total + n > KEYS_CHARS:
            out.append(range(start, i))
            start, total = i, 0
        total += n
    out.append(range(start, len(sizes)))
    return out


def _split(item: Any) -> List[Any]:
    """A record about too many messages for one trace message's keys, as several records about fewer: a
    batch's Pub as Pubs of consecutive members (each with their ids and offset ids, the rest as the batch's:
    a reader finds a member's record by its id either way), a consumed batch's records by message. A record
    about one message with too many keys of its own stays whole (``fitting_keys`` cuts its keys)."""
    if type(item) is tuple:
        info, result, end = item
        ids = (result.msg_id or "").split(BATCH_ID_SEPARATOR)
        members = info[8] if info[8] is not None and len(info[8]) == len(ids) else None
        sizes = [len(i) + 1 + (len(members[n]) + 1 if members and members[n] else 0) for n, i in enumerate(ids)]
        offsets = (result.offset_msg_id or "").split(BATCH_ID_SEPARATOR)
        out = []
        for r in _chunks(sizes):
            part = attrs.evolve(result, msg_id=BATCH_ID_SEPARATOR.join(ids[r.start:r.stop]),
                                offset_msg_id=BATCH_ID_SEPARATOR.join(offsets[r.start:r.stop])
                                if len(offsets) == len(ids) else result.offset_msg_id)
            out.append((info[:8] + (members[r.start:r.stop] if members else None,), part, end))
        return out if len(out) > 1 else [item]
    beans = item.beans
    if len(beans) > 1:
        return [attrs.evolve(item, beans=beans[r.start:r.stop])
                for r in _chunks([len(b.msg_id or "") + len(b.keys or "") + 2 for b in beans])]
    bean = beans[0]
    ids = (bean.msg_id or "").split(BATCH_ID_SEPARATOR)
    if len(ids) < 2:
        return [item]
    offsets = (bean.offset_msg_id or "").split(BATCH_ID_SEPARATOR)
    return [attrs.evolve(item, beans=[attrs.evolve(
        bean, msg_id=BATCH_ID_SEPARATOR.join(ids[r.start:r.stop]),
        offset_msg_id=BATCH_ID_SEPARATOR.join(offsets[r.start:r.stop]) if len(offsets) == len(ids)
        else bean.offset_msg_id)]) for r in _chunks([len(i) + 1 for i in ids])]


class Tracer:
    """The hooks a traced client calls; each queues what it saw (exceptions never escape)."""

    def __init__(self, dispatcher: TraceDispatcher, group: str) -> None:
        self.dispatcher = dispatcher
        self.group = group

    # -- producer -------------------------------------------------------------------------------------

    def sent(self, d: defer.Deferred, msg: Message, broker_addr: str,
             members: Optional[List[Message]] = None) -> defer.Deferred:
        """Record a Pub when ``d`` (one send attempt) fires with a result that allows tracing. For a batch,
        ``msg`` is the batch as sent (its encoded body) and ``members`` its messages: one Pub for them all, as
        Java's hook records a MessageBatch (no tags or keys, the batch body's length, the ids joined by
        commas); the members' keys are added to the trace message's keys (not the record) so they find it.
        The values are kept as they are now (a caller may change the message later), in one tuple."""
        info = self.start(msg, broker_addr, members)
        return d if info is None else d.addCallback(self._pub_done, info)

    def start(self, msg: Message, broker_addr: Optional[str], members: Optional[List[Message]] = None
              ) -> Optional[tuple]:
        """The values of a send's Pub as the attempt starts, for ``done`` (None: not traced)."""
        topic = msg.topic
        if topic == self.dispatcher.trace_topic:
            return None
        props = msg.properties
        if _LEVEL in props or _START_DELIVER in props:
            kind = _DELAY
        else:
            kind = _HALF if props.get(_PREPARED) == "true" else _NORMAL
        return (self.group, topic, props.get(_TAGS), props.get(_KEYS), len(msg.body), kind, broker_addr, _time(),
                [m.properties.get(_KEYS) for m in members] if members else None)

    def done(self, result: SendResult, info: Optional[tuple]) -> None:
        """Queue the Pub of an attempt that got ``result``, if the broker allows tracing (never raises)."""
        try:
            if info is not None and result.region_id and result.trace_on:
                self.dispatcher.append((info, result, _time()))
        except Exception:
            log.failure("trace: recording a send")

    def _pub_done(self, result, info: tuple):
        self.done(result, info)
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
