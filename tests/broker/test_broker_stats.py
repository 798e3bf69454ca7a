"""RocketMQ's stats items (minute/hour/day windows, key cap), VIEW_BROKER_STATS_DATA (315),
GET_BROKER_CONSUME_STATS (317) and GET_BROKER_RUNTIME_INFO's Java 4.9.8 key set."""

from __future__ import annotations

import functools

import pytest
import pytest_twisted

from mq.broker.stats import items as si
from mq.broker.stats.items import BrokerStatsManager
from mq.broker.stats.put_latency import PutTimeDistribution
from mq.common import fastjson, jsonkeys
from mq.common.topic import SCHEDULE_TOPIC, TIMER_TOPIC
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC
from tests.support.polling import poll


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def manager(max_keys: int = 100):
    clock = Clock()
    return BrokerStatsManager("C1", clock, lambda: max_keys), clock


def item_value(m: BrokerStatsManager, name: str, key: str):
    """An item's running value; None when the item was never made."""
    item = m.item(name, key)
    return None if item is None else item.value


def tick(m: BrokerStatsManager, clock: Clock, n: int = 1) -> None:
    for _ in range(n):
        clock.now += si.SAMPLE_SECONDS
        m.sample()


def test_minute_window_sum_tps_and_average_per_addition():
    m, clock = manager()
    m.put("T", 3, 300)
    m.sample()  # the first snapshot: (10 s ago, 0, 0) then now, as Java's StatsItem
    item = m.item(si.TOPIC_PUT_NUMS, "T")
    assert item.in_minute().sum == 3 and item.in_minute().tps == pytest.approx(0.3)
    for _ in range(9):  # 9 more sends of 2 messages, one per 10 s
        m.put("T", 2, 10)
        tick(m, clock)
    minute = item.in_minute()  # 7 snapshots = the last 60 s: 6 sends of 2
    assert (minute.sum, minute.tps, minute.avgpt, minute.times) == (12, pytest.approx(0.2), 2.0, 6)
    assert m.item(si.TOPIC_PUT_SIZE, "T").in_minute().sum == 60
    assert m.item(si.BROKER_PUT_NUMS, "C1").in_minute().sum == 12  # keyed by the cluster name
    assert item.in_hour().sum == 3 and item.in_day().sum == 3  # their windows have one real snapshot so far
    assert m.item(si.TOPIC_PUT_NUMS, "Other") is None


def test_hour_and_day_windows_sample_every_ten_minutes_and_every_hour():
    m, clock = manager()
    m.sample()
    for _ in range(360 * 2):  # two hours, one message per 10 s
        m.put("T", 1, 1)
        tick(m, clock)
    item = m.item(si.TOPIC_PUT_NUMS, "T")
    assert item.in_hour().sum == 360 and item.in_hour().tps == pytest.approx(0.1)
    assert item.in_day().sum == 720 and len(item.day) == 3


def test_gets_latency_and_send_backs_use_javas_keys():
    m, _ = manager()
    m.get("G", "T", 2, count=5, size=500, latency_ms=7)
    m.send_back("G", "T")
    m.sample()
    assert m.item(si.GROUP_GET_NUMS, "T@G").in_minute().sum == 5
    assert m.item(si.GROUP_GET_SIZE, "T@G").in_minute().sum == 500
    assert m.item(si.GROUP_GET_LATENCY, "2@T@G").in_minute().avgpt == 7.0
    assert m.item(si.SNDBCK_PUT_NUMS, "T@G").in_minute().sum == 1
    assert m.item(si.BROKER_GET_NUMS, "C1").in_minute().sum == 5


