"""Ordered consumption: LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42) with per-client queue locks.

An orderly consumer locks the queues it was allotted before it consumes them, and renews the locks every
20 s; the broker grants a queue to one client of a group at a time. A lock not renewed for
``rebalanceLockMaxLiveTime`` (60 s, RocketMQ's ``rocketmq.broker.rebalance.lockMaxLiveTime``) expires and
the next client asking gets it. Locks live in memory only, as in RocketMQ: after a broker restart every
consumer locks again on its next renewal.
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
        """Lock (or renew) what is free, expired or already this client's; returns the queues now held."""
        now = self.now_ms()
        locks = self.table.setdefault(group, {})
        held = []
        for mq in queues:
            entry = locks.get(mq)
            if entry is None:
                locks[mq] = LockEntry(client_id, now)
                log.info("queue {mq} of group {group} locked by {cid}", mq=mq, group=group, cid=client_id)
            elif entry.client_id == client_id:
                entry.last_update = now
            elif self._expired(entry, now):
                log.warn("lock of queue {mq} of group {group} held by {old} expired: now {cid}'s", mq=mq,
                         group=group, old=entry.client_id, cid=client_id)
                locks[mq] = LockEntry(client_id, now)
            else:
                continue
            held.append(mq)
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
        """The client holding a live lock on the queue, or ""."""
        entry = (self.table.get(group) or {}).get(mq)
        return "" if entry is None or self._expired(entry, self.now_ms()) else entry.client_id


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
    queues = []
    for item in data.get("mqSet") or []:
        queues.append((str(item["topic"]), str(item.get("brokerName") or ""), int(item["queueId"])))
    return group, client_id, queues


def _queue_json(mq: QueueKey) -> dict:
    return {"brokerName": mq[1], "queueId": mq[2], "topic": mq[0]}


class RebalanceLockProcessor:
    def __init__(self, broker) -> None:
        self.manager = broker.rebalance_lock_manager

    def register(self, dispatcher) -> None:
        dispatcher.register(RequestCode.LOCK_BATCH_MQ, self.lock)
        dispatcher.register(RequestCode.UNLOCK_BATCH_MQ, self.unlock)

    def lock(self, request: RemotingCommand, channel) -> RemotingCommand:
        try:
            group, client_id, queues = _parse_body(request.body)
        except (ValueError, KeyError, TypeError) as e:
            return request.response(RC.SYSTEM_ERROR, f"the lock request body is not valid: {e}")
        held = self.manager.try_lock_batch(group, queues, client_id)
        body = fastjson.dumps_bytes({"lockOKMQSet": [_queue_json(mq) for mq in held]})
        return request.response(RC.SUCCESS, None, None, body)

    def unlock(self, request: RemotingCommand, channel) -> RemotingCommand:
        try:
            group, client_id, queues = _parse_body(request.body)
        except (ValueError, KeyError, TypeError) as e:
            return request.response(RC.SYSTEM_ERROR, f"the unlock request body is not valid: {e}")
        self.manager.unlock_batch(group, queues, client_id)
        return request.response(RC.SUCCESS)
