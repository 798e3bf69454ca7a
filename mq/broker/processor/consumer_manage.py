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
        if self.broker.config.is_slave:
            return request.response(RC.SUCCESS)
        self.broker.consumer_offset_manager.commit(h.consumer_group, h.topic, h.queue_id, h.commit_offset)
        return request.response(RC.SUCCESS)