def test_keys_are_capped_and_freed_with_their_topic_or_group():
    m, _ = manager(max_keys=2)
    m.put("A", 1, 1)
    m.put("B", 1, 1)
    m.put("C", 1, 1)  # a third key: not counted
    m.put("A", 1, 1)  # known keys still count
    puts = m.sets[si.TOPIC_PUT_NUMS]
    assert set(puts.items) == {"A", "B"} and puts.dropped == 1 and puts.items["A"].value == 2
    m.get("G", "A", 0, 1, 1, 1)
    m.get("H", "B", 0, 1, 1, 1)
    m.on_topic_deleted("A")
    assert set(puts.items) == {"B"} and set(m.sets[si.GROUP_GET_NUMS].items) == {"B@H"}
    assert set(m.sets[si.GROUP_GET_LATENCY].items) == {"0@B@H"}
    m.put("C", 1, 1)  # room again
    assert set(puts.items) == {"B", "C"}
    m.on_group_deleted("H")
    assert not m.sets[si.GROUP_GET_NUMS].items and not m.sets[si.GROUP_GET_LATENCY].items


def test_a_key_without_change_for_a_day_goes_away():
    m, clock = manager()
    m.put("Quiet", 1, 1)
    m.sample()
    tick(m, clock, 360 * 24 - 1)
    assert m.item(si.TOPIC_PUT_NUMS, "Quiet") is not None
    m.put("Busy", 1, 1)
    tick(m, clock, 360 * 2)
    assert m.item(si.TOPIC_PUT_NUMS, "Quiet") is None  # its 25 hourly snapshots are all the same
    assert m.item(si.TOPIC_PUT_NUMS, "Busy") is not None  # a day has not passed for it yet


def test_put_time_bands_and_percentiles_of_the_last_minute():
    d = PutTimeDistribution()
    for ms in [0] * 10 + [5] * 880 + [30] * 100 + [700] * 9 + [12_000]:
        d.observe_ms(ms)
    assert d.distribute_text().startswith("[<=0ms]:0 [0~10ms]:0 ")  # nothing finished a minute yet
    d.roll()
    text = d.distribute_text()
    assert text == ("[<=0ms]:10 [0~10ms]:880 [10~50ms]:100 [50~100ms]:0 [100~200ms]:0 [200~500ms]:0 "
                    "[500ms~1s]:9 [1~2s]:0 [2~3s]:0 [3~4s]:0 [4~5s]:0 [5~10s]:0 [10s~]:1 ")
    # the exporter's parse: split on spaces, "name:count", brackets stripped
    bands = {p.split(":")[0].strip("[]"): int(p.split(":")[1]) for p in text.split(" ") if p}
    assert bands["10s~"] == 1 and sum(bands.values()) == 1000
    assert 30 <= d.percentile(0.99) <= 32  # the 990th put is one of the 30 ms ones: bucket [30, 32) ms
    assert 700 <= d.percentile(0.999) <= 800
    d.roll()
    assert d.percentile(0.99) == 0.0 and d.distribute_text().startswith("[<=0ms]:0 ")


# -- over the wire ---------------------------------------------------------------------------------


def view(client, addr, name, key):
    return client.invoke(addr, RequestCode.VIEW_BROKER_STATS_DATA, {"statsName": name, "statsKey": key})


