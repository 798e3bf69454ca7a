"""Consumer management: GET_CONSUMER_LIST_BY_GROUP (38), QUERY_/UPDATE_CONSUMER_OFFSET (14/15)."""

from __future__ import annotations

from mq.common import fastjson
from mq.common.broker_headers import (
    ConsumerGroupRequestHeader,
    QueryConsumerOffsetRequestHeader,
    UpdateConsumerOffsetRequestHeader,
)
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand

RC = ResponseCode


class ConsumerManageProcessor:
    def __init__(self, broker) -> None:
        self.broker = broker

    def register(self, dispatcher) -> None:
        dispatcher.register(RequestCode.GET_CONSUMER_LIST_BY_GROUP, self.consumer_list)
        dispatcher.register(RequestCode.QUERY_CONSUMER_OFFSET, self.query_offset)
        dispatcher.register(RequestCode.UPDATE_CONSUMER_OFFSET, self.update_offset)

    def consumer_list(self, request: RemotingCommand, channel) -> RemotingCommand:
        h = ConsumerGroupRequestHeader.decode(request.ext_fields)
        group = self.broker.consumer_manager.get(h.consumer_group)
        ids = group.client_ids() if group is not None else []
        if not ids:
            return request.response(RC.SYSTEM_ERROR,
                                    f"no consumer for this group, {h.consumer_group} {channel.peer}")
        return request.response(RC.SUCCESS, None, None, fastjson.dumps_bytes({"consumerIdList": ids}))

    def query_offset(self, request: RemotingCommand, channel) -> RemotingCommand:
        b = self.broker
        h = QueryConsumerOffsetRequestHeader.decode(request.ext_fields)
        offset = b.consumer_offset_manager.query(h.consumer_group, h.topic, h.queue_id)
        if offset >= 0:
            return request.response(RC.SUCCESS, None, {"offset": str(offset)})
        # No committed offset: a queue that still starts at 0 (and is not far behind on disk) is read from 0;
        # otherwise the client decides by its consumeFromWhere.
        if b.store.get_min_offset_in_queue(h.topic, h.queue_id) <= 0:
            return request.response(RC.SUCCESS, None, {"offset": "0"})
        return request.response(RC.QUERY_NOT_FOUND,
                                "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first")

    def update_offset(self, request: RemotingCommand, channel) -> RemotingCommand:
        h = UpdateConsumerOffsetRequestHeader.decode(request.ext_fields)
        b = self.broker
        if b.config.is_slave:
            return request.response(RC.SUCCESS)
        refusal = self._offset_refusal(request, h, channel)
        if refusal is not None:
            return refusal
        b.consumer_offset_manager.commit(h.consumer_group, h.topic, h.queue_id, h.commit_offset)
        return request.response(RC.SUCCESS)

    def _offset_refusal(self, request: RemotingCommand, h: UpdateConsumerOffsetRequestHeader,
                        channel) -> RemotingCommand | None:
        """RocketMQ 5's checks of a commit (group, then topic), and the queue id's range as a pull checks it:
        each offset committed is an entry of ``consumerOffset.json``, saved every few seconds on the reactor,
        so made-up topics, groups and queue ids (20,000 oneway commits made an 814 KB file) are refused.
        An unknown group is created as a heartbeat would when auto-creation is on (and the table not full),
        once the topic and queue are known good."""
        b = self.broker
        groups = b.subscription_group_manager
        unknown = RC.SUBSCRIPTION_GROUP_NOT_EXIST, f"Group {h.consumer_group[:300]} not exist!"
        if groups.find(h.consumer_group, auto_create=False) is None and not b.config.auto_create_subscription_group:
            return request.response(*unknown)
        tc = b.topic_config_manager.select(h.topic)
        if tc is None:
            return request.response(RC.TOPIC_NOT_EXIST, f"Topic {h.topic[:300]} not exist!")
        queues = max(tc.read_queue_nums, tc.write_queue_nums)
        if not 0 <= h.queue_id < queues:
            return request.response(
                RC.SYSTEM_ERROR, f"queueId[{h.queue_id}] is illegal, topic:[{h.topic}] readQueueNums:"
                                 f"[{tc.read_queue_nums}] writeQueueNums:[{tc.write_queue_nums}] "
                                 f"consumer:[{channel.peer}]")
        if groups.find(h.consumer_group) is None:  # a name no group may have, or the table is full
            return request.response(*unknown)
        return None
