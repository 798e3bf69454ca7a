"""``PushConsumer``: pulls continuously and calls a listener for each message (Java ``DefaultMQPushConsumer``).

* ``subscribe(topic, "TagA || TagB")`` or ``subscribe(topic, "a > 5", "SQL92")``; clustering (the group
  shares the queues, rebalanced every 20 s and at once when the broker says the group changed) or
  broadcasting (every member gets every message).
* Concurrent listeners (``register_message_listener``): at most ``consume_concurrency`` calls in flight; a
  listener that returns ``RECONSUME_LATER`` or raises gets the message again later: it goes back to the
  broker (CONSUMER_SEND_MSG_BACK) with its next delay level, or, if the broker refuses, is re-sent to the
  group's retry topic as the Java client does. Broadcasting drops failed messages.
* Orderly listeners (``register_orderly_listener``): one call at a time per queue, in queue order, with
  the queue locked in the broker (renewed every 20 s); ``SUSPEND_CURRENT_QUEUE_A_MOMENT`` retries the same
  messages locally after ``suspend_current_queue_time``.
* Flow control per queue: pulling pauses above ``pull_threshold_for_queue`` messages (1,000) or
  ``pull_threshold_size_for_queue`` bytes (100 MiB) held.
* Offsets: in the broker (clustering) or a local file (broadcasting), persisted every 5 s and at shutdown.

A listener is ``listener(messages, context)`` returning a status (or None for success), or a Deferred of
one; it runs in the reactor thread, so it must not block (the blocking facade runs listeners in threads).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import attr
from twisted.internet import defer
from twisted.logger import Logger

from mq.acl.signing import Credentials
from mq.client.allocate import Allocator, allocate_averagely
from mq.client.instance import ClientConfig, ClientInstance, get_instance
from mq.client.model import (
    ConsumeConcurrentlyStatus,
    ConsumeFromWhere,
    ConsumeOrderlyStatus,
    MessageModel,
    MessageQueue,
)
from mq.client.offset_store import OffsetStore
from mq.client.process_queue import ProcessQueue
from mq.client.pulling import QueuePuller
from mq.client.rebalance import Rebalancer
from mq.client.trace import make_tracer
from mq.common import consume_directly as cd
from mq.common.heartbeat import EXPRESSION_TAG, ConsumerData, SubscriptionData
from mq.common.message import Message, MessageConst, MessageExt
from mq.common.mixall import CLIENT_INNER_PRODUCER_GROUP, retry_topic
from mq.common.route import TopicRouteData

log = Logger()

Listener = Callable[[List[MessageExt], Any], Any]

CONSUME_MAX_SPAN = 2000
RETRY_LOCAL_DELAY = 5.0
LOCK_RENEW_INTERVAL = 20.0
DEFAULT_MAX_RECONSUME_TIMES = 16


@attr.s(slots=True)
class ConsumeConcurrentlyContext:
    message_queue: MessageQueue = attr.ib()
    #: 0: the broker picks (3 + reconsume times); -1: straight to the dead-letter queue; >0: that level
    delay_level_when_next_consume: int = attr.ib(default=0)


@attr.s(slots=True)
class ConsumeOrderlyContext:
    message_queue: MessageQueue = attr.ib()
    suspend_current_queue_time: float = attr.ib(default=1.0)


def restore_retry_topic(msg: MessageExt, group_retry_topic: str) -> None:
    """Messages pulled from the retry topic show their original topic, as Java's resetRetryAndNamespace."""
    if msg.topic == group_retry_topic:
        original = msg.properties.get(MessageConst.PROPERTY_RETRY_TOPIC)
        if original:
            msg.topic = original


