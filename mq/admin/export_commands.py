"""``mqadmin`` export commands (Apache's tools ``command.export``): a cluster's metadata and settings as JSON
files, for migrating to another cluster or for a support ticket."""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any, Dict, List, Tuple

from twisted.internet import defer

from mq.admin.api import AdminError, MQAdminAPI, ResponseError, UsageError
from mq.admin.cluster_commands import first_rate, parsed
from mq.admin.output import Result
from mq.admin.registry import BROKER_ADDR, command, opt
from mq.admin.targets import target_brokers
from mq.common import fastjson, mixall
from mq.common.topic import SCHEDULE_TOPIC, TRANS_HALF_TOPIC
from mq.remoting.codes import RequestCode

DEFAULT_EXPORT_DIR = "/tmp/rocketmq/export"
FILE_PATH = opt("-f", "--filePath", default=DEFAULT_EXPORT_DIR,
                help=f"directory of the exported file | default {DEFAULT_EXPORT_DIR}")
#: The broker settings exportConfigs keeps, as the original.
EXPORTED_BROKER_KEYS = (
    "brokerClusterName", "brokerId", "brokerName", "brokerRole", "fileReservedTime", "filterServerNums",
    "flushDiskType", "maxMessageSize", "messageDelayLevel", "msgTraceTopicName", "slaveReadEnable", "traceOn",
    "traceTopicEnable", "useTLS", "autoCreateTopicEnable", "autoCreateSubscriptionGroup",
)


def write_json(directory: str, name: str, document: Any) -> str:
    """Write ``document`` as ``directory/name``, created whole or not at all (a temporary file renamed into
    place); the path written."""
    if not directory.strip():
        raise UsageError("-f/--filePath is empty")
    path = os.path.join(directory, name)
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=2, ensure_ascii=False, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except OSError as e:
        raise AdminError(f"cannot write {path}: {e.strerror or e}") from None
    return path


@defer.inlineCallbacks
def user_topics(api: MQAdminAPI, addr: str, special: bool):
    """The broker's topic configs without its system topics, and without retry and DLQ topics unless
    ``special`` (the original's getUserTopicConfig)."""
    topics = yield api.broker_table(addr, RequestCode.GET_ALL_TOPIC_CONFIG, "topic configs", "topicConfigTable")
    system = yield api.broker_table(addr, RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_BROKER, "system topics",
                                    "topicList")
    system = set(system or [])
    return {name: tc for name, tc in topics.items()
            if name not in system and (special or not (mixall.is_retry_topic(name) or mixall.is_dlq_topic(name)))}


@defer.inlineCallbacks
def user_groups(api: MQAdminAPI, addr: str):
    """The broker's subscription groups without the system groups."""
    groups = yield api.broker_table(addr, RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG, "subscription groups",
                                    "subscriptionGroupTable")
    return {name: g for name, g in groups.items() if not mixall.is_sys_consumer_group(name)}


def merge_queue_counts(into: Dict[str, dict], part: Dict[str, dict], fields: Tuple[str, ...]) -> None:
    """Add ``part``'s entries to ``into``; an entry already there gets the sum of each ``fields`` count (a topic
    or group on several brokers), as the original."""
    for name, entry in part.items():
        entry = dict(entry)
        old = into.get(name)
        if old is not None:
            for f in fields:
                entry[f] = int(old.get(f, 0)) + int(entry.get(f, 0))
        into[name] = entry


