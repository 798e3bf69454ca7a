"""``mqadmin`` stats commands (RocketMQ 4.9.8 names and flags): ``statsAll`` and ``brokerConsumeStats``.

``statsAll`` reads each topic's stats items from its master brokers (VIEW_BROKER_STATS_DATA, 315): in and out
TPS over the last minute and the last 24 hours' counts (the day window's sum, else the hour's, else the
minute's, as the original), with each consumer group's backlog. ``brokerConsumeStats`` prints one broker's
GET_BROKER_CONSUME_STATS (317): every group's offsets per queue and the broker's total backlog.
"""

from __future__ import annotations

import argparse
import time
from typing import Dict, List, Optional

from twisted.internet import defer

from mq.admin.api import MQAdminAPI, check
from mq.admin.output import Result, table
from mq.admin.registry import command, java_bool, lines, opt
from mq.admin.values import queue_map, route_masters
from mq.common import fastjson, jsonkeys, mixall
from mq.common.broker_headers import GetConsumeStatsInBrokerHeader, ViewBrokerStatsDataRequestHeader
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC

STATS_ALL_HEADERS = ("Topic", "Consumer Group", "Accumulation", "InTPS", "OutTPS", "InMsg24Hour", "OutMsg24Hour")
CONSUME_HEADERS = ("Topic", "Group", "Broker Name", "QID", "Broker Offset", "Consumer Offset", "Diff", "LastTime")