@pytest_twisted.inlineCallbacks
def test_view_broker_stats_data(client, addr, broker):
    clock = Clock()
    broker.stats.items.now = clock
    broker.stats.items.sample()
    for _ in range(4):
        yield client.send(addr, "StT", b"abcd", queue_id=0)
    yield client.pull(addr, "StG", "StT", 0, 0)
    clock.now += 10
    broker.stats.items.sample()
    r = yield view(client, addr, "TOPIC_PUT_NUMS", "StT")
    assert r.code == RC.SUCCESS, r.remark
    data = fastjson.loads(r.body)
    assert set(data) == {"statsMinute", "statsHour", "statsDay"}
    assert data["statsMinute"] == {"sum": 4, "tps": 0.4, "avgpt": 1.0}
    r = yield view(client, addr, "GROUP_GET_NUMS", "StT@StG")
    assert fastjson.loads(r.body)["statsMinute"]["sum"] == 4
    r = yield view(client, addr, "BROKER_PUT_NUMS", broker.config.broker_cluster_name)
    assert fastjson.loads(r.body)["statsMinute"]["sum"] == 4
    r = yield view(client, addr, "GROUP_GET_LATENCY", "0@StT@StG")
    assert r.code == RC.SUCCESS
    for name, key, remark in (
        ("TOPIC_PUT_NUMS", "NoSuch", "The stats <TOPIC_PUT_NUMS> <NoSuch> not exist"),
        ("GROUP_GET_FROM_DISK_NUMS", "StT@StG", "not exist"),  # nothing came from past the page-cache window
        ("GROUP_GET_FROM_DISK_SIZE", "StT", "statsKey must be topic@group"),
        ("NO_SUCH_STATS", "StT", "statsName is one of TOPIC_PUT_NUMS"),
        ("TOPIC_PUT_NUMS", "bad topic", "characters outside"),
        ("GROUP_GET_NUMS", "StT", "statsKey must be topic@group"),
        ("GROUP_GET_LATENCY", "x@StT@StG", "statsKey must be queueId@topic@group"),
        ("BROKER_PUT_NUMS", "x" * 1000, "statsKey is longer than"),
    ):
        r = yield view(client, addr, name, key)
        assert r.code == RC.SYSTEM_ERROR and remark in r.remark, (name, key, r.remark)
    r = yield client.invoke(addr, RequestCode.VIEW_BROKER_STATS_DATA, {"statsName": "TOPIC_PUT_NUMS"})
    assert r.code != RC.SUCCESS and "statsKey" in r.remark


@pytest_twisted.inlineCallbacks
def test_broker_consume_stats(client, addr, broker):
    yield client.create_topic(addr, "CsPlain", queues=2)
    yield client.create_topic(addr, "CsOrder", queues=1, order=True)
    for topic, qid in (("CsPlain", 0), ("CsPlain", 0), ("CsPlain", 1), ("CsOrder", 0)):
        yield client.send(addr, topic, b"x", queue_id=qid)
    broker.subscription_group_manager.find("CsGroup", auto_create=True)  # as its first pull or heartbeat does
    for topic in ("CsPlain", "CsOrder"):
        yield client.update_offset(addr, "CsGroup", topic, 0, 1)
    r = yield client.invoke(addr, RequestCode.GET_BROKER_CONSUME_STATS, {"isOrder": "false"})
    assert r.code == RC.SUCCESS, r.remark
    data = jsonkeys.loads(r.body)
    assert data["brokerAddr"] == addr and data["totalDiff"] == 2  # CsPlain: 2-1 + 1-0; CsOrder: 1-1
    groups = {g: stats for entry in data["consumeStatsList"] for g, stats in entry.items()}
    assert len(groups["CsGroup"]) == 2
    assert b'{"brokerName":"broker-t","queueId":1,"topic":"CsPlain"}:{"brokerOffset":1,"consumerOffset":0,' in r.body
    r = yield client.invoke(addr, RequestCode.GET_BROKER_CONSUME_STATS, {"isOrder": "true"})
    data = jsonkeys.loads(r.body)
    assert data["totalDiff"] == 0 and b"CsPlain" not in r.body and b"CsOrder" in r.body
    # online and subscribed to CsOrder only: as Java, its offsets of CsPlain are left out
    yield client.heartbeat(addr, consumers=[("CsGroup", ["CsOrder"], "CLUSTERING")])
    r = yield client.invoke(addr, RequestCode.GET_BROKER_CONSUME_STATS, {"isOrder": "false"})
    assert b"CsPlain" not in r.body and jsonkeys.loads(r.body)["totalDiff"] == 0
    r = yield client.invoke(addr, RequestCode.GET_BROKER_CONSUME_STATS, {})
    assert r.code != RC.SUCCESS and "isOrder" in r.remark


