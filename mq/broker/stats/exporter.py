"""rocketmq-exporter's metrics, served by the broker itself, so Grafana dashboard 10477 works unchanged.

Names, labels and meanings are Apache rocketmq-exporter's (every family a gauge, as the exporter types them),
computed at scrape time from what the exporter would have asked this broker: the stats items (for
VIEW_BROKER_STATS_DATA figures), consume stats, runtime info, producer and consumer connections. Figures the
exporter sums over a cluster (``rocketmq_group_diff``…) are this broker's share here: Prometheus keeps one series
per scraped broker, and ``sum by (group, topic)`` gives the exporter's figure. Client-side figures
(``rocketmq_client_*``, from each consumer's running info) are served too, from the last answers the
consumers gave (mq.broker.stats.client_metrics).

Scrape cost is bounded: each family holds at most ``metricsMaxSeries`` series (the rest are counted in
``mq_broker_metrics_series_dropped``), and the stats items it reads are capped by ``maxStatsKeys``.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Sequence, Tuple

from prometheus_client.core import GaugeMetricFamily

from mq.broker.stats import items as si
from mq.common import mixall

BROKER_LABELS = ("cluster", "brokerIP", "broker")
TOPIC_LABELS = ("cluster", "broker", "topic")
GROUP_LABELS = ("cluster", "broker", "topic", "group")
DIFF_LABELS = ("group", "topic", "countOfOnlineConsumers", "msgModel")
RUNTIME_LABELS = ("cluster", "brokerIP", "brokerHost", "des", "boottime", "broker_version")
CLUSTERING = "1"  # MessageModel.CLUSTERING.ordinal(), the exporter's msgModel label

#: rocketmq_brokeruntime_* names and the runtime-info key each reads (index into "a b c" rates where given).
RUNTIME_VALUES: Tuple[Tuple[str, str, int], ...] = (
    ("msg_put_total_today_now", "msgPutTotalTodayNow", -1),
    ("msg_gettotal_today_now", "msgGetTotalTodayNow", -1),
    ("msg_puttotal_todaymorning", "msgPutTotalTodayMorning", -1),
    ("msg_gettotal_todaymorning", "msgGetTotalTodayMorning", -1),
    ("msg_puttotal_yesterdaymorning", "msgPutTotalYesterdayMorning", -1),
    ("msg_gettotal_yesterdaymorning", "msgGetTotalYesterdayMorning", -1),
    ("dispatch_behind_bytes", "dispatchBehindBytes", -1),
    ("dispatch_maxbuffer", "dispatchMaxBuffer", -1),
    ("put_message_size_total", "putMessageSizeTotal", -1),
    ("put_message_average_size", "putMessageAverageSize", -1),
    ("putmessage_times_total", "putMessageTimesTotal", -1),
    ("putmessage_entire_time_max", "putMessageEntireTimeMax", -1),
    ("getmessage_entire_time_max", "getMessageEntireTimeMax", -1),
    ("put_latency_99", "putLatency99", -1),
    ("put_latency_999", "putLatency999", -1),
    ("send_threadpool_queue_size", "sendThreadPoolQueueSize", -1),
    ("send_threadpoolqueue_capacity", "sendThreadPoolQueueCapacity", -1),
    ("send_threadpoolqueue_headwait_timemills", "sendThreadPoolQueueHeadWaitTimeMills", -1),
    ("pull_threadpoolqueue_size", "pullThreadPoolQueueSize", -1),
    ("pull_threadpoolqueue_capacity", "pullThreadPoolQueueCapacity", -1),
    ("pull_threadpoolqueue_headwait_timemills", "pullThreadPoolQueueHeadWaitTimeMills", -1),
    ("query_threadpoolqueue_size", "queryThreadPoolQueueSize", -1),
    ("query_threadpool_queue_capacity", "queryThreadPoolQueueCapacity", -1),
    ("query_threadpoolqueue_headwait_timemills", "queryThreadPoolQueueHeadWaitTimeMills", -1),
    ("commitlog_disk_ratio", "commitLogDiskRatio", -1),
    ("consumequeue_disk_ratio", "consumeQueueDiskRatio", -1),
    ("commitlog_maxoffset", "commitLogMaxOffset", -1),
    ("commitlog_minoffset", "commitLogMinOffset", -1),
    ("earliest_message_timestamp", "earliestMessageTimeStamp", -1),
    ("start_accept_sendrequest_time", "startAcceptSendRequestTimeStamp", -1),
    ("pagecache_lock_time_mills", "pageCacheLockTimeMills", -1),
    ("remain_transientstore_buffer_numbs", "remainTransientStoreBufferNumbs", -1),
) + tuple(
    (f"{prefix}_tps{window}", key, i)
    for prefix, key in (("put", "putTps"), ("getfound", "getFoundTps"), ("gettotal", "getTotalTps"),
                        ("getmiss", "getMissTps"), ("gettransfered", "getTransferedTps"))
    for i, window in enumerate((10, 60, 600))
)
#: putMessageDistributeTime bands → rocketmq_brokeruntime_pmdt_* names
PMDT_NAMES = ("0ms", "0to10ms", "10to50ms", "50to100ms", "100to200ms", "200to500ms", "500to1s", "1to2s", "2to3s",
              "3to4s", "4to5s", "5to10s", "10stomore")
_UNITS = "KMGTPE"


def parse_bytes(text: str) -> float:
    """"20.0 GiB" → bytes (the exporter's machineReadableByteCount)."""
    amount, _, unit = text.strip().rstrip(",.").partition(" ")
    power = _UNITS.find(unit[:1]) + 1 if unit[:1] in _UNITS else 0
    return float(amount) * 1024 ** power


class Families:
    """Gauge families of one scrape, each capped at ``limit`` series; what was left out is counted."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.families: Dict[str, GaugeMetricFamily] = {}
        self.dropped: Dict[str, int] = {}

    def family(self, name: str, doc: str, labels: Sequence[str]) -> None:
        """Declare a family (served even if nothing is added to it)."""
        if name not in self.families:
            self.families[name] = GaugeMetricFamily(name, doc, labels=list(labels))

    def add(self, name: str, values: Sequence[str], value: float) -> None:
        """One series of a declared family, unless the family is full."""
        fam = self.families[name]
        if len(fam.samples) >= self.limit:
            self.dropped[name] = self.dropped.get(name, 0) + 1
            return
        fam.add_metric(list(values), value)

    def one(self, name: str, doc: str, labels: Sequence[str], values: Sequence[str], value: float) -> None:
        self.family(name, doc, labels)
        self.add(name, values, value)


def collect(broker) -> Iterator[GaugeMetricFamily]:
    """Every exporter family this broker can fill (called at each scrape)."""
    config = broker.config
    out = Families(config.metrics_max_series)
    cluster, name, addr = config.broker_cluster_name, config.broker_name, config.broker_addr
    _broker_rates(broker, out, cluster, name, addr)
    _topics(broker, out, cluster, name)
    _groups(broker, out, cluster, name)
    _runtime(broker, out, cluster, addr)
    broker.client_metrics.add_to(out)
    yield from out.families.values()
    dropped = GaugeMetricFamily("mq_broker_metrics_series_dropped",
                                "Series left out of the last scrape: metricsMaxSeries reached, by family",
                                labels=["family"])
    for family, n in sorted(out.dropped.items()):
        dropped.add_metric([family], n)
    yield dropped


def _broker_rates(broker, out: Families, cluster: str, name: str, addr: str) -> None:
    items = broker.stats.items
    labels = (cluster, addr, name)
    out.one("rocketmq_broker_tps", "Messages put per second over the last minute (BROKER_PUT_NUMS)",
            BROKER_LABELS, labels, items.minute_tps(si.BROKER_PUT_NUMS, cluster))
    out.one("rocketmq_broker_qps", "Messages got per second over the last minute (BROKER_GET_NUMS)",
            BROKER_LABELS, labels, items.minute_tps(si.BROKER_GET_NUMS, cluster))
    out.family("rocketmq_broker_commitlog_diff",
               "CommitLog bytes a slave is behind its master (brokerIP: the slave's HA address)", BROKER_LABELS)
    if not broker.config.is_slave:
        for slave in broker.ha.slaves():
            out.add("rocketmq_broker_commitlog_diff", (cluster, slave["addr"], name), slave["lagBytes"])


def _topics(broker, out: Families, cluster: str, name: str) -> None:
    items = broker.stats.items
    for fam, doc, stats_name in (
        ("rocketmq_producer_tps", "Messages put per second into the topic over the last minute", si.TOPIC_PUT_NUMS),
        ("rocketmq_producer_message_size", "Message bytes put per second into the topic over the last minute",
         si.TOPIC_PUT_SIZE),
    ):
        out.family(fam, doc, TOPIC_LABELS)
        for item in items.each(stats_name):
            out.add(fam, (cluster, name, item.key), item.in_minute().tps)
    out.family("rocketmq_producer_offset", "Sum of the topic's queue max offsets on this broker", TOPIC_LABELS)
    out.family("rocketmq_topic_retry_offset", "Sum of the retry topic's queue max offsets on this broker",
               TOPIC_LABELS)
    out.family("rocketmq_topic_dlq_offset", "Sum of the group's DLQ queue max offsets on this broker",
               ("cluster", "broker", "group"))
    store = broker.store
    for topic, tc in list(broker.topic_config_manager.table.items()):
        total = sum(max(store.get_max_offset_in_queue(topic, q), 0) for q in range(tc.write_queue_nums))
        if topic.startswith(mixall.RETRY_GROUP_TOPIC_PREFIX):
            out.add("rocketmq_topic_retry_offset", (cluster, name, topic), total)
        elif topic.startswith(mixall.DLQ_GROUP_TOPIC_PREFIX):
            out.add("rocketmq_topic_dlq_offset", (cluster, name, topic[len(mixall.DLQ_GROUP_TOPIC_PREFIX):]), total)
        else:
            out.add("rocketmq_producer_offset", (cluster, name, topic), total)
    out.family("rocketmq_producer_count", "Producer connections of the group on this broker",
               ("cluster", "broker", "group"))
    for group in list(broker.producer_manager.table):
        out.add("rocketmq_producer_count", (cluster, name, group), len(broker.producer_manager.connections(group)))


def _groups(broker, out: Families, cluster: str, name: str) -> None:
    items = broker.stats.items
    for fam, doc, stats_name, window in (
        ("rocketmq_consumer_tps", "Messages got per second by the group from the topic over the last minute",
         si.GROUP_GET_NUMS, "tps"),
        ("rocketmq_consumer_message_size", "Bytes got per second by the group from the topic over the last minute",
         si.GROUP_GET_SIZE, "tps"),
        ("rocketmq_send_back_nums", "Messages the group sent back for retry over the last minute",
         si.SNDBCK_PUT_NUMS, "sum"),
    ):
        out.family(fam, doc, GROUP_LABELS)
        for item in items.each(stats_name):
            topic, _, group = item.key.partition("@")
            out.add(fam, (cluster, name, topic, group), getattr(item.in_minute(), window))
    for fam, doc, labels in (
        ("rocketmq_group_consume_tps", "Never filled (as rocketmq-exporter)", GROUP_LABELS),
        ("rocketmq_group_consume_total_offset", "Never filled (as rocketmq-exporter)", GROUP_LABELS),
        ("rocketmq_consumer_offset", "Sum of the group's committed offsets of the topic on this broker", GROUP_LABELS),
        ("rocketmq_group_get_latency_by_storetime", "ms since the oldest unconsumed message of the group was stored, "
         "worst queue of the topic (0 when caught up; clustering groups only)", GROUP_LABELS),
        ("rocketmq_group_count", "Consumers of the group online (caddr: their addresses, localaddr: their client ids)",
         ("caddr", "localaddr", "group")),
        ("rocketmq_group_diff", "Messages not yet consumed by the group on this broker (clustering)", DIFF_LABELS),
        ("rocketmq_group_retrydiff", "The same for the group's retry topic", DIFF_LABELS),
        ("rocketmq_group_dlqdiff", "The same for a DLQ topic (never filled, as rocketmq-exporter)", DIFF_LABELS),
        ("mq_broker_consumer_lag", "Messages not yet consumed, by group and topic (this project's own)",
         ("group", "topic")),
    ):
        out.family(fam, doc, labels)
    store = broker.store
    offsets = broker.consumer_offset_manager
    topics = broker.topic_config_manager.table
    now_ms = broker.now_ms()
    counted = set()
    for topic, group in offsets.pairs():
        tc = topics.get(topic)
        if tc is None:
            continue
        online = broker.consumer_manager.get(group)
        clients = list(online.channels.values()) if online is not None else []
        clustering = online is None or online.message_model != "BROADCASTING"
        if group not in counted:
            counted.add(group)
            out.add("rocketmq_group_count", (",".join(c.client_addr for c in clients),
                                             ",".join(c.client_id for c in clients), group), len(clients))
        consumer_total = diff = lag = latency = 0
        for qid in range(tc.write_queue_nums):
            consumer = max(offsets.query(group, topic, qid), 0)
            top = max(store.get_max_offset_in_queue(topic, qid), 0)
            consumer_total += consumer
            diff += top - consumer
            lag += max(0, top - consumer)
            if clustering and consumer < top:
                stored = store.get_message_store_timestamp(topic, qid, consumer)
                if stored > 0:
                    latency = max(latency, now_ms - stored)
        out.add("mq_broker_consumer_lag", (group, topic), lag)
        if topic.startswith(mixall.DLQ_GROUP_TOPIC_PREFIX):  # the exporter skips DLQ topics
            continue
        out.add("rocketmq_consumer_offset", (cluster, name, topic, group), consumer_total)
        if clustering:
            out.add("rocketmq_group_get_latency_by_storetime", (cluster, name, topic, group), latency)
            fam = ("rocketmq_group_retrydiff" if topic.startswith(mixall.RETRY_GROUP_TOPIC_PREFIX)
                   else "rocketmq_group_diff")
            out.add(fam, (group, topic, str(len(clients)), CLUSTERING), diff)


def _runtime(broker, out: Families, cluster: str, addr: str) -> None:
    table = broker.runtime_info()
    labels = (cluster, addr, "", table["brokerVersionDesc"], table["bootTimestamp"], table["brokerVersion"])

    def one(suffix: str, doc: str, value: float) -> None:
        out.one(f"rocketmq_brokeruntime_{suffix}", doc, RUNTIME_LABELS, labels, value)

    for suffix, key, index in RUNTIME_VALUES:
        text = table.get(key)
        if text is not None:
            one(suffix, f"GET_BROKER_RUNTIME_INFO {key}", float(text.split(" ")[index]) if index >= 0 else float(text))
    flush = table.get("remainHowManyDataToFlush")
    if flush is not None:
        one("remain_howmanydata_toflush", "CommitLog bytes not yet flushed", parse_bytes(flush))
    capacity = table.get("commitLogDirCapacity")  # "Total : 50.0 GiB, Free : 20.0 GiB."
    if capacity is not None:
        words = capacity.split(" ")
        for suffix, words_at in (("total", 2), ("free", 6)):
            one(f"commitlogdir_capacity_{suffix}", f"Store disk bytes, {suffix}",
                parse_bytes(" ".join(words[words_at:words_at + 2])))
    bands = [part.partition(":")[2] for part in table.get("putMessageDistributeTime", "").split(" ") if part]
    for band, count in zip(PMDT_NAMES, bands):
        one(f"pmdt_{band}", "Puts of the last minute that took this long", float(count))


def families_names() -> List[str]:
    """Every family name ``collect`` can yield (for docs and tests)."""
    return sorted(
        ["rocketmq_broker_tps", "rocketmq_broker_qps", "rocketmq_broker_commitlog_diff", "rocketmq_producer_tps",
         "rocketmq_producer_message_size", "rocketmq_producer_offset", "rocketmq_topic_retry_offset",
         "rocketmq_topic_dlq_offset", "rocketmq_producer_count", "rocketmq_consumer_tps",
         "rocketmq_consumer_message_size", "rocketmq_send_back_nums", "rocketmq_group_consume_tps",
         "rocketmq_group_consume_total_offset", "rocketmq_consumer_offset",
         "rocketmq_group_get_latency_by_storetime", "rocketmq_group_count", "rocketmq_group_diff",
         "rocketmq_group_retrydiff", "rocketmq_group_dlqdiff",
         "rocketmq_brokeruntime_remain_howmanydata_toflush", "rocketmq_brokeruntime_commitlogdir_capacity_total",
         "rocketmq_brokeruntime_commitlogdir_capacity_free"]
        + [f"rocketmq_brokeruntime_{suffix}" for suffix, _, _ in RUNTIME_VALUES]
        + [f"rocketmq_brokeruntime_pmdt_{band}" for band in PMDT_NAMES]
    )
