"""GET_BROKER_RUNTIME_INFO (28): the key set of a Java 4.9.8 broker, with values in its text formats.

Java builds it from StoreStatsService.getRuntimeInfo, DefaultMessageStore.getRuntimeInfo and
AdminBrokerProcessor.prepareRuntimeInfo. rocketmq-exporter parses most keys with ``Long.parseLong`` or
``Double.parseDouble`` and fails the whole broker on one missing or malformed key, and it splits
``commitLogDirCapacity`` ("Total : 50.0 GiB, Free : 20.0 GiB.") and ``remainHowManyDataToFlush`` ("1.5 KiB")
on spaces: the formats below are Java's.

Requests are handled as they arrive rather than queued for thread pools, so the thread-pool queue sizes and
head waits are 0; their capacities are Java's defaults, for tools that print them.
"""

from __future__ import annotations

import math
import os
from typing import Dict

from mq.common.topic import SCHEDULE_TOPIC
from mq.remoting.codes import CURRENT_VERSION

VERSION_DESC = "V4_9_8"
#: Java 4.9.8's BrokerConfig defaults: sendThreadPoolQueueCapacity, pull…, query…, endTransactionPoolQueueCapacity
QUEUE_CAPACITIES = {"send": 10_000, "pull": 100_000, "query": 20_000, "EndTransaction": 100_000}


def human_bytes(n: int) -> str:
    """MixAll.humanReadableByteCount(n, false): "512 B", "1.5 KiB", "20.0 GiB"."""
    if n < 1024:
        return f"{n} B"
    exp = min(int(math.log(n) / math.log(1024)), 6)
    return f"{n / 1024 ** exp:.1f} {'KMGTPE'[exp - 1]}iB"


def run_time(ms: int) -> str:
    seconds = max(0, ms) // 1000
    days, rest = divmod(seconds, 86_400)
    return f"[ {days} days, {rest // 3600} hours, {rest % 3600 // 60} minutes, {rest % 60} seconds ]"


def _disk(path: str) -> os.statvfs_result:
    return os.statvfs(path)


def runtime_table(broker) -> Dict[str, str]:
    """Every key a 4.9.8 broker answers, as strings."""
    store = broker.store
    s = store.stats()
    stats = broker.stats
    rt = broker.runtime_stats
    config = broker.config
    now_ms = broker.now_ms()
    put_days, get_days = rt.daily("msgPut"), rt.daily("msgGet")
    puts = s.put_message_times_total or 1  # as Java: never divide by 0
    minute = stats.put_latency.minute
    table: Dict[str, object] = {
        "brokerVersion": CURRENT_VERSION,
        "brokerVersionDesc": VERSION_DESC,
        "bootTimestamp": broker.boot_timestamp,
        "runtime": run_time(now_ms - broker.boot_timestamp),
        "msgPutTotalYesterdayMorning": put_days["YesterdayMorning"],
        "msgPutTotalTodayMorning": put_days["TodayMorning"],
        "msgPutTotalTodayNow": stats.put_total,
        "msgGetTotalYesterdayMorning": get_days["YesterdayMorning"],
        "msgGetTotalTodayMorning": get_days["TodayMorning"],
        "msgGetTotalTodayNow": stats.get_total,
        "putTps": rt.tps_text("put"),
        "getFoundTps": rt.tps_text("getFound"),
        "getMissTps": rt.tps_text("getMiss"),
        "getTotalTps": rt.tps_text("getTimes"),
        "getTransferedTps": rt.tps_text("getTransferred"),  # sic: Java's key
        "putMessageEntireTimeMax": int(stats.put_latency.max * 1000),
        "getMessageEntireTimeMax": int(stats.pull_latency.max * 1000),
        "putMessageTimesTotal": puts,
        "putMessageFailedTimes": s.put_message_failures,
        "putMessageSizeTotal": s.put_message_size_total,
        "putMessageAverageSize": s.put_message_size_total / puts,
        "putMessageDistributeTime": minute.distribute_text(),
        "putLatency99": f"{minute.percentile(0.99):.2f}",
        "putLatency999": f"{minute.percentile(0.999):.2f}",
        "dispatchMaxBuffer": 0,  # records are dispatched as they are put: nothing is buffered
        "dispatchBehindBytes": s.dispatch_behind_bytes,
        "pageCacheLockTimeMills": 0,  # puts never wait for a lock here
        "earliestMessageTimeStamp": store.get_earliest_message_time(),
        "startAcceptSendRequestTimeStamp": 0,  # Java's default: accept at once
        "remainTransientStoreBufferNumbs": 0,  # Java answers 0 with transientStorePoolEnable off (its default)
        "remainHowManyDataToFlush": human_bytes(max(0, s.commit_log_max_offset - s.flushed_offset)),
        "commitLogMinOffset": s.commit_log_min_offset,
        "commitLogMaxOffset": s.commit_log_max_offset,
        "commitLogDiskRatio": s.disk_used_ratio,
        "consumeQueueDiskRatio": s.disk_used_ratio,  # one store directory holds both
        # Not in Java's table: kept for this project's own tools.
        "getMessageTimesTotal": s.get_message_times_total,
        "flushBehindBytes": max(0, s.commit_log_max_offset - s.flushed_offset),
        "pullHoldCount": broker.pull_hold_service.count,
        "brokerRole": config.broker_role.value,
        "flushDiskType": config.flush_disk_type.value,
    }
    for pool in ("send", "pull", "query"):
        table[f"{pool}ThreadPoolQueueSize"] = 0
        table[f"{pool}ThreadPoolQueueCapacity"] = QUEUE_CAPACITIES[pool]
        table[f"{pool}ThreadPoolQueueHeadWaitTimeMills"] = 0
    table["EndTransactionQueueSize"] = 0
    table["EndTransactionThreadPoolQueueCapacity"] = QUEUE_CAPACITIES["EndTransaction"]
    root = config.store_path_root_dir
    table[f"commitLogDiskRatio_{os.path.join(root, 'commitlog')}"] = s.disk_used_ratio
    try:
        st = _disk(root)
        table["commitLogDirCapacity"] = (f"Total : {human_bytes(st.f_blocks * st.f_frsize)}, "
                                         f"Free : {human_bytes(st.f_bavail * st.f_frsize)}.")
    except OSError:  # as Java: the key is left out when the directory cannot be read
        pass
    schedule = broker.schedule_service
    for level in sorted(schedule.levels):
        table[f"scheduleMessageOffset_{level}"] = (
            f"{schedule.offsets.get(level, 0)},{max(store.get_max_offset_in_queue(SCHEDULE_TOPIC, level - 1), 0)}")
    return {k: str(v) for k, v in table.items()}