#: Every key of a Java 4.9.8 broker's GET_BROKER_RUNTIME_INFO (StoreStatsService, DefaultMessageStore,
#: AdminBrokerProcessor.prepareRuntimeInfo; transientStorePoolEnable off).
JAVA_KEYS = {
    "bootTimestamp", "runtime", "putMessageEntireTimeMax", "putMessageTimesTotal", "putMessageFailedTimes",
    "putMessageSizeTotal", "putMessageDistributeTime", "putMessageAverageSize", "dispatchMaxBuffer",
    "getMessageEntireTimeMax", "putTps", "getFoundTps", "getMissTps", "getTotalTps", "getTransferedTps",
    "putLatency99", "putLatency999", "commitLogDiskRatio", "consumeQueueDiskRatio", "commitLogMinOffset",
    "commitLogMaxOffset", "brokerVersionDesc", "brokerVersion", "msgPutTotalYesterdayMorning",
    "msgPutTotalTodayMorning", "msgPutTotalTodayNow", "msgGetTotalYesterdayMorning", "msgGetTotalTodayMorning",
    "msgGetTotalTodayNow", "sendThreadPoolQueueSize", "sendThreadPoolQueueCapacity", "pullThreadPoolQueueSize",
    "pullThreadPoolQueueCapacity", "queryThreadPoolQueueSize", "queryThreadPoolQueueCapacity",
    "EndTransactionQueueSize", "EndTransactionThreadPoolQueueCapacity", "pageCacheLockTimeMills",
    "sendThreadPoolQueueHeadWaitTimeMills", "pullThreadPoolQueueHeadWaitTimeMills",
    "queryThreadPoolQueueHeadWaitTimeMills", "earliestMessageTimeStamp", "startAcceptSendRequestTimeStamp",
    "remainTransientStoreBufferNumbs", "remainHowManyDataToFlush", "commitLogDirCapacity", "dispatchBehindBytes",
}


@pytest_twisted.inlineCallbacks
def test_runtime_info_has_javas_keys_in_javas_formats(client, addr, broker):
    for _ in range(3):
        yield client.send(addr, "RtKeys", b"x" * 10, queue_id=0)
    broker.stats.put_latency.minute.roll()
    r = yield client.invoke(addr, RequestCode.GET_BROKER_RUNTIME_INFO)
    table = fastjson.loads(r.body)["table"]
    assert JAVA_KEYS <= set(table), sorted(JAVA_KEYS - set(table))
    assert any(k.startswith("commitLogDiskRatio_") for k in table)
    assert table["scheduleMessageOffset_1"] == "0,0"
    # parsed as rocketmq-exporter's BrokerRuntimeStats parses them
    total, free = table["commitLogDirCapacity"].split(" ")[2:4], table["commitLogDirCapacity"].split(" ")[6:8]
    assert table["commitLogDirCapacity"].startswith("Total : ") and total[1][-1] == "," and free[1][-1] == "."
    amount, unit = table["remainHowManyDataToFlush"].split(" ")
    assert float(amount) >= 0 and unit[0] in "BKMGTPE"
    bands = dict(p.split(":") for p in table["putMessageDistributeTime"].split(" ") if p)
    assert sum(int(v) for v in bands.values()) == 3 and len(bands) == 13
    for key in ("putLatency99", "putLatency999", "putMessageAverageSize", "commitLogDiskRatio"):
        float(table[key])
    for key in ("putMessageEntireTimeMax", "getMessageEntireTimeMax", "dispatchMaxBuffer",
                "startAcceptSendRequestTimeStamp", "remainTransientStoreBufferNumbs", "putMessageTimesTotal"):
        int(table[key])
    assert table["sendThreadPoolQueueCapacity"] == "10000" and table["runtime"].startswith("[ 0 days, ")
    assert float(table["putMessageAverageSize"]) > 10  # stored record size, as Java


