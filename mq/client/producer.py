"""``Producer``: sends messages to any RocketMQ 4.x cluster (Java ``DefaultMQProducer``).

Every send returns a Deferred of a ``SendResult``. ``send`` (and ``send_async``, its callback form) retries
``retry_times`` (2) more times, on another broker, when a broker fails or answers with one of the codes Java
retries on; ``send_oneway`` sends once and does not wait for an answer; ``send_batch`` sends many messages of
one topic in one request. Queues are chosen round robin, optionally avoiding brokers that failed or answered
slowly (``send_latency_fault_enable``), or by a selector for ordered messages (``selector`` + ``arg``, e.g.
``select_by_hash`` with an order id). Bodies of at least ``compress_over`` bytes are sent zlib-compressed.
``request`` sends a message and waits for its reply; ``send_reply`` sends a reply built by ``create_reply``
(``mq.client.request_reply``).
``enable_msg_trace`` records each send in the message trace (``mq.client.trace``, docs/trace.md).
"""

from __future__ import annotations

import time
import zlib
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

from twisted.internet import defer
from twisted.logger import Logger

from mq.acl.signing import Credentials
from mq.client.instance import ClientConfig, ClientInstance, get_instance, make_client_config
from mq.client.latency_fault import FaultStrategy
from mq.client.model import MessageQueue, MQBrokerError, MQClientError, NoRouteError, SendResult
from mq.client.request_reply import CORRELATION_ID, REPLY_TO_CLIENT, TTL, is_reply, new_correlation_id
from mq.client.selector import Selector
from mq.client.simple import new_unique_key
from mq.client.trace import make_tracer
from mq.common.broker_headers import SendMessageRequestHeader
from mq.common.message import Message, MessageConst, MessageExt, MessageSysFlag, properties_to_string
from mq.common.message_batch import encode_batch
from mq.common.mixall import DEFAULT_TOPIC, is_retry_topic
from mq.common.names import topic_error
from mq.common.route import PERM_WRITE, TopicRouteData
from mq.common.topic import NOT_ALLOWED_SEND_TOPICS
from mq.remoting.codes import ResponseCode
from mq.remoting.protocol import RemotingError

log = Logger()

#: Response codes after which a send is retried on another broker (Java DefaultMQProducerImpl).
RETRY_RESPONSE_CODES = frozenset({
    ResponseCode.TOPIC_NOT_EXIST, ResponseCode.SERVICE_NOT_AVAILABLE, ResponseCode.SYSTEM_ERROR,
    ResponseCode.NO_PERMISSION, ResponseCode.NO_BUYER_ID, ResponseCode.NOT_IN_CURRENT_UNIT,
})
MAX_MESSAGE_SIZE = 4 * 1024 * 1024

_UNIQ = MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX
_WAIT = MessageConst.PROPERTY_WAIT_STORE_MSG_OK


def make_message(topic: str, body: Union[bytes, str], tags: Optional[str] = None,
                 keys: Union[str, Sequence[str], None] = None, delay_level: int = 0,
                 properties: Optional[Dict[str, str]] = None, flag: int = 0, deliver_time_ms: Optional[int] = None,
                 delay_ms: Optional[int] = None) -> Message:
    """A message with the usual attributes set: tags, keys (a string or a list), delay level, properties, and
    a timer: ``deliver_time_ms`` (epoch ms) or ``delay_ms`` (docs/timer.md; a RocketMQ 5.x or mq broker)."""
    msg = Message(topic, body.encode("utf-8") if isinstance(body, str) else bytes(body), flag, dict(properties or {}))
    if tags:
        msg.tags = tags
    if keys:
        msg.keys = keys
    if delay_level:
        msg.delay_time_level = delay_level
    if deliver_time_ms is not None:
        msg.deliver_time_ms = deliver_time_ms
    if delay_ms is not None:
        msg.delay_time_ms = delay_ms
    return msg


class TopicPublishInfo:
    """The writable queues of a topic and the running counter that spreads sends over them."""

    __slots__ = ("queues", "counter", "from_default")

    def __init__(self, queues: List[MessageQueue], from_default: bool = False) -> None:
        self.queues = queues
        self.counter = int(time.time() * 1000) & 0xFFFF  # Java starts at a random index
        self.from_default = from_default


