"""``LitePullConsumer``: the application polls for messages (Java ``DefaultLitePullConsumer``).

``subscribe(topic, expression)`` takes a share of the queues (rebalanced like a push consumer), or
``assign([queues])`` takes exactly those. Pulled messages wait in a buffer until ``poll()`` returns them
(one pulled batch at a time). Polling counts a batch as consumed: with ``auto_commit`` (the default) the
offsets are committed every ``auto_commit_interval`` seconds and at shutdown; otherwise ``commit()`` does
it. ``seek(queue, offset)`` moves a queue's position; ``pause(queues)`` stops pulling and polling queues until
``resume(queues)``; ``offset_for_timestamp(queue, ms)`` finds where a time starts in a queue.
"""

from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import Any, Callable, Deque, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, Union

from twisted.internet import defer, task
from twisted.logger import Logger

from mq.acl.signing import Credentials
from mq.client.allocate import Allocator, allocate_averagely
from mq.client.instance import ClientConfig, ClientInstance, get_instance, parse_namesrv
from mq.client.model import ConsumeFromWhere, MessageModel, MessageQueue, MQClientError
from mq.client.offset_store import OffsetStore
from mq.client.process_queue import ProcessQueue
from mq.client.pulling import QueuePuller
from mq.client.rebalance import Rebalancer, subscribe_queues
from mq.client.trace import make_tracer
from mq.common.heartbeat import EXPRESSION_TAG, ConsumerData, SubscriptionData
from mq.common.message import MessageExt
from mq.common.route import TopicRouteData

log = Logger()

#: ``listener(topic, all_queues, my_queues)``: called when a rebalance changed this consumer's queues of a topic
#: (Java ``MessageQueueListener``)
QueueListener = Callable[[str, Set[MessageQueue], Set[MessageQueue]], Any]
#: ``listener(topic, queues)``: called when the readable queues of a topic changed (Java
#: ``TopicMessageQueueChangeListener``)
TopicQueuesListener = Callable[[str, Set[MessageQueue]], Any]


