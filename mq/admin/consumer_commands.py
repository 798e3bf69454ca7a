"""``mqadmin`` consumer group commands (Apache's tools ``command.consumer``): subscription groups,
progress and the clients' running info."""

from __future__ import annotations

from typing import Dict, Optional

from twisted.internet import defer

from mq.admin import output
from mq.admin.api import AdminError, MQAdminAPI
from mq.admin.output import Result, format_time, key_values, table
from mq.admin.registry import (
    BROKER_ADDR,
    CLUSTER,
    command,
    java_bool,
    lines,
    non_negative_int,
    opt,
)
from mq.admin.targets import (
    consumer_connection_of,
    group_brokers,
    target_brokers,
)
from mq.admin.values import MessageQueue, queue_map
from mq.common import mixall
from mq.remoting.codes import RequestCode


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
            _, conn = yield consumer_connection_of(api, group, None)
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
        addr, conn = yield consumer_connection_of(api, group, None)
        for c in conn.get("connectionSet") or []:
            info = yield api.consumer_running_info(addr, group, c.get("clientId", ""))
            for mq in queue_map(info.get("mqTable")):
                owners[mq] = c.get("clientId", "").split("@")[0]
    except AdminError:
        pass
    return owners


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
    addr, conn = yield consumer_connection_of(api, group, args.brokerAddr)
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
    "getConsumerConfig", "get consumer config by subscription group name!",
    opt("-g", "--groupName", required=True, help="subscription group name"),
)
@defer.inlineCallbacks
def get_consumer_config(api: MQAdminAPI, args):
    """The group's subscription config on every master of every cluster that has it
    (GET_ALL_SUBSCRIPTIONGROUP_CONFIG)."""
    info = yield api.cluster_info()
    data, blocks = [], []
    for cluster in sorted(info.cluster_addr_table):
        for name, addr in info.master_addrs(cluster):
            groups = yield api.broker_table(addr, RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
                                            "subscription groups", "subscriptionGroupTable")
            config = groups.get(args.groupName)
            if not isinstance(config, dict):
                continue
            data.append({"clusterName": cluster, "brokerName": name, "brokerAddr": addr,
                         "subscriptionGroupConfig": config})
            blocks.append(f"============{cluster} {name} {addr}============\n"
                          + key_values({k: v for k, v in sorted(config.items()) if not isinstance(v, (dict, list))}))
    if not data:
        raise AdminError(f"subscription group '{args.groupName}' not found on any master broker")
    return Result(data, "\n".join(blocks))
