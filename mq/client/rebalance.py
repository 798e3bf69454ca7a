"""``Rebalancer``: which queues this consumer owns (Java ``RebalanceImpl``), shared by push and lite pull.

Clustering: the group's client ids come from a broker of the topic, both lists are sorted, and the
allocation strategy picks this client's share. Broadcasting: every queue. The diff against the queues held
now drops the lost ones (their offsets are committed first) and adds the new ones, each starting at the
committed offset or, without one, where ``consume_from_where`` says.
"""

from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional, Sequence, Set

from twisted.internet import defer
from twisted.logger import Logger

from mq.client.allocate import Allocator
from mq.client.model import ConsumeFromWhere, MessageModel, MessageQueue
from mq.client.offset_store import OffsetStore
from mq.client.process_queue import ProcessQueue
from mq.common.mixall import is_retry_topic
from mq.common.route import PERM_READ, TopicRouteData

log = Logger()


def subscribe_queues(topic: str, route: TopicRouteData) -> Set[MessageQueue]:
    """The readable queues of a route."""
    return {MessageQueue(topic, qd.broker_name, i) for qd in route.queue_datas if qd.perm & PERM_READ
            for i in range(qd.read_queue_nums)}


def diff_allocation(held: Sequence[MessageQueue], wanted: Set[MessageQueue]):
    """(queues to drop, queues to add), both sorted."""
    held_set = set(held)
    return sorted(held_set - wanted), sorted(wanted - held_set)


class Rebalancer:
    """Keeps ``process_queues`` equal to this client's allocation, topic by topic.

    ``on_added(mq, pq, offset)`` starts work on a new queue; ``on_removed(mq, pq)`` (a Deferred of a bool)
    finishes work on a lost one and may refuse (orderly consumers that cannot unlock yet); ``lock(mqs)``
    (orderly) is a Deferred of the subset this client may take.
    """

    def __init__(self, instance, group: str, model: MessageModel, allocator: Allocator, offsets: OffsetStore,
                 consume_from_where: ConsumeFromWhere = ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
                 consume_timestamp_ms: Optional[int] = None,
                 on_added: Callable = None, on_removed: Callable = None, lock: Optional[Callable] = None) -> None:
        self.instance = instance
        self.group = group
        self.model = MessageModel(model)
        self.allocator = allocator
        self.offsets = offsets
        self.consume_from_where = ConsumeFromWhere(consume_from_where)
        self.consume_timestamp_ms = consume_timestamp_ms or int((time.time() - 1800) * 1000)
        self.on_added = on_added
        self.on_removed = on_removed
        self.lock = lock
        self.topic_queues: Dict[str, Set[MessageQueue]] = {}
        self.process_queues: Dict[MessageQueue, ProcessQueue] = {}
        self._running: Optional[defer.Deferred] = None
        self._again = False

    def on_route(self, topic: str, route: TopicRouteData) -> None:
        self.topic_queues[topic] = subscribe_queues(topic, route)

    def rebalance(self, topics: Sequence[str]) -> defer.Deferred:
        """Rebalance every topic; a call while one runs makes it run once more afterwards."""
        if self._running is not None:
            self._again = True
            waiter = defer.Deferred()
            self._running.addBoth(lambda r: (waiter.callback(None), r)[1])
            return waiter
        self._running = d = self._rebalance_all(topics)

        def done(result):
            self._running = None
            if self._again:
                self._again = False
                return self.rebalance(topics)
            return result

        return d.addBoth(done)

    @defer.inlineCallbacks
    def _rebalance_all(self, topics: Sequence[str]):
        for topic in topics:
            try:
                yield self.rebalance_topic(topic)
            except Exception as e:
                log.info("rebalance of {group} on {topic} failed: {e}", group=self.group, topic=topic, e=e)

    @defer.inlineCallbacks
    def rebalance_topic(self, topic: str):
        mqs = self.topic_queues.get(topic)
        if mqs is None:
            route = yield self.instance.update_route(topic)
            if route is None:
                return
            mqs = self.topic_queues.get(topic) or subscribe_queues(topic, route)
        if self.model is MessageModel.BROADCASTING:
            wanted = set(mqs)
        else:
            addr = self.instance.any_broker_of(topic)
            if addr is None:
                return
            cids = yield self.instance.api.consumer_ids(addr, self.group)
            if not cids:
                return
            wanted = set(self.allocator(self.instance.client_id, sorted(mqs), sorted(set(cids))))
        yield self.apply(topic, wanted)

    @defer.inlineCallbacks
    def apply(self, topic: str, wanted: Set[MessageQueue]):
        """Drop the queues of ``topic`` not in ``wanted`` and start the new ones; True if anything changed."""
        held = [mq for mq in self.process_queues if mq.topic == topic]
        drop, add = diff_allocation(held, wanted)
        changed = False
        for mq in drop:
            pq = self.process_queues[mq]
            pq.dropped = True
            ok = True
            if self.on_removed is not None:
                ok = yield self.on_removed(mq, pq)
            if ok:
                del self.process_queues[mq]
                changed = True
        if add and self.lock is not None:
            locked = yield self.lock(add)
            add = [mq for mq in add if mq in locked]
        for mq in add:
            try:
                offset = yield self.compute_pull_from_where(mq)
            except Exception as e:
                log.info("cannot find where to start {mq}: {e}", mq=mq, e=e)
                continue
            if offset < 0 or mq in self.process_queues:
                continue
            pq = ProcessQueue()
            if self.lock is not None:
                pq.locked, pq.last_lock_time = True, self.instance.reactor.seconds()
            self.process_queues[mq] = pq
            changed = True
            if self.on_added is not None:
                self.on_added(mq, pq, offset)
        return changed

    @defer.inlineCallbacks
    def compute_pull_from_where(self, mq: MessageQueue):
        """The committed offset, else (no offset yet) per ``consume_from_where``."""
        self.offsets.remove(mq)
        last = yield self.offsets.read(mq, from_store=True)
        if last >= 0:
            return last
        api = self.instance.api
        addr = self.instance.subscribe_addr(mq.broker_name)  # the master, else any member
        if addr is None:
            return -1
        cfw = self.consume_from_where
        if cfw is ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET:
            return 0
        if is_retry_topic(mq.topic):
            return 0 if cfw is ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET else (yield api.max_offset(addr, mq))
        if cfw is ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET:
            return (yield api.max_offset(addr, mq))
        return (yield api.search_offset(addr, mq, self.consume_timestamp_ms))

    def queues_of(self, topic: Optional[str] = None) -> List[MessageQueue]:
        return sorted(mq for mq in self.process_queues if topic is None or mq.topic == topic)