class LitePullConsumer(QueuePuller):
    """``start()``, then ``poll()`` in a loop; ``shutdown()`` commits and leaves."""

    _lite = True

    def __init__(self, group: str, namesrv_addr: Union[str, Sequence[str], None] = None, *,
                 message_model: Union[MessageModel, str] = MessageModel.CLUSTERING,
                 consume_from_where: Union[ConsumeFromWhere, str] = ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
                 consume_timestamp_ms: Optional[int] = None, allocate: Allocator = allocate_averagely,
                 auto_commit: bool = True, auto_commit_interval: float = 5.0, pull_batch_size: int = 32,
                 pull_threshold_for_queue: int = 1000, pull_threshold_size_for_queue: int = 100 * 1024 * 1024,
                 pull_interval: float = 0.0, poll_timeout: float = 5.0, offset_store_dir: Optional[Path] = None,
                 instance_name: Optional[str] = None, config: Optional[ClientConfig] = None, reactor=None,
                 credentials: Optional[Credentials] = None, enable_msg_trace: bool = False,
                 trace_topic: Optional[str] = None) -> None:
        self._init_consumer(group, namesrv_addr, reactor, config, instance_name, message_model, consume_from_where,
                            consume_timestamp_ms, allocate, pull_batch_size, pull_threshold_for_queue,
                            pull_threshold_size_for_queue, pull_interval, offset_store_dir, credentials)
        #: Message trace (``enable_msg_trace``): each poll's messages recorded as consumed (mq.client.trace)
        self.tracer = make_tracer(enable_msg_trace, self.reactor, self.config, group, "CONSUMER", trace_topic)
        self.running = False
        self._commit_loop: Optional[task.LoopingCall] = None
        self.auto_commit = auto_commit
        self.auto_commit_interval = auto_commit_interval
        self.poll_timeout = poll_timeout
        self.subscriptions: Dict[str, SubscriptionData] = {}
        self.assigned: Optional[List[MessageQueue]] = None
        self.instance: Optional[ClientInstance] = None
        self.offsets: Optional[OffsetStore] = None
        self.rebalancer: Optional[Rebalancer] = None
        #: the next offset of each queue after what poll() returned (what a commit stores)
        self.consumed: Dict[MessageQueue, int] = {}
        self._buffer: Deque[Tuple[MessageQueue, ProcessQueue, List[MessageExt]]] = collections.deque()
        self._waiters: List[defer.Deferred] = []
        #: paused queues, and where each one's pulling stopped (resumed from there)
        self._paused: Set[MessageQueue] = set()
        self._parked: Dict[MessageQueue, Tuple[ProcessQueue, int]] = {}
        self._assign_expressions: Dict[str, str] = {}
        self._queue_listeners: Dict[str, QueueListener] = {}
        self._topic_listeners: Dict[str, TopicQueuesListener] = {}
        self._topic_queues: Dict[str, Set[MessageQueue]] = {}

    @property
    def auto_commit(self) -> bool:
        """Commit what ``poll()`` returned every ``auto_commit_interval`` seconds (Java ``isAutoCommit``);
        settable at any time (Java ``setAutoCommit``): the timer starts or stops at once."""
        return self._auto_commit

    @auto_commit.setter
    def auto_commit(self, value: bool) -> None:
        self._auto_commit = bool(value)
        self._sync_commit_loop()

    def _sync_commit_loop(self) -> None:
        wanted = self._auto_commit and self.running
        loop = self._commit_loop
        if wanted and (loop is None or not loop.running):
            self._commit_loop = loop = task.LoopingCall(self._auto_commit_tick)
            loop.clock = self.reactor
            loop.start(self.auto_commit_interval, now=False)
        elif not wanted and loop is not None and loop.running:
            loop.stop()

    # -- configuration ---------------------------------------------------------------------------------

    def subscribe(self, topic: str, expression: str = "*", expression_type: str = EXPRESSION_TAG, *,
                  queue_listener: Optional[QueueListener] = None) -> defer.Deferred:
        """Take a share of ``topic``'s queues; ``queue_listener(topic, all, mine)`` hears of each change.
        While running, the Deferred fires once the topic's route is read, the brokers told and the queues
        rebalanced."""
        if self.assigned is not None or self._assign_expressions:
            raise MQClientError("subscribe and assign cannot be mixed")
        self.subscriptions[topic] = SubscriptionData.build(topic, expression, int(time.time() * 1000),
                                                           expression_type)
        if queue_listener is not None:
            self._queue_listeners[topic] = queue_listener
        else:
            self._queue_listeners.pop(topic, None)
        if not self.running:
            return defer.succeed(None)
        inst = self.instance
        d = inst.update_route(topic)
        d.addCallback(lambda _: inst.send_heartbeats())
        d.addCallback(lambda _: self.do_rebalance())
        return d

    @defer.inlineCallbacks
    def unsubscribe(self, topic: str):
        """Stop consuming ``topic`` (subscribed or assigned): its queues are dropped, their offsets committed."""
        self.subscriptions.pop(topic, None)
        self._queue_listeners.pop(topic, None)
        if self.assigned is not None:
            self.assigned = [mq for mq in self.assigned if mq.topic != topic]
        if self.running:
            yield self.rebalancer.apply(topic, set())
            yield self.instance.send_heartbeats()

    def set_sub_expression_for_assign(self, topic: str, expression: str) -> None:
        """The tag expression the assigned queues of ``topic`` are pulled with (default ``*``); before start."""
        if not expression or not expression.strip():
            raise ValueError("the expression cannot be empty")
        if self.running:
            raise MQClientError("set_sub_expression_for_assign only before start()")
        if self.subscriptions and self.assigned is None:
            raise MQClientError("subscribe and assign cannot be mixed")
        self._assign_expressions[topic] = expression
        if topic in self.subscriptions:
            self.subscriptions[topic] = self._assign_subscription(topic)

    def _assign_subscription(self, topic: str) -> SubscriptionData:
        return SubscriptionData.build(topic, self._assign_expressions.get(topic, "*"), int(time.time() * 1000))

    def assign(self, queues: Iterable[MessageQueue]) -> defer.Deferred:
        """Consume exactly these queues (no rebalance). Before or after ``start()``."""
        if self.subscriptions and self.assigned is None:
            raise MQClientError("subscribe and assign cannot be mixed")
        self.assigned = sorted(set(queues))
        for mq in self.assigned:
            if mq.topic not in self.subscriptions:
                self.subscriptions[mq.topic] = self._assign_subscription(mq.topic)
        if self.running:
            return self.rebalancer.apply_all(self.assigned)
        return defer.succeed(None)

    def assignment(self) -> Set[MessageQueue]:
        """The queues this consumer holds now (assigned, or its share after the last rebalance)."""
        if self.rebalancer is None:
            return set(self.assigned or ())
        return set(self.rebalancer.process_queues)

    def register_topic_message_queue_change_listener(self, topic: str,
                                                     listener: TopicQueuesListener) -> defer.Deferred:
        """Call ``listener(topic, queues)`` whenever the readable queues of ``topic`` change (routes are read
        every 30 s); the queues known when this is called (or at start) are the first state, not a change."""
        if not topic or listener is None:
            raise MQClientError("topic or listener is missing")
        self._topic_listeners[topic] = listener
        if self.running:
            return self._load_topic_queues(topic)
        return defer.succeed(None)

    @defer.inlineCallbacks
    def _load_topic_queues(self, topic: str):
        self._topic_queues[topic] = set((yield self.fetch_message_queues(topic)))

    def update_name_server_address(self, namesrv_addr: Union[str, Sequence[str]]) -> None:
        """Ask these NameServers from now on (``host:port;host:port``; every client of this instance)."""
        addrs = parse_namesrv(namesrv_addr)
        self.config.namesrv_addr = addrs
        if self.instance is not None:
            self.instance.namesrv = addrs

    # -- lifecycle --------------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def start(self):
        if self.running:
            return
        if not self.subscriptions and self.assigned is None:
            raise MQClientError("subscribe or assign before start()")
        self.instance = inst = get_instance(self.config, self.reactor)
        self.offsets = self._make_offset_store(inst)
        self.rebalancer = _LiteRebalancer(inst, self.group, self.message_model, self.allocate, self.offsets,
                                          self.consume_from_where, self.consume_timestamp_ms,
                                          on_added=self._queue_added, on_removed=self._queue_removed)
        self.rebalancer.on_changed = self._allocation_changed
        inst.register_consumer(self)
        self.running = True
        if self.tracer is not None:
            self.tracer.dispatcher.start()
        for topic in list(self.subscriptions):
            yield inst.update_route(topic)
        for topic in list(self._topic_listeners):
            yield self._load_topic_queues(topic)
        yield inst.send_heartbeats()
        self._sync_commit_loop()
        if self.assigned is not None:
            yield self.rebalancer.apply_all(self.assigned)
        else:
            yield self.do_rebalance()

    @defer.inlineCallbacks
    def shutdown(self):
        if not self.running:
            return
        if self._commit_loop is not None and self._commit_loop.running:
            self._commit_loop.stop()
        yield self.commit()
        self.running = False
        self._parked.clear()
        for pq in self.rebalancer.process_queues.values():
            pq.dropped = True
        for w in self._waiters:
            w.callback([])
        self._waiters = []
        if self.tracer is not None:
            yield self.tracer.dispatcher.shutdown()
        yield self.instance.unregister(consumer_group=self.group)

    # -- polling ---------------------------------------------------------------------------------------

    def poll(self, timeout: Optional[float] = None) -> defer.Deferred:
        """A Deferred of the next pulled batch (a list of messages), or [] after ``timeout`` seconds."""
        if not self.running:
            return defer.fail(MQClientError("the consumer is not running"))
        batch = self._take()
        if batch is not None:
            return defer.succeed(batch)
        d = defer.Deferred()
        self._waiters.append(d)
        timer = self.reactor.callLater(self.poll_timeout if timeout is None else timeout, self._poll_expired, d)
        d.addBoth(lambda r: (timer.cancel() if timer.active() else None, r)[1])
        return d

    def _poll_expired(self, d: defer.Deferred) -> None:
        if d in self._waiters:
            self._waiters.remove(d)
            d.callback([])

    def _take(self) -> Optional[List[MessageExt]]:
        """The oldest buffered batch of a queue neither dropped nor paused (paused ones stay buffered)."""
        held = []
        batch = None
        while self._buffer:
            entry = self._buffer.popleft()
            mq, pq, msgs = entry
            if pq.dropped:
                continue
            if mq in self._paused:
                held.append(entry)
                continue
            offset = pq.remove(msgs)
            if offset >= 0:
                self._consumed(mq, offset)
            batch = msgs
            if self.tracer is not None:
                self.tracer.polled(msgs)
            break
        self._buffer.extendleft(reversed(held))
        return batch

    def _feed_waiters(self) -> None:
        """Hand buffered batches to the polls waiting for one."""
        while self._waiters:
            batch = self._take()
            if batch is None:
                break
            self._waiters.pop(0).callback(batch)

    # -- pause and resume --------------------------------------------------------------------------------

    def pause(self, queues: Iterable[MessageQueue]) -> None:
        """Stop pulling ``queues``; ``poll()`` returns nothing of theirs (what was pulled stays buffered)."""
        self._paused.update(queues)

    def resume(self, queues: Iterable[MessageQueue]) -> None:
        """Pull and poll ``queues`` again, from where they stopped."""
        for mq in queues:
            self._paused.discard(mq)
            parked = self._parked.pop(mq, None)
            if parked is not None:
                self._pull(mq, *parked)
        self._feed_waiters()

    def is_paused(self, mq: MessageQueue) -> bool:
        return mq in self._paused

    def _pull(self, mq: MessageQueue, pq: ProcessQueue, offset: int) -> None:
        if mq in self._paused and not pq.dropped and self.running:
            self._parked[mq] = (pq, offset)  # resume() pulls from here
            return
        super()._pull(mq, pq, offset)

    def _consumed(self, mq: MessageQueue, offset: int) -> None:
        self.consumed[mq] = offset
        if self.auto_commit:
            self.offsets.update(mq, offset)

    def _auto_commit_tick(self) -> defer.Deferred:
        """One auto-commit: a failure (a broker away) is logged and the next tick tries again; a LoopingCall
        whose call fails would stop for good."""
        return defer.maybeDeferred(self.commit).addErrback(
            lambda f: log.warn("auto-commit of {group} failed, retried in {s:g} s: {e}", group=self.group,
                               s=self.auto_commit_interval, e=f.getErrorMessage()))  # fmt: skip

    def commit(self, queues: Union[None, Iterable[MessageQueue], Mapping[MessageQueue, int]] = None,
               persist: bool = True) -> defer.Deferred:
        """Commit what ``poll()`` has returned so far, of every queue held or of ``queues``; given a mapping
        ``{queue: offset}``, those offsets instead (Java ``commitSync(offsets, persist)``). With ``persist``
        the offsets are written to the broker (or the local file) now, else only kept for the next commit."""
        if self.offsets is None:
            return defer.succeed(None)
        owned = self.rebalancer.process_queues
        if queues is None:
            offsets = self.consumed
            queues = list(owned)
        elif isinstance(queues, Mapping):
            offsets = queues
            queues = list(queues)
        else:
            queues = list(queues)
            offsets = {mq: self.consumed[mq] for mq in queues if mq in self.consumed}
        for mq, offset in offsets.items():
            pq = owned.get(mq)
            if pq is None or pq.dropped:
                continue
            if offset < 0:
                log.warn("not committing offset {offset} of {mq}", offset=offset, mq=mq)
                continue
            self.offsets.update(mq, offset)
        if not persist:
            return defer.succeed(None)
        return self.offsets.persist([mq for mq in queues if mq in owned])

    def committed(self, mq: MessageQueue) -> defer.Deferred:
        """The offset the store holds for ``mq`` (-1 if none)."""
        return self.offsets.read(mq, from_store=True)

    def seek(self, mq: MessageQueue, offset: int) -> None:
        """Continue ``mq`` at ``offset`` (the queue must be owned)."""
        rb = self.rebalancer
        old = rb.process_queues.get(mq)
        if old is None:
            raise MQClientError(f"{mq} is not assigned to this consumer")
        old.dropped = True
        pq = rb.process_queues[mq] = ProcessQueue()
        self._consumed(mq, offset)
        self._pull(mq, pq, offset)

    @defer.inlineCallbacks
    def seek_to_begin(self, mq: MessageQueue):
        addr = yield self._addr(mq)
        self.seek(mq, (yield self.instance.api.min_offset(addr, mq)))

    @defer.inlineCallbacks
    def seek_to_end(self, mq: MessageQueue):
        addr = yield self._addr(mq)
        self.seek(mq, (yield self.instance.api.max_offset(addr, mq)))

    @defer.inlineCallbacks
    def offset_for_timestamp(self, mq: MessageQueue, timestamp_ms: int):
        """A Deferred of the first offset of ``mq`` stored at or after ``timestamp_ms`` (ms since the epoch;
        the max offset if none), asked of the broker (SEARCH_OFFSET_BY_TIMESTAMP). For ``seek``."""
        addr = yield self._addr(mq)
        return (yield self.instance.api.search_offset(addr, mq, int(timestamp_ms)))

    @defer.inlineCallbacks
    def _addr(self, mq: MessageQueue):
        """The address of ``mq``'s master (else any member), reading the route if the broker is unknown."""
        if not self.running:
            raise MQClientError("the consumer is not running")
        inst = self.instance
        for attempt in range(2):
            addr = inst.subscribe_addr(mq.broker_name)  # the master, else any member
            if addr is not None:
                return addr
            if attempt == 0:
                yield inst.update_route(mq.topic)
        raise MQClientError(f"no address for broker {mq.broker_name}")

    @defer.inlineCallbacks
    def fetch_message_queues(self, topic: str):
        """Every readable queue of ``topic`` (for ``assign``)."""
        inst = self.instance or get_instance(self.config, self.reactor)
        route = yield inst.update_route(topic)
        if route is None:
            raise MQClientError(f"no route for topic {topic}")
        return sorted(subscribe_queues(topic, route))

    # -- the instance and the puller -----------------------------------------------------------------------

    def consumer_data(self) -> ConsumerData:
        subs = list(self.subscriptions.values()) if self.assigned is None else []
        return ConsumerData(self.group, "CONSUME_ACTIVELY", self.message_model.value, self.consume_from_where.value,
                            subs)

    def subscribed_topics(self) -> List[str]:
        """The topics whose routes the instance keeps reading: subscribed ones and listened-to ones."""
        return list(self.subscriptions) + [t for t in self._topic_listeners if t not in self.subscriptions]

    def on_route(self, topic: str, route: TopicRouteData) -> None:
        if self.rebalancer is not None and topic in self.subscriptions:
            self.rebalancer.on_route(topic, route)
        listener = self._topic_listeners.get(topic)
        if listener is None:
            return
        queues = subscribe_queues(topic, route)
        old = self._topic_queues.get(topic)
        self._topic_queues[topic] = queues
        if old is not None and old != queues:
            self._notify(listener, topic, set(queues))

    def _allocation_changed(self, topic: str, all_queues: Set[MessageQueue], mine: Set[MessageQueue]) -> None:
        listener = self._queue_listeners.get(topic)
        if listener is not None and self.assigned is None:
            self._notify(listener, topic, set(all_queues), set(mine))

    @staticmethod
    def _notify(listener: Callable, topic: str, *queue_sets: Set[MessageQueue]) -> None:
        d = defer.maybeDeferred(listener, topic, *queue_sets)
        d.addErrback(lambda f: log.failure("queue listener of {topic}", f, topic=topic))

    def do_rebalance(self) -> defer.Deferred:
        if not self.running or self.assigned is not None:
            return defer.succeed(None)
        return self.rebalancer.rebalance(sorted(self.subscriptions))

    def persist_offsets(self) -> defer.Deferred:
        return defer.succeed(None)  # the auto-commit timer (or commit()) does it

    def _queue_added(self, mq: MessageQueue, pq: ProcessQueue, offset: int) -> None:
        self.consumed[mq] = offset
        self.offsets.update(mq, offset)
        self._pull(mq, pq, offset)

    @defer.inlineCallbacks
    def _queue_removed(self, mq: MessageQueue, pq: ProcessQueue):
        self._parked.pop(mq, None)
        self._paused.discard(mq)  # as Java: a queue that leaves forgets its pause
        if mq in self.consumed:
            self.offsets.update(mq, self.consumed.pop(mq))
        yield self.offsets.persist([mq])
        self.offsets.remove(mq)
        return True

    def _on_messages(self, mq: MessageQueue, pq: ProcessQueue, msgs: List[MessageExt]) -> None:
        self._buffer.append((mq, pq, msgs))
        self._feed_waiters()

    def _idle_offset(self, mq: MessageQueue, offset: int) -> None:
        if self.consumed.get(mq, -1) < offset:
            self._consumed(mq, offset)

    def _moved_offset(self, mq: MessageQueue, offset: int) -> None:
        self._consumed(mq, offset)


class _LiteRebalancer(Rebalancer):
    #: ``on_changed(topic, all_queues, mine)`` after a change of this consumer's queues of a topic
    on_changed: Optional[Callable] = None

    @defer.inlineCallbacks
    def apply(self, topic: str, wanted: Set[MessageQueue]):
        changed = yield super().apply(topic, wanted)
        if changed and self.on_changed is not None:
            self.on_changed(topic, set(self.topic_queues.get(topic, ())), set(wanted))
        return changed

    def apply_all(self, queues: Sequence[MessageQueue]) -> defer.Deferred:
        """Assign mode: hold exactly ``queues`` (every topic)."""
        wanted = set(queues)
        topics = {mq.topic for mq in wanted} | {mq.topic for mq in self.process_queues}
        return defer.DeferredList([self.apply(t, {mq for mq in wanted if mq.topic == t}) for t in sorted(topics)])
