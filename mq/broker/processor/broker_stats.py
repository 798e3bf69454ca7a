"""VIEW_BROKER_STATS_DATA (315) and GET_BROKER_CONSUME_STATS (317), and the ConsumeStats body both 317 and
GET_CONSUME_STATS (208) answer with, as a Java 4.9.8 broker (AdminBrokerProcessor) answers them.

315 reads one stats item (mq.broker.stats.items): body ``{"statsMinute": {"sum", "tps", "avgpt"},
"statsHour": …, "statsDay": …}``, or SYSTEM_ERROR "The stats <name> <key> not exist". 317 walks every
subscription group: ``{"brokerAddr", "totalDiff", "consumeStatsList": [{group: [ConsumeStats…]}…]}``.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Set

import attr

from mq.broker.stats import items as stats_items
from mq.common import fastjson
from mq.common.broker_headers import GetConsumeStatsInBrokerHeader, ViewBrokerStatsDataRequestHeader
from mq.common.names import GROUP_MAX_LENGTH, group_error, topic_error
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand

RC = ResponseCode
#: Longest statsKey accepted: "queueId@topic@group" of the longest names.
MAX_STATS_KEY = 11 + 1 + 127 + 1 + GROUP_MAX_LENGTH


@attr.s(frozen=True, slots=True)
class MessageQueue:
    topic: str = attr.ib()
    broker_name: str = attr.ib()
    queue_id: int = attr.ib()

    def to_json(self) -> dict:
        return {"brokerName": self.broker_name, "queueId": self.queue_id, "topic": self.topic}


def consume_stats(broker, group: str, topics: Iterable[str]) -> dict:
    """ConsumeStats of ``group`` over ``topics`` (unknown topics left out): per queue the broker's and the
    group's offsets and the store time of the last consumed message; consumeTps from GROUP_GET_NUMS."""
    store = broker.store
    offsets = broker.consumer_offset_manager
    broker_name = broker.config.broker_name
    table = {}
    tps = 0.0
    for topic in topics:
        tc = broker.topic_config_manager.table.get(topic)
        if tc is None:
            continue
        for qid in range(tc.write_queue_nums):
            consumer_offset = max(offsets.query(group, topic, qid), 0)
            last = 0
            if consumer_offset > 0:
                last = max(store.get_message_store_timestamp(topic, qid, consumer_offset - 1), 0)
            table[MessageQueue(topic, broker_name, qid)] = {
                "brokerOffset": max(store.get_max_offset_in_queue(topic, qid), 0),
                "consumerOffset": consumer_offset,
                "lastTimestamp": last,
            }
        tps += broker.stats.items.minute_tps(stats_items.GROUP_GET_NUMS, stats_items.topic_group_key(topic, group))
    return {"consumeTps": tps, "offsetTable": table}


def total_diff(stats: dict) -> int:
    """ConsumeStats.computeTotalDiff: broker minus consumer offset summed over the queues."""
    return sum(w["brokerOffset"] - w["consumerOffset"] for w in stats["offsetTable"].values())


def topics_by_group(broker) -> Dict[str, Set[str]]:
    """Which topics each group has offsets for, in one pass over the offset table."""
    result: Dict[str, Set[str]] = {}
    for topic, group in broker.consumer_offset_manager.pairs():
        result.setdefault(group, set()).add(topic)
    return result


