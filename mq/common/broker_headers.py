"""Custom headers of the broker's requests and responses (RocketMQ ``protocol.header``), shared with clients.

Field names are RocketMQ's; ``required=True`` marks ``@CFNotNull``. ``SendMessageRequestHeader`` carries
the one-letter names of ``SendMessageRequestHeaderV2`` as its short names, so one class decodes both
SEND_MESSAGE (``decode``) and SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE (``decode_short``).
"""

from __future__ import annotations

import attr

from mq.remoting.header import CommandHeader, hfield


@attr.s(slots=True)
class SendMessageRequestHeader(CommandHeader):
    producer_group: str = hfield("producerGroup", required=True, short="a")
    topic: str = hfield("topic", required=True, short="b")
    default_topic: str = hfield("defaultTopic", required=True, short="c")
    default_topic_queue_nums: int = hfield("defaultTopicQueueNums", int, required=True, short="d", bits=32)
    queue_id: int = hfield("queueId", int, required=True, short="e", bits=32)
    sys_flag: int = hfield("sysFlag", int, required=True, short="f", bits=32)
    born_timestamp: int = hfield("bornTimestamp", int, required=True, short="g")
    flag: int = hfield("flag", int, required=True, short="h", bits=32)
    properties: str = hfield("properties", short="i")
    reconsume_times: int = hfield("reconsumeTimes", int, short="j", bits=32)
    unit_mode: bool = hfield("unitMode", bool, default=False, short="k")
    max_reconsume_times: int = hfield("maxReconsumeTimes", int, short="l", bits=32)
    batch: bool = hfield("batch", bool, default=False, short="m")
    bname: str = hfield("bname", short="n")


@attr.s(slots=True)
class ReplyMessageRequestHeader(CommandHeader):
    """PUSH_REPLY_MESSAGE_TO_CLIENT (broker → requester): the reply's send header plus where it came from
    (``bornHost``, ``storeHost`` as ``ip:port``) and when the broker took it (``storeTimestamp``, ms)."""

    producer_group: str = hfield("producerGroup", required=True)
    topic: str = hfield("topic", required=True)
    default_topic: str = hfield("defaultTopic", required=True)
    default_topic_queue_nums: int = hfield("defaultTopicQueueNums", int, required=True, bits=32)
    queue_id: int = hfield("queueId", int, required=True, bits=32)
    sys_flag: int = hfield("sysFlag", int, required=True, bits=32)
    born_timestamp: int = hfield("bornTimestamp", int, required=True)
    flag: int = hfield("flag", int, required=True, bits=32)
    properties: str = hfield("properties")
    reconsume_times: int = hfield("reconsumeTimes", int, bits=32)
    unit_mode: bool = hfield("unitMode", bool, default=False)
    born_host: str = hfield("bornHost", required=True)
    store_host: str = hfield("storeHost", required=True)
    store_timestamp: int = hfield("storeTimestamp", int, required=True)


@attr.s(slots=True)
class SendMessageResponseHeader(CommandHeader):
    msg_id: str = hfield("msgId", required=True)
    queue_id: int = hfield("queueId", int, required=True)
    queue_offset: int = hfield("queueOffset", int, required=True)
    transaction_id: str = hfield("transactionId")


@attr.s(slots=True)
class PullMessageRequestHeader(CommandHeader):
    consumer_group: str = hfield("consumerGroup", required=True)
    topic: str = hfield("topic", required=True)
    queue_id: int = hfield("queueId", int, required=True)
    queue_offset: int = hfield("queueOffset", int, required=True)
    max_msg_nums: int = hfield("maxMsgNums", int, required=True)
    sys_flag: int = hfield("sysFlag", int, required=True)
    commit_offset: int = hfield("commitOffset", int, required=True)
    suspend_timeout_millis: int = hfield("suspendTimeoutMillis", int, required=True)
    subscription: str = hfield("subscription")
    sub_version: int = hfield("subVersion", int, required=True)
    expression_type: str = hfield("expressionType")
    bname: str = hfield("bname")


@attr.s(slots=True)
class PullMessageResponseHeader(CommandHeader):
    suggest_which_broker_id: int = hfield("suggestWhichBrokerId", int, required=True)
    next_begin_offset: int = hfield("nextBeginOffset", int, required=True)
    min_offset: int = hfield("minOffset", int, required=True)
    max_offset: int = hfield("maxOffset", int, required=True)


