"""Admin and query codes the admin tools and clients use: topics, groups, offsets, stats, config.

Bodies are fastjson-shaped; maps keyed by a ``MessageQueue`` are written with JSON objects as keys, which is
what Java's admin tools read (wire doc §3.18, §9).
"""

from __future__ import annotations

from twisted.logger import Logger

from mq.broker.processor.broker_stats import MessageQueue, consume_stats
from mq.broker.subscription.group import SubscriptionGroupConfig
from mq.common import fastjson, mixall
from mq.common.broker_headers import (
    ConsumeMessageDirectlyResultRequestHeader,
    ConsumerGroupRequestHeader,
    CreateTopicRequestHeader,
    DeleteSubscriptionGroupRequestHeader,
    GetConsumerRunningInfoRequestHeader,
    GetConsumerStatusRequestHeader,
    GetConsumeStatsRequestHeader,
    ProducerGroupRequestHeader,
    QueueRequestHeader,
    ResetOffsetRequestHeader,
    SearchOffsetRequestHeader,
    TopicRequestHeader,
)
from mq.common.consumer_status import GetConsumerStatusBody
from mq.common.message import decode_offset_msg_id
from mq.common.names import group_error, topic_error
from mq.common.properties import format_properties, parse_properties
from mq.common.route import TopicConfig
from mq.remoting.codes import LanguageCode, RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand

RC = ResponseCode
log = Logger()
SLAVE_REFUSAL = "Can't modify topic or subscription group from slave broker, please execute it from master broker."


def _offset(request: RemotingCommand, value: int) -> RemotingCommand:
    return request.response(RC.SUCCESS, None, {"offset": str(value)})


def _refuse_old_clients(request: RemotingCommand, clients) -> "RemotingCommand | None":
    """SYSTEM_ERROR if one of ``clients`` is older than V3_0_7_SNAPSHOT, which has neither
    RESET_CONSUMER_CLIENT_OFFSET nor GET_CONSUMER_STATUS_FROM_CLIENT; else None."""
    for client in clients:
        if client.version < mixall.MIN_VERSION_RESET_OFFSET:
            return request.response(
                RC.SYSTEM_ERROR, f"the client does not support this feature. version={client.version}")
    return None


