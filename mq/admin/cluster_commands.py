"""``mqadmin clusterList`` (Apache's tools ``command.cluster``): every broker with its load figures."""

from __future__ import annotations

import datetime
import time
from typing import Any, Callable, Dict, Optional, Tuple

from twisted.internet import defer

from mq.admin.api import (
    AdminError,
    MQAdminAPI,
)
from mq.admin.output import Result, table
from mq.admin.probe import MAX_PROBE_SIZE, MAX_PROBES, average_after_first, broker_topic_queues, filler, timed_send
from mq.admin.registry import bounded_int, command, java_bool, lines, opt


def parsed(status: Dict[str, Any], key: str, convert: Callable[[Any], Any] = int) -> Any:
    """``convert(status[key])`` of a GET_BROKER_RUNTIME_INFO table, or None when the broker left it out or wrote
    something else."""
    try:
        return convert(status[key])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def first_rate(text: Any) -> float:
    """The 10-second rate of a ``"10s 1min 10min"`` rate string (``putTps``, ``getTransferedTps``)."""
    return float(str(text).split()[0])


def day_totals(status: Dict[str, Any], direction: str) -> Tuple[Optional[int], Optional[int]]:
    """(yesterday, today) of ``msg<direction>Total*`` (``Put`` or ``Get``) in GET_BROKER_RUNTIME_INFO, as the
    original computes them from the morning snapshots. Without today's morning snapshot (brokers that keep
    none) today is the count since the broker started, and yesterday is unknown (None)."""
    yesterday_morning = parsed(status, f"msg{direction}TotalYesterdayMorning")
    today_morning = parsed(status, f"msg{direction}TotalTodayMorning")
    now = parsed(status, f"msg{direction}TotalTodayNow")
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
    in_tps, out_tps = parsed(status, "putTps", first_rate), parsed(status, "getTransferedTps", first_rate)
    earliest = parsed(status, "earliestMessageTimeStamp")
    space = parsed(status, "commitLogDiskRatio", float)
    return {
        "inTps": in_tps, "outTps": out_tps, "inLoad": _load(in_tps, status, "send"),
        "outLoad": _load(out_tps, status, "pull"), "pcWaitMs": parsed(status, "pageCacheLockTimeMills"),
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


#: The time zone of clusterRT's ``-p true`` lines (the original writes them in GMT+8).
TLOG_ZONE = datetime.timezone(datetime.timedelta(hours=8))


@command(
    "clusterRT", "List All clusters Message Send RT",
    opt("-a", "--amount", type=bounded_int(1, MAX_PROBES), default=50, help="message amount per broker | default 50"),
    opt("-s", "--size", type=bounded_int(1, MAX_PROBE_SIZE), default=128, help="message size | default 128 Byte"),
    opt("-c", "--cluster", help="cluster name | default display all cluster"),
    opt("-p", "--printLog", type=java_bool, default=False, metavar="true|false", help="print as tlog | default false"),
    opt("-m", "--machineRoom", default="noname", help="machine room name | default noname"),
    repeats=True,
)
@defer.inlineCallbacks
def cluster_rt(api: MQAdminAPI, args):
    """Per broker of each cluster: ``amount`` sends to the topic named after the broker, their mean time (the
    first left out) and how many succeeded. ``-i`` repeats it."""
    info = yield api.cluster_info()
    clusters = [args.cluster] if args.cluster else sorted(info.cluster_addr_table)
    body = filler(args.size)
    rows, data, tlog = [], [], []
    now = datetime.datetime.now(TLOG_ZONE).strftime("%Y-%m-%d %H:%M:%S")
    for cluster in clusters:
        names = info.cluster_addr_table.get(cluster)
        if names is None:
            raise AdminError(f"cluster [{cluster}] not exist")
        for name in sorted(names):
            times, ok, failed = [], 0, 0
            try:
                addr, ids = yield broker_topic_queues(api, name)
            except AdminError:
                addr, ids, failed = None, [], args.amount
            for i in range(args.amount if addr else 0):
                _, error, rt = yield timed_send(api, addr, name, name, ids[i % len(ids)], body)
                times.append(rt)
                ok, failed = (ok + 1, failed) if error is None else (ok, failed + 1)
            rt = average_after_first(tuple(times))
            rows.append([cluster, name, f"{rt:.2f}", ok, failed])
            data.append({"clusterName": cluster, "brokerName": name, "rtMs": rt, "successCount": ok,
                         "failCount": failed})
            tlog.append(f"{now}|{args.machineRoom}|{cluster}|{name}|{round(rt)}")
    if args.printLog:
        return Result(data, lines(*tlog))
    return Result(data, table(["Cluster Name", "Broker Name", "RT", "successCount", "failCount"], rows))