@attr.s(slots=True)
class QueueRequestHeader(CommandHeader):
    """GET_MAX_OFFSET, GET_MIN_OFFSET and GET_EARLIEST_MSG_STORETIME: one queue of one topic."""

    topic: str = hfield("topic", required=True)
    queue_id: int = hfield("queueId", int, required=True)


@attr.s(slots=True)
class SearchOffsetRequestHeader(CommandHeader):
    topic: str = hfield("topic", required=True)
    queue_id: int = hfield("queueId", int, required=True)
    timestamp: int = hfield("timestamp", int, required=True)


@attr.s(slots=True)
class OffsetResponseHeader(CommandHeader):
    offset: int = hfield("offset", int, required=True)


@attr.s(slots=True)
class EarliestMsgStoretimeResponseHeader(CommandHeader):
    timestamp: int = hfield("timestamp", int, required=True)


@attr.s(slots=True)
class QueryConsumerOffsetRequestHeader(CommandHeader):
    consumer_group: str = hfield("consumerGroup", required=True)
    topic: str = hfield("topic", required=True)
    queue_id: int = hfield("queueId", int, required=True)


@attr.s(slots=True)
class UpdateConsumerOffsetRequestHeader(CommandHeader):
    consumer_group: str = hfield("consumerGroup", required=True)
    topic: str = hfield("topic", required=True)
    queue_id: int = hfield("queueId", int, required=True)
    commit_offset: int = hfield("commitOffset", int, required=True)


@attr.s(slots=True)
class ConsumerGroupRequestHeader(CommandHeader):
    """GET_CONSUMER_LIST_BY_GROUP, NOTIFY_CONSUMER_IDS_CHANGED, GET_CONSUMER_CONNECTION_LIST."""

    consumer_group: str = hfield("consumerGroup", required=True)


@attr.s(slots=True)
class ProducerGroupRequestHeader(CommandHeader):
    """GET_PRODUCER_CONNECTION_LIST."""

    producer_group: str = hfield("producerGroup", required=True)


@attr.s(slots=True)
class UnregisterClientRequestHeader(CommandHeader):
    client_id: str = hfield("clientID", required=True)
    producer_group: str = hfield("producerGroup")
    consumer_group: str = hfield("consumerGroup")


@attr.s(slots=True)
class CreateTopicRequestHeader(CommandHeader):
    topic: str = hfield("topic", required=True)
    default_topic: str = hfield("defaultTopic", required=True)
    read_queue_nums: int = hfield("readQueueNums", int, required=True)
    write_queue_nums: int = hfield("writeQueueNums", int, required=True)
    perm: int = hfield("perm", int, required=True)
    topic_filter_type: str = hfield("topicFilterType", required=True)
    topic_sys_flag: int = hfield("topicSysFlag", int)
    order: bool = hfield("order", bool, default=False)


@attr.s(slots=True)
class TopicRequestHeader(CommandHeader):
    """DELETE_TOPIC_IN_BROKER, GET_TOPIC_STATS_INFO, QUERY_TOPIC_CONSUME_BY_WHO."""

    topic: str = hfield("topic", required=True)


@attr.s(slots=True)
class GetConsumeStatsRequestHeader(CommandHeader):
    consumer_group: str = hfield("consumerGroup", required=True)
    topic: str = hfield("topic")


@attr.s(slots=True)
class GetConsumerRunningInfoRequestHeader(CommandHeader):
    consumer_group: str = hfield("consumerGroup", required=True)
    client_id: str = hfield("clientId", required=True)
    jstack_enable: bool = hfield("jstackEnable", bool, default=False)


@attr.s(slots=True)
class ConsumeMessageDirectlyResultRequestHeader(CommandHeader):
    """CONSUME_MESSAGE_DIRECTLY (admin → broker → client): the message by its offset id; the broker adds its
    ``brokerName`` and the stored record as the body before relaying."""

    consumer_group: str = hfield("consumerGroup", required=True)
    client_id: str = hfield("clientId")
    msg_id: str = hfield("msgId")
    broker_name: str = hfield("brokerName")


@attr.s(slots=True)
class ResetOffsetRequestHeader(CommandHeader):
    """INVOKE_BROKER_TO_RESET_OFFSET (admin → broker) and RESET_CONSUMER_CLIENT_OFFSET (broker → client).

    ``timestamp`` −1 means each queue's max offset."""

    topic: str = hfield("topic", required=True)
    group: str = hfield("group", required=True)
    timestamp: int = hfield("timestamp", int, required=True)
    is_force: bool = hfield("isForce", bool, default=False)