@pytest_twisted.inlineCallbacks
def test_a_delayed_message_is_counted_as_java_counts_it(client, addr, broker):
    """Sent: in the delay-level topic and its queue (TOPIC_PUT, QUEUE_PUT); due: got from that queue by
    SCHEDULE_CONSUMER (QUEUE_GET, GROUP_GET) and put into its real topic (TOPIC_PUT)."""
    items = broker.stats.items
    value = functools.partial(item_value, items)

    yield client.create_topic(addr, "DelayT", queues=1)
    sent = yield client.send(addr, "DelayT", b"later", queue_id=0, properties={"DELAY": "1"})
    assert sent.code == RC.SUCCESS
    parked = broker.store.commitlog.max_offset  # the one record so far
    assert value(si.TOPIC_PUT_NUMS, SCHEDULE_TOPIC) == 1 and value(si.TOPIC_PUT_NUMS, "DelayT") is None
    assert (value(si.QUEUE_PUT_NUMS, f"{SCHEDULE_TOPIC}@0"), value(si.QUEUE_PUT_SIZE, f"{SCHEDULE_TOPIC}@0")) == (
        1, parked)
    yield poll(lambda: value(si.TOPIC_PUT_NUMS, "DelayT"), lambda v: v == 1, 10, what="the delivery counted")
    delivered = broker.store.commitlog.max_offset - parked
    key = f"{SCHEDULE_TOPIC}@0@{si.SCHEDULE_CONSUMER}"
    assert (value(si.QUEUE_GET_NUMS, key), value(si.QUEUE_GET_SIZE, key)) == (1, delivered)
    pair = f"{SCHEDULE_TOPIC}@{si.SCHEDULE_CONSUMER}"
    assert (value(si.GROUP_GET_NUMS, pair), value(si.TOPIC_PUT_SIZE, "DelayT")) == (1, delivered)
    assert value(si.BROKER_PUT_NUMS, broker.config.broker_cluster_name) == 2  # the send and the delivery
    assert value(si.BROKER_GET_NUMS, broker.config.broker_cluster_name) is None  # no pull was served
    r = yield view(client, addr, "QUEUE_GET_NUMS", key)
    assert r.code == RC.SUCCESS and set(fastjson.loads(r.body)) == {"statsMinute", "statsHour", "statsDay"}
    for name, bad, remark in (("QUEUE_PUT_NUMS", SCHEDULE_TOPIC, "statsKey must be topic@queueId"),
                              ("QUEUE_PUT_SIZE", f"{SCHEDULE_TOPIC}@0@G", "statsKey must be topic@queueId"),
                              ("QUEUE_GET_NUMS", f"{SCHEDULE_TOPIC}@0", "statsKey must be topic@queueId@group"),
                              ("QUEUE_GET_SIZE", f"{SCHEDULE_TOPIC}@x@G", "statsKey must be topic@queueId@group")):
        r = yield view(client, addr, name, bad)
        assert r.code == RC.SYSTEM_ERROR and remark in r.remark, (name, bad, r.remark)
    items.on_topic_deleted(SCHEDULE_TOPIC)
    assert value(si.QUEUE_PUT_NUMS, f"{SCHEDULE_TOPIC}@0") is None and value(si.QUEUE_GET_NUMS, key) is None