@command(
    "exportMetadata", "export metadata",
    opt("-c", "--clusterName", help="choose a cluster to export"),
    BROKER_ADDR,
    FILE_PATH,
    opt("-t", "--topic", action="store_true", help="only export topic metadata"),
    opt("-g", "--subscriptionGroup", action="store_true", help="only export subscriptionGroup metadata"),
    opt("-s", "--specialTopic", action="store_true", help="need retryTopic and dlqTopic"),
    one_of=(("brokerAddr", "clusterName"),),
)
@defer.inlineCallbacks
def export_metadata(api: MQAdminAPI, args):
    """The user topics and subscription groups of one broker or of a cluster's masters (queue numbers summed
    over the brokers) in ``metadata.json`` (``topic.json`` with ``-t``, ``subscriptionGroup.json`` with ``-g``)."""
    if args.topic and args.subscriptionGroup:
        raise UsageError("give at most one of -t/--topic and -g/--subscriptionGroup")
    brokers = yield target_brokers(api, args)
    topics: Dict[str, dict] = {}
    groups: Dict[str, dict] = {}
    for _, addr in brokers:
        if not args.subscriptionGroup:
            part = yield user_topics(api, addr, args.specialTopic)
            merge_queue_counts(topics, part, ("readQueueNums", "writeQueueNums"))
        if not args.topic:
            part = yield user_groups(api, addr)
            merge_queue_counts(groups, part, ("retryQueueNums",))
    document: Dict[str, Any] = {"exportTime": int(time.time() * 1000)}
    if args.topic:
        name = "topic.json"
        document["topicConfigTable"] = topics
    elif args.subscriptionGroup:
        name = "subscriptionGroup.json"
        document["subscriptionGroupTable"] = groups
    else:
        name = "metadata.json"
        document.update(topicConfigTable=topics, subscriptionGroupTable=groups)
    path = write_json(args.filePath, name, document)
    return Result({"path": path, "brokers": [a for _, a in brokers], "topics": len(topics), "groups": len(groups)},
                  f"export {path} success")


@command(
    "exportConfigs", "export configs",
    opt("-c", "--clusterName", required=True, help="choose a cluster to export"),
    FILE_PATH,
)
@defer.inlineCallbacks
def export_configs(api: MQAdminAPI, args):
    """``configs.json``: the main settings of each master of the cluster and its size (NameServers, masters,
    slaves)."""
    info = yield api.cluster_info()
    names = info.cluster_addr_table.get(args.clusterName)
    if names is None:
        raise AdminError(f"cluster '{args.clusterName}' not found on the NameServer")
    configs: Dict[str, Dict[str, str]] = {}
    masters, slaves = 0, 0
    for name in sorted(names):
        broker = info.broker_addr_table.get(name)
        if broker is None:
            continue
        addrs: List[Tuple[int, str]] = sorted((int(bid), a) for bid, a in broker.broker_addrs.items())
        master = [a for bid, a in addrs if bid == mixall.MASTER_ID]
        slaves += sum(1 for bid, _ in addrs if bid != mixall.MASTER_ID)
        if not master:
            continue
        masters += 1
        config = yield api.broker_config(master[0])
        configs[config.get("brokerName", name)] = {k: config[k] for k in EXPORTED_BROKER_KEYS if k in config}
    document = {"brokerConfigs": configs,
                "clusterScale": {"namesrvSize": len(api.namesrv_addrs), "masterBrokerSize": masters,
                                 "slaveBrokerSize": slaves}}
    path = write_json(args.filePath, "configs.json", document)
    return Result(dict(document, path=path), f"export {path} success")


#: BrokerStatsManager's stats name of the messages put per topic (VIEW_BROKER_STATS_DATA).
TOPIC_PUT_NUMS = "TOPIC_PUT_NUMS"


@defer.inlineCallbacks
def topic_put_stats(api: MQAdminAPI, addr: str, topic: str):
    """(tps of the last minute, messages of the last day) put to ``topic`` on the broker, from
    VIEW_BROKER_STATS_DATA; (0.0, 0) when the broker keeps no such figures (it refuses the request), as the
    original."""
    try:
        response = yield api.broker_ok(addr, RequestCode.VIEW_BROKER_STATS_DATA, f"stats of '{topic}'",
                                       {"statsName": TOPIC_PUT_NUMS, "statsKey": topic})
        data = fastjson.loads(response.body) if response.body else {}
    except ResponseError:
        return 0.0, 0
    minute = data.get("statsMinute") or {}
    day_sum = 0
    for span in ("statsDay", "statsHour", "statsMinute"):  # the original's compute24HourSum
        day_sum = int((data.get(span) or {}).get("sum") or 0)
        if day_sum:
            break
    return float(minute.get("tps") or 0.0), day_sum


