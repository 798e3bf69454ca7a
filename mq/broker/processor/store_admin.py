"""Store maintenance and inspection for the admin tools: QUERY_CONSUME_QUEUE (321, ``mqadmin queryCq``),
CLEAN_EXPIRED_CONSUMEQUEUE (306, ``cleanExpiredCQ``), CLEAN_UNUSED_TOPIC (316, ``cleanUnusedTopic``) and
DELETE_EXPIRED_COMMITLOG (329, ``deleteExpiredCommitLog``).

The first two cleanings remove only ConsumeQueues: of topics the broker no longer has a config for (but the
system topics), or whose entries all point before the CommitLog's first message. The third runs retention now:
CommitLog files past ``fileReservedTime`` go whatever the ``deleteWhen`` hour (mq.store.retention).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from twisted.logger import Logger

from mq.broker.subscription import expression_filter
from mq.common import fastjson
from mq.common.broker_headers import QueryConsumeQueueRequestHeader
from mq.common.topic import NOT_ALLOWED_SEND_TOPICS, SYSTEM_TOPIC_PREFIX
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand
from mq.store.consumequeue import PAD_SIZE

RC = ResponseCode
log = Logger()
#: The most entries one QUERY_CONSUME_QUEUE answers (each carries a message summary).
QUERY_CQ_MAX_COUNT = 1000


def _protected(topic: str) -> bool:
    """System topics whose queues cleanUnusedTopic keeps even without a topic config."""
    return topic in NOT_ALLOWED_SEND_TOPICS or topic.lower().startswith(SYSTEM_TOPIC_PREFIX)


class StoreAdminProcessor:
    def __init__(self, broker) -> None:
        self.broker = broker
        self.store = broker.store

    def register(self, dispatcher) -> None:
        dispatcher.register(RequestCode.QUERY_CONSUME_QUEUE, self.query_consume_queue)
        dispatcher.register(RequestCode.CLEAN_EXPIRED_CONSUMEQUEUE, self.clean_expired_consume_queue)
        dispatcher.register(RequestCode.CLEAN_UNUSED_TOPIC, self.clean_unused_topic)
        dispatcher.register(RequestCode.DELETE_EXPIRED_COMMITLOG, self.delete_expired_commit_log)

    def query_consume_queue(self, request: RemotingCommand, channel) -> RemotingCommand:
        """The queue's bounds and up to ``count`` entries from ``index``: CommitLog offset, size, tags code,
        whether the group's subscription (``consumerGroup``, optional) matches it, and the message it indexes."""
        h = QueryConsumeQueueRequestHeader.decode(request.ext_fields)
        if not 0 < h.count <= QUERY_CQ_MAX_COUNT:
            return request.response(RC.SYSTEM_ERROR, f"count {h.count} is out of range 1..{QUERY_CQ_MAX_COUNT}")
        cq = self.store.consume_queue(h.topic, h.queue_id)
        if cq is None:
            return request.response(RC.SYSTEM_ERROR, f"{h.queue_id}@{h.topic} is not exist!")
        body: Dict[str, Any] = {"maxQueueIndex": cq.max_offset, "minQueueIndex": cq.min_offset}
        mfilter = None
        if h.consumer_group:
            group = self.broker.consumer_manager.get(h.consumer_group)
            sub = group.subscriptions.get(h.topic) if group is not None else None
            if sub is None:
                return request.response(RC.SYSTEM_ERROR, f"{h.consumer_group}@{h.topic} is not online!")
            body["subscriptionData"] = sub.to_json()
            mfilter = expression_filter.message_filter(sub)
        remark: Optional[str] = None
        entries: List[Dict[str, Any]] = []
        if not cq.min_offset <= h.index < cq.max_offset:
            remark = f"Index {h.index} of {h.queue_id}@{h.topic} is not exist!"
        else:
            for offset in range(h.index, min(h.index + h.count, cq.max_offset)):
                e = cq.entry(offset)
                if e is None:
                    break
                phy, size, tags_code = e
                entries.append(self._entry_json(phy, size, tags_code, mfilter))
        body["queueData"] = entries
        return request.response(RC.SUCCESS, remark, None, fastjson.dumps_bytes(body))

    def _entry_json(self, phy: int, size: int, tags_code: int, mfilter) -> Dict[str, Any]:
        msg = None
        if size != PAD_SIZE:
            m = self.store.look_message_ext_by_offset(phy)
            if m is not None:
                msg = (f"MessageExt [topic={m.topic}, queueId={m.queue_id}, queueOffset={m.queue_offset}, "
                       f"msgId={m.msg_id}, tags={m.tags}, keys={' '.join(m.keys)}, storeTimestamp={m.store_timestamp}]")
        return {"physicOffset": phy, "physicSize": size, "tagsCode": tags_code, "extendDataJson": None,
                "bitMap": None, "eval": mfilter is None or mfilter.is_matched_by_consume_queue(tags_code),
                "msg": msg}

    def clean_expired_consume_queue(self, request: RemotingCommand, channel) -> RemotingCommand:
        removed = self.store.clean_expired_consume_queues()
        log.info("CLEAN_EXPIRED_CONSUMEQUEUE from {peer}: {n} queue(s) removed", peer=getattr(channel, "peer", "?"),
                 n=len(removed))
        return request.response(RC.SUCCESS)

    def clean_unused_topic(self, request: RemotingCommand, channel) -> RemotingCommand:
        """Remove the ConsumeQueues of topics the broker has no config for (deleted topics whose queues
        remained), as RocketMQ's cleanUnusedTopic; system topics are kept."""
        known = self.broker.topic_config_manager.table
        unused = [t for t in self.store.topics_with_queues() if t not in known and not _protected(t)]
        self.store.delete_topics(unused)
        log.info("CLEAN_UNUSED_TOPIC from {peer}: queues of {topics} removed", peer=getattr(channel, "peer", "?"),
                 topics=unused)
        return request.response(RC.SUCCESS)

    def delete_expired_commit_log(self, request: RemotingCommand, channel):
        """Delete the expired CommitLog files now (RocketMQ runs its next cleanings as if at ``deleteWhen``)."""
        peer = getattr(channel, "peer", "?")

        def done(deleted: int) -> RemotingCommand:
            log.info("DELETE_EXPIRED_COMMITLOG from {peer}: {n} CommitLog file(s) deleted", peer=peer, n=deleted)
            return request.response(RC.SUCCESS)

        return self.store.retention.run_manually().addCallback(done)
