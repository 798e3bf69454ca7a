"""rocketmq-exporter's metric names, labels and meanings on the broker's own registry (in process)."""

from __future__ import annotations

import pytest
import pytest_twisted
from prometheus_client.exposition import generate_latest

from mq.broker.stats import exporter
from mq.broker.stats.client_metrics import FAMILIES
from tests.broker.test_broker_stats import Clock


def samples(registry, name):
    for family in registry.collect():
        if family.name == name:
            return family.type, {tuple(sorted(s.labels.items())): s.value for s in family.samples}
    return None, {}


def one(registry, name, **labels):
    kind, found = samples(registry, name)
    matching = [v for k, v in found.items() if all(dict(k).get(n) == want for n, want in labels.items())]
    assert len(matching) == 1, (name, labels, found)
    return matching[0]


@pytest_twisted.inlineCallbacks
def test_exporter_families_from_sends_and_pulls(client, addr, broker):
    clock = Clock()
    broker.stats.items.now = clock
    broker.stats.items.sample()
    yield client.create_topic(addr, "ExT", queues=2)
    for qid in (0, 0, 0, 1):
        yield client.send(addr, "ExT", b"0123456789", queue_id=qid)
    yield client.pull(addr, "ExG", "ExT", 0, 0, max_nums=2)
    yield client.update_offset(addr, "ExG", "ExT", 0, 2)
    clock.now += 10
    broker.stats.items.sample()
    reg = broker.stats.registry
    cluster, name = broker.config.broker_cluster_name, broker.config.broker_name
    assert one(reg, "rocketmq_producer_tps", cluster=cluster, broker=name, topic="ExT") == 0.4
    # stored-record bytes (Java counts getWroteBytes): the whole CommitLog of this fresh broker, in 10 s
    record_bytes = broker.store.commitlog.max_offset
    assert record_bytes > 4 * 100
    assert one(reg, "rocketmq_producer_message_size", topic="ExT") == pytest.approx(record_bytes / 10)
    assert one(reg, "rocketmq_broker_tps", cluster=cluster, brokerIP=addr, broker=name) == 0.4
    assert one(reg, "rocketmq_broker_qps", brokerIP=addr) == 0.2
    assert one(reg, "rocketmq_consumer_tps", cluster=cluster, broker=name, topic="ExT", group="ExG") == 0.2
    assert one(reg, "rocketmq_producer_offset", topic="ExT") == 4
    assert one(reg, "rocketmq_consumer_offset", topic="ExT", group="ExG") == 2
    diff = one(reg, "rocketmq_group_diff", group="ExG", topic="ExT", countOfOnlineConsumers="0", msgModel="1")
    assert diff == 2  # queue 0: 3 - 2, queue 1: 1 - 0
    latency = one(reg, "rocketmq_group_get_latency_by_storetime", topic="ExT", group="ExG")
    assert 0 < latency < 60_000
    assert one(reg, "rocketmq_group_count", group="ExG", caddr="", localaddr="") == 0
    kind, runtime = samples(reg, "rocketmq_brokeruntime_msg_put_total_today_now")
    assert kind == "gauge" and list(runtime.values()) == [4]
    labels = dict(next(iter(runtime)))
    assert set(labels) == set(exporter.RUNTIME_LABELS) and labels["des"] == "V4_9_8" and labels["brokerHost"] == ""
    assert one(reg, "rocketmq_brokeruntime_commitlogdir_capacity_total") > one(
        reg, "rocketmq_brokeruntime_commitlogdir_capacity_free") > 0
    broker.stats.put_latency.minute.roll()
    assert sum(one(reg, f"rocketmq_brokeruntime_pmdt_{b}") for b in exporter.PMDT_NAMES) == 4
    text = generate_latest(reg).decode()
    for family in exporter.families_names() + list(FAMILIES):
        assert f"# TYPE {family} gauge" in text, family
    # the project's own figures stay alongside, the long-poll wake-ups as counters
    assert "# TYPE mq_broker_long_poll_woken_by_arrival_total counter" in text
    assert "mq_broker_long_poll_woken_by_timeout_total 0.0" in text
    assert one(reg, "mq_broker_messages_in", topic="ExT") == 4


@pytest_twisted.inlineCallbacks
def test_each_family_is_capped(client, make_broker):
    broker = make_broker(metricsMaxSeries=10)
    addr = broker.config.broker_addr
    for i in range(15):
        yield client.send(addr, f"Cap{i}", b"x", queue_id=0)
    reg = broker.stats.registry
    _, offsets = samples(reg, "rocketmq_producer_offset")
    assert len(offsets) == 10
    dropped = one(reg, "mq_broker_metrics_series_dropped", family="rocketmq_producer_offset")
    assert dropped >= 5  # 15 topics and the broker's own system topics
    assert len(samples(reg, "rocketmq_producer_tps")[1]) == 10