@attr.s(slots=True)
class GetConsumerStatusRequestHeader(CommandHeader):
    """INVOKE_BROKER_TO_GET_CONSUMER_STATUS (admin → broker) and GET_CONSUMER_STATUS_FROM_CLIENT (broker →
    client). ``clientAddr`` (admin → broker only) picks one client, by client id as RocketMQ does (mq's broker
    also takes the client's address)."""

    topic: str = hfield("topic", required=True)
    group: str = hfield("group", required=True)
    client_addr: str = hfield("clientAddr")


@attr.s(slots=True)
class GetBrokerConfigResponseHeader(CommandHeader):
    version: str = hfield("version", required=True)


@attr.s(slots=True)
class DeleteSubscriptionGroupRequestHeader(CommandHeader):
    group_name: str = hfield("groupName", required=True)
    remove_offset: bool = hfield("removeOffset", bool, default=False)


@attr.s(slots=True)
class QueryMessageRequestHeader(CommandHeader):
    topic: str = hfield("topic", required=True)
    key: str = hfield("key", required=True)
    max_num: int = hfield("maxNum", int, required=True)
    begin_timestamp: int = hfield("beginTimestamp", int, required=True)
    end_timestamp: int = hfield("endTimestamp", int, required=True)


@attr.s(slots=True)
class QueryMessageResponseHeader(CommandHeader):
    index_last_update_timestamp: int = hfield("indexLastUpdateTimestamp", int, required=True)
    index_last_update_phyoffset: int = hfield("indexLastUpdatePhyoffset", int, required=True)


@attr.s(slots=True)
class ViewMessageRequestHeader(CommandHeader):
    offset: int = hfield("offset", int, required=True)


@attr.s(slots=True)
class ConsumerSendMsgBackRequestHeader(CommandHeader):
    offset: int = hfield("offset", int, required=True)
    group: str = hfield("group", required=True)
    delay_level: int = hfield("delayLevel", int, required=True, bits=32)
    origin_msg_id: str = hfield("originMsgId")
    origin_topic: str = hfield("originTopic")
    unit_mode: bool = hfield("unitMode", bool, default=False)
    max_reconsume_times: int = hfield("maxReconsumeTimes", int, bits=32)
    bname: str = hfield("bname")


@attr.s(slots=True)
class EndTransactionRequestHeader(CommandHeader):
    producer_group: str = hfield("producerGroup", required=True)
    tran_state_table_offset: int = hfield("tranStateTableOffset", int, required=True)
    commit_log_offset: int = hfield("commitLogOffset", int, required=True)
    commit_or_rollback: int = hfield("commitOrRollback", int, required=True)
    from_transaction_check: bool = hfield("fromTransactionCheck", bool, default=False)
    msg_id: str = hfield("msgId", required=True)
    transaction_id: str = hfield("transactionId")
    bname: str = hfield("bname")


@attr.s(slots=True)
class CheckTransactionStateRequestHeader(CommandHeader):
    tran_state_table_offset: int = hfield("tranStateTableOffset", int, required=True)
    commit_log_offset: int = hfield("commitLogOffset", int, required=True)
    msg_id: str = hfield("msgId")
    transaction_id: str = hfield("transactionId")
    offset_msg_id: str = hfield("offsetMsgId")
    bname: str = hfield("bname")


@attr.s(slots=True)
class QueryConsumeQueueRequestHeader(CommandHeader):
    """QUERY_CONSUME_QUEUE (321): ``count`` entries of one ConsumeQueue from logical offset ``index``."""

    topic: str = hfield("topic", required=True)
    queue_id: int = hfield("queueId", int, required=True, bits=32)
    index: int = hfield("index", int, required=True)
    count: int = hfield("count", int, required=True, bits=32)
    consumer_group: str = hfield("consumerGroup")


@attr.s(slots=True)
class ViewBrokerStatsDataRequestHeader(CommandHeader):
    stats_name: str = hfield("statsName", required=True)
    stats_key: str = hfield("statsKey", required=True)


@attr.s(slots=True)
class GetConsumeStatsInBrokerHeader(CommandHeader):
    is_order: bool = hfield("isOrder", bool, required=True)
