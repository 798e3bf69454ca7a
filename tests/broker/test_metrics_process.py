"""Real ``twistd namesrv`` + ``twistd broker`` under load (a producer and a push consumer of ours, in this
process): the broker's metrics endpoint serves every rocketmq-exporter family (those Grafana dashboard 10477
reads and the rest), with the exporter's labels and plausible values, and ``mqadmin statsAll`` / ``brokerConsumeStats`` print the
figures the stats items hold. The stats items are sampled every 10 s, so the figures appear within ~10 s."""

from __future__ import annotations

import pytest
import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor, threads
from twisted.web.client import Agent, readBody

from mq.client import ConsumeFromWhere, Producer, PushConsumer
from tests.admin.conftest import mqadmin, start_broker, start_namesrv
from tests.client.test_push_consumer import Recorder, send_all
from tests.support.polling import poll
from tests.support.processes import free_port, wait_until

TOPIC, GROUP = "MetT", "MetG"
SENT = 40
FAILED = {"m3": 1, "m7": 1}  # consumed again after a send-back: retry topic, send-back and failure figures

#: Every metric rocketmq_exporter_overview.json (Grafana 10477) queries, plus the diff families of the
#: exporter's other dashboard, with the labels the exporter gives them.
RUNTIME = ("cluster", "brokerIP", "brokerHost", "des", "boottime", "broker_version")
GROUP_NUMS = ("cluster", "broker", "topic", "group")
CLIENT = ("clientAddr", "clientId", "group", "topic")
DASHBOARD = {
    "rocketmq_broker_tps": ("cluster", "brokerIP", "broker"),
    "rocketmq_broker_qps": ("cluster", "brokerIP", "broker"),
    "rocketmq_producer_tps": ("cluster", "broker", "topic"),
    "rocketmq_producer_message_size": ("cluster", "broker", "topic"),
    "rocketmq_producer_offset": ("cluster", "broker", "topic"),
    "rocketmq_consumer_tps": GROUP_NUMS,
    "rocketmq_consumer_message_size": GROUP_NUMS,
    "rocketmq_consumer_offset": GROUP_NUMS,
    "rocketmq_group_get_latency_by_storetime": GROUP_NUMS,
    "rocketmq_group_diff": ("group", "topic", "countOfOnlineConsumers", "msgModel"),
    "rocketmq_group_retrydiff": ("group", "topic", "countOfOnlineConsumers", "msgModel"),
    "rocketmq_client_consume_fail_msg_count": CLIENT,
    "rocketmq_client_consume_fail_msg_tps": CLIENT,
    "rocketmq_client_consume_ok_msg_tps": CLIENT,
    "rocketmq_client_consume_rt": CLIENT,
    "rocketmq_client_consumer_pull_rt": CLIENT,
    "rocketmq_client_consumer_pull_tps": CLIENT,
    **{f"rocketmq_brokeruntime_{name}": RUNTIME for name in (
        "commitlog_disk_ratio", "commitlog_maxoffset", "commitlog_minoffset", "commitlogdir_capacity_free",
        "commitlogdir_capacity_total", "consumequeue_disk_ratio", "dispatch_behind_bytes", "getfound_tps10",
        "getmiss_tps10", "gettotal_tps10", "gettransfered_tps10", "msg_gettotal_today_now",
        "msg_gettotal_todaymorning", "msg_gettotal_yesterdaymorning", "msg_put_total_today_now",
        "msg_puttotal_todaymorning", "msg_puttotal_yesterdaymorning", "pmdt_0ms", "pmdt_0to10ms",
        "pmdt_100to200ms", "pmdt_10stomore", "pmdt_10to50ms", "pmdt_1to2s", "pmdt_200to500ms", "pmdt_2to3s",
        "pmdt_3to4s", "pmdt_4to5s", "pmdt_500to1s", "pmdt_50to100ms", "pmdt_5to10s",
        "pull_threadpoolqueue_headwait_timemills", "put_message_average_size", "put_message_size_total",
        "put_tps10", "query_threadpoolqueue_headwait_timemills", "send_threadpoolqueue_headwait_timemills")},
}

