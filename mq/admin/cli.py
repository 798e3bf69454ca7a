"""``mqadmin``: the RocketMQ admin tool's commands, with its command names and flag letters.

Each command is a function ``(api, args) -> Deferred[Result]`` registered with ``@command``; ``main`` parses
the arguments, runs the reactor for that one command (``twisted.internet.task.react``) and exits 0, or prints
one line ``mqadmin <command>: <what went wrong>`` on stderr and exits non-zero (``mq.admin.api`` EXIT_*).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import attr
from twisted.internet import defer, task

from mq.acl.signing import ENV_ACCESS_KEY, ENV_SECRET_KEY, Credentials
from mq.admin import output
from mq.admin.api import (
    EXIT_FAILED,
    EXIT_USAGE,
    ORDER_TOPIC_CONFIG,
    AdminError,
    MessageQueue,
    MQAdminAPI,
    ResponseError,
    UsageError,
    parse_timestamp,
    queue_map,
    route_masters,
)
from mq.admin.output import Result, format_time, join, key_values, message_json, message_text, table
from mq.common import mixall
from mq.common.message import decode_offset_msg_id
from mq.common.names import topic_error
from mq.common.route import PERM_WRITE, TopicConfig, TopicRouteData, perm_to_string
from mq.remoting.codes import ResponseCode as RC

PROG = "mqadmin"
TOOLS_PRODUCER_GROUP = "TOOLS_PRODUCER"
#: TopicSysFlag bits set by updateTopic -u / -s.
FLAG_UNIT = 0x1
FLAG_UNIT_SUB = 0x2


def java_bool(text: str) -> bool:
    """An option value read as Java's Boolean.parseBoolean reads it, but refusing anything not true/false."""
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value == "true"


