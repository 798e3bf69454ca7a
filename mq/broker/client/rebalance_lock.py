"""Ordered consumption: LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42) with per-client queue locks.

An orderly consumer locks the queues it was allotted before it consumes them, and renews the locks every
20 s; the broker grants a queue to one client of a group at a time. A lock not renewed for
``rebalanceLockMaxLiveTime`` (60 s, RocketMQ's ``rocketmq.broker.rebalance.lockMaxLiveTime``) expires and
the next client asking gets it. Locks live in memory only, as in RocketMQ: after a broker restart every
consumer locks again on its next renewal. Expired locks are dropped when looked at and by the broker's sweep
every 10 s (a client gone without unlocking left them for good); only queues of the broker's topics, within
their queue ids, are locked, at most ``MAX_BATCH_QUEUES`` a request.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, List, Tuple

import attr
from twisted.logger import Logger

from mq.common import fastjson
from mq.common.names import group_error
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand

log = Logger()
RC = ResponseCode
#: (topic, brokerName, queueId), as the message queues of the request bodies
QueueKey = Tuple[str, str, int]
#: Queues one LOCK_BATCH_MQ or UNLOCK_BATCH_MQ may name. A client sends, for each broker, the queues of it it
#: consumes in order: a topic's read queues (at most 1024) and its group's retry queues (as many), for each
#: topic subscribed. A body of 100,000 held the broker 8.5 s.
MAX_BATCH_QUEUES = 4096


@attr.s(slots=True)
class LockEntry:
    client_id: str = attr.ib()
    last_update: int = attr.ib()


class RebalanceLockManager:
    def __init__(self, now_ms: Callable[[], int], max_live_ms: Callable[[], int]) -> None:
        self.now_ms = now_ms
        self.max_live_ms = max_live_ms
        self.table: Dict[str, Dict[QueueKey, LockEntry]] = {}

    def _expired(self, entry: LockEntry, now: int) -> bool:
        return now - entry.last_update > self.max_live_ms()

    def try_lock_batch(self, group: str, queues: Iterable[QueueKey], client_id: str) -> List[QueueKey]:
        """Lock (or renew) what is free, expired or already this client's; returns the queues now held.

        One log line for the request (what was new, taken over or busy), not one per queue: a 100,000-queue
        body wrote 11 MB of log."""
        now = self.now_ms()
        locks = self.table.setdefault(group, {})
        held = []
        new = taken = busy = 0
        for mq in queues:
            entry = locks.get(mq)
            if entry is None:
                locks[mq] = LockEntry(client_id, now)
                new += 1
            elif entry.client_id == client_id:
                entry.last_update = now
            elif self._expired(entry, now):
                locks[mq] = LockEntry(client_id, now)
                taken += 1
            else:
                busy += 1
                continue
            held.append(mq)
        if not locks:
            del self.table[group]
        if new or taken:
            log.info("group {group}: {cid} locked {new} free queue(s), took over {taken} expired lock(s), "
                     "{busy} held by others", group=group, cid=client_id, new=new, taken=taken, busy=busy)
        return held

    def unlock_batch(self, group: str, queues: Iterable[QueueKey], client_id: str) -> None:
        """Free the queues this client holds (others' locks are left alone)."""
        locks = self.table.get(group)
        if not locks:
            return
        for mq in queues:
            entry = locks.get(mq)
            if entry is not None and entry.client_id == client_id:
                del locks[mq]
        if not locks:
            del self.table[group]

    def holder(self, group: str, mq: QueueKey) -> str:
        """The client holding a live lock on the queue, or ""; an expired lock looked at is dropped."""
        locks = self.table.get(group)
        entry = locks.get(mq) if locks else None
        if entry is None:
            return ""
        if self._expired(entry, self.now_ms()):
            del locks[mq]
            if not locks:
                del self.table[group]
            return ""
        return entry.client_id

    def prune(self) -> int:
        """Drop the expired locks (the broker's periodic sweep): a client that went away without unlocking
        left its entries for good. Returns how many were dropped."""
        now = self.now_ms()
        dropped = 0
        for group, locks in list(self.table.items()):
            for mq in [mq for mq, entry in locks.items() if self._expired(entry, now)]:
                del locks[mq]
                dropped += 1
            if not locks:
                del self.table[group]
        return dropped


def _parse_body(body: bytes) -> Tuple[str, str, List[QueueKey]]:
    data = fastjson.loads(body or b"{}")
    if not isinstance(data, dict):
        raise ValueError("the body is not a JSON object")  # noqa: TRY004 - bad input
    group = str(data.get("consumerGroup") or "")
    client_id = str(data.get("clientId") or "")
    if not group or not client_id:
        raise ValueError("consumerGroup and clientId are required")
    why = group_error(group)
    if why is not None:
        raise ValueError(f"consumerGroup: {why}")
    items = data.get("mqSet") or []
    if not isinstance(items, list):
        raise ValueError("mqSet is not a list")  # noqa: TRY004 - bad input
    if len(items) > MAX_BATCH_QUEUES:
        raise ValueError(f"mqSet has {len(items)} queues, more than {MAX_BATCH_QUEUES}")
    queues = []
    for item in items:
        queues.append((str(item["topic"]), str(item.get("brokerName") or ""), int(item["queueId"])))
    return group, client_id, queues


def _queue_json(mq: QueueKey) -> dict:
    return {"brokerName": mq[1], "queueId": mq[2], "topic": mq[0]}


class RebalanceLockProcessor:
    def __init__(self, broker) -> None:
        self.manager = broker.rebalance_lock_manager
        self.topics = broker.topic_config_manager

    def register(self, dispatcher) -> None:
        dispatcher.register(RequestCode.LOCK_BATCH_MQ, self.lock)
        dispatcher.register(RequestCode.UNLOCK_BATCH_MQ, self.unlock)

    def _lockable(self, group: str, client_id: str, queues: List[QueueKey]) -> List[QueueKey]:
        """The queues of known topics with a queue id in range; the others are not locked (one log line)."""
        ok = []
        for mq in queues:
            tc = self.topics.select(mq[0])
            if tc is not None and 0 <= mq[2] < max(tc.read_queue_nums, tc.write_queue_nums):
                ok.append(mq)
        if len(ok) < len(queues):
            log.warn("group {group}: {n} queue(s) {cid} asked to lock are of no topic here or out of its queue "
                     "ids, not locked", group=group, n=len(queues) - len(ok), cid=client_id)
        return ok

    def lock(self, request: RemotingCommand, channel) -> RemotingCommand:
        try:
            group, client_id, queues = _parse_body(request.body)
        except (ValueError, KeyError, TypeError, OverflowError) as e:
            return request.response(RC.SYSTEM_ERROR, f"the lock request body is not valid: {e}")
        held = self.manager.try_lock_batch(group, self._lockable(group, client_id, queues), client_id)
        body = fastjson.dumps_bytes({"lockOKMQSet": [_queue_json(mq) for mq in held]})
        return request.response(RC.SUCCESS, None, None, body)

    def unlock(self, request: RemotingCommand, channel) -> RemotingCommand:
        try:
            group, client_id, queues = _parse_body(request.body)
        except (ValueError, KeyError, TypeError, OverflowError) as e:
            return request.response(RC.SYSTEM_ERROR, f"the unlock request body is not valid: {e}")
        self.manager.unlock_batch(group, queues, client_id)
        return request.response(RC.SUCCESS)