@pytest_twisted.inlineCallbacks
def test_a_timer_message_is_counted_as_java_5_counts_it(client, addr, broker):
    """Sent for later: a put into the timer topic (TOPIC_PUT of rmq_sys_wheel_timer, BROKER_PUT); fired: a put
    into its real topic (TOPIC_PUT_NUMS/SIZE, BROKER_PUT), as TimerMessageStore.doPut counts it. Sent for a time
    already past: stored and counted in its topic at once."""
    value = functools.partial(item_value, broker.stats.items)
    cluster = broker.config.broker_cluster_name

    yield client.create_topic(addr, "TimerT", queues=1)
    sent = yield client.send(addr, "TimerT", b"later", queue_id=0, properties={"TIMER_DELAY_MS": "1500"})
    assert sent.code == RC.SUCCESS
    parked = broker.store.commitlog.max_offset
    assert (value(si.TOPIC_PUT_NUMS, TIMER_TOPIC), value(si.TOPIC_PUT_SIZE, TIMER_TOPIC)) == (1, parked)
    assert value(si.TOPIC_PUT_NUMS, "TimerT") is None and value(si.BROKER_PUT_NUMS, cluster) == 1
    yield poll(lambda: value(si.TOPIC_PUT_NUMS, "TimerT"), lambda v: v == 1, 15, what="the fire counted")
    fired = broker.store.commitlog.max_offset - parked
    assert value(si.TOPIC_PUT_SIZE, "TimerT") == fired > 0
    assert value(si.BROKER_PUT_NUMS, cluster) == 2 and value(si.TOPIC_PUT_NUMS, TIMER_TOPIC) == 1
    assert broker.timer_service.fired == 1
    r = yield view(client, addr, "TOPIC_PUT_NUMS", "TimerT")
    assert r.code == RC.SUCCESS and set(fastjson.loads(r.body)) == {"statsMinute", "statsHour", "statsDay"}
    past = yield client.send(addr, "TimerT", b"now", queue_id=0, properties={"TIMER_DELIVER_MS": "1000"})
    assert past.code == RC.SUCCESS
    assert value(si.TOPIC_PUT_NUMS, "TimerT") == 2 and value(si.TOPIC_PUT_NUMS, TIMER_TOPIC) == 1


@pytest_twisted.inlineCallbacks
def test_a_pull_past_the_page_cache_window_is_counted_from_disk(client, make_broker):
    """GROUP_GET_FROM_DISK_* (topic@group) and BROKER_GET_FROM_DISK_* (cluster) count the pulled messages that
    Java's in-disk rule puts past the page-cache window: with accessMessageInMemoryMaxRatio=0, all of them."""
    broker = make_broker(accessMessageInMemoryMaxRatio=0)
    addr = broker.config.broker_addr
    value = functools.partial(item_value, broker.stats.items)
    cluster = broker.config.broker_cluster_name
    for _ in range(3):
        yield client.send(addr, "DiskT", b"abcdef", queue_id=0)
    r = yield client.pull(addr, "DiskG", "DiskT", 0, 0, max_nums=2)
    assert r.code == RC.SUCCESS
    assert value(si.GROUP_GET_FROM_DISK_NUMS, "DiskT@DiskG") == value(si.BROKER_GET_FROM_DISK_NUMS, cluster) == 2
    assert value(si.GROUP_GET_FROM_DISK_SIZE, "DiskT@DiskG") == value(si.BROKER_GET_FROM_DISK_SIZE, cluster) == len(
        r.body)
    r = yield view(client, addr, "GROUP_GET_FROM_DISK_NUMS", "DiskT@DiskG")
    assert r.code == RC.SUCCESS and set(fastjson.loads(r.body)) == {"statsMinute", "statsHour", "statsDay"}
    r = yield view(client, addr, "BROKER_GET_FROM_DISK_SIZE", cluster)
    assert r.code == RC.SUCCESS
    broker.stats.items.on_group_deleted("DiskG")
    assert value(si.GROUP_GET_FROM_DISK_NUMS, "DiskT@DiskG") is None


@pytest_twisted.inlineCallbacks
def test_a_pull_within_the_page_cache_window_is_not_counted_from_disk(client, addr, broker):
    yield client.send(addr, "MemT", b"abcdef", queue_id=0)
    r = yield client.pull(addr, "MemG", "MemT", 0, 0)
    assert r.code == RC.SUCCESS and broker.stats.items.item(si.GROUP_GET_NUMS, "MemT@MemG").value == 1
    assert item_value(broker.stats.items, si.GROUP_GET_FROM_DISK_NUMS, "MemT@MemG") is None
    assert item_value(broker.stats.items, si.BROKER_GET_FROM_DISK_NUMS, broker.config.broker_cluster_name) is None