def _number(text: str, convert: Callable[[str], Any], noun: str, ok: Callable[[Any], bool], rule: str) -> Any:
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {noun}: {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"{rule}: {value}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, "an integer", lambda v: v > 0, "must be positive")


def non_negative_int(text: str) -> int:
    return _number(text, int, "an integer", lambda v: v >= 0, "must be 0 or more")


def positive_seconds(text: str) -> float:
    return _number(text, float, "a number", lambda v: 0 < v < math.inf, "must be positive")


def timestamp_arg(text: str) -> int:
    try:
        return parse_timestamp(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# --------------------------------------------------------------------------------------------- registry


@attr.s(slots=True)
class Command:
    name: str = attr.ib()
    help: str = attr.ib()
    options: Tuple[Tuple[Tuple[str, ...], Dict[str, Any]], ...] = attr.ib()
    run: Callable = attr.ib()
    #: groups of dests of which exactly one must be given (``-b`` or ``-c``)
    one_of: Tuple[Tuple[str, ...], ...] = attr.ib(default=())
    #: takes ``-i interval``: ``main`` runs it again every interval until interrupted (``--count`` rounds)
    repeats: bool = attr.ib(default=False)


COMMANDS: Dict[str, Command] = {}


def opt(*flags: str, **kwargs: Any) -> Tuple[Tuple[str, ...], Dict[str, Any]]:
    return flags, kwargs


BROKER_ADDR = opt("-b", "--brokerAddr", metavar="ADDR", help="the broker, host:port")
CLUSTER = opt("-c", "--clusterName", metavar="CLUSTER", help="every master broker of this cluster")


#: ``-i`` of the commands that repeat (the original's clusterList), and the hidden ``--count`` that ends them
REPEAT_OPTIONS = (
    opt("-i", "--interval", type=positive_seconds, metavar="SECONDS",
        help="print again every SECONDS seconds until interrupted"),
    opt("--count", type=positive_int, metavar="N", help=argparse.SUPPRESS),
)


def command(name: str, help: str, *options, one_of=(), repeats: bool = False):
    def register(fn):
        extra = REPEAT_OPTIONS if repeats else ()
        COMMANDS[name] = Command(name, help, tuple(options) + extra, fn, tuple(one_of), repeats)
        return fn

    return register


# --------------------------------------------------------------------------------------------- helpers


@defer.inlineCallbacks
def target_brokers(api: MQAdminAPI, args) -> defer.Deferred:
    """[(label, addr)] from ``-b addr`` or ``-c cluster`` (the cluster's masters)."""
    if getattr(args, "brokerAddr", None):
        return [(args.brokerAddr, args.brokerAddr)]
    cluster = args.clusterName
    info = yield api.cluster_info()
    masters = info.master_addrs(cluster)
    if cluster not in info.cluster_addr_table:
        raise AdminError(f"cluster '{cluster}' not found on the NameServer")
    if not masters:
        raise AdminError(f"cluster '{cluster}' has no master broker")
    return masters


@defer.inlineCallbacks
def topic_brokers(api: MQAdminAPI, topic: str) -> defer.Deferred:
    """(route, {broker name: master addr}) of a topic; the route error if the NameServer has none."""
    route = yield api.topic_route(topic)
    masters = route_masters(route)
    if not masters:
        raise AdminError(f"topic '{topic}' has no master broker in its route")
    return route, masters


@defer.inlineCallbacks
def group_brokers(api: MQAdminAPI, group: str) -> defer.Deferred:
    """The masters to ask about a consumer group: those of its retry topic, else every master known."""
    try:
        _, masters = yield topic_brokers(api, mixall.retry_topic(group))
        return sorted(masters.items())
    except ResponseError as e:
        if e.code != RC.TOPIC_NOT_EXIST:
            raise
    info = yield api.cluster_info()
    out = []
    for cluster in sorted(info.cluster_addr_table):
        out.extend(info.master_addrs(cluster))
    if not out:
        raise AdminError("the NameServer knows no broker")
    return out


@defer.inlineCallbacks
def first_success(brokers: Sequence[Tuple[str, str]], fn: Callable) -> defer.Deferred:
    """``fn(addr)`` on each broker in turn; the first result, or the last error if every broker fails."""
    error: Optional[Exception] = None
    for _, addr in brokers:
        try:
            result = yield fn(addr)
            return addr, result
        except ResponseError as e:
            error = e
    raise error if error is not None else AdminError("no broker to ask")


def queues_of(route: TopicRouteData, masters: Dict[str, str], readable: bool = True) -> List[Tuple[MessageQueue, str]]:
    """(queue, master addr) of every read (or write) queue of the route, sorted."""
    out = []
    for q in route.queue_datas:
        addr = masters.get(q.broker_name)
        if addr is None:
            continue
        count = q.read_queue_nums if readable else q.write_queue_nums
        out.extend((MessageQueue("", q.broker_name, i), addr) for i in range(count))
    return sorted(out)


def _with_topic(queues: List[Tuple[MessageQueue, str]], topic: str) -> List[Tuple[MessageQueue, str]]:
    return [(MessageQueue(topic, mq.broker_name, mq.queue_id), addr) for mq, addr in queues]


def lines(*items: str) -> str:
    return "\n".join(items)


# --------------------------------------------------------------------------------------------- topics


@command(
    "updateTopic", "Update or create topic",
    BROKER_ADDR, CLUSTER,
    opt("-t", "--topic", required=True, help="topic name"),
    opt("-r", "--readQueueNums", type=positive_int, default=8, help="set read queue nums (default 8)"),
    opt("-w", "--writeQueueNums", type=positive_int, default=8, help="set write queue nums (default 8)"),
    opt("-p", "--perm", type=int, default=6, help="set topic's permission(2|4|6), intro[2:W 4:R; 6:RW]"),
    opt("-o", "--order", type=java_bool, default=False, metavar="true|false", help="set topic's order"),
    opt("-u", "--unit", type=java_bool, default=False, metavar="true|false", help="is unit topic"),
    opt("-s", "--hasUnitSub", type=java_bool, default=False, metavar="true|false", help="has unit sub"),
    one_of=(("brokerAddr", "clusterName"),),
)
@defer.inlineCallbacks
def update_topic(api: MQAdminAPI, args):
    why = topic_error(args.topic)
    if why is not None:
        raise UsageError(f"invalid topic name '{args.topic}': {why}")
    if args.perm not in (2, 4, 6):
        raise UsageError(f"invalid perm {args.perm}: give 2 (W), 4 (R) or 6 (RW)")
    sys_flag = (FLAG_UNIT if args.unit else 0) | (FLAG_UNIT_SUB if args.hasUnitSub else 0)
    tc = TopicConfig(args.topic, args.readQueueNums, args.writeQueueNums, args.perm, "SINGLE_TAG", sys_flag,
                     args.order)
    brokers = yield target_brokers(api, args)
    done = []
    for _, addr in brokers:
        yield api.create_topic(addr, tc)
        done.append(addr)
    order_conf = None
    if args.order:
        names = []
        if args.brokerAddr:
            info = yield api.cluster_info()
            names = [n for n, b in info.broker_addr_table.items() if args.brokerAddr in b.broker_addrs.values()]
        else:
            names = [name for name, _ in brokers]
        order_conf = ";".join(f"{n}:{args.writeQueueNums}" for n in sorted(names))
        if order_conf:
            yield api.put_kv_config(ORDER_TOPIC_CONFIG, args.topic, order_conf)
    text = [f"create topic to {addr} success." for addr in done]
    if order_conf:
        text.append(f"set cluster orderConf. isOrder={args.order}, orderConf=[{order_conf}]")
    text.append(
        f"TopicConfig [topicName={tc.topic_name}, readQueueNums={tc.read_queue_nums}, "
        f"writeQueueNums={tc.write_queue_nums}, perm={perm_to_string(tc.perm)}, "
        f"topicFilterType={tc.topic_filter_type}, topicSysFlag={tc.topic_sys_flag}, order={str(tc.order).lower()}]"
    )
    return Result({"brokers": done, "orderConf": order_conf, "topicConfig": tc.to_json()}, lines(*text))


@command(
    "deleteTopic", "Delete topic from broker and NameServer",
    opt("-t", "--topic", required=True, help="topic name"),
    opt("-c", "--clusterName", required=True, help="delete topic from which cluster"),
)
@defer.inlineCallbacks
def delete_topic(api: MQAdminAPI, args):
    brokers = yield target_brokers(api, argparse.Namespace(brokerAddr=None, clusterName=args.clusterName))
    for _, addr in brokers:
        yield api.delete_topic_in_broker(addr, args.topic)
    yield api.delete_topic_in_namesrv(args.topic, args.clusterName)
    text = lines(f"delete topic [{args.topic}] from cluster [{args.clusterName}] success.",
                 f"delete topic [{args.topic}] from NameServer success.")
    return Result({"topic": args.topic, "cluster": args.clusterName, "brokers": [a for _, a in brokers]}, text)


@command(
    "topicList", "Fetch all topic list from name server",
    opt("-c", "--clusterModel", action="store_true", help="print the cluster and consumer groups of each topic"),
)
@defer.inlineCallbacks
def topic_list(api: MQAdminAPI, args):
    topics = yield api.all_topics()
    if not args.clusterModel:
        return Result(topics, lines(*topics))
    rows = []
    for topic in topics:
        if mixall.is_retry_topic(topic) or mixall.is_dlq_topic(topic):
            continue
        try:
            route, masters = yield topic_brokers(api, topic)
        except AdminError:
            continue
        cluster = route.broker_datas[0].cluster if route.broker_datas else ""
        groups: List[str] = []
        for addr in sorted(masters.values()):
            try:
                groups = yield api.topic_consumed_by(addr, topic)
                break
            except AdminError:
                continue
        for group in groups or [""]:
            rows.append([cluster, topic, group])
    data = [{"clusterName": c, "topic": t, "consumerGroup": g or None} for c, t, g in rows]
    return Result(data, table(["Cluster Name", "Topic", "Consumer Group"], rows))


@command(
    "topicRoute", "Examine topic route info",
    opt("-t", "--topic", required=True, help="topic name"),
    opt("-l", "--list", action="store_true", help="use list format to print data"),
)
@defer.inlineCallbacks
def topic_route(api: MQAdminAPI, args):
    route = yield api.topic_route(args.topic)
    data = route.to_json()
    if not args.list:
        return Result(data, output.to_json(data))
    clusters = {b.broker_name: b.cluster for b in route.broker_datas}
    rows = []
    for b in sorted(route.broker_datas, key=lambda b: b.broker_name):
        for q in (q for q in route.queue_datas if q.broker_name == b.broker_name):
            for bid, addr in sorted(b.broker_addrs.items()):
                rows.append([clusters.get(b.broker_name, ""), b.broker_name, bid, addr, q.read_queue_nums,
                             q.write_queue_nums, perm_to_string(q.perm)])
    return Result(data, table(["ClusterName", "BrokerName", "BID", "BrokerAddr", "ReadQueueNums",
                               "WriteQueueNums", "Perm"], rows))


@command("topicStatus", "Examine topic Status info", opt("-t", "--topic", required=True, help="topic name"))
@defer.inlineCallbacks
def topic_status(api: MQAdminAPI, args):
    _, masters = yield topic_brokers(api, args.topic)
    stats: Dict[MessageQueue, dict] = {}
    for _, addr in sorted(masters.items()):
        part = yield api.topic_stats(addr, args.topic)
        stats.update(part)
    rows, data = [], []
    for mq in sorted(stats):
        s = stats[mq]
        rows.append([mq.broker_name, mq.queue_id, s.get("minOffset", 0), s.get("maxOffset", 0),
                     format_time(s.get("lastUpdateTimestamp", 0))])
        data.append({"brokerName": mq.broker_name, "queueId": mq.queue_id, "minOffset": s.get("minOffset", 0),
                     "maxOffset": s.get("maxOffset", 0), "lastUpdateTimestamp": s.get("lastUpdateTimestamp", 0)})
    return Result(data, table(["Broker Name", "QID", "Min Offset", "Max Offset", "Last Updated"], rows))


@command("topicClusterList", "Get cluster info for topic", opt("-t", "--topic", required=True, help="topic name"))
@defer.inlineCallbacks
def topic_cluster_list(api: MQAdminAPI, args):
    route = yield api.topic_route(args.topic)
    clusters = sorted({b.cluster for b in route.broker_datas if b.cluster})
    if not clusters:
        info = yield api.cluster_info()
        clusters = sorted({c for b in route.broker_datas for c in [info.cluster_of(b.broker_name)] if c})
    return Result(clusters, lines(*clusters))


# --------------------------------------------------------------------------------------------- cluster and brokers


def _parsed(status: Dict[str, Any], key: str, convert: Callable[[Any], Any] = int) -> Any:
    """``convert(status[key])`` of a GET_BROKER_RUNTIME_INFO table, or None when the broker left it out or wrote
    something else."""
    try:
        return convert(status[key])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _first_rate(text: Any) -> float:
    """The 10-second rate of a ``"10s 1min 10min"`` rate string (``putTps``, ``getTransferedTps``)."""
    return float(str(text).split()[0])


def day_totals(status: Dict[str, Any], direction: str) -> Tuple[Optional[int], Optional[int]]:
    """(yesterday, today) of ``msg<direction>Total*`` (``Put`` or ``Get``) in GET_BROKER_RUNTIME_INFO, as the
    original computes them from the morning snapshots. Without today's morning snapshot (brokers that keep
    none) today is the count since the broker started, and yesterday is unknown (None)."""
    yesterday_morning = _parsed(status, f"msg{direction}TotalYesterdayMorning")
    today_morning = _parsed(status, f"msg{direction}TotalTodayMorning")
    now = _parsed(status, f"msg{direction}TotalTodayNow")
    yesterday = today_morning - yesterday_morning if None not in (today_morning, yesterday_morning) else None
    if now is None or today_morning is None:
        return yesterday, now
    return yesterday, now - today_morning


def _load(rate: Optional[float], status: Dict[str, Any], pool: str) -> Optional[str]:
    """The original's ``TPS(queued requests,head wait ms)`` cell."""
    if rate is None:
        return None
    return f"{rate:.2f}({status.get(pool + 'ThreadPoolQueueSize')},{status.get(pool + 'ThreadPoolQueueHeadWaitTimeMills')}ms)"


def base_stats(status: Dict[str, Any], now_ms: float) -> Dict[str, Any]:
    """The original clusterList's per-broker figures from GET_BROKER_RUNTIME_INFO: 10-second in and out rates,
    page-cache lock wait, hours of messages kept, CommitLog disk ratio (None where the broker said nothing)."""
    in_tps, out_tps = _parsed(status, "putTps", _first_rate), _parsed(status, "getTransferedTps", _first_rate)
    earliest = _parsed(status, "earliestMessageTimeStamp")
    space = _parsed(status, "commitLogDiskRatio", float)
    return {
        "inTps": in_tps, "outTps": out_tps, "inLoad": _load(in_tps, status, "send"),
        "outLoad": _load(out_tps, status, "pull"), "pcWaitMs": _parsed(status, "pageCacheLockTimeMills"),
        "hour": (now_ms - earliest) / 3_600_000 if earliest else None, "space": space,
    }  # fmt: skip


@command(
    "clusterList", "List cluster infos",
    opt("-m", "--moreStats", action="store_true", help="print yesterday's and today's in/out message totals"),
    repeats=True,
)
@defer.inlineCallbacks
def cluster_list(api: MQAdminAPI, args):
    info = yield api.cluster_info()
    rows, data = [], []
    for cluster in sorted(info.cluster_addr_table):
        for name in sorted(info.cluster_addr_table[cluster]):
            broker = info.broker_addr_table.get(name)
            if broker is None:
                continue
            for bid, addr in sorted(broker.broker_addrs.items()):
                try:
                    status = yield api.broker_runtime_info(addr)
                    error = None
                except AdminError as e:
                    status, error = {}, str(e)
                in_yest, in_today = day_totals(status, "Put")
                out_yest, out_today = day_totals(status, "Get")
                base = base_stats(status, time.time() * 1000)
                entry = {"clusterName": cluster, "brokerName": name, "brokerId": bid, "addr": addr,
                         "version": status.get("brokerVersionDesc"), "role": status.get("brokerRole"),
                         "diskRatio": status.get("commitLogDiskRatio"), **base,
                         "inTotalYest": in_yest, "outTotalYest": out_yest,
                         "inTotalToday": in_today, "outTotalToday": out_today}
                if error:
                    entry["error"] = error
                data.append(entry)
                if args.moreStats:  # the original's -m table: these columns only
                    row = [cluster, name, in_yest, out_yest, in_today, out_today]
                else:
                    hour, space = base["hour"], base["space"]
                    row = [cluster, name, bid, addr, entry["version"], base["inLoad"], base["outLoad"], base["pcWaitMs"],
                           None if hour is None else f"{hour:.2f}", None if space is None else f"{space:.4f}"]
                rows.append(["-" if v is None or v == "" else v for v in row])
    if args.moreStats:
        headers = ["Cluster Name", "Broker Name", "InTotalYest", "OutTotalYest", "InTotalToday", "OutTotalToday"]
    else:
        headers = ["Cluster Name", "Broker Name", "BID", "Addr", "Version", "InTPS(LOAD)", "OutTPS(LOAD)",
                   "PCWait(ms)", "Hour", "SPACE"]
    return Result(data, table(headers, rows))


@defer.inlineCallbacks
def _broker_tables(api: MQAdminAPI, args, fetch: Callable, render: Callable):
    """``fetch(addr)`` (a dict) of each target broker, sorted by key; ``render(label, addr, table)`` the text."""
    brokers = yield target_brokers(api, args)
    data, blocks = {}, []
    for label, addr in brokers:
        values = yield fetch(addr)
        data[addr] = dict(sorted(values.items()))
        blocks.append(render(label, addr, data[addr]))
    return Result(data, "\n".join(blocks))


@command("brokerStatus", "Fetch broker runtime status data", BROKER_ADDR, CLUSTER,
         one_of=(("brokerAddr", "clusterName"),))
def broker_status(api: MQAdminAPI, args):
    def render(label: str, addr: str, status: dict) -> str:
        if args.brokerAddr:
            return key_values(status)
        return key_values({f"{label:<24} {addr:<22} {k}": v for k, v in status.items()})

    return _broker_tables(api, args, api.broker_runtime_info, render)


@command("getBrokerConfig", "Get broker config by cluster or special broker", BROKER_ADDR, CLUSTER,
         one_of=(("brokerAddr", "clusterName"),))
def get_broker_config(api: MQAdminAPI, args):
    return _broker_tables(api, args, api.broker_config,
                          lambda label, addr, config: f"============{addr}============\n" + key_values(config, " = "))


@command(
    "updateBrokerConfig", "Update broker's config",
    BROKER_ADDR, CLUSTER,
    opt("-k", "--key", required=True, help="config key"),
    opt("-v", "--value", required=True, help="config value"),
    one_of=(("brokerAddr", "clusterName"),),
)
@defer.inlineCallbacks
def update_broker_config(api: MQAdminAPI, args):
    brokers = yield target_brokers(api, args)
    done = []
    for _, addr in brokers:
        yield api.update_broker_config(addr, {args.key: args.value})
        done.append(addr)
    text = lines(*(f"update broker config success, {addr}" for addr in done))
    return Result({"key": args.key, "value": args.value, "brokers": done}, text)


# --------------------------------------------------------------------------------------------- groups


@command(
    "updateSubGroup", "Update or create subscription group",
    BROKER_ADDR, CLUSTER,
    opt("-g", "--groupName", required=True, help="consumer group name"),
    opt("-s", "--consumeEnable", type=java_bool, default=True, metavar="true|false", help="consume enable"),
    opt("-m", "--consumeFromMinEnable", type=java_bool, default=False, metavar="true|false",
        help="from min offset"),
    opt("-d", "--consumeBroadcastEnable", type=java_bool, default=False, metavar="true|false", help="broadcast"),
    opt("-q", "--retryQueueNums", type=non_negative_int, default=1, help="retry queue nums"),
    opt("-r", "--retryMaxTimes", type=non_negative_int, default=16, help="retry max times"),
    opt("-i", "--brokerId", type=non_negative_int, default=0, help="consumer from which broker id"),
    opt("-w", "--whichBrokerWhenConsumeSlowly", type=non_negative_int, default=1,
        help="which broker id when consume slowly"),
    opt("-a", "--notifyConsumerIdsChanged", type=java_bool, default=True, metavar="true|false",
        help="notify consumerId changed"),
    one_of=(("brokerAddr", "clusterName"),),
)
@defer.inlineCallbacks
def update_sub_group(api: MQAdminAPI, args):
    config = {
        "brokerId": args.brokerId,
        "consumeBroadcastEnable": args.consumeBroadcastEnable,
        "consumeEnable": args.consumeEnable,
        "consumeFromMinEnable": args.consumeFromMinEnable,
        "groupName": args.groupName,
        "notifyConsumerIdsChangedEnable": args.notifyConsumerIdsChanged,
        "retryMaxTimes": args.retryMaxTimes,
        "retryQueueNums": args.retryQueueNums,
        "whichBrokerWhenConsumeSlowly": args.whichBrokerWhenConsumeSlowly,
    }
    brokers = yield target_brokers(api, args)
    done = []
    for _, addr in brokers:
        yield api.create_subscription_group(addr, config)
        done.append(addr)
    text = [f"create subscription group to {addr} success." for addr in done]
    text.append("SubscriptionGroupConfig [" + ", ".join(
        f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in config.items()) + "]")
    return Result({"brokers": done, "subscriptionGroupConfig": config}, lines(*text))


@command(
    "deleteSubGroup", "Delete subscription group from broker",
    BROKER_ADDR, CLUSTER,
    opt("-g", "--groupName", required=True, help="subscription group name"),
    opt("-r", "--removeOffset", type=java_bool, default=False, metavar="true|false", help="remove offset"),
    one_of=(("brokerAddr", "clusterName"),),
)
@defer.inlineCallbacks
def delete_sub_group(api: MQAdminAPI, args):
    brokers = yield target_brokers(api, args)
    text, done = [], []
    for _, addr in brokers:
        yield api.delete_subscription_group(addr, args.groupName, args.removeOffset)
        done.append(addr)
        text.append(f"delete subscription group [{args.groupName}] from broker [{addr}] success.")
    deleted_topics = []
    if args.clusterName:
        for topic in (mixall.retry_topic(args.groupName), mixall.dlq_topic(args.groupName)):
            for _, addr in brokers:
                yield api.delete_topic_in_broker(addr, topic)
            yield api.delete_topic_in_namesrv(topic, args.clusterName)
            deleted_topics.append(topic)
            text.append(f"delete topic [{topic}] from cluster [{args.clusterName}] success.")
    return Result({"group": args.groupName, "brokers": done, "deletedTopics": deleted_topics}, lines(*text))


@defer.inlineCallbacks
def _group_consume_stats(api: MQAdminAPI, group: str, topic: Optional[str] = None):
    """(tps, {MessageQueue: offsets}) over every broker of the group."""
    brokers = yield group_brokers(api, group)
    tps = 0.0
    table_: Dict[MessageQueue, dict] = {}
    for _, addr in brokers:
        part_tps, part = yield api.consume_stats(addr, group, topic)
        tps += part_tps
        table_.update(part)
    return tps, table_


@command(
    "consumerProgress", "Query consumers's progress, speed",
    opt("-g", "--groupName", help="consumer group name (all groups when left out)"),
    opt("-s", "--showClientIP", type=java_bool, default=False, metavar="true|false",
        help="show client IP per queue"),
)
@defer.inlineCallbacks
def consumer_progress(api: MQAdminAPI, args):
    if args.groupName:
        return (yield _progress_of_group(api, args.groupName, args.showClientIP))
    topics = yield api.all_topics()
    rows, data = [], []
    for topic in topics:
        if not mixall.is_retry_topic(topic):
            continue
        group = topic[len(mixall.RETRY_GROUP_TOPIC_PREFIX):]
        try:
            tps, stats = yield _group_consume_stats(api, group)
        except AdminError:
            tps, stats = 0.0, {}
        count, version, ctype, model = 0, "", "", ""
        try:
            _, conn = yield _consumer_connection(api, group, None)
            count = len(conn.get("connectionSet") or [])
            versions = sorted({c.get("version") for c in conn.get("connectionSet") or []})
            version = ",".join(str(v) for v in versions)
            ctype, model = conn.get("consumeType", ""), conn.get("messageModel", "")
        except AdminError:
            pass
        diff = sum(s.get("brokerOffset", 0) - s.get("consumerOffset", 0) for s in stats.values())
        rows.append([group, count, version, ctype, model, f"{tps:.2f}", diff])
        data.append({"group": group, "count": count, "version": version, "consumeType": ctype,
                     "messageModel": model, "consumeTps": tps, "diffTotal": diff})
    return Result(data, table(["Group", "Count", "Version", "Type", "Model", "TPS", "Diff Total"], rows))


@defer.inlineCallbacks
def _progress_of_group(api: MQAdminAPI, group: str, show_client_ip: bool):
    tps, stats = yield _group_consume_stats(api, group)
    if not stats:
        raise AdminError(f"consumer group '{group}' has no consume stats: it has not consumed any topic")
    owners: Dict[MessageQueue, str] = {}
    if show_client_ip:
        owners = yield _queue_owners(api, group)
    rows, data, diff_total = [], [], 0
    for mq in sorted(stats):
        s = stats[mq]
        diff = s.get("brokerOffset", 0) - s.get("consumerOffset", 0)
        diff_total += diff
        last = s.get("lastTimestamp", 0)
        row = [mq.topic, mq.broker_name, mq.queue_id, s.get("brokerOffset", 0), s.get("consumerOffset", 0)]
        if show_client_ip:
            row.append(owners.get(mq, "N/A"))
        rows.append(row + [diff, format_time(last) or "N/A"])
        entry = {"topic": mq.topic, "brokerName": mq.broker_name, "queueId": mq.queue_id,
                 "brokerOffset": s.get("brokerOffset", 0), "consumerOffset": s.get("consumerOffset", 0),
                 "diff": diff, "lastTimestamp": last}
        if show_client_ip:
            entry["clientIP"] = owners.get(mq)
        data.append(entry)
    headers = ["Topic", "Broker Name", "QID", "Broker Offset", "Consumer Offset"]
    headers += ["Client IP"] if show_client_ip else []
    headers += ["Diff", "LastTime"]
    text = f"{table(headers, rows)}\n\nConsume TPS: {tps:.2f}\nDiff Total: {diff_total}"
    return Result({"group": group, "consumeTps": tps, "diffTotal": diff_total, "queues": data}, text)


@defer.inlineCallbacks
def _queue_owners(api: MQAdminAPI, group: str):
    """Queue → client IP, from each online client's running info (empty when the clients cannot say)."""
    owners: Dict[MessageQueue, str] = {}
    try:
        addr, conn = yield _consumer_connection(api, group, None)
        for c in conn.get("connectionSet") or []:
            info = yield api.consumer_running_info(addr, group, c.get("clientId", ""))
            for mq in queue_map(info.get("mqTable")):
                owners[mq] = c.get("clientId", "").split("@")[0]
    except AdminError:
        pass
    return owners


@defer.inlineCallbacks
def _consumer_connection(api: MQAdminAPI, group: str, broker_addr: Optional[str]):
    brokers = [(broker_addr, broker_addr)] if broker_addr else (yield group_brokers(api, group))
    addr, conn = yield first_success(brokers, lambda a: api.consumer_connection(a, group))
    return addr, conn


@command(
    "consumerConnection", "Query consumer's socket connection, client version and subscription",
    opt("-g", "--consumerGroup", required=True, help="consumer group name"),
    BROKER_ADDR,
)
@defer.inlineCallbacks
def consumer_connection(api: MQAdminAPI, args):
    _, conn = yield _consumer_connection(api, args.consumerGroup, args.brokerAddr)
    connections = sorted(conn.get("connectionSet") or [], key=lambda c: c.get("clientId", ""))
    rows = [[i + 1, c.get("clientId"), c.get("clientAddr"), c.get("language"), c.get("version")]
            for i, c in enumerate(connections)]
    subs = conn.get("subscriptionTable") or {}
    sub_rows = [[i + 1, topic, (sub or {}).get("subString", "")] for i, (topic, sub) in enumerate(sorted(subs.items()))]
    text = lines(
        table(["", "ClientId", "ClientAddr", "Language", "Version"], rows), "",
        "Below is subscription:",
        table(["", "Topic", "SubExpression"], sub_rows), "",
        f"ConsumeType: {conn.get('consumeType', '')}",
        f"MessageModel: {conn.get('messageModel', '')}",
        f"ConsumeFromWhere: {conn.get('consumeFromWhere', '')}",
    )
    return Result(conn, text)


@command(
    "producerConnection", "Query producer's socket connection and client version",
    opt("-g", "--producerGroup", required=True, help="producer group name"),
    opt("-t", "--topic", required=True, help="topic name"),
)
@defer.inlineCallbacks
def producer_connection(api: MQAdminAPI, args):
    _, masters = yield topic_brokers(api, args.topic)
    _, conn = yield first_success(sorted(masters.items()),
                                  lambda a: api.producer_connection(a, args.producerGroup))
    connections = sorted(conn.get("connectionSet") or [], key=lambda c: c.get("clientId", ""))
    rows = [[i + 1, c.get("clientId"), c.get("clientAddr"), c.get("language"), c.get("version")]
            for i, c in enumerate(connections)]
    return Result(conn, table(["", "ClientId", "ClientAddr", "Language", "Version"], rows))


@command(
    "consumerStatus", "Query consumer's internal data structure",
    opt("-g", "--consumerGroup", required=True, help="consumer group name"),
    opt("-i", "--clientId", help="the consumer's client id"),
    BROKER_ADDR,
    opt("-s", "--jstack", action="store_true", help="run jstack command in the consumer progress"),
)
@defer.inlineCallbacks
def consumer_status(api: MQAdminAPI, args):
    group = args.consumerGroup
    addr, conn = yield _consumer_connection(api, group, args.brokerAddr)
    if args.clientId:
        info = yield api.consumer_running_info(addr, group, args.clientId, args.jstack)
        return Result(info, output.to_json(info))
    data, rows = {}, []
    for c in sorted(conn.get("connectionSet") or [], key=lambda c: c.get("clientId", "")):
        client_id = c.get("clientId", "")
        try:
            info = yield api.consumer_running_info(addr, group, client_id, args.jstack)
            data[client_id] = info
            status = "OK"
        except AdminError as e:
            data[client_id] = {"error": str(e)}
            status = f"unavailable ({e})"
        rows.append([client_id, c.get("version"), status])
    return Result(data, table(["ClientId", "Version", "Running Info"], rows))


@command(
    "getConsumerStatus", "get consumer status from client.",
    opt("-g", "--group", required=True, help="the consumer group"),
    opt("-t", "--topic", required=True, help="the topic"),
    opt("-i", "--originClientId", metavar="CLIENT", help="only the consumer with this client id (or address)"),
)
@defer.inlineCallbacks
def get_consumer_status(api: MQAdminAPI, args):
    """The offsets each online consumer of the group holds for the topic's queues, as the consumers report
    them to a broker of the topic (INVOKE_BROKER_TO_GET_CONSUMER_STATUS)."""
    _, masters = yield topic_brokers(api, args.topic)
    addr = sorted(masters.items())[0][1]
    status = yield api.consumer_status(addr, args.topic, args.group, args.originClientId)
    if not status:
        which = f" with client id or address '{args.originClientId}'" if args.originClientId else ""
        raise AdminError(f"no consumer of group '{args.group}'{which} reported its offsets via broker {addr}")
    rows = [[cid, mq.broker_name, mq.queue_id, offset]
            for cid, queues in sorted(status.items()) for mq, offset in sorted(queues.items())]
    data = {"group": args.group, "topic": args.topic, "originClientId": args.originClientId or "",
            "brokerAddr": addr,
            "consumerTable": {cid: [dict(mq.to_json(), offset=offset) for mq, offset in sorted(queues.items())]
                              for cid, queues in sorted(status.items())}}
    header = (f"get consumer status from client. group={args.group}, topic={args.topic}, "
              f"originClientId={args.originClientId or ''}")
    return Result(data, join(header, table(["clientId", "brokerName", "queueId", "offset"], rows)))


# --------------------------------------------------------------------------------------------- messages


@command(
    "queryMsgById", "Query Message by Id",
    opt("-i", "--msgId", required=True, help="message id (the offset msgId; several separated by ,)"),
)
@defer.inlineCallbacks
def query_msg_by_id(api: MQAdminAPI, args):
    data, blocks = [], []
    for msg_id in [m.strip() for m in args.msgId.split(",") if m.strip()]:
        try:
            (host, port), offset = decode_offset_msg_id(msg_id)
        except ValueError:
            raise UsageError(f"'{msg_id}' is not an offset message id (32 or 56 hex characters)") from None
        msg = yield api.view_message(f"{host}:{port}", offset)
        data.append(message_json(msg))
        blocks.append(message_text(msg))
    return Result(data if len(data) != 1 else data[0], "\n\n".join(blocks))


@defer.inlineCallbacks
def _query_by_key(api: MQAdminAPI, topic: str, key: str, unique: bool):
    _, masters = yield topic_brokers(api, topic)
    found = []
    for name, addr in sorted(masters.items()):
        messages = yield api.query_message(addr, topic, key, unique=unique)
        found.extend((name, m) for m in messages)
    return found


@command(
    "queryMsgByKey", "Query Message by Key",
    opt("-t", "--topic", required=True, help="topic name"),
    opt("-k", "--msgKey", required=True, help="message key"),
)
@defer.inlineCallbacks
def query_msg_by_key(api: MQAdminAPI, args):
    found = yield _query_by_key(api, args.topic, args.msgKey, unique=False)
    if not found:
        raise AdminError(f"no message with key '{args.msgKey}' in topic '{args.topic}'")
    rows = [[m.unique_key or m.msg_id, m.msg_id, name, m.queue_id, m.queue_offset] for name, m in found]
    data = [message_json(m, name, with_body=False) for name, m in found]
    return Result(data, table(["Message ID", "Offset Message ID", "Broker Name", "QID", "Offset"], rows))


@command(
    "queryMsgByUniqueKey", "Query Message by Unique key",
    opt("-i", "--msgId", required=True, help="message id (the client's unique key)"),
    opt("-t", "--topic", required=True, help="the topic of msg"),
    opt("-a", "--showAll", action="store_true", help="print all message, the limit is 32"),
)
@defer.inlineCallbacks
def query_msg_by_unique_key(api: MQAdminAPI, args):
    found = yield _query_by_key(api, args.topic, args.msgId, unique=True)
    if not found:
        raise AdminError(f"no message with unique key '{args.msgId}' in topic '{args.topic}'")
    found = found if args.showAll else found[:1]
    data = [message_json(m, name) for name, m in found]
    text = "\n\n".join(message_text(m, name) for name, m in found)
    return Result(data if args.showAll else data[0], text)


@defer.inlineCallbacks
def _broker_of(api: MQAdminAPI, topic: str, broker_name: str):
    route, masters = yield topic_brokers(api, topic)
    addr = masters.get(broker_name)
    if addr is None:
        raise AdminError(f"broker '{broker_name}' is not in the route of topic '{topic}' "
                         f"(brokers: {', '.join(sorted(masters)) or 'none'})")
    return route, addr


@command(
    "queryMsgByOffset", "Query Message by offset",
    opt("-t", "--topic", required=True, help="topic name"),
    opt("-b", "--brokerName", required=True, help="broker name"),
    opt("-i", "--queueId", required=True, type=non_negative_int, help="queue id"),
    opt("-o", "--offset", required=True, type=non_negative_int, help="queue offset"),
)
@defer.inlineCallbacks
def query_msg_by_offset(api: MQAdminAPI, args):
    _, addr = yield _broker_of(api, args.topic, args.brokerName)
    code, _, messages = yield api.pull(addr, mixall.TOOLS_CONSUMER_GROUP, args.topic, args.queueId, args.offset, 1)
    if not messages:
        raise AdminError(f"no message at offset {args.offset} of {args.topic}:{args.brokerName}:{args.queueId}")
    msg = messages[0]
    return Result(message_json(msg, args.brokerName), message_text(msg, args.brokerName))


@defer.inlineCallbacks
def _read_queue(api: MQAdminAPI, addr: str, group: str, mq: MessageQueue, begin: int, end: int, limit: int,
                subscription: str = "*"):
    """Messages of one queue with offsets in [begin, end), at most ``limit``; stops when the queue is read."""
    out = []
    offset = begin
    while offset < end and len(out) < limit:
        code, next_offset, messages = yield api.pull(addr, group, mq.topic, mq.queue_id, offset,
                                                     min(32, end - offset), subscription)
        out.extend(m for m in messages if m.queue_offset < end)
        if code not in (RC.SUCCESS, RC.PULL_RETRY_IMMEDIATELY) or next_offset <= offset:
            break
        offset = next_offset
    return out[:limit]


@defer.inlineCallbacks
def _queue_window(api: MQAdminAPI, addr: str, mq: MessageQueue, begin_ts: Optional[int], end_ts: Optional[int]):
    low = yield api.min_offset(addr, mq.topic, mq.queue_id)
    high = yield api.max_offset(addr, mq.topic, mq.queue_id)
    if begin_ts is not None:
        low = yield api.search_offset(addr, mq.topic, mq.queue_id, begin_ts)
    if end_ts is not None:
        high = yield api.search_offset(addr, mq.topic, mq.queue_id, end_ts)
    return low, high


@command(
    "printMsg", "Print Message Detail",
    opt("-t", "--topic", required=True, help="topic name"),
    opt("-c", "--charsetName", default="UTF-8", help="charset of the bodies (default UTF-8)"),
    opt("-s", "--subExpression", default="*", help="subscribe expression (eg: TagA || TagB)"),
    opt("-b", "--beginTimestamp", type=timestamp_arg, metavar="TIME",
        help="begin timestamp [now|currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]"),
    opt("-e", "--endTimestamp", type=timestamp_arg, metavar="TIME",
        help="end timestamp [now|currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]"),
    opt("-d", "--printBody", type=java_bool, default=True, metavar="true|false", help="print body"),
)
@defer.inlineCallbacks
def print_msg(api: MQAdminAPI, args):
    route, masters = yield topic_brokers(api, args.topic)
    data, blocks = [], []
    for mq, addr in _with_topic(queues_of(route, masters), args.topic):
        low, high = yield _queue_window(api, addr, mq, args.beginTimestamp, args.endTimestamp)
        messages = yield _read_queue(api, addr, mixall.TOOLS_CONSUMER_GROUP, mq, low, high, 2**31,
                                     args.subExpression)
        data.append({"queue": mq.to_json(), "minOffset": low, "maxOffset": high,
                     "messages": [message_json(m, mq.broker_name, args.printBody) for m in messages]})
        blocks.append(f"minOffset={low}, maxOffset={high}, {mq}")
        blocks.extend(message_text(m, mq.broker_name, args.printBody, args.charsetName) for m in messages)
        blocks.append("-" * 56)
    return Result(data, "\n".join(blocks))


@command(
    "sendMessage", "Send a message",
    opt("-t", "--topic", required=True, help="topic name"),
    opt("-p", "--body", required=True, help="UTF-8 string format of the message body"),
    opt("-k", "--key", help="message keys"),
    opt("-c", "--tags", help="message tags"),
    opt("-b", "--broker", help="send message to target broker (broker name)"),
    opt("-i", "--qid", type=non_negative_int, help="send message to target queue"),
)
@defer.inlineCallbacks
def send_message(api: MQAdminAPI, args):
    if args.qid is not None and not args.broker:
        raise UsageError("-i/--qid needs -b/--broker")
    auto_create = False
    try:
        route, masters = yield topic_brokers(api, args.topic)
    except ResponseError as e:
        if e.code != RC.TOPIC_NOT_EXIST:
            raise
        auto_create = True
        # Like a producer: a topic the NameServer does not know goes where TBW102 (auto-create) lives.
        route, masters = yield topic_brokers(api, mixall.DEFAULT_TOPIC)
    writable = {q.broker_name: q for q in route.queue_datas
                if q.perm & PERM_WRITE and q.write_queue_nums > 0 and q.broker_name in masters}
    if args.broker:
        if args.broker not in masters:
            raise AdminError(f"broker '{args.broker}' is not in the route of topic '{args.topic}'")
        name = args.broker
    elif writable:
        name = random.choice(sorted(writable))
    else:
        raise AdminError(f"topic '{args.topic}' has no writable queue")
    qd = writable.get(name)
    queue_count = qd.write_queue_nums if qd is not None else 1
    if auto_create:
        queue_count = min(queue_count, 4)  # the broker creates the topic with the producer's default, 4 queues
    queue_id = args.qid if args.qid is not None else random.randrange(queue_count)
    result = yield api.send_message(masters[name], name, args.topic, queue_id, args.body.encode("utf-8"),
                                    tags=args.tags, keys=args.key, group=TOOLS_PRODUCER_GROUP)
    rows = [[result["brokerName"], result["queueId"], result["sendStatus"], result["msgId"],
             result["offsetMsgId"]]]
    return Result(result, table(["Broker Name", "QID", "Send Result", "MsgId", "OffsetMsgId"], rows))


@command(
    "consumeMessage", "Consume message",
    opt("-t", "--topic", required=True, help="topic name"),
    opt("-b", "--brokerName", help="broker name"),
    opt("-i", "--queueId", type=non_negative_int, help="queue id (needs -b)"),
    opt("-o", "--offset", type=non_negative_int, help="queue offset (needs -i)"),
    opt("-g", "--consumerGroup", default=mixall.TOOLS_CONSUMER_GROUP, help="consumer group name"),
    opt("-s", "--beginTimestamp", type=timestamp_arg, metavar="TIME",
        help="begin timestamp [now|currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]"),
    opt("-e", "--endTimestamp", type=timestamp_arg, metavar="TIME",
        help="end timestamp [now|currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]"),
    opt("-c", "--MessageNumber", type=positive_int, default=128, help="number of messages to consume (default 128)"),
)
@defer.inlineCallbacks
def consume_message(api: MQAdminAPI, args):
    if args.queueId is not None and not args.brokerName:
        raise UsageError("-i/--queueId needs -b/--brokerName")
    if args.offset is not None and args.queueId is None:
        raise UsageError("-o/--offset needs -i/--queueId")
    if args.beginTimestamp is not None and args.endTimestamp is not None and args.beginTimestamp > args.endTimestamp:
        raise UsageError("the begin timestamp is after the end timestamp")
    route, masters = yield topic_brokers(api, args.topic)
    queues = _with_topic(queues_of(route, masters), args.topic)
    if args.brokerName:
        if args.brokerName not in masters:
            raise AdminError(f"broker '{args.brokerName}' is not in the route of topic '{args.topic}'")
        queues = [(mq, a) for mq, a in queues if mq.broker_name == args.brokerName]
    if args.queueId is not None:
        queues = [(mq, a) for mq, a in queues if mq.queue_id == args.queueId]
        if not queues:
            raise AdminError(f"queue {args.queueId} of broker '{args.brokerName}' is not readable in topic "
                             f"'{args.topic}'")
    remaining = args.MessageNumber
    data, blocks = [], []
    for mq, addr in queues:
        if remaining <= 0:
            break
        low, high = yield _queue_window(api, addr, mq, args.beginTimestamp, args.endTimestamp)
        if args.offset is not None:
            low = max(low, args.offset)
        messages = yield _read_queue(api, addr, args.consumerGroup, mq, low, high, remaining)
        remaining -= len(messages)
        for m in messages:
            data.append(message_json(m, mq.broker_name))
            blocks.append(message_text(m, mq.broker_name))
    blocks.append(f"Consumed {len(data)} message(s).")
    return Result(data, "\n\n".join(blocks))


# --------------------------------------------------------------------------------------------- offsets


@command(
    "resetOffsetByTime", "Reset consumer offset by timestamp(without client restart)",
    opt("-g", "--group", required=True, help="the consumer group"),
    opt("-t", "--topic", required=True, help="the topic"),
    opt("-s", "--timestamp", required=True, help="the timestamp [now|currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]"),
    opt("-f", "--force", type=java_bool, default=True, metavar="true|false",
        help="rollback even when the new offset is past the committed one (default true)"),
    opt("-c", "--cplus", action="store_true", help="reset c++ client offset"),
)
@defer.inlineCallbacks
def reset_offset_by_time(api: MQAdminAPI, args):
    try:
        timestamp = parse_timestamp(args.timestamp)
    except ValueError as e:
        raise UsageError(str(e)) from None
    _, masters = yield topic_brokers(api, args.topic)
    offsets: Dict[MessageQueue, int] = {}
    fallback = False
    for _, addr in sorted(masters.items()):
        code, remark, table_ = yield api.reset_offset_in_broker(addr, args.topic, args.group, timestamp, args.force,
                                                                args.cplus)
        if code == RC.SUCCESS:
            offsets.update({mq: int(v) for mq, v in table_.items()})
        elif code in (RC.CONSUMER_NOT_ONLINE, RC.REQUEST_CODE_NOT_SUPPORTED):
            fallback = True  # nobody online to tell (or a broker without the call): write the offsets directly
            part = yield _reset_offsets_in_broker_store(api, addr, args.group, args.topic, timestamp, args.force)
            offsets.update(part)
        else:
            raise ResponseError(f"reset offset of '{args.group}' on broker {addr}: {remark or code}", code, remark)
    rows = [[mq.broker_name, mq.queue_id, off] for mq, off in sorted(offsets.items())]
    header = (f"rollback consumer offset by specified group[{args.group}], topic[{args.topic}], "
              f"force[{str(args.force).lower()}], timestamp(string)[{args.timestamp}], timestamp(long)[{timestamp}]")
    data = {"group": args.group, "topic": args.topic, "force": args.force, "timestamp": timestamp,
            "offsetsWrittenByTool": fallback,
            "offsets": [{"brokerName": mq.broker_name, "queueId": mq.queue_id, "offset": off}
                        for mq, off in sorted(offsets.items())]}
    return Result(data, join(header, table(["brokerName", "queueId", "offset"], rows)))


@defer.inlineCallbacks
def _reset_offsets_in_broker_store(api: MQAdminAPI, addr: str, group: str, topic: str, timestamp: int,
                                   force: bool):
    """The offline reset: per queue, the offset of ``timestamp`` becomes the group's committed offset."""
    _, stats = yield api.consume_stats(addr, group, topic)
    out: Dict[MessageQueue, int] = {}
    for mq in sorted(stats):
        if mq.topic != topic:
            continue
        target = yield api.search_offset(addr, topic, mq.queue_id, timestamp)
        current = stats[mq].get("consumerOffset", 0)
        if force or target < current:
            yield api.update_consumer_offset(addr, group, topic, mq.queue_id, target)
            out[mq] = target
        else:
            out[mq] = current
    return out


# --------------------------------------------------------------------------------------------- NameServer


@command(
    "updateKvConfig", "Create or update KV config",
    opt("-s", "--namespace", required=True, help="set the namespace"),
    opt("-k", "--key", required=True, help="set the key name"),
    opt("-v", "--value", required=True, help="set the key value"),
)
@defer.inlineCallbacks
def update_kv_config(api: MQAdminAPI, args):
    done = yield api.put_kv_config(args.namespace, args.key, args.value)
    data = {"namespace": args.namespace, "key": args.key, "value": args.value, "nameServers": [a for a, _ in done]}
    return Result(data, "update kv config in namesrv success")


@command(
    "deleteKvConfig", "Delete KV config",
    opt("-s", "--namespace", required=True, help="set the namespace"),
    opt("-k", "--key", required=True, help="set the key name"),
)
@defer.inlineCallbacks
def delete_kv_config(api: MQAdminAPI, args):
    done = yield api.delete_kv_config(args.namespace, args.key)
    data = {"namespace": args.namespace, "key": args.key, "nameServers": [a for a, _ in done]}
    return Result(data, "delete kv config from namesrv success")


def _perm_command(verb: str, method: str):
    @defer.inlineCallbacks
    def run(api: MQAdminAPI, args):
        counts = yield getattr(api, method)(args.brokerName)
        text = [f"{verb} write perm of broker[{args.brokerName}] in name server[{addr}] OK, {n}" for addr, n in counts]
        data = {"brokerName": args.brokerName, "topicCounts": {addr: n for addr, n in counts}}
        return Result(data, lines(*text))

    return run


command("wipeWritePerm", "Wipe write perm of broker in all name server",
        opt("-b", "--brokerName", required=True, help="broker name"))(_perm_command("wipe", "wipe_write_perm"))
command("addWritePerm", "Add write perm of broker in all name server",
        opt("-b", "--brokerName", required=True, help="broker name"))(_perm_command("add", "add_write_perm"))


# --------------------------------------------------------------------------------------------- main


# Commands kept in their own modules register themselves with ``@command`` when imported.
from mq.admin import acl_commands, stats_commands  # noqa: E402,F401


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Administer mq (RocketMQ 4.x compatible) NameServers and brokers.",
        epilog=f"See '{PROG} <command> --help' (or '{PROG} help <command>') for the flags of a command.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namesrvAddr", metavar="ADDR",
                        help="NameServer address list, host:port;host:port (default: $NAMESRV_ADDR)")
    common.add_argument("--json", action="store_true", help="print the result as JSON")
    common.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="how long to wait for each answer (default 5)")
    common.add_argument("--access-key", metavar="AK", default=None,
                        help=f"ACL account to sign every request with (default: ${ENV_ACCESS_KEY})")
    common.add_argument("--secret-key", metavar="SK", default=None,
                        help=f"secret key of that account (default: ${ENV_SECRET_KEY})")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    sub.required = True
    helper = sub.add_parser("help", help="Show the help of a command")
    helper.add_argument("topic", nargs="?", metavar="command")
    parser.subparsers = {}  # type: ignore[attr-defined]
    for cmd in COMMANDS.values():
        p = parser.subparsers[cmd.name] = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help, parents=[common])
        for flags, kwargs in cmd.options:
            p.add_argument(*flags, **kwargs)
    return parser