def _difference(status: Dict[str, str], later: str, earlier: str) -> int:
    try:
        return int(status[later]) - int(status[earlier])
    except (KeyError, ValueError):
        return 0


@command(
    "exportMetrics", "export metrics",
    opt("-c", "--clusterName", required=True, help="choose a cluster to export"),
    FILE_PATH,
)
@defer.inlineCallbacks
def export_metrics(api: MQAdminAPI, args):
    """``metrics.json``: per master of the cluster its environment, its rates and day totals (normal,
    transactional half and scheduled messages), its topic and group counts and its clients' versions; then
    the cluster's totals."""
    info = yield api.cluster_info()
    names = info.cluster_addr_table.get(args.clusterName)
    if names is None:
        raise AdminError(f"cluster '{args.clusterName}' not found on the NameServer")
    total_tps = dict.fromkeys(("totalNormalInTps", "totalNormalOutTps", "totalTransInTps", "totalScheduleInTps"), 0.0)
    total_day = dict.fromkeys(("normalOneDayInNum", "normalOneDayOutNum", "transOneDayInNum", "scheduleOneDayInNum"), 0)
    report: Dict[str, Any] = {}
    for name in sorted(names):
        broker = info.broker_addr_table.get(name)
        addr = broker.master_addr() if broker is not None else None
        if addr is None:
            continue
        status = yield api.broker_runtime_info(addr)
        config = yield api.broker_config(addr)
        groups = yield user_groups(api, addr)
        topics = yield user_topics(api, addr, False)
        trans_tps, trans_day = yield topic_put_stats(api, addr, TRANS_HALF_TOPIC)
        sched_tps, sched_day = yield topic_put_stats(api, addr, SCHEDULE_TOPIC)
        tps = {"normalInTps": parsed(status, "putTps", first_rate) or 0.0,
               "normalOutTps": parsed(status, "getTransferedTps", first_rate) or 0.0,
               "transInTps": trans_tps, "scheduleInTps": sched_tps}
        day = {"normalOneDayInNum": _difference(status, "msgPutTotalTodayMorning", "msgPutTotalYesterdayMorning"),
               "normalOneDayOutNum": _difference(status, "msgGetTotalTodayMorning", "msgGetTotalYesterdayMorning"),
               "transOneDayInNum": trans_day, "scheduleOneDayInNum": sched_day}
        for key, value in zip(total_tps, tps.values()):
            total_tps[key] += value
        for key, value in day.items():
            total_day[key] += value
        clients = set()
        for group in sorted(groups):
            try:
                conn = yield api.consumer_connection(addr, group)
            except AdminError:
                continue
            clients |= {f"{c.get('language')}%{c.get('versionDesc') or c.get('version')}"
                        for c in conn.get("connectionSet") or []}
        report[name] = {
            "runtimeEnv": {"cpuNum": config.get("clientCallbackExecutorThreads"),
                           "totalMemKBytes": status.get("totalMemKBytes")},
            "runtimeQuota": {"diskRatio": {"commitLogDiskRatio": status.get("commitLogDiskRatio"),
                                           "consumeQueueDiskRatio": status.get("consumeQueueDiskRatio")},
                             "tps": tps, "oneDayNum": day, "messageAverageSize": status.get("putMessageAverageSize"),
                             "topicSize": len(topics), "groupSize": len(groups)},
            "runtimeVersion": {"rocketmqVersion": status.get("brokerVersionDesc"), "clientInfo": sorted(clients)},
        }
    document = {"evaluateReport": report, "totalData": {"totalTps": total_tps, "totalOneDayNum": total_day}}
    path = write_json(args.filePath, "metrics.json", document)
    return Result(dict(document, path=path), f"export {path} success")