#: Every other family rocketmq-exporter serves (its RMQMetricsCollector at e1ab2dd: 89 families in all), filled
#: by this test's load, with the exporter's labels.
OTHERS = {
    "rocketmq_producer_count": ("cluster", "broker", "group"),
    "rocketmq_topic_retry_offset": ("cluster", "broker", "topic"),
    "rocketmq_send_back_nums": GROUP_NUMS,
    "rocketmq_group_count": ("caddr", "localaddr", "group"),
    **{f"rocketmq_brokeruntime_{name}": RUNTIME for name in (
        "dispatch_maxbuffer", "earliest_message_timestamp", "getfound_tps60", "getfound_tps600",
        "getmessage_entire_time_max", "getmiss_tps60", "getmiss_tps600", "gettotal_tps60", "gettotal_tps600",
        "gettransfered_tps60", "gettransfered_tps600", "pagecache_lock_time_mills", "pull_threadpoolqueue_capacity",
        "pull_threadpoolqueue_size", "put_latency_99", "put_latency_999", "put_tps60", "put_tps600",
        "putmessage_entire_time_max", "putmessage_times_total", "query_threadpool_queue_capacity",
        "query_threadpoolqueue_size", "remain_howmanydata_toflush", "remain_transientstore_buffer_numbs",
        "send_threadpool_queue_size", "send_threadpoolqueue_capacity", "start_accept_sendrequest_time")},
}
#: Declared with no series here: a slave's CommitLog lag and dead-letter offsets need a slave and a dead letter
#: (tests/broker/test_exporter_metrics.py fills them in process); the other three the exporter never fills.
DECLARED = ("rocketmq_broker_commitlog_diff", "rocketmq_topic_dlq_offset", "rocketmq_group_dlqdiff",
            "rocketmq_group_consume_tps", "rocketmq_group_consume_total_offset")


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    namesrv = start_namesrv(tmp_path_factory.mktemp("namesrv"))
    port = free_port()
    proc = start_broker(tmp_path_factory.mktemp("broker"), namesrv.addr, name="met-broker", cluster="MetCluster",
                        conf_extra=f"metricsPort={port}\nclientMetricsInterval=2\n")
    proc.namesrv, proc.metrics_url = namesrv.addr, f"http://127.0.0.1:{port}/metrics".encode()
    wait_until(lambda: mqadmin("topicRoute", "-t", "TBW102", namesrv=namesrv.addr).code == 0, 20,
               what="the broker registered with the NameServer")
    r = mqadmin("updateTopic", "-c", "MetCluster", "-t", TOPIC, "-r", "2", "-w", "2", namesrv=namesrv.addr)
    assert r.code == 0, r.err
    yield proc
    proc.stop(timeout=15)
    namesrv.stop(timeout=15)


def scrape(url):
    d = Agent(reactor).request(b"GET", url)
    d.addCallback(readBody)
    return d.addCallback(lambda body: {f.name: f for f in text_string_to_metric_families(body.decode())})


def values(families, name, **labels):
    family = families.get(name)
    return [s.value for s in (family.samples if family else ()) if all(s.labels.get(k) == v for k, v in labels.items())]


def ready(families):
    """The load has shown everywhere: sends, consumption, the consumer's own figures and the retries."""
    return (families is not None
            and sum(values(families, "rocketmq_producer_tps", topic=TOPIC)) > 0
            and sum(values(families, "rocketmq_consumer_tps", topic=TOPIC, group=GROUP)) > 0
            and sum(values(families, "rocketmq_client_consume_ok_msg_tps", group=GROUP, topic=TOPIC)) > 0
            and sum(values(families, "rocketmq_client_consume_fail_msg_count", group=GROUP)) > 0
            and values(families, "rocketmq_group_retrydiff", group=GROUP) != [])