def check_one_of(parser: argparse.ArgumentParser, args) -> None:
    cmd = COMMANDS[args.command]
    for dests in cmd.one_of:
        given = [d for d in dests if getattr(args, d, None)]
        if len(given) != 1:
            flags = " or ".join(f"-{d[0]}/--{d}" for d in dests)
            parser.subparsers[args.command].error(f"give exactly one of {flags}")


@defer.inlineCallbacks
def run_command(reactor, args, out=None, err=None):
    """Run one parsed command on ``reactor``; its exit status (the text is written to ``out``/``err``)."""
    out = out or sys.stdout
    err = err or sys.stderr
    addrs = (args.namesrvAddr or os.environ.get("NAMESRV_ADDR") or "").split(";")
    try:
        credentials = Credentials.from_options(getattr(args, "access_key", None), getattr(args, "secret_key", None))
    except ValueError as e:
        err.write(f"{PROG} {args.command}: {e} (--access-key/--secret-key or ${ENV_ACCESS_KEY}/${ENV_SECRET_KEY})\n")
        return EXIT_USAGE
    api = MQAdminAPI(reactor, addrs, timeout=args.timeout, credentials=credentials)
    cmd = COMMANDS[args.command]
    interval = getattr(args, "interval", None) if cmd.repeats else None
    rounds = getattr(args, "count", None)
    status = 0
    try:
        done = 0
        while True:
            result = yield cmd.run(api, args)
            text = result.render(args.json)
            if text:
                out.write(text if text.endswith("\n") else text + "\n")
                out.flush()  # a repeating command is read while it runs
            done += 1
            if interval is None or (rounds is not None and done >= rounds):
                break
            yield task.deferLater(reactor, interval, lambda: None)
    except AdminError as e:
        err.write(f"{PROG} {args.command}: {e}\n")
        status = e.exit_code
    except Exception as e:  # a bug or an unexpected answer: still one line, still a failure status
        err.write(f"{PROG} {args.command}: unexpected error: {type(e).__name__}: {e}\n")
        status = EXIT_FAILED
    finally:
        yield api.close()
    return status


def main(argv: Optional[List[str]] = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "help":
        if args.topic is None:
            parser.print_help()
        elif args.topic in COMMANDS:
            parser.parse_args([args.topic, "--help"])
        else:
            parser.error(f"unknown command '{args.topic}'")
        sys.exit(0)
    check_one_of(parser, args)

    def run(reactor):
        d = run_command(reactor, args)

        def done(status):
            if status:
                raise SystemExit(status)

        return d.addCallback(done)

    task.react(run)


if __name__ == "__main__":
    # Run the imported module's main: the command modules registered into it, not into this __main__ copy.
    from mq.admin.cli import main as _main

    _main()