def stats_key_error(name: str, key: str) -> Optional[str]:
    """Why ``key`` cannot be a key of stats ``name``, or None (keys are built as Java's buildStatsKey)."""
    if len(key) > MAX_STATS_KEY:
        return f"statsKey is longer than {MAX_STATS_KEY} characters"
    if name in (stats_items.TOPIC_PUT_NUMS, stats_items.TOPIC_PUT_SIZE):
        return topic_error(key)
    if name in (stats_items.GROUP_GET_NUMS, stats_items.GROUP_GET_SIZE, stats_items.SNDBCK_PUT_NUMS,
                stats_items.GROUP_GET_FROM_DISK_NUMS, stats_items.GROUP_GET_FROM_DISK_SIZE):
        topic, sep, group = key.partition("@")
        if not sep:
            return "statsKey must be topic@group"
        return topic_error(topic) or group_error(group)
    if name in (stats_items.QUEUE_PUT_NUMS, stats_items.QUEUE_PUT_SIZE, stats_items.QUEUE_GET_NUMS,
                stats_items.QUEUE_GET_SIZE):
        topic, sep, rest = key.partition("@")
        queue, sep2, group = rest.partition("@")
        by_group = name in (stats_items.QUEUE_GET_NUMS, stats_items.QUEUE_GET_SIZE)
        if not (sep and queue.isdigit() and queue.isascii()) or bool(sep2) != by_group:
            return "statsKey must be topic@queueId@group" if by_group else "statsKey must be topic@queueId"
        return topic_error(topic) or (group_error(group) if by_group else None)
    if name == stats_items.GROUP_GET_LATENCY:
        queue, sep, rest = key.partition("@")
        topic, sep2, group = rest.partition("@")
        if not (sep and sep2 and queue.isdigit() and queue.isascii()):
            return "statsKey must be queueId@topic@group"
        return topic_error(topic) or group_error(group)
    return None


class BrokerStatsProcessor:
    def __init__(self, broker) -> None:
        self.broker = broker

    def register(self, dispatcher) -> None:
        dispatcher.register(RequestCode.VIEW_BROKER_STATS_DATA, self.view_broker_stats_data)
        dispatcher.register(RequestCode.GET_BROKER_CONSUME_STATS, self.get_broker_consume_stats)

    def view_broker_stats_data(self, request: RemotingCommand, channel):
        h = ViewBrokerStatsDataRequestHeader.decode(request.ext_fields)
        name, key = h.stats_name, h.stats_key
        shown = f"The stats <{name[:64]}> <{key[:MAX_STATS_KEY]}> not exist"
        if name not in stats_items.KNOWN:
            return request.response(RC.SYSTEM_ERROR, f"{shown}: statsName is one of {', '.join(stats_items.KNOWN)}")
        why = stats_key_error(name, key)
        if why is not None:
            return request.response(RC.SYSTEM_ERROR, f"{shown}: {why}")
        item = self.broker.stats.items.item(name, key)
        if item is None:
            return request.response(RC.SYSTEM_ERROR, shown)
        body = {"statsMinute": item.in_minute().to_json(), "statsHour": item.in_hour().to_json(),
                "statsDay": item.in_day().to_json()}
        return request.response(RC.SUCCESS, None, None, fastjson.dumps_bytes(body))

    def get_broker_consume_stats(self, request: RemotingCommand, channel):
        h = GetConsumeStatsInBrokerHeader.decode(request.ext_fields)
        b = self.broker
        topics_of = topics_by_group(b)
        topic_table = b.topic_config_manager.table
        listing: List[dict] = []
        total = 0
        for group in list(b.subscription_group_manager.table):
            online = b.consumer_manager.get(group)
            subscribed = bool(online is not None and online.subscriptions)
            per_group = []
            for topic in sorted(topics_of.get(group, ())):
                tc = topic_table.get(topic)
                if tc is None or (h.is_order and not tc.order):
                    continue
                # As Java: an online group that does not subscribe to the topic (any more) is left out there.
                if subscribed and b.consumer_manager.find_subscription(group, topic) is None:
                    continue
                stats = consume_stats(b, group, (topic,))
                total += total_diff(stats)
                per_group.append(stats)
            listing.append({group: per_group})
        body = {"brokerAddr": b.config.broker_addr, "consumeStatsList": listing, "totalDiff": total}
        return request.response(RC.SUCCESS, None, None, fastjson.dumps_bytes(body))
