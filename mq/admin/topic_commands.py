"""``mqadmin`` topic commands (Apache's tools ``command.topic``): create, delete, list, route, status."""

from __future__ import annotations

import argparse
from typing import Dict, List

from twisted.internet import defer

from mq.admin import output
from mq.admin.api import ORDER_TOPIC_CONFIG, AdminError, MQAdminAPI, UsageError
from mq.admin.output import Result, format_time, table
from mq.admin.registry import (
    BROKER_ADDR,
    CLUSTER,
    command,
    java_bool,
    lines,
    opt,
    positive_int,
)
from mq.admin.targets import (
    target_brokers,
    topic_brokers,
)
from mq.admin.values import MessageQueue
from mq.client.allocate import allocate_averagely
from mq.client.model import MessageQueue as ClientQueue
from mq.common import mixall
from mq.common.names import topic_error
from mq.common.route import PERM_READ, TopicConfig, perm_to_string

#: TopicSysFlag bits set by updateTopic -u / -s.
FLAG_UNIT = 0x1
FLAG_UNIT_SUB = 0x2


def topic_config_text(tc: TopicConfig) -> str:
    """The original's ``TopicConfig [...]`` line."""
    return (f"TopicConfig [topicName={tc.topic_name}, readQueueNums={tc.read_queue_nums}, "
            f"writeQueueNums={tc.write_queue_nums}, perm={perm_to_string(tc.perm)}, "
            f"topicFilterType={tc.topic_filter_type}, topicSysFlag={tc.topic_sys_flag}, order={str(tc.order).lower()}]")


def _check_perm(perm: int) -> None:
    if perm not in (2, 4, 6):
        raise UsageError(f"invalid perm {perm}: give 2 (W), 4 (R) or 6 (RW)")


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
    _check_perm(args.perm)
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
    text.append(topic_config_text(tc))
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


@command(
    "updateTopicPerm", "Update topic perm",
    BROKER_ADDR, CLUSTER,
    opt("-t", "--topic", required=True, help="topic name"),
    opt("-p", "--perm", type=int, required=True, help="set topic's permission(2|4|6), intro[2:W; 4:R; 6:RW]"),
    one_of=(("brokerAddr", "clusterName"),),
)
@defer.inlineCallbacks
def update_topic_perm(api: MQAdminAPI, args):
    """Rewrites the topic's config on each target broker with the new perm, the queue numbers kept from the
    route (the broker's own queue data; the first broker's for a master that does not serve the topic yet, as
    the original)."""
    _check_perm(args.perm)
    route = yield api.topic_route(args.topic)
    if not route.queue_datas:
        raise AdminError(f"topic '{args.topic}' has no queue data in its route")
    by_name = {q.broker_name: q for q in route.queue_datas}
    names = {addr: b.broker_name for b in route.broker_datas for addr in b.broker_addrs.values()}
    brokers = yield target_brokers(api, args)
    changes, text = [], []
    for label, addr in brokers:
        q = by_name.get(names.get(addr, label), route.queue_datas[0])
        tc = TopicConfig(args.topic, q.read_queue_nums, q.write_queue_nums, args.perm, "SINGLE_TAG", q.topic_sys_flag)
        if q.perm == args.perm:
            text.append(f"new perm equals to the old one! ({addr})")
            changes.append({"brokerAddr": addr, "oldPerm": q.perm, "perm": args.perm, "changed": False})
            continue
        yield api.create_topic(addr, tc)
        changes.append({"brokerAddr": addr, "oldPerm": q.perm, "perm": args.perm, "changed": True,
                        "topicConfig": tc.to_json()})
        text.append(f"update topic perm from {q.perm} to {args.perm} in {addr} success.")
        if args.brokerAddr:
            text.append(topic_config_text(tc))
    return Result({"topic": args.topic, "brokers": changes}, lines(*text))


ORDER_METHODS = ("get", "put", "delete")


@command(
    "updateOrderConf", "Create or update or delete order conf",
    opt("-t", "--topic", required=True, help="topic name"),
    opt("-v", "--orderConf", help="set order conf [eg. brokerName1:num;brokerName2:num]"),
    opt("-m", "--method", required=True, choices=ORDER_METHODS, help="option type [eg. put|get|delete]"),
)
@defer.inlineCallbacks
def update_order_conf(api: MQAdminAPI, args):
    """The topic's ORDER_TOPIC_CONFIG entry on the NameServers: read it, write it, or delete it."""
    if args.method == "get":
        conf = yield api.get_kv_config(ORDER_TOPIC_CONFIG, args.topic)
        if conf is None:
            raise AdminError(f"no orderConf for topic '{args.topic}' on the NameServer")
        return Result({"topic": args.topic, "orderConf": conf},
                      f"get orderConf success. topic=[{args.topic}], orderConf=[{conf}]")
    if args.method == "delete":
        yield api.delete_kv_config(ORDER_TOPIC_CONFIG, args.topic)
        return Result({"topic": args.topic, "orderConf": None}, f"delete orderConf success. topic=[{args.topic}]")
    conf = (args.orderConf or "").strip()
    if not conf:
        raise UsageError("please set orderConf with option -v.")
    for item in conf.split(";"):
        name, sep, count = item.partition(":")
        if not sep or not name.strip() or not count.strip().isdigit() or int(count) <= 0:
            raise UsageError(f"invalid orderConf item '{item}': give brokerName:queueNums, e.g. broker-a:4")
    yield api.put_kv_config(ORDER_TOPIC_CONFIG, args.topic, conf)
    return Result({"topic": args.topic, "orderConf": conf},
                  f"update orderConf success. topic=[{args.topic}], orderConf=[{conf}]")


@command(
    "allocateMQ", "Allocate MQ",
    opt("-t", "--topic", required=True, help="topic name"),
    opt("-i", "--ipList", required=True, help="ipList (client ids), separated by ,"),
)
@defer.inlineCallbacks
def allocate_mq(api: MQAdminAPI, args):
    """How the averaging strategy (AllocateMessageQueueAveragely) would share the topic's readable queues
    among these consumers."""
    ips = [ip.strip() for ip in args.ipList.split(",") if ip.strip()]
    if not ips:
        raise UsageError("-i/--ipList names no client")
    route = yield api.topic_route(args.topic)
    queues = sorted(ClientQueue(args.topic, q.broker_name, i) for q in route.queue_datas if q.perm & PERM_READ
                    for i in range(q.read_queue_nums))
    result = {ip: [{"brokerName": mq.broker_name, "queueId": mq.queue_id, "topic": mq.topic}
                   for mq in allocate_averagely(ip, queues, ips)] for ip in ips}
    rows = [[ip, q["brokerName"], q["queueId"]] for ip in ips for q in result[ip]]
    return Result({"result": result}, table(["IP", "Broker Name", "QID"], rows))