def publish_queues(topic: str, route: TopicRouteData, max_queues: Optional[int] = None) -> List[MessageQueue]:
    """The writable queues of ``route`` (brokers with a master only), named for ``topic``; with
    ``max_queues``, each broker counts at most that many (a route of TBW102 for a topic not created yet)."""
    masters = {bd.broker_name for bd in route.broker_datas if 0 in bd.broker_addrs}
    out = []
    for qd in sorted(route.queue_datas, key=lambda q: q.broker_name):
        if not qd.perm & PERM_WRITE or qd.broker_name not in masters:
            continue
        n = qd.write_queue_nums if max_queues is None else min(max_queues, qd.write_queue_nums)
        out.extend(MessageQueue(topic, qd.broker_name, i) for i in range(n))
    return out


class Producer:
    """A producer of one producer group. ``start()`` it, send, then ``shutdown()`` (a Deferred)."""

    def __init__(self, group: str, namesrv_addr: Union[str, Sequence[str], None] = None, *,
                 instance_name: Optional[str] = None, config: Optional[ClientConfig] = None, reactor=None,
                 send_timeout: float = 3.0, retry_times: int = 2, retry_another_broker_when_not_store_ok: bool = False,
                 send_latency_fault_enable: bool = False, compress_over: int = 4096, compress_level: int = 5,
                 max_message_size: int = MAX_MESSAGE_SIZE, default_topic_queue_nums: int = 4,
                 credentials: Optional[Credentials] = None, enable_msg_trace: bool = False,
                 trace_topic: Optional[str] = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.group = group
        self.reactor = reactor
        self.config = make_client_config(config, namesrv_addr, instance_name, credentials)
        if config is not None and namesrv_addr is not None:
            self.config.namesrv_addr = namesrv_addr
        self.send_timeout = send_timeout
        self.retry_times = retry_times
        self.retry_another_broker_when_not_store_ok = retry_another_broker_when_not_store_ok
        self.compress_over = compress_over
        self.compress_level = compress_level
        self.max_message_size = max_message_size
        self.default_topic_queue_nums = default_topic_queue_nums
        self.fault = FaultStrategy(reactor, send_latency_fault_enable)
        self.publish_info: Dict[str, TopicPublishInfo] = {}
        self.instance: Optional[ClientInstance] = None
        self.running = False
        #: Message trace (``enable_msg_trace``, to ``trace_topic`` or RMQ_SYS_TRACE_TOPIC): mq.client.trace
        self.tracer = make_tracer(enable_msg_trace, reactor, self.config, group, "PRODUCER", trace_topic)

    # -- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> None:
        """Join the client instance (one per client id) and start its timers."""
        if self.running:
            return
        self.instance = get_instance(self.config, self.reactor)
        self.instance.register_producer(self)
        self.running = True
        if self.tracer is not None:
            self.tracer.dispatcher.start()

    def shutdown(self) -> defer.Deferred:
        """Unregister from every broker; the instance closes its connections when its last client leaves."""
        if not self.running:
            return defer.succeed(None)
        self.running = False
        if self.tracer is None:
            return self.instance.unregister(producer_group=self.group)
        d = self.tracer.dispatcher.shutdown()  # sends the records still queued
        return d.addBoth(lambda _: self.instance.unregister(producer_group=self.group))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} group={self.group} running={self.running}>"

    # -- routes (called by the instance) ----------------------------------------------------------------

    def publish_topics(self) -> List[str]:
        return list(self.publish_info)

    def on_route(self, topic: str, route: TopicRouteData) -> None:
        info = self.publish_info.get(topic)
        if info is not None:
            queues = publish_queues(topic, route)
            if queues:
                info.queues = queues
                info.from_default = False

    def publish_info_of(self, topic: str) -> defer.Deferred:
        """The topic's TopicPublishInfo, asking the NameServer if it is not cached (falling back to the
        route of TBW102 for a topic the broker will create on the first send)."""
        info = self.publish_info.get(topic)
        if info is not None and info.queues:
            return defer.succeed(info)
        return self._fetch_publish_info(topic)

    @defer.inlineCallbacks
    def _fetch_publish_info(self, topic: str):
        route = yield self.instance.update_route(topic)
        queues = publish_queues(topic, route) if route is not None else []
        from_default = False
        if not queues:
            default = yield self.instance.update_route(DEFAULT_TOPIC)
            if default is not None:
                queues = publish_queues(topic, default, self.default_topic_queue_nums)
                from_default = True
        if not queues:
            raise NoRouteError(f"no route for topic {topic}: the NameServer does not know it and no broker "
                               f"can create it")
        info = self.publish_info.get(topic)
        if info is None:
            info = self.publish_info[topic] = TopicPublishInfo(queues, from_default)
        else:
            info.queues, info.from_default = queues, from_default
        return info

    def fetch_publish_queues(self, topic: str) -> defer.Deferred:
        """The writable queues of a topic (for choosing a queue yourself)."""
        return self.publish_info_of(topic).addCallback(lambda info: list(info.queues))

    # -- checks ----------------------------------------------------------------------------------------

    def _check(self, msg: Message) -> None:
        if not self.running:
            raise MQClientError(f"the producer {self.group} is not running (call start())")
        if not isinstance(msg, Message):
            raise TypeError(f"expected a Message, got {type(msg).__name__}")
        error = topic_error(msg.topic)
        if error:
            raise MQClientError(f"cannot send to {msg.topic!r}: {error}")
        if msg.topic in NOT_ALLOWED_SEND_TOPICS:
            raise MQClientError(f"sending to the system topic {msg.topic} is not allowed")
        if not msg.body:
            raise MQClientError("the message body is empty")
        if len(msg.body) > self.max_message_size:
            raise MQClientError(f"the message body is {len(msg.body)} bytes, more than {self.max_message_size}")

    # -- the request -----------------------------------------------------------------------------------

    def _header(self, msg: Message, mq: MessageQueue, sys_flag: int, batch: bool = False) -> SendMessageRequestHeader:
        props = msg.properties
        reconsume = max_reconsume = None
        if is_retry_topic(mq.topic):
            rt = props.pop(MessageConst.PROPERTY_RECONSUME_TIME, None)
            mr = props.pop(MessageConst.PROPERTY_MAX_RECONSUME_TIMES, None)
            reconsume = int(rt) if rt else None
            max_reconsume = int(mr) if mr else None
        return SendMessageRequestHeader(
            producer_group=self.group, topic=mq.topic, default_topic=DEFAULT_TOPIC,
            default_topic_queue_nums=self.default_topic_queue_nums, queue_id=mq.queue_id, sys_flag=sys_flag,
            born_timestamp=int(time.time() * 1000), flag=msg.flag, properties=properties_to_string(props),
            reconsume_times=reconsume or 0, unit_mode=False, max_reconsume_times=max_reconsume, batch=batch)

    def _prepare(self, msg: Message):
        """(body to send, sys flag, uniq id) of a single message; sets UNIQ_KEY and WAIT as Java does."""
        props = msg.properties
        uniq = props.get(_UNIQ)
        if uniq is None:
            uniq = props[_UNIQ] = new_unique_key()
        if _WAIT not in props:
            props[_WAIT] = "true"
        body = msg.body
        sys_flag = 0
        if len(body) >= self.compress_over:
            body = zlib.compress(body, self.compress_level)
            sys_flag = MessageSysFlag.COMPRESSED_FLAG
        if props.get(MessageConst.PROPERTY_TRANSACTION_PREPARED) == "true":
            sys_flag |= MessageSysFlag.TRANSACTION_PREPARED_TYPE
        return body, sys_flag, uniq

    def _send_to(self, mq: MessageQueue, msg: Message, timeout: float, prepared=None,
                 looked_up: bool = False, traced: bool = True) -> defer.Deferred:
        """One attempt; ``traced``: with its Pub recorded by the tracer's hook (the retry loop records it
        itself, in the callback it has anyway: a Deferred callback is ~1 µs, half of what tracing a send
        costs the sender)."""
        addr = self.instance.master_addr(mq.broker_name)
        if addr is None and not looked_up:
            # a queue chosen by the caller on a broker not seen yet: ask for the route first (as Java's
            # sendKernelImpl does), then send or fail
            d = self.instance.update_route(mq.topic)
            return d.addCallback(lambda _: self._send_to(mq, msg, timeout, prepared, True, traced))
        if addr is None:
            return defer.fail(MQClientError(f"no master address for broker {mq.broker_name}"))
        body, sys_flag, uniq = prepared or self._prepare(msg)
        header = self._header(msg, mq, sys_flag)
        d = self.instance.api.send(addr, header, body, mq, uniq, timeout, reply=is_reply(msg))
        return d if self.tracer is None or not traced else self.tracer.sent(d, msg, addr)

    # -- sends -----------------------------------------------------------------------------------------

    def send(self, msg: Message, timeout: Optional[float] = None, *, selector: Optional[Selector] = None,
             arg: Any = None, queue: Optional[MessageQueue] = None) -> defer.Deferred:
        """Send and wait for the broker: a Deferred of the ``SendResult``.

        Without ``selector`` or ``queue``, a failed attempt is retried on another broker up to
        ``retry_times`` times within ``timeout`` seconds in all. With ``selector(queues, msg, arg)`` or an
        explicit ``queue`` the message goes to exactly that queue, once (ordered messages must not move).
        """
        try:
            self._check(msg)
        except Exception as e:
            return defer.fail(e)
        timeout = timeout or self.send_timeout
        if queue is not None:
            return self._send_to(queue, msg, timeout)
        info = self.publish_info.get(msg.topic)
        if info is not None and info.queues:
            return self._send_routed(info, msg, timeout, selector, arg)
        return self.publish_info_of(msg.topic).addCallback(self._send_routed, msg, timeout, selector, arg)

    def _send_routed(self, info: TopicPublishInfo, msg: Message, timeout: float, selector, arg) -> defer.Deferred:
        if selector is not None:
            mq = selector(info.queues, msg, arg)
            return self._send_to(mq, msg, timeout)
        return self._send_with_retries(info, msg, timeout, 1 + self.retry_times)

    def _send_with_retries(self, info: TopicPublishInfo, msg: Message, timeout: float, times: int,
                           send: Optional[Callable[[MessageQueue, float], defer.Deferred]] = None) -> defer.Deferred:
        clock = self.reactor.seconds
        begin = clock()
        result = defer.Deferred()
        state: List[Any] = [0, None, None]  # attempts made, last broker, last error
        prepared = self._prepare(msg) if send is None else None
        tracer = None  # a batch's ``send`` records its Pub with the tracer's hook
        if send is None:
            tracer = self.tracer

            def send(mq: MessageQueue, left: float) -> defer.Deferred:
                return self._send_to(mq, msg, left, prepared, traced=False)

        def attempt() -> None:
            elapsed = clock() - begin
            if state[0] >= times or elapsed >= timeout:
                err = state[2]
                why = "timed out" if elapsed >= timeout else f"failed {state[0]} times"
                result.errback(MQClientError(f"send to {msg.topic} {why}: {err}",
                                             getattr(err, "code", None)))
                return
            state[0] += 1
            info.counter += 1
            mq = self.fault.select(info.queues, info.counter, state[1])
            t0 = clock()
            if tracer is None:
                d = send(mq, timeout - elapsed)
                d.addCallbacks(ok, bad, callbackArgs=(mq, t0), errbackArgs=(mq, t0))
            else:  # the Pub's values as the attempt starts, recorded with its result
                pub = tracer.start(msg, self.instance.master_addr(mq.broker_name))
                d = send(mq, timeout - elapsed)
                d.addCallbacks(ok, bad, callbackArgs=(mq, t0, pub), errbackArgs=(mq, t0))

        def ok(res: SendResult, mq: MessageQueue, t0: float, pub: Optional[tuple] = None) -> None:
            if pub is not None:
                tracer.done(res, pub)
            self.fault.update(mq.broker_name, (clock() - t0) * 1000.0, False)
            if res.status != "SEND_OK" and self.retry_another_broker_when_not_store_ok and state[0] < times:
                state[1], state[2] = mq.broker_name, MQClientError(f"stored with status {res.status.value}")
                attempt()
                return
            result.callback(res)

        def bad(f, mq: MessageQueue, t0: float) -> None:
            err = f.value
            self.fault.update(mq.broker_name, (clock() - t0) * 1000.0, True)
            retriable = isinstance(err, (RemotingError, NoRouteError)) or (
                isinstance(err, MQBrokerError) and err.code in RETRY_RESPONSE_CODES) or (
                type(err) is MQClientError)
            state[1], state[2] = mq.broker_name, err
            if not retriable:
                result.errback(f)
                return
            log.info("send to {broker} failed ({error}); retrying", broker=mq.broker_name, error=err)
            self._refresh_soon(msg.topic)
            attempt()

        attempt()
        return result

    def _refresh_soon(self, topic: str) -> None:
        """After a failure: ask the NameServer at once (in the background) for the topic's route."""
        self.instance.update_route(topic).addErrback(lambda f: None)

    def send_async(self, msg: Message, on_success: Callable[[SendResult], Any],
                   on_exception: Optional[Callable[[Exception], Any]] = None, timeout: Optional[float] = None,
                   **kwargs) -> None:
        """Send without waiting: ``on_success(result)`` or ``on_exception(error)`` is called later."""
        d = self.send(msg, timeout, **kwargs)

        def failed(f):
            if on_exception is not None:
                on_exception(f.value)
            else:
                log.failure("async send to {topic}", f, topic=msg.topic)

        d.addCallbacks(on_success, failed)
        d.addErrback(lambda f: log.failure("send callback", f))

    def cancel_timer(self, sent: SendResult, deliver_time_ms: int, timeout: Optional[float] = None) -> defer.Deferred:
        """Cancel a timer message not yet delivered (RocketMQ 5.x ``TIMER_DEL_UNIQKEY``, docs/timer.md): ``sent``
        is its send's result and ``deliver_time_ms`` its delivery time (the cancellation must fall in the same
        precision window). Sent to the queue the timer went to, so to the broker that holds it; a Deferred of
        the cancellation's SendResult (a time already past is refused with MESSAGE_ILLEGAL)."""
        mq = sent.message_queue
        msg = make_message(mq.topic, b"0", deliver_time_ms=deliver_time_ms,
                           properties={MessageConst.PROPERTY_TIMER_DEL_UNIQKEY: f"{mq.topic}+{sent.msg_id}"})
        return self.send(msg, timeout, queue=mq)

    def send_oneway(self, msg: Message, *, selector: Optional[Selector] = None, arg: Any = None,
                    queue: Optional[MessageQueue] = None) -> defer.Deferred:
        """Send once without an answer from the broker; the Deferred fires when the request is written."""
        try:
            self._check(msg)
        except Exception as e:
            return defer.fail(e)

        def go(info: Optional[TopicPublishInfo]) -> defer.Deferred:
            if queue is not None:
                mq = queue
            elif selector is not None:
                mq = selector(info.queues, msg, arg)
            else:
                info.counter += 1
                mq = self.fault.select(info.queues, info.counter, None)
            addr = self.instance.master_addr(mq.broker_name)
            if addr is None:
                raise MQClientError(f"no master address for broker {mq.broker_name}")
            body, sys_flag, _ = self._prepare(msg)
            return self.instance.api.send_oneway(addr, self._header(msg, mq, sys_flag), body, reply=is_reply(msg))

        if queue is not None:
            return defer.maybeDeferred(go, None)
        return self.publish_info_of(msg.topic).addCallback(go)

    def send_batch(self, messages: Iterable[Message], timeout: Optional[float] = None, *,
                   queue: Optional[MessageQueue] = None) -> defer.Deferred:
        """Send messages of one topic as one SEND_BATCH_MESSAGE; ``SendResult.msg_id`` joins their ids with
        commas. Batches are not compressed and may not hold delayed messages or retry-topic messages."""
        msgs = list(messages)
        try:
            if not msgs:
                raise MQClientError("the batch is empty")
            topic = msgs[0].topic
            for m in msgs:
                self._check(m)
                if m.topic != topic:
                    raise MQClientError("every message of a batch must have the same topic")
                if m.delay_time_level > 0:
                    raise MQClientError("delayed messages cannot be sent in a batch")
                if is_retry_topic(m.topic):
                    raise MQClientError("retry-topic messages cannot be sent in a batch")
        except Exception as e:
            return defer.fail(e)
        uniq_ids = []
        items = []
        for m in msgs:
            props = m.properties
            uniq = props.get(_UNIQ)
            if uniq is None:
                uniq = props[_UNIQ] = new_unique_key()
            props.setdefault(_WAIT, "true")
            uniq_ids.append(uniq)
            items.append((m.flag, m.body, properties_to_string(props)))
        body = encode_batch(items)
        if len(body) > self.max_message_size:
            return defer.fail(MQClientError(f"the batch is {len(body)} bytes, more than {self.max_message_size}"))
        batch_msg = Message(topic, body, 0, {_WAIT: msgs[0].properties.get(_WAIT, "true")})
        joined = ",".join(uniq_ids)
        timeout = timeout or self.send_timeout

        def send(mq: MessageQueue, left: float) -> defer.Deferred:
            addr = self.instance.master_addr(mq.broker_name)
            if addr is None:
                return defer.fail(MQClientError(f"no master address for broker {mq.broker_name}"))
            header = self._header(batch_msg, mq, 0, batch=True)
            d = self.instance.api.send(addr, header, body, mq, joined, left, batch=True)
            return d if self.tracer is None else self.tracer.sent(d, batch_msg, addr, msgs)

        if queue is not None:
            return send(queue, timeout)
        return self.publish_info_of(topic).addCallback(
            lambda info: self._send_with_retries(info, batch_msg, timeout, 1 + self.retry_times, send))

    # -- request-reply ---------------------------------------------------------------------------------

    def request(self, msg: Message, timeout: Optional[float] = None, *, selector: Optional[Selector] = None,
                arg: Any = None, queue: Optional[MessageQueue] = None) -> defer.Deferred:
        """Send ``msg`` as a request and wait for its reply: a Deferred of the reply ``MessageExt``.

        Sets ``CORRELATION_ID`` (a fresh UUID), ``REPLY_TO_CLIENT`` (this client id) and ``TTL`` (``timeout``
        in ms), sends like ``send`` (``selector``/``arg`` or ``queue`` as there), and fires when a broker pushes
        the reply with that correlation id. ``timeout`` (seconds, default ``send_timeout``) covers the send and
        the wait: then ``RequestTimeoutError``. A failed send fails with ``MQClientError``. Cancelling the
        Deferred forgets the request.
        """
        try:
            self._check(msg)
        except Exception as e:
            return defer.fail(e)
        timeout = timeout or self.send_timeout
        instance = self.instance
        props = msg.properties
        cid = props[CORRELATION_ID] = new_correlation_id()
        props[REPLY_TO_CLIENT] = instance.client_id
        props[TTL] = str(int(timeout * 1000))
        reply = instance.replies.expect(cid, msg.topic, timeout)
        clock = self.reactor.seconds
        begin = clock()
        if queue is not None or msg.topic in self.publish_info:
            d = defer.succeed(None)
        else:
            # First request to this topic: learn its brokers and make sure each one knows this producer
            # group before the reply comes (Java's prepareSendRequest).
            d = self.publish_info_of(msg.topic).addCallback(lambda _: instance.send_heartbeats())
        d.addCallback(lambda _: self.send(msg, max(0.001, timeout - (clock() - begin)), selector=selector, arg=arg,
                                          queue=queue))
        d.addCallbacks(lambda _: instance.replies.sent(cid), lambda f: instance.replies.send_failed(cid, f))
        return reply

    def send_reply(self, reply: Message, timeout: Optional[float] = None, *,
                   request: Optional[MessageExt] = None) -> defer.Deferred:
        """Send a reply made by ``create_reply`` (SEND_REPLY_MESSAGE_V2): a Deferred of the ``SendResult``.

        With ``request`` (the consumed request message), the reply goes to the reply-topic queue of the broker
        that stored the request, which the requester is connected to; otherwise (or if that broker is not in
        the reply topic's route) it is routed like any send. A requester no longer connected fails the send
        with code SYSTEM_ERROR (the broker still stores the reply).
        """
        try:
            self._check(reply)
            if not is_reply(reply):
                raise MQClientError("not a reply message (MSG_TYPE is not reply): build it with create_reply()")
        except Exception as e:
            return defer.fail(e)
        if request is None:
            return self.send(reply, timeout)
        addr = f"{request.store_host[0]}:{request.store_host[1]}"

        def routed(info: TopicPublishInfo) -> defer.Deferred:
            for mq in info.queues:
                if self.instance.master_addr(mq.broker_name) == addr:
                    return self.send(reply, timeout, queue=mq)
            return self.send(reply, timeout)

        return self.publish_info_of(reply.topic).addCallback(routed)