class FakeChannel:
    peer = "127.0.0.1:1"

    def __init__(self, answer):
        self.answer = answer
        self.asked = []

    def send_request(self, request, timeout):
        self.asked.append(request)
        return self.answer(request)


def test_client_metrics_rounds(broker):
    from twisted.internet import defer

    from mq.broker.client.manager import ClientChannelInfo, ConsumerGroupInfo
    from mq.common import fastjson
    from mq.remoting.codes import LanguageCode, ResponseCode
    from mq.remoting.protocol import RemotingTimeoutError

    metrics = broker.client_metrics
    assert metrics.poll().called and metrics._round is None  # nobody online: the next round asks again
    status = {"T": {"pullRT": 2.5, "pullTPS": 10, "consumeRT": 1, "consumeOKTPS": 9, "consumeFailedTPS": 1,
                    "consumeFailedMsgs": 7}, "bad": "not a map"}
    good = FakeChannel(lambda r: defer.succeed(r.response(ResponseCode.SUCCESS, None, None,
                                                          fastjson.dumps_bytes({"statusTable": status}))))
    timeout = defer.Deferred()
    silent = FakeChannel(lambda r: timeout)
    group = ConsumerGroupInfo("G")
    for cid, channel in (("c1", good), ("c2", silent)):
        group.channels[channel] = ClientChannelInfo(channel, cid, LanguageCode.JAVA, 409)
    broker.consumer_manager.table["G"] = group
    first = metrics.poll()
    assert metrics.poll() is first and len(good.asked) == 1  # a round waiting for an answer is not doubled
    assert metrics.table == {}  # the round's answers replace the table when all are in
    timeout.errback(RemotingTimeoutError("no answer"))  # the silent client is left out of this round
    assert first.called and metrics._round is None
    reg = broker.stats.registry
    assert reg.get_sample_value("rocketmq_client_consume_fail_msg_count",
                                {"clientAddr": "127.0.0.1:1", "clientId": "c1", "group": "G", "topic": "T"}) == 7
    assert reg.get_sample_value("rocketmq_client_consumer_pull_rt",
                                {"clientAddr": "127.0.0.1:1", "clientId": "c1", "group": "G", "topic": "T"}) == 2.5
    assert len(metrics.table) == 1  # topic "bad" had no figures


# A running-info body as Java's fastjson writes it: mqTable keyed by MessageQueue objects (not plain JSON).
RUNNING_INFO = ('{"jstack":"","mqTable":{{"brokerName":"b","queueId":0,"topic":"T"}:{"cachedMsgCount":3}},'
                '"properties":{"statusTable":"a property by that name","consumeType":"CONSUME_PASSIVELY"},'
                '"statusTable":{"T":{"pullRT":2.5,"consumeOKTPS":9}},"subscriptionSet":[]}')


def test_status_table_is_found_and_read_without_parsing_the_rest():
    from mq.broker.stats.client_metrics import status_table

    assert status_table(RUNNING_INFO.encode()) == {"T": {"pullRT": 2.5, "consumeOKTPS": 9}}
    assert status_table(b'{"mqTable":{}}') is None
    assert status_table(b'{"statusTable":[1,2]}') is None  # not a map
    assert status_table(b'{"statusTable":{"T":') is None  # cut short
    assert status_table(b"\xff\xfe not even text") is None
    deep = b'{"statusTable":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert status_table(deep) is None  # past the C decoder's nesting: unreadable, not an exception
    many = b'"statusTable":1,' * 20 + b'"statusTable":{"T":{}}'
    assert status_table(b"{" + many + b"}") is None  # only the first MAX_STATUS_KEYS places are tried


def test_a_huge_answer_costs_the_broker_c_speed_not_python_speed(monkeypatch):
    """16 MiB of numbers beside the table: jsonkeys' Python reader took about 45 s for this (2.5 s per MiB).
    Not timed: the Python reader is never entered, and one value (the table) is decoded."""
    from mq.broker.stats import client_metrics
    from mq.common import jsonkeys

    def python_reader(*args):
        raise AssertionError("the Python reader parsed a client's answer")

    monkeypatch.setattr(jsonkeys._Reader, "value", python_reader)
    calls = []
    real = client_metrics._DECODER.raw_decode
    monkeypatch.setattr(client_metrics._DECODER, "raw_decode", lambda text, idx: calls.append(idx) or real(text, idx))
    body = (b'{"mqTable":{{"queueId":0}:[' + b"0," * (8 << 20) + b'0]},"statusTable":{"T":{"pullTPS":1}}}')
    assert client_metrics.status_table(body) == {"T": {"pullTPS": 1}}
    assert len(calls) == 1