class PushConsumer(QueuePuller):
    """A push consumer of one consumer group. ``subscribe``, register a listener, ``start()``, ``shutdown()``."""

    def __init__(self, group: str, namesrv_addr: Union[str, Sequence[str], None] = None, *,
                 message_model: Union[MessageModel, str] = MessageModel.CLUSTERING,
                 consume_from_where: Union[ConsumeFromWhere, str] = ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
                 consume_timestamp_ms: Optional[int] = None, allocate: Allocator = allocate_averagely,
                 consume_concurrency: int = 20, consume_batch_size: int = 1, pull_batch_size: int = 32,
                 pull_threshold_for_queue: int = 1000, pull_threshold_size_for_queue: int = 100 * 1024 * 1024,
                 pull_interval: float = 0.0, max_reconsume_times: int = -1,
                 suspend_current_queue_time: float = 1.0, offset_store_dir: Optional[Path] = None,
                 instance_name: Optional[str] = None, config: Optional[ClientConfig] = None, reactor=None,
                 credentials: Optional[Credentials] = None, enable_msg_trace: bool = False,
                 trace_topic: Optional[str] = None) -> None:
        self._init_consumer(group, namesrv_addr, reactor, config, instance_name, message_model, consume_from_where,
                            consume_timestamp_ms, allocate, pull_batch_size, pull_threshold_for_queue,
                            pull_threshold_size_for_queue, pull_interval, offset_store_dir, credentials)
        self.consume_concurrency = consume_concurrency
        self.consume_batch_size = consume_batch_size
        self.max_reconsume_times = max_reconsume_times
        self.suspend_current_queue_time = suspend_current_queue_time
        self.subscriptions: Dict[str, SubscriptionData] = {}
        self.listener: Optional[Listener] = None
        self.orderly = False
        self.instance: Optional[ClientInstance] = None
        self.offsets: Optional[OffsetStore] = None
        self.rebalancer: Optional[Rebalancer] = None
        self.running = False
        self._semaphore = defer.DeferredSemaphore(consume_concurrency)
        self._inflight: set = set()
        self._inner_producer = None
        self._lock_loop = None
        self.retry_topic = retry_topic(group)
        #: Message trace (``enable_msg_trace``, to ``trace_topic`` or RMQ_SYS_TRACE_TOPIC): mq.client.trace
        self.tracer = make_tracer(enable_msg_trace, self.reactor, self.config, group, "CONSUMER", trace_topic)

    # -- configuration ---------------------------------------------------------------------------------

    def subscribe(self, topic: str, expression: str = "*", expression_type: str = EXPRESSION_TAG) -> None:
        """Consume ``topic`` messages matching a tag expression (``*``, ``A || B``) or an SQL92 expression."""
        self.subscriptions[topic] = SubscriptionData.build(topic, expression, int(time.time() * 1000),
                                                           expression_type)

    def unsubscribe(self, topic: str) -> None:
        self.subscriptions.pop(topic, None)

    def register_message_listener(self, listener: Listener) -> None:
        """A concurrent listener: ``listener(msgs, ConsumeConcurrentlyContext)`` → ConsumeConcurrentlyStatus."""
        self.listener, self.orderly = listener, False

    def register_orderly_listener(self, listener: Listener) -> None:
        """An orderly listener: ``listener(msgs, ConsumeOrderlyContext)`` → ConsumeOrderlyStatus."""
        self.listener, self.orderly = listener, True

    @property
    def max_reconsume(self) -> int:
        if self.max_reconsume_times >= 0:
            return self.max_reconsume_times
        return (1 << 31) - 1 if self.orderly else DEFAULT_MAX_RECONSUME_TIMES

    # -- lifecycle --------------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def start(self):
        """Join the instance, learn the routes, heartbeat, and rebalance at once (a Deferred)."""
        if self.running:
            return
        if self.listener is None:
            raise ValueError("register a listener before start()")
        if not self.subscriptions:
            raise ValueError("subscribe to a topic before start()")
        if self.message_model is MessageModel.CLUSTERING and self.retry_topic not in self.subscriptions:
            self.subscriptions[self.retry_topic] = SubscriptionData.build(self.retry_topic, "*",
                                                                          int(time.time() * 1000))
        self.instance = inst = get_instance(self.config, self.reactor)
        self.offsets = self._make_offset_store(inst)
        lock = self._lock_new if (self.orderly and self.message_model is MessageModel.CLUSTERING) else None
        self.rebalancer = Rebalancer(inst, self.group, self.message_model, self.allocate, self.offsets,
                                     self.consume_from_where, self.consume_timestamp_ms,
                                     on_added=self._queue_added, on_removed=self._queue_removed, lock=lock)
        inst.register_consumer(self)
        self.running = True
        if self.tracer is not None:
            self.tracer.dispatcher.start()
        for topic in list(self.subscriptions):
            try:
                yield inst.update_route(topic)
            except Exception as e:
                log.warn("route of {topic}: {e}", topic=topic, e=e)
        yield inst.send_heartbeats()
        yield inst.update_all_routes()  # the heartbeat may have created the retry topic
        if lock is not None:
            from twisted.internet import task

            self._lock_loop = task.LoopingCall(self._renew_locks)
            self._lock_loop.clock = self.reactor
            self._lock_loop.start(LOCK_RENEW_INTERVAL, now=False)
        yield self.do_rebalance()

    @defer.inlineCallbacks
    def shutdown(self, wait: float = 10.0):
        """Stop pulling, let running listeners finish (up to ``wait`` s), commit offsets, unlock, unregister."""
        if not self.running:
            return
        self.running = False
        if self._lock_loop is not None and self._lock_loop.running:
            self._lock_loop.stop()
        for pq in self.rebalancer.process_queues.values():
            pq.dropped = True
        if self._inflight:
            pending = defer.DeferredList(list(self._inflight), consumeErrors=True)
            timer = self.reactor.callLater(wait, pending.cancel)
            yield pending.addErrback(lambda f: None)
            if timer.active():
                timer.cancel()
        yield self.persist_offsets()
        if self.orderly and self.message_model is MessageModel.CLUSTERING:
            yield self._unlock(list(self.rebalancer.process_queues))
        self.rebalancer.process_queues.clear()
        if self._inner_producer is not None:
            yield self._inner_producer.shutdown()
        if self.tracer is not None:
            yield self.tracer.dispatcher.shutdown()
        yield self.instance.unregister(consumer_group=self.group)

    # -- called by the instance -------------------------------------------------------------------------

    def consumer_data(self) -> ConsumerData:
        return ConsumerData(self.group, "CONSUME_PASSIVELY", self.message_model.value, self.consume_from_where.value,
                            list(self.subscriptions.values()))

    def subscribed_topics(self) -> List[str]:
        return list(self.subscriptions)

    def on_route(self, topic: str, route: TopicRouteData) -> None:
        if self.rebalancer is not None and topic in self.subscriptions:
            self.rebalancer.on_route(topic, route)

    def do_rebalance(self) -> defer.Deferred:
        if not self.running:
            return defer.succeed(None)
        return self.rebalancer.rebalance(sorted(self.subscriptions))

    def persist_offsets(self) -> defer.Deferred:
        if self.offsets is None:
            return defer.succeed(None)
        return self.offsets.persist(list(self.rebalancer.process_queues))

    def reset_offsets(self, topic: str, table: Dict[MessageQueue, int]) -> None:
        """RESET_CONSUMER_CLIENT_OFFSET: drop the topic's queues, store the new offsets, rebalance."""
        for mq, offset in table.items():
            pq = self.rebalancer.process_queues.pop(mq, None)
            if pq is not None:
                pq.dropped = True
            self.offsets.update(mq, offset)
        self.offsets.persist(list(table)).addCallback(lambda _: self.instance.rebalance_soon())

    # -- queues come and go -----------------------------------------------------------------------------

    def _queue_added(self, mq: MessageQueue, pq: ProcessQueue, offset: int) -> None:
        log.debug("{group} takes {mq} at {offset}", group=self.group, mq=mq, offset=offset)
        self.offsets.update(mq, offset)
        self._pull(mq, pq, offset)

    @defer.inlineCallbacks
    def _queue_removed(self, mq: MessageQueue, pq: ProcessQueue):
        yield self.offsets.persist([mq])
        self.offsets.remove(mq)
        if self.orderly and self.message_model is MessageModel.CLUSTERING:
            yield self._unlock([mq])
        return True

    # -- locks (orderly, clustering) --------------------------------------------------------------------

    def _by_broker(self, mqs):
        groups: Dict[str, List[MessageQueue]] = {}
        for mq in mqs:
            groups.setdefault(mq.broker_name, []).append(mq)
        return groups

    @defer.inlineCallbacks
    def _lock_new(self, mqs: Sequence[MessageQueue]):
        locked = set()
        for broker, group in self._by_broker(mqs).items():
            addr = self.instance.master_addr(broker)
            if addr is None:
                continue
            try:
                got = yield self.instance.api.lock_batch(addr, self.group, self.instance.client_id, group)
            except Exception as e:
                log.info("locking queues on {broker} failed: {e}", broker=broker, e=e)
                continue
            locked |= got
        return locked

    @defer.inlineCallbacks
    def _renew_locks(self):
        pqs = self.rebalancer.process_queues
        locked = yield self._lock_new(list(pqs))
        now = self.reactor.seconds()
        for mq, pq in pqs.items():
            if mq in locked:
                was = pq.locked
                pq.locked, pq.last_lock_time = True, now
                if not was:
                    self._orderly_kick(mq, pq)
            else:
                pq.locked = False

    def _unlock(self, mqs: Sequence[MessageQueue]) -> defer.Deferred:
        calls = []
        for broker, group in self._by_broker(mqs).items():
            addr = self.instance.master_addr(broker)
            if addr is not None:
                calls.append(self.instance.api.unlock_batch(addr, self.group, self.instance.client_id, group))
        return defer.DeferredList(calls, consumeErrors=True)

    # -- pulling (QueuePuller does the loop) -----------------------------------------------------------

    def _may_pull(self, mq: MessageQueue, pq: ProcessQueue) -> bool:
        return self.orderly or pq.max_span <= CONSUME_MAX_SPAN

    def _commit_offset_for_pull(self, mq: MessageQueue) -> int:
        if self.message_model is MessageModel.CLUSTERING:
            return max(self.offsets.memory(mq), 0)
        return 0

    def _on_messages(self, mq: MessageQueue, pq: ProcessQueue, msgs: List[MessageExt]) -> None:
        self._submit(mq, pq, msgs)

    # -- consuming --------------------------------------------------------------------------------------

    def _submit(self, mq: MessageQueue, pq: ProcessQueue, msgs: List[MessageExt]) -> None:
        if self.orderly:
            self._orderly_kick(mq, pq)
            return
        n = self.consume_batch_size
        for i in range(0, len(msgs), n):
            self._consume_concurrently(mq, pq, msgs[i:i + n])

    def _track(self, d: defer.Deferred) -> defer.Deferred:
        self._inflight.add(d)
        d.addBoth(lambda r: (self._inflight.discard(d), r)[1])
        return d

    def call_listener(self, msgs: List[MessageExt], context) -> defer.Deferred:
        """Run the listener (overridden by the blocking facade to use a thread)."""
        return defer.maybeDeferred(self.listener, msgs, context)

    def _listen(self, msgs: List[MessageExt], context) -> defer.Deferred:
        """``call_listener``, recorded in the message trace when it is on."""
        if self.tracer is None:
            return self.call_listener(msgs, context)
        return self.tracer.consumed(msgs, lambda: self.call_listener(msgs, context))

    def consume_message_directly(self, msg: MessageExt, broker_name: str) -> defer.Deferred:
        """CONSUME_MESSAGE_DIRECTLY: run the listener on one message an admin tool handed over (the console's
        resend, ``mqadmin queryMsgById -g -d``), outside the queues: offsets, retries and stats untouched,
        as Java's consumeMessageDirectly. A Deferred of the ConsumeMessageDirectlyResult."""
        mq = MessageQueue(msg.topic, broker_name, msg.queue_id)
        restore_retry_topic(msg, self.retry_topic)
        if self.orderly:
            context: Any = ConsumeOrderlyContext(mq, self.suspend_current_queue_time)
            outcomes = {ConsumeOrderlyStatus.SUCCESS: cd.CR_SUCCESS,
                        ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT: cd.CR_LATER}
            kind: Any = ConsumeOrderlyStatus
        else:
            context = ConsumeConcurrentlyContext(mq)
            outcomes = {ConsumeConcurrentlyStatus.CONSUME_SUCCESS: cd.CR_SUCCESS,
                        ConsumeConcurrentlyStatus.RECONSUME_LATER: cd.CR_LATER}
            kind = ConsumeConcurrentlyStatus
        result = cd.ConsumeMessageDirectlyResult(order=self.orderly)
        started = self.reactor.seconds()

        def consumed(status):
            try:
                result.consume_result = cd.CR_SUCCESS if status is None else outcomes[kind(status)]
            except ValueError:
                result.consume_result = cd.CR_THROW_EXCEPTION
                result.remark = f"the listener returned {status!r}"

        def raised(failure):
            result.consume_result = cd.CR_THROW_EXCEPTION
            result.remark = f"{failure.type.__name__}: {failure.getErrorMessage()}"[:1024]

        def done(_):
            result.spent_time_mills = int((self.reactor.seconds() - started) * 1000)
            return result

        return self.call_listener([msg], context).addCallbacks(consumed, raised).addCallback(done)

    def _consume_concurrently(self, mq: MessageQueue, pq: ProcessQueue, msgs: List[MessageExt]) -> None:
        context = ConsumeConcurrentlyContext(mq)

        def run():
            if pq.dropped:
                return None
            now = str(int(time.time() * 1000))
            for m in msgs:
                restore_retry_topic(m, self.retry_topic)
                m.properties[MessageConst.PROPERTY_CONSUME_START_TIMESTAMP] = now
            pq.last_consume_time = started = self.reactor.seconds()
            d = self._listen(msgs, context)
            d.addErrback(self._listener_error, msgs)
            d.addCallback(self._count_consumed, mq.topic, started, len(msgs))
            return d.addCallback(self._concurrent_done, mq, pq, msgs, context)

        self._track(self._semaphore.run(run))

    def _count_consumed(self, status, topic: str, started: float, count: int):
        try:
            ok = status is None or ConsumeConcurrentlyStatus(status) is ConsumeConcurrentlyStatus.CONSUME_SUCCESS
        except ValueError:  # _concurrent_done says what is wrong with it
            ok = False
        self.consume_stats.consumed(topic, self.reactor.seconds() - started, count if ok else 0, 0 if ok else count)
        return status

    def _listener_error(self, failure, msgs) -> ConsumeConcurrentlyStatus:
        log.failure("the listener raised for {n} message(s); they will be consumed again", failure, n=len(msgs))
        return ConsumeConcurrentlyStatus.RECONSUME_LATER

    @defer.inlineCallbacks
    def _concurrent_done(self, status, mq: MessageQueue, pq: ProcessQueue, msgs: List[MessageExt], context):
        if status is None:
            status = ConsumeConcurrentlyStatus.CONSUME_SUCCESS
        ok = ConsumeConcurrentlyStatus(status) is ConsumeConcurrentlyStatus.CONSUME_SUCCESS
        done = msgs
        if not ok:
            if self.message_model is MessageModel.BROADCASTING:
                for m in msgs:
                    log.warn("broadcasting: dropping {id} the listener did not consume", id=m.msg_id)
            else:
                done = []
                for m in msgs:
                    sent = yield self.send_back(m, mq, context.delay_level_when_next_consume)
                    if sent:
                        done.append(m)
                    else:
                        m.reconsume_times += 1
                        self.reactor.callLater(RETRY_LOCAL_DELAY, self._consume_concurrently, mq, pq, [m])
        offset = pq.remove(done)
        if offset >= 0 and not pq.dropped:
            self.offsets.update(mq, offset, True)

    @defer.inlineCallbacks
    def send_back(self, msg: MessageExt, mq: MessageQueue, delay_level: int = 0):
        """Return a failed message for a later retry; True if the broker (or the retry topic) has it."""
        addr = self.instance.master_addr(mq.broker_name)
        try:
            if addr is None:
                raise RuntimeError(f"no address for {mq.broker_name}")
            yield self.instance.api.send_back(addr, msg, self.group, delay_level, self.max_reconsume)
            return True
        except Exception as e:
            log.info("send back of {id} failed ({e}); re-sending it to {retry}", id=msg.msg_id, e=e,
                     retry=self.retry_topic)
        try:
            yield self._resend_to_retry_topic(msg)
            return True
        except Exception as e:
            log.warn("re-sending {id} to the retry topic failed: {e}", id=msg.msg_id, e=e)
            return False

    def _resend_to_retry_topic(self, msg: MessageExt) -> defer.Deferred:
        if self._inner_producer is None:
            from mq.client.producer import Producer

            self._inner_producer = Producer(CLIENT_INNER_PRODUCER_GROUP, config=self.config, reactor=self.reactor,
                                            retry_times=0)
            self._inner_producer.start()
        props = dict(msg.properties)
        props.pop(MessageConst.PROPERTY_MIN_OFFSET, None)
        props.pop(MessageConst.PROPERTY_MAX_OFFSET, None)
        props.setdefault(MessageConst.PROPERTY_RETRY_TOPIC, msg.topic)
        props.setdefault(MessageConst.PROPERTY_ORIGIN_MESSAGE_ID, msg.msg_id)
        props[MessageConst.PROPERTY_RECONSUME_TIME] = str(msg.reconsume_times + 1)
        props[MessageConst.PROPERTY_MAX_RECONSUME_TIMES] = str(self.max_reconsume)
        props[MessageConst.PROPERTY_DELAY_TIME_LEVEL] = str(3 + msg.reconsume_times)
        return self._inner_producer.send(Message(self.retry_topic, msg.body, msg.flag, props))

    # -- orderly ---------------------------------------------------------------------------------------

    def _orderly_kick(self, mq: MessageQueue, pq: ProcessQueue) -> None:
        if pq.consuming_now or pq.dropped:
            return
        pq.consuming_now = True
        self._track(self._orderly_loop(mq, pq))

    @defer.inlineCallbacks
    def _orderly_loop(self, mq: MessageQueue, pq: ProcessQueue):
        clustering = self.message_model is MessageModel.CLUSTERING
        context = ConsumeOrderlyContext(mq, self.suspend_current_queue_time)
        try:
            while self.running and not pq.dropped:
                if clustering and (not pq.locked or pq.lock_expired(self.reactor.seconds())):
                    return  # the lock renewal kicks the queue again once it holds the lock
                msgs = pq.take(self.consume_batch_size)
                if not msgs:
                    return
                for m in msgs:
                    restore_retry_topic(m, self.retry_topic)
                try:
                    status = yield self._listen(msgs, context)
                except Exception:
                    log.failure("the orderly listener raised; suspending {mq}", mq=mq)
                    status = ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT
                if pq.dropped:
                    return
                if status is None or ConsumeOrderlyStatus(status) is ConsumeOrderlyStatus.SUCCESS:
                    offset = pq.commit()
                    if offset >= 0:
                        self.offsets.update(mq, offset)
                    continue
                over = [m for m in msgs if m.reconsume_times >= self.max_reconsume]
                for m in over:  # past the limit: to the dead-letter queue via the broker
                    yield self.send_back(m, mq, -1)
                if over and len(over) == len(msgs):
                    offset = pq.commit()
                    if offset >= 0:
                        self.offsets.update(mq, offset)
                    continue
                for m in msgs:
                    m.reconsume_times += 1
                pq.consume_again(msgs)
                wait = defer.Deferred()
                self.reactor.callLater(context.suspend_current_queue_time, wait.callback, None)
                yield wait
        finally:
            pq.consuming_now = False
        return None