def _millis(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= 3_600_000:
        raise argparse.ArgumentTypeError(f"must be 1 to 3600000 ms: {value}")
    return value


def _long(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


@defer.inlineCallbacks
def view_broker_stats(api: MQAdminAPI, addr: str, name: str, key: str):
    """The item's {"statsMinute", "statsHour", "statsDay"}, or None when the broker has no such item."""
    ext = ViewBrokerStatsDataRequestHeader(stats_name=name, stats_key=key).encode()
    response = yield api.broker_call(addr, RequestCode.VIEW_BROKER_STATS_DATA, ext)
    if response.code != RC.SUCCESS:
        return None
    return fastjson.loads(response.body)


def sum_24_hours(data: Optional[dict]) -> int:
    """StatsAllSubCommand.compute24HourSum: the first non-zero sum of the day, hour and minute windows."""
    if not data:
        return 0
    for window in ("statsDay", "statsHour", "statsMinute"):
        total = int((data.get(window) or {}).get("sum") or 0)
        if total:
            return total
    return 0


def _tps(data: Optional[dict]) -> float:
    return float(((data or {}).get("statsMinute") or {}).get("tps") or 0.0)


@defer.inlineCallbacks
def _topic_rows(api: MQAdminAPI, topic: str, active_only: bool):
    route = yield api.topic_route(topic)
    masters = list(route_masters(route).values())
    in_tps, in_day = 0.0, 0
    for addr in masters:
        data = yield view_broker_stats(api, addr, "TOPIC_PUT_NUMS", topic)
        in_tps += _tps(data)
        in_day += sum_24_hours(data)
    groups: List[str] = []
    if masters:
        try:
            groups = yield api.topic_consumed_by(masters[0], topic)
        except Exception:  # as the original: a topic whose groups cannot be read shows none
            groups = []
    rows = []
    if not groups:
        if not active_only or in_day > 0:
            rows.append({"topic": topic, "group": "", "accumulation": 0, "inTps": in_tps, "outTps": None,
                         "inMsg24Hour": in_day, "outMsg24Hour": None})
        return rows
    for group in groups:
        out_tps, out_day, backlog = 0.0, 0, 0
        for addr in masters:
            data = yield view_broker_stats(api, addr, "GROUP_GET_NUMS", f"{topic}@{group}")
            out_tps += _tps(data)
            out_day += sum_24_hours(data)
            try:
                _, offsets = yield api.consume_stats(addr, group, topic)
            except Exception:
                continue
            backlog += sum(w["brokerOffset"] - w["consumerOffset"] for w in offsets.values())
        if not active_only or in_day > 0 or out_day > 0:
            rows.append({"topic": topic, "group": group, "accumulation": max(backlog, 0), "inTps": in_tps,
                         "outTps": out_tps, "inMsg24Hour": in_day, "outMsg24Hour": out_day})
    return rows


@command(
    "statsAll", "Topic and Consumer tps stats",
    opt("-a", "--activeTopic", action="store_true", help="print active topic only"),
    opt("-t", "--topic", help="print select topic only"),
)
@defer.inlineCallbacks
def stats_all(api: MQAdminAPI, args):
    topics = yield api.all_topics()
    rows: List[Dict] = []
    for topic in topics:
        if mixall.is_retry_topic(topic) or mixall.is_dlq_topic(topic):
            continue
        if args.topic and topic != args.topic:
            continue
        try:
            rows.extend((yield _topic_rows(api, topic, args.activeTopic)))
        except Exception:  # as the original: a topic that fails is skipped, the others are printed
            continue
    text = table(STATS_ALL_HEADERS, [
        (r["topic"], r["group"], r["accumulation"], f"{r['inTps']:.2f}",
         "" if r["outTps"] is None else f"{r['outTps']:.2f}", r["inMsg24Hour"],
         "NO_CONSUMER" if r["outMsg24Hour"] is None else r["outMsg24Hour"])
        for r in rows])
    return Result({"stats": rows}, text)


def _queue_order(entry):
    queue, _ = entry
    return queue.topic, queue.broker_name, queue.queue_id


@command(
    "brokerConsumeStats", "Fetch broker consume stats data",
    opt("-b", "--brokerAddr", required=True, metavar="ADDR", help="Broker address"),
    opt("-t", "--timeoutMillis", type=_millis, default=50_000, metavar="MS", help="request timeout Millis"),
    opt("-l", "--level", type=_long, default=0, metavar="N", help="threshold of print diff"),
    opt("-o", "--order", type=java_bool, default=False, metavar="true|false", help="order topic"),
)
@defer.inlineCallbacks
def broker_consume_stats(api: MQAdminAPI, args):
    addr = args.brokerAddr.strip()
    ext = GetConsumeStatsInBrokerHeader(is_order=args.order).encode()
    response = yield api.broker_call(addr, RequestCode.GET_BROKER_CONSUME_STATS, ext,
                                     timeout=args.timeoutMillis / 1000.0)
    check(response, f"broker consume stats on broker {addr}")
    data = jsonkeys.loads(response.body)
    rows = []
    for per_group in data.get("consumeStatsList") or []:
        for group, stats_list in per_group.items():
            for stats in stats_list:
                for queue, wrapper in sorted(queue_map(stats.get("offsetTable")).items(), key=_queue_order):
                    diff = wrapper["brokerOffset"] - wrapper["consumerOffset"]
                    last = int(wrapper.get("lastTimestamp") or 0)
                    if diff < args.level or last <= 0:  # as the original: queues never consumed are not shown
                        continue
                    rows.append({"topic": queue.topic, "group": group, "brokerName": queue.broker_name,
                                 "queueId": queue.queue_id, "brokerOffset": wrapper["brokerOffset"],
                                 "consumerOffset": wrapper["consumerOffset"], "diff": diff,
                                 "lastTimestamp": last})
    total = int(data.get("totalDiff") or 0)
    text = table(CONSUME_HEADERS, [
        (r["topic"], r["group"], r["brokerName"], r["queueId"], r["brokerOffset"], r["consumerOffset"], r["diff"],
         time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["lastTimestamp"] / 1000.0)))
        for r in rows])
    return Result({"brokerAddr": data.get("brokerAddr", addr), "totalDiff": total, "queues": rows},
                  lines(text, "", f"Diff Total: {total}"))

