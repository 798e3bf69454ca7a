"""Message queries: QUERY_MESSAGE (12) by key or unique key through the index, VIEW_MESSAGE_BY_ID (33).

QUERY_MESSAGE looks up ``topic#key`` in the index (user KEYS tokens and UNIQ_KEY are both indexed) and
answers the matching records, raw, concatenated; the client re-checks the key itself. With the extField
``_UNIQUE_KEY_QUERY=true`` (a lookup by client message id) the broker caps the answer at
``defaultQueryMaxNum`` as RocketMQ does; every answer holds at most ``maxMsgsNumBatch`` messages (RocketMQ's
cap too) and stops before passing ``MAX_ANSWER_BYTES``. VIEW_MESSAGE_BY_ID takes the CommitLog offset the
client decoded from an offset message id.
"""

from __future__ import annotations

from mq.common.broker_headers import QueryMessageRequestHeader, ViewMessageRequestHeader
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand

RC = ResponseCode
UNIQUE_KEY_QUERY = "_UNIQUE_KEY_QUERY"
#: Bytes of records one QUERY_MESSAGE answer stops before (but its first record is always answered). Ours:
#: RocketMQ caps by count only and sends the records from its page cache, but here the answer is one frame
#: built in memory, and maxMsgsNumBatch messages of up to maxMessageSize (64 x 4 MiB) would pass every
#: client's frame limit (16 MiB) and hold that much memory per request.
MAX_ANSWER_BYTES = 4 << 20


class QueryMessageProcessor:
    def __init__(self, broker) -> None:
        self.broker = broker
        self.store = broker.store

    def register(self, dispatcher) -> None:
        dispatcher.register(RequestCode.QUERY_MESSAGE, self.query_message)
        dispatcher.register(RequestCode.VIEW_MESSAGE_BY_ID, self.view_message)

    def query_message(self, request: RemotingCommand, channel) -> RemotingCommand:
        h = QueryMessageRequestHeader.decode(request.ext_fields)
        max_num = h.max_num
        if (request.field(UNIQUE_KEY_QUERY) or "").lower() == "true":
            max_num = self.store.config.default_query_max_num
        if not self.store.config.message_index_enable:
            return request.response(RC.QUERY_NOT_FOUND, "the broker's message index is disabled (messageIndexEnable)")
        max_num = min(max_num, self.store.config.max_msgs_num_batch)
        result = self.store.query_message(h.topic, h.key, max(1, max_num), h.begin_timestamp, h.end_timestamp,
                                          MAX_ANSWER_BYTES)
        ext = {
            "indexLastUpdateTimestamp": str(result.index_last_update_timestamp),
            "indexLastUpdatePhyoffset": str(result.index_last_update_phyoffset),
        }
        if not result.message_buffers:
            return request.response(RC.QUERY_NOT_FOUND, f"can not find message, maybe time range not correct "
                                                        f"(topic {h.topic}, key {h.key})", ext)
        return request.response(RC.SUCCESS, None, ext, b"".join(result.message_buffers))

    def view_message(self, request: RemotingCommand, channel) -> RemotingCommand:
        h = ViewMessageRequestHeader.decode(request.ext_fields)
        raw = self.store.look_message_by_offset(h.offset, requested=True) if h.offset >= 0 else None
        if raw is None:
            return request.response(RC.SYSTEM_ERROR, f"can not find message by the offset, {h.offset}")
        return request.response(RC.SUCCESS, None, None, raw)
