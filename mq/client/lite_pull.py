"""``LitePullConsumer``: the application polls for messages (Java ``DefaultLitePullConsumer``).

``subscribe(topic, expression)`` takes a share of the queues (rebalanced like a push consumer), or
``assign([queues])`` takes exactly those. Pulled messages wait in a buffer until ``poll()`` returns them
(one pulled batch at a time). Polling counts a batch as consumed: with ``auto_commit`` (the default) the
offsets are committed every ``auto_commit_interval`` seconds and at shutdown; otherwise ``commit()`` does
it. ``seek(queue, offset)`` moves a queue's position.
"""

from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import Deque, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from twisted.internet import defer, task

from mq.client.allocate import Allocator, allocate_averagely
from mq.client.instance import ClientConfig, ClientInstance, get_instance
from mq.client.model import ConsumeFromWhere, MessageModel, MessageQueue, MQClientError
from mq.client.offset_store import OffsetStore
from mq.client.process_queue import ProcessQueue
from mq.client.pulling import QueuePuller
from mq.client.rebalance import Rebalancer, subscribe_queues
from mq.common.heartbeat import EXPRESSION_TAG, ConsumerData, SubscriptionData
from mq.common.message import MessageExt
from mq.common.route import TopicRouteData


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
                 instance_name: Optional[str] = None, config: Optional[ClientConfig] = None, reactor=None) -> None:
        self._init_consumer(group, namesrv_addr, reactor, config, instance_name, message_model, consume_from_where,
                            consume_timestamp_ms, allocate, pull_batch_size, pull_threshold_for_queue,
                            pull_threshold_size_for_queue, pull_interval, offset_store_dir)
        self.auto_commit = auto_commit
        self.auto_commit_interval = auto_commit_interval
        self.poll_timeout = poll_timeout
        self.subscriptions: Dict[str, SubscriptionData] = {}
        self.assigned: Optional[List[MessageQueue]] = None
        self.instance: Optional[ClientInstance] = None
        self.offsets: Optional[OffsetStore] = None
        self.rebalancer: Optional[Rebalancer] = None
        self.running = False
        #: the next offset of each queue after what poll() returned (what a commit stores)
        self.consumed: Dict[MessageQueue, int] = {}
        self._buffer: Deque[Tuple[MessageQueue, ProcessQueue, List[MessageExt]]] = collections.deque()
        self._waiters: List[defer.Deferred] = []
        self._commit_loop: Optional[task.LoopingCall] = None

    # -- configuration ---------------------------------------------------------------------------------

    def subscribe(self, topic: str, expression: str = "*", expression_type: str = EXPRESSION_TAG) -> None:
        if self.assigned is not None:
            raise MQClientError("subscribe and assign cannot be mixed")
        self.subscriptions[topic] = SubscriptionData.build(topic, expression, int(time.time() * 1000),
                                                           expression_type)

    def assign(self, queues: Iterable[MessageQueue]) -> defer.Deferred:
        """Consume exactly these queues (no rebalance). Before or after ``start()``."""
        if self.subscriptions and self.assigned is None:
            raise MQClientError("subscribe and assign cannot be mixed")
        self.assigned = sorted(set(queues))
        for mq in self.assigned:
            self.subscriptions.setdefault(mq.topic, SubscriptionData.build(mq.topic, "*", int(time.time() * 1000)))
        if self.running:
            return self.rebalancer.apply_all(self.assigned)
        return defer.succeed(None)

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
        inst.register_consumer(self)
        self.running = True
        for topic in list(self.subscriptions):
            yield inst.update_route(topic)
        yield inst.send_heartbeats()
        if self.auto_commit:
            self._commit_loop = task.LoopingCall(self.commit)
            self._commit_loop.clock = self.reactor
            self._commit_loop.start(self.auto_commit_interval, now=False)
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
        for pq in self.rebalancer.process_queues.values():
            pq.dropped = True
        for w in self._waiters:
            w.callback([])
        self._waiters = []
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
        while self._buffer:
            mq, pq, msgs = self._buffer.popleft()
            if pq.dropped:
                continue
            offset = pq.remove(msgs)
            if offset >= 0:
                self._consumed(mq, offset)
            return msgs
        return None

    def _consumed(self, mq: MessageQueue, offset: int) -> None:
        self.consumed[mq] = offset
        if self.auto_commit:
            self.offsets.update(mq, offset)

    def commit(self) -> defer.Deferred:
        """Commit what ``poll()`` has returned so far (to the broker, or the local file)."""
        if self.offsets is None:
            return defer.succeed(None)
        owned = self.rebalancer.process_queues
        for mq, offset in self.consumed.items():
            if mq in owned:
                self.offsets.update(mq, offset)
        return self.offsets.persist(list(owned))

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
        self.seek(mq, (yield self.instance.api.min_offset(self._addr(mq), mq)))

    @defer.inlineCallbacks
    def seek_to_end(self, mq: MessageQueue):
        self.seek(mq, (yield self.instance.api.max_offset(self._addr(mq), mq)))

    def _addr(self, mq: MessageQueue) -> str:
        addr = self.instance.master_addr(mq.broker_name) or self.instance.subscribe_addr(mq.broker_name)
        if addr is None:
            raise MQClientError(f"no address for broker {mq.broker_name}")
        return addr

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
        return list(self.subscriptions)

    def on_route(self, topic: str, route: TopicRouteData) -> None:
        if self.rebalancer is not None and topic in self.subscriptions:
            self.rebalancer.on_route(topic, route)

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
        if mq in self.consumed:
            self.offsets.update(mq, self.consumed.pop(mq))
        yield self.offsets.persist([mq])
        self.offsets.remove(mq)
        return True

    def _on_messages(self, mq: MessageQueue, pq: ProcessQueue, msgs: List[MessageExt]) -> None:
        self._buffer.append((mq, pq, msgs))
        while self._waiters and self._buffer:
            batch = self._take()
            if batch is None:
                break
            self._waiters.pop(0).callback(batch)

    def _idle_offset(self, mq: MessageQueue, offset: int) -> None:
        if self.consumed.get(mq, -1) < offset:
            self._consumed(mq, offset)

    def _moved_offset(self, mq: MessageQueue, offset: int) -> None:
        self._consumed(mq, offset)


class _LiteRebalancer(Rebalancer):
    def apply_all(self, queues: Sequence[MessageQueue]) -> defer.Deferred:
        """Assign mode: hold exactly ``queues`` (every topic)."""
        wanted = set(queues)
        topics = {mq.topic for mq in wanted} | {mq.topic for mq in self.process_queues}
        return defer.DeferredList([self.apply(t, {mq for mq in wanted if mq.topic == t}) for t in sorted(topics)])