@pytest_twisted.inlineCallbacks
def test_the_dashboards_metrics_under_load_and_the_stats_commands(broker):
    producer = Producer("MetP", broker.namesrv)
    consumer = PushConsumer(GROUP, broker.namesrv, instance_name="met-consumer",
                            consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET)
    consumer.subscribe(TOPIC, "*")
    recorder = Recorder(FAILED)
    consumer.register_message_listener(recorder)
    try:
        producer.start()
        yield consumer.start()
        yield send_all(producer, TOPIC, [f"m{i}" for i in range(SENT)])
        yield poll(lambda: len(set(recorder.bodies())), lambda n: n == SENT, 60, what="every message consumed")
        families = yield poll(lambda: scrape(broker.metrics_url), ready, 60, interval=0.5,
                              what="the load in the exporter's figures")
        assert len(DASHBOARD) + len(OTHERS) + len(DECLARED) == 89  # every family of the exporter, once
        for name, labels in {**DASHBOARD, **OTHERS}.items():
            family = families.get(name)
            assert family is not None and family.type == "gauge", name
            assert family.samples, f"{name} has no series"
            for sample in family.samples:
                assert set(sample.labels) == set(labels), (name, sample.labels)
                assert sample.value >= 0 or name.endswith(("_99", "_999")), (name, sample)
        for name in DECLARED:
            assert families[name].type == "gauge" and not families[name].samples, name
        assert values(families, "rocketmq_producer_count", group="MetP") == [1]
        assert values(families, "rocketmq_group_count", group=GROUP) == [1]
        # the sent-back messages wait in the delay levels first: the retry topic's offset may still be 0
        assert len(values(families, "rocketmq_topic_retry_offset", topic=f"%RETRY%{GROUP}")) == 1
        assert values(families, "rocketmq_brokeruntime_putmessage_times_total")[0] >= SENT
        assert values(families, "rocketmq_producer_offset", topic=TOPIC) == [SENT]
        assert values(families, "rocketmq_brokeruntime_msg_put_total_today_now")[0] >= SENT
        assert values(families, "rocketmq_broker_tps", cluster="MetCluster", broker="met-broker",
                      brokerIP=broker.addr)[0] > 0
        assert values(families, "rocketmq_group_diff", group=GROUP, topic=TOPIC, msgModel="1")[0] >= 0
        latency = values(families, "rocketmq_group_get_latency_by_storetime", topic=TOPIC, group=GROUP)[0]
        assert 0 <= latency < 120_000
        client = families["rocketmq_client_consume_ok_msg_tps"].samples[0].labels
        assert client["clientId"] == consumer.instance.client_id and client["clientAddr"].startswith("127.0.0.1:")
        assert sum(values(families, "rocketmq_brokeruntime_put_message_size_total")) > 0
        assert values(families, "rocketmq_brokeruntime_commitlogdir_capacity_total")[0] > 1 << 20
        # the project's own figures stay beside them
        assert values(families, "mq_broker_messages_in", topic=TOPIC) == [SENT]
        assert families["mq_broker_long_poll_woken_by_arrival"].type == "counter"

        r = yield threads.deferToThread(mqadmin, "statsAll", "-t", TOPIC, "--json", namesrv=broker.namesrv)
        assert r.code == 0, r.err
        rows = r.json()["stats"]
        assert [(row["topic"], row["group"]) for row in rows] == [(TOPIC, GROUP)]
        assert rows[0]["inMsg24Hour"] == SENT and rows[0]["outMsg24Hour"] >= SENT and rows[0]["inTps"] > 0
        r = yield threads.deferToThread(mqadmin, "statsAll", "-a", namesrv=broker.namesrv)
        assert r.code == 0, r.err
        lines = r.out.splitlines()
        assert lines[0].split() == ["#Topic", "#Consumer", "Group", "#Accumulation", "#InTPS", "#OutTPS",
                                    "#InMsg24Hour", "#OutMsg24Hour"]
        row = [line.split() for line in lines[1:] if line.startswith(TOPIC + " ")]
        assert row and row[0][1] == GROUP and row[0][5] == str(SENT)

        r = yield threads.deferToThread(mqadmin, "brokerConsumeStats", "-b", broker.addr, "--json",
                                        namesrv=broker.namesrv)
        assert r.code == 0, r.err
        data = r.json()
        mine = [q for q in data["queues"] if q["topic"] == TOPIC and q["group"] == GROUP]
        assert sorted(q["queueId"] for q in mine) == [0, 1] and sum(q["brokerOffset"] for q in mine) == SENT
        assert data["brokerAddr"] == broker.addr and data["totalDiff"] >= 0
        r = yield threads.deferToThread(mqadmin, "brokerConsumeStats", "-b", broker.addr, "-l", "1000000",
                                        namesrv=broker.namesrv)
        assert r.code == 0, r.err
        assert r.out.splitlines()[0].split()[:3] == ["#Topic", "#Group", "#Broker"]
        assert len(r.out.splitlines()) == 3 and r.out.splitlines()[-1].startswith("Diff Total: ")
        r = yield threads.deferToThread(mqadmin, "brokerConsumeStats", "-b", broker.addr, "-o", "maybe",
                                        namesrv=broker.namesrv)
        assert r.code != 0 and "expected true or false" in r.err
    finally:
        yield consumer.shutdown()
        yield producer.shutdown()