class AdminBrokerProcessor:
    def __init__(self, broker) -> None:
        self.broker = broker
        self.config = broker.config
        self.store = broker.store

    def register(self, dispatcher) -> None:
        for code, fn in (
            (RequestCode.UPDATE_AND_CREATE_TOPIC, self.update_and_create_topic),
            (RequestCode.DELETE_TOPIC_IN_BROKER, self.delete_topic),
            (RequestCode.GET_ALL_TOPIC_CONFIG, self.get_all_topic_config),
            (RequestCode.GET_TOPIC_STATS_INFO, self.get_topic_stats_info),
            (RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_BROKER, self.get_system_topic_list),
            (RequestCode.QUERY_TOPIC_CONSUME_BY_WHO, self.query_topic_consume_by_who),
            (RequestCode.GET_BROKER_RUNTIME_INFO, self.get_broker_runtime_info),
            (RequestCode.GET_BROKER_CONFIG, self.get_broker_config),
            (RequestCode.UPDATE_BROKER_CONFIG, self.update_broker_config),
            (RequestCode.GET_CONSUME_STATS, self.get_consume_stats),
            (RequestCode.GET_CONSUMER_CONNECTION_LIST, self.get_consumer_connection_list),
            (RequestCode.GET_PRODUCER_CONNECTION_LIST, self.get_producer_connection_list),
            (RequestCode.GET_ALL_PRODUCER_INFO, self.get_all_producer_info),
            (RequestCode.GET_CONSUMER_RUNNING_INFO, self.get_consumer_running_info),
            (RequestCode.CONSUME_MESSAGE_DIRECTLY, self.consume_message_directly),
            (RequestCode.INVOKE_BROKER_TO_RESET_OFFSET, self.reset_offset),
            (RequestCode.INVOKE_BROKER_TO_GET_CONSUMER_STATUS, self.get_consumer_status),
            (RequestCode.GET_MAX_OFFSET, self.get_max_offset),
            (RequestCode.GET_MIN_OFFSET, self.get_min_offset),
            (RequestCode.SEARCH_OFFSET_BY_TIMESTAMP, self.search_offset_by_timestamp),
            (RequestCode.GET_EARLIEST_MSG_STORETIME, self.get_earliest_msg_storetime),
            (RequestCode.GET_ALL_CONSUMER_OFFSET, self.get_all_consumer_offset),
            (RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, self.update_subscription_group),
            (RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG, self.get_all_subscription_group),
            (RequestCode.DELETE_SUBSCRIPTIONGROUP, self.delete_subscription_group),
        ):
            dispatcher.register(code, fn)

    # -- topics ------------------------------------------------------------------------------------

    def update_and_create_topic(self, request: RemotingCommand, channel):
        b = self.broker
        if self.config.is_slave:
            return request.response(RC.SYSTEM_ERROR, SLAVE_REFUSAL)
        h = CreateTopicRequestHeader.decode(request.ext_fields)
        why = topic_error(h.topic)
        if why is not None:
            return request.response(RC.SYSTEM_ERROR, f"The specified topic is not valid: {why}.")
        if h.topic in (mixall.DEFAULT_TOPIC, self.config.broker_cluster_name):
            return request.response(RC.SYSTEM_ERROR, f"the topic[{h.topic}] is conflict with system topic.")
        for name, value in (("readQueueNums", h.read_queue_nums), ("writeQueueNums", h.write_queue_nums)):
            if not 0 < value <= mixall.MAX_TOPIC_QUEUE_NUMS:
                return request.response(RC.SYSTEM_ERROR,
                                        f"{name} {value} is out of range 1..{mixall.MAX_TOPIC_QUEUE_NUMS}")
        if h.topic_filter_type not in ("SINGLE_TAG", "MULTI_TAG"):
            return request.response(RC.SYSTEM_ERROR,
                                    f"topicFilterType {h.topic_filter_type!r} is not SINGLE_TAG or MULTI_TAG")
        tc = TopicConfig(h.topic, h.read_queue_nums, h.write_queue_nums, h.perm & 0xF, h.topic_filter_type,
                         h.topic_sys_flag or 0, bool(h.order))
        b.topic_config_manager.update(tc)
        # The new topic reaches every NameServer before the answer, so a route lookup right after succeeds.
        d = b.register_broker_all(topics=[tc], oneway=False)
        return d.addBoth(lambda _: request.response(RC.SUCCESS))

    def delete_topic(self, request: RemotingCommand, channel):
        b = self.broker
        if self.config.is_slave:
            return request.response(RC.SYSTEM_ERROR, SLAVE_REFUSAL)
        h = TopicRequestHeader.decode(request.ext_fields)
        b.topic_config_manager.delete(h.topic)
        b.consumer_offset_manager.remove_topics([h.topic])
        self.store.delete_topics([h.topic])
        b.stats.items.on_topic_deleted(h.topic)
        return request.response(RC.SUCCESS)

    def get_all_topic_config(self, request: RemotingCommand, channel):
        return request.response(RC.SUCCESS, None, None,
                                fastjson.dumps_bytes(self.broker.topic_config_manager.encode()))

    def get_topic_stats_info(self, request: RemotingCommand, channel):
        h = TopicRequestHeader.decode(request.ext_fields)
        tc = self.broker.topic_config_manager.table.get(h.topic)
        if tc is None:
            return request.response(RC.TOPIC_NOT_EXIST, f"topic[{h.topic}] not exist")
        table = {}
        for qid in range(tc.write_queue_nums):
            max_offset = self.store.get_max_offset_in_queue(h.topic, qid)
            last = self.store.get_message_store_timestamp(h.topic, qid, max_offset - 1) if max_offset > 0 else 0
            table[MessageQueue(h.topic, self.config.broker_name, qid)] = {
                "lastUpdateTimestamp": max(last, 0),
                "maxOffset": max_offset,
                "minOffset": max(self.store.get_min_offset_in_queue(h.topic, qid), 0),
            }
        return request.response(RC.SUCCESS, None, None, fastjson.dumps_bytes({"offsetTable": table}))

    def get_system_topic_list(self, request: RemotingCommand, channel):
        topics = sorted(self.broker.topic_config_manager.system_topics)
        return request.response(RC.SUCCESS, None, None, fastjson.dumps_bytes({"topicList": topics}))

    def query_topic_consume_by_who(self, request: RemotingCommand, channel):
        h = TopicRequestHeader.decode(request.ext_fields)
        groups = set(self.broker.consumer_manager.groups_of_topic(h.topic))
        groups |= self.broker.consumer_offset_manager.groups_of_topic(h.topic)
        return request.response(RC.SUCCESS, None, None, fastjson.dumps_bytes({"groupList": sorted(groups)}))

    # -- broker ------------------------------------------------------------------------------------

    def get_broker_runtime_info(self, request: RemotingCommand, channel):
        table = {k: str(v) for k, v in self.broker.runtime_info().items()}
        return request.response(RC.SUCCESS, None, None, fastjson.dumps_bytes({"table": table}))

    def get_broker_config(self, request: RemotingCommand, channel):
        body = format_properties(self.config.to_properties()).encode("utf-8")
        version = fastjson.dumps(self.broker.config_data_version)
        return request.response(RC.SUCCESS, None, {"version": version}, body)

    def update_broker_config(self, request: RemotingCommand, channel):
        try:
            props = parse_properties((request.body or b"").decode("utf-8"))
        except UnicodeDecodeError:
            return request.response(RC.SYSTEM_ERROR, "the broker config body is not UTF-8 text")
        except ValueError as e:  # a malformed \u escape
            return request.response(RC.SYSTEM_ERROR, f"the broker config body is not properties text: {e}")
        try:
            changed = self.broker.update_config(props)
        except ValueError as e:  # nothing was applied or saved; the remark names the key and its range
            log.warn("broker config update from {peer} refused: {error}", peer=getattr(channel, "peer", channel),
                     error=e)
            return request.response(RC.SYSTEM_ERROR, str(e))
        return request.response(RC.SUCCESS, f"changed: {', '.join(sorted(changed)) or 'nothing'}")

    # -- consumers and producers -------------------------------------------------------------------

    def get_consume_stats(self, request: RemotingCommand, channel):
        b = self.broker
        h = GetConsumeStatsRequestHeader.decode(request.ext_fields)
        topics = [h.topic] if h.topic else sorted(b.consumer_offset_manager.topics_of_group(h.consumer_group))
        return request.response(RC.SUCCESS, None, None,
                                fastjson.dumps_bytes(consume_stats(b, h.consumer_group, topics)))

    def get_consumer_connection_list(self, request: RemotingCommand, channel):
        h = ConsumerGroupRequestHeader.decode(request.ext_fields)
        group = self.broker.consumer_manager.get(h.consumer_group)
        if group is None:
            return request.response(RC.CONSUMER_NOT_ONLINE, f"the consumer group[{h.consumer_group}] not online")
        return request.response(RC.SUCCESS, None, None, fastjson.dumps_bytes(group.to_connection_json()))

    def get_producer_connection_list(self, request: RemotingCommand, channel):
        h = ProducerGroupRequestHeader.decode(request.ext_fields)
        connections = self.broker.producer_manager.connections(h.producer_group)
        if not connections:
            return request.response(RC.SYSTEM_ERROR, f"the producer group[{h.producer_group}] not exist")
        body = fastjson.dumps_bytes({"connectionSet": [c.to_json() for c in connections]})
        return request.response(RC.SUCCESS, None, None, body)

    def get_all_producer_info(self, request: RemotingCommand, channel):
        """GET_ALL_PRODUCER_INFO (``mqadmin producer``): every producer group's clients, as RocketMQ's
        ProducerTableInfo (``remoteIP`` as Java prints a socket address, ``/host:port``)."""
        table = self.broker.producer_manager.table
        data = {group: [{"clientId": c.client_id, "remoteIP": f"/{c.client_addr}", "language": c.language_name,
                         "version": c.version, "lastUpdateTimestamp": c.last_update}
                        for c in channels.values()]
                for group, channels in table.items()}
        return request.response(RC.SUCCESS, None, None, fastjson.dumps_bytes({"data": data}))

    def get_consumer_running_info(self, request: RemotingCommand, channel):
        h = GetConsumerRunningInfoRequestHeader.decode(request.ext_fields)
        return self._call_consumer(request, h.consumer_group, h.client_id)

    def consume_message_directly(self, request: RemotingCommand, channel):
        """CONSUME_MESSAGE_DIRECTLY: the message the offset id names, handed to one online client of the group
        to run through its listener (with this broker's name added); the client's answer is the response."""
        h = ConsumeMessageDirectlyResultRequestHeader.decode(request.ext_fields)
        try:
            _, offset = decode_offset_msg_id(h.msg_id or "")
        except ValueError:
            return request.response(RC.SYSTEM_ERROR, f"not an offset message id: {(h.msg_id or '')[:64]}")
        raw = self.store.look_message_by_offset(offset, requested=True)
        if raw is None:
            return request.response(RC.SYSTEM_ERROR, f"can not find message by the offset, {offset}")
        request.ext_fields["brokerName"] = self.config.broker_name
        # The client runs its listener before answering: Java's broker waits 10 s for it.
        return self._call_consumer(request, h.consumer_group, h.client_id or "", timeout=10.0, body=raw)

    def _call_consumer(self, request: RemotingCommand, group_name: str, client_id: str, timeout: float = 5.0,
                       body: bytes = b""):
        """Relay an admin request's header and ``body`` to one online client of the group (RocketMQ's
        callConsumer checks; it forwards the caller's body, which GET_CONSUMER_RUNNING_INFO has none of and
        CONSUME_MESSAGE_DIRECTLY replaces by the stored message)."""
        request.body = b""  # the caller's: not kept while the client takes its time to answer
        group = self.broker.consumer_manager.get(group_name)
        client = group.find_channel(client_id) if group is not None else None
        if client is None:
            return request.response(RC.SYSTEM_ERROR, f"The Consumer <{client_id}> <{group_name}> not online")
        if client.version < mixall.MIN_VERSION_CONSUMER_RUNNING_INFO:
            return request.response(
                RC.SYSTEM_ERROR,
                f"The Consumer <{client_id}> Version <{client.version}> too low to finish, please upgrade it")
        return self.broker.broker2client.relay(request, client.channel, timeout,
                                               limit=self.config.client_relay_max_in_flight, body=body)

    def reset_offset(self, request: RemotingCommand, channel):
        """INVOKE_BROKER_TO_RESET_OFFSET: each queue's offset for the timestamp (−1: the max offset) becomes the
        group's committed offset (unless ``isForce`` is false and it is past the committed one), and every
        online client of the group is told (RESET_CONSUMER_CLIENT_OFFSET). Answers the ``ResetOffsetBody``."""
        b = self.broker
        h = ResetOffsetRequestHeader.decode(request.ext_fields)
        tc = b.topic_config_manager.table.get(h.topic)
        if tc is None:
            return request.response(
                RC.SYSTEM_ERROR, f"[reset-offset] reset offset failed, no topic in this broker. topic={h.topic}")
        group = b.consumer_manager.get(h.group)
        if group is None or not group.channels:
            # Nothing is changed: RocketMQ's tools then write the offsets themselves.
            return request.response(
                RC.CONSUMER_NOT_ONLINE, f"Consumer not online, so can not reset offset, Group: {h.group} "
                                        f"Topic: {h.topic} Timestamp: {h.timestamp}")
        clients = list(group.channels.values())
        refusal = _refuse_old_clients(request, clients)
        if refusal is not None:
            return refusal
        table = {}
        for qid in range(tc.write_queue_nums):
            if h.timestamp == -1:
                target = self.store.get_max_offset_in_queue(h.topic, qid)
            else:
                target = self.store.get_offset_in_queue_by_time(h.topic, qid, h.timestamp)
            target = max(target, 0)
            current = b.consumer_offset_manager.query(h.group, h.topic, qid)
            offset = target if h.is_force or current < 0 or target < current else current
            table[MessageQueue(h.topic, self.config.broker_name, qid)] = offset
            if not self.config.is_slave:
                b.consumer_offset_manager.commit(h.group, h.topic, qid, offset)
        b.broker2client.reset_offset(h, table, clients, c_form_for_all=request.language == LanguageCode.CPP)
        return request.response(RC.SUCCESS, None, None, fastjson.dumps_bytes({"offsetTable": table}))

    def get_consumer_status(self, request: RemotingCommand, channel):
        """INVOKE_BROKER_TO_GET_CONSUMER_STATUS: the offsets each online client of the group holds for the
        topic's queues (GET_CONSUMER_STATUS_FROM_CLIENT), or only those of the client whose id (or address)
        is ``clientAddr``. Clients that do not answer are left out. Answers a ``GetConsumerStatusBody``."""
        h = GetConsumerStatusRequestHeader.decode(request.ext_fields)
        group = self.broker.consumer_manager.get(h.group)
        if group is None or not group.channels:
            return request.response(RC.SYSTEM_ERROR, f"No Any Consumer online in the consumer group: [{h.group}]")
        clients = list(group.channels.values())
        if h.client_addr:
            clients = [c for c in clients if h.client_addr in (c.client_id, c.client_addr)]
        refusal = _refuse_old_clients(request, clients)
        if refusal is not None:
            return refusal

        def answer(table):
            body = GetConsumerStatusBody(consumer_table=table).encode()
            return request.response(RC.SUCCESS, None, None, body)

        return self.broker.broker2client.consumer_status(h.topic, h.group, clients, MessageQueue).addCallback(answer)

    # -- queue offsets -----------------------------------------------------------------------------

    def get_max_offset(self, request: RemotingCommand, channel):
        h = QueueRequestHeader.decode(request.ext_fields)
        return _offset(request, max(self.store.get_max_offset_in_queue(h.topic, h.queue_id), 0))

    def get_min_offset(self, request: RemotingCommand, channel):
        h = QueueRequestHeader.decode(request.ext_fields)
        return _offset(request, max(self.store.get_min_offset_in_queue(h.topic, h.queue_id), 0))

    def search_offset_by_timestamp(self, request: RemotingCommand, channel):
        h = SearchOffsetRequestHeader.decode(request.ext_fields)
        return _offset(request, self.store.get_offset_in_queue_by_time(h.topic, h.queue_id, h.timestamp))

    def get_earliest_msg_storetime(self, request: RemotingCommand, channel):
        h = QueueRequestHeader.decode(request.ext_fields)
        ts = self.store.get_earliest_message_time(h.topic, h.queue_id)
        return request.response(RC.SUCCESS, None, {"timestamp": str(ts)})

    def get_all_consumer_offset(self, request: RemotingCommand, channel):
        body = fastjson.dumps_bytes(self.broker.consumer_offset_manager.encode())
        return request.response(RC.SUCCESS, None, None, body)

    # -- subscription groups -----------------------------------------------------------------------

    def update_subscription_group(self, request: RemotingCommand, channel):
        if self.config.is_slave:
            return request.response(RC.SYSTEM_ERROR, SLAVE_REFUSAL)
        try:
            sgc = SubscriptionGroupConfig.from_json(fastjson.loads(request.body or b"{}"))
            sgc.check()
        except (ValueError, TypeError) as e:
            return request.response(RC.SYSTEM_ERROR, f"the subscription group body is not valid: {e}")
        why = group_error(sgc.group_name)
        if why is not None:
            return request.response(RC.SYSTEM_ERROR, f"the subscription group body is not valid: groupName: {why}")
        self.broker.subscription_group_manager.update(sgc)
        return request.response(RC.SUCCESS)

    def get_all_subscription_group(self, request: RemotingCommand, channel):
        body = fastjson.dumps_bytes(self.broker.subscription_group_manager.encode())
        return request.response(RC.SUCCESS, None, None, body)

    def delete_subscription_group(self, request: RemotingCommand, channel):
        if self.config.is_slave:
            return request.response(RC.SYSTEM_ERROR, SLAVE_REFUSAL)
        h = DeleteSubscriptionGroupRequestHeader.decode(request.ext_fields)
        self.broker.subscription_group_manager.delete(h.group_name)
        if h.remove_offset:
            self.broker.consumer_offset_manager.remove_group(h.group_name)
        self.broker.stats.items.on_group_deleted(h.group_name)
        return request.response(RC.SUCCESS)

