"""Client management: HEART_BEAT (34), UNREGISTER_CLIENT (35), CHECK_CLIENT_CONFIG (46)."""

from __future__ import annotations

from mq.broker.client.manager import ClientChannelInfo
from mq.broker.subscription import expression_filter as subscription_filter
from mq.common import fastjson
from mq.common.broker_headers import UnregisterClientRequestHeader
from mq.common.heartbeat import HeartbeatData
from mq.common.mixall import retry_topic
from mq.common.names import group_error, retry_group_error, topic_error
from mq.common.route import PERM_READ, PERM_WRITE
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand

RC = ResponseCode


def _name_refusal(data: HeartbeatData):
    """What in a heartbeat is not a legal group or topic name (checked before anything is registered: an
    illegal group would otherwise be kept, answered and sent messages back for, which can never be stored)."""
    for consumer in data.consumers:
        if consumer.group_name:
            why = group_error(consumer.group_name)
            if why is not None:
                return f"consumer group {consumer.group_name[:300]!r}: {why}"
        for sub in consumer.subscription_data_set:
            why = topic_error(sub.topic)
            if why is not None:
                return f"a subscription of group {consumer.group_name!r}: {why}"
    for group in data.producer_groups:
        why = group_error(group) if group else None
        if why is not None:
            return f"producer group {group[:300]!r}: {why}"
    return None


class ClientManageProcessor:
    def __init__(self, broker) -> None:
        self.broker = broker
        #: Connections that sent a heartbeat and are still open (bounded by ``maxClientChannelNums``).
        self.channels = 0

    def register(self, dispatcher) -> None:
        dispatcher.register(RequestCode.HEART_BEAT, self.heartbeat)
        dispatcher.register(RequestCode.UNREGISTER_CLIENT, self.unregister_client)
        dispatcher.register(RequestCode.CHECK_CLIENT_CONFIG, self.check_client_config)

    def heartbeat(self, request: RemotingCommand, channel) -> RemotingCommand:
        b = self.broker
        try:
            data = HeartbeatData.from_json(fastjson.loads(request.body or b"{}"))
        except ValueError as e:
            return request.response(RC.SYSTEM_ERROR, f"the heartbeat body is not valid: {e}")
        why = _name_refusal(data)
        if why is not None:
            return request.response(RC.SYSTEM_ERROR, f"the heartbeat names {why}")
        for consumer in data.consumers:  # refuse what the broker could not filter, before registering anything
            for sub in consumer.subscription_data_set:
                refused = subscription_filter.refusal(sub.expression_type, sub.sub_string,
                                                      b.config.enable_property_filter)
                if refused is not None:
                    return request.response(refused[0], f"{refused[1]} (group {consumer.group_name}, "
                                                        f"topic {sub.topic})")
        refused = self._over_limits(data, channel)
        if refused is not None:
            return request.response(*refused)
        if not channel.attributes.get("heartbeat"):
            channel.attributes["heartbeat"] = True
            self.channels += 1
            channel.notify_on_lost(self._channel_gone)
        channel.attributes["client_id"] = data.client_id

        def info() -> ClientChannelInfo:
            return ClientChannelInfo(channel, data.client_id, request.language, request.version)

        for consumer in data.consumers:
            if not consumer.group_name:
                continue
            sgc = b.subscription_group_manager.find(consumer.group_name)
            notify = True
            if sgc is not None:
                notify = sgc.notify_consumer_ids_changed_enable
                if sgc.retry_queue_nums > 0 and retry_group_error(consumer.group_name) is None:
                    b.topic_config_manager.create_system(retry_topic(consumer.group_name), sgc.retry_queue_nums,
                                                         PERM_READ | PERM_WRITE, save=False)
            b.consumer_manager.register(consumer, info(), notify and b.config.notify_consumer_ids_changed_enable)
        for group in data.producer_groups:
            if group:
                b.producer_manager.register(group, info())
        return request.response(RC.SUCCESS)

    def _over_limits(self, data: HeartbeatData, channel) -> tuple | None:
        """(code, remark) when registering this heartbeat would take the broker past one of its limits on
        client connections, online groups or auto-created subscription groups; None when it fits. Only new
        connections and new groups are counted: a known client's heartbeat costs a few lookups."""
        b = self.broker
        c = b.config
        if not channel.attributes.get("heartbeat") and self.channels >= c.max_client_channel_nums:
            return RC.SYSTEM_BUSY, (f"heartbeat refused: the broker already serves {self.channels} client "
                                    f"connections (maxClientChannelNums={c.max_client_channel_nums})")
        consumers, producers = b.consumer_manager.table, b.producer_manager.table
        new_consumers = {g.group_name for g in data.consumers if g.group_name and g.group_name not in consumers}
        new_producers = {g for g in data.producer_groups if g and g not in producers}
        if not new_consumers and not new_producers:
            return None
        online = len(consumers) + len(producers)
        if online + len(new_consumers) + len(new_producers) > c.max_client_group_nums:
            return RC.SYSTEM_BUSY, (f"heartbeat refused: the broker already has {online} consumer and producer "
                                    f"groups online (maxClientGroupNums={c.max_client_group_nums})")
        groups = b.subscription_group_manager
        if c.auto_create_subscription_group:
            unknown = sorted(g for g in new_consumers if g not in groups.table)
            if unknown and len(groups.table) + len(unknown) > c.max_subscription_group_nums:
                return RC.SUBSCRIPTION_GROUP_NOT_EXIST, (
                    f"heartbeat refused: subscription group {unknown[0]} does not exist and the broker holds "
                    f"{len(groups.table)} groups (maxSubscriptionGroupNums={c.max_subscription_group_nums})")
        return None

    def _channel_gone(self, channel) -> None:
        self.channels -= 1

    def unregister_client(self, request: RemotingCommand, channel) -> RemotingCommand:
        b = self.broker
        h = UnregisterClientRequestHeader.decode(request.ext_fields)
        if h.producer_group:
            b.producer_manager.unregister(h.producer_group, channel)
        if h.consumer_group:
            sgc = b.subscription_group_manager.table.get(h.consumer_group)
            notify = sgc is None or sgc.notify_consumer_ids_changed_enable
            b.consumer_manager.unregister(h.consumer_group, channel, notify)
        return request.response(RC.SUCCESS)

    def check_client_config(self, request: RemotingCommand, channel) -> RemotingCommand:
        try:
            data = fastjson.loads(request.body or b"{}")
        except ValueError as e:
            return request.response(RC.SYSTEM_ERROR, f"the check-client-config body is not valid JSON: {e}")
        sub = (data.get("subscriptionData") if isinstance(data, dict) else None) or {}
        if not isinstance(data, (dict, type(None))) or not isinstance(sub, dict):
            return request.response(RC.SYSTEM_ERROR, "the check-client-config body is not a JSON object with "
                                                     "a subscriptionData object")
        refused = subscription_filter.refusal(sub.get("expressionType"), sub.get("subString"),
                                              self.broker.config.enable_property_filter)
        if refused is not None:
            return request.response(*refused)
        return request.response(RC.SUCCESS)
