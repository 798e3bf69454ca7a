"""Admin codes, broker config (options, broker.conf, runtime updates) and the JSON state files."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.python import usage

from mq.broker.config import BrokerConfig
from mq.broker.tap import Options
from mq.client.simple import heartbeat_request
from mq.common import fastjson
from mq.remoting.client import RemotingClient
from mq.remoting.codes import LanguageCode, RequestCode
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.protocol import RequestDispatcher
from tests.support.polling import poll


@pytest_twisted.inlineCallbacks
def test_topic_admin(client, addr, broker):
    r = yield client.create_topic(addr, "AdmT", queues=3, order=True)
    assert r.code == RC.SUCCESS
    tc = broker.topic_config_manager.table["AdmT"]
    assert (tc.read_queue_nums, tc.order) == (3, True)
    r = yield client.invoke(addr, RequestCode.GET_ALL_TOPIC_CONFIG)
    data = fastjson.loads(r.body)
    assert data["topicConfigTable"]["AdmT"]["readQueueNums"] == 3 and data["topicConfigTable"]["TBW102"]["perm"] == 7
    yield client.send(addr, "AdmT", b"x", queue_id=1)
    r = yield client.invoke(addr, RequestCode.GET_TOPIC_STATS_INFO, {"topic": "AdmT"})
    assert b'{"brokerName":"broker-t","queueId":1,"topic":"AdmT"}:{"lastUpdateTimestamp":' in r.body
    r = yield client.invoke(addr, RequestCode.GET_TOPIC_STATS_INFO, {"topic": "Nope"})
    assert r.code == RC.TOPIC_NOT_EXIST
    for bad, remark in (("bad topic", "characters outside"), ("TBW102", "conflict with system topic")):
        r = yield client.create_topic(addr, bad)
        assert r.code == RC.SYSTEM_ERROR and remark in r.remark
    r = yield client.create_topic(addr, "AdmZero", queues=0)
    assert r.code == RC.SYSTEM_ERROR and "readQueueNums 0 is out of range" in r.remark
    r = yield client.invoke(addr, RequestCode.DELETE_TOPIC_IN_BROKER, {"topic": "AdmT"})
    assert r.code == RC.SUCCESS and "AdmT" not in broker.topic_config_manager.table
    saved = fastjson.loads(open(broker.topic_config_manager.path).read())
    assert "AdmT" not in saved["topicConfigTable"] and saved["dataVersion"]["counter"] >= 2


@pytest_twisted.inlineCallbacks
def test_queue_offsets_and_consume_stats(client, addr, broker):
    for _ in range(3):
        yield client.send(addr, "AdmO", b"x", queue_id=0)
    r = yield client.max_offset(addr, "AdmO", 0)
    assert r.ext_fields == {"offset": "3"}
    r = yield client.invoke(addr, RequestCode.GET_MIN_OFFSET, {"topic": "AdmO", "queueId": "0"})
    assert r.ext_fields == {"offset": "0"}
    r = yield client.invoke(addr, RequestCode.SEARCH_OFFSET_BY_TIMESTAMP,
                            {"topic": "AdmO", "queueId": "0", "timestamp": "0"})
    assert r.ext_fields == {"offset": "0"}
    r = yield client.invoke(addr, RequestCode.GET_EARLIEST_MSG_STORETIME, {"topic": "AdmO", "queueId": "0"})
    assert int(r.ext_fields["timestamp"]) > 0
    yield client.update_offset(addr, "sg", "AdmO", 0, 1)
    r = yield client.invoke(addr, RequestCode.GET_CONSUME_STATS, {"consumerGroup": "sg"})
    assert b'"queueId":0,"topic":"AdmO"}:{"brokerOffset":3,"consumerOffset":1,' in r.body
    lag = broker.stats.registry.get_sample_value("mq_broker_consumer_lag", {"group": "sg", "topic": "AdmO"})
    assert lag == 2
    assert broker.stats.registry.get_sample_value("mq_broker_messages_in_total", {"topic": "AdmO"}) == 3
    r = yield client.invoke(addr, RequestCode.GET_BROKER_RUNTIME_INFO)
    table = fastjson.loads(r.body)["table"]
    assert table["brokerVersion"] == "409" and all(isinstance(v, str) for v in table.values())


@pytest_twisted.inlineCallbacks
def test_broker_config_codes(client, addr, broker):
    r = yield client.invoke(addr, RequestCode.GET_BROKER_CONFIG)
    assert b"brokerName=broker-t\n" in r.body and b"brokerIP1=127.0.0.1\n" in r.body and "version" in r.ext_fields
    r = yield client.invoke(addr, RequestCode.UPDATE_BROKER_CONFIG, None, b"autoCreateTopicEnable=false\n")
    assert r.code == RC.SUCCESS and broker.config.auto_create_topic_enable is False
    r = yield client.invoke(addr, RequestCode.UPDATE_BROKER_CONFIG, None, b"listenPort=1\n")
    assert r.code == RC.SYSTEM_ERROR and "cannot change while the broker runs: listenPort" in r.remark
    r = yield client.invoke(addr, RequestCode.UPDATE_BROKER_CONFIG, None, b"defaultTopicQueueNums=many\n")
    assert r.code == RC.SYSTEM_ERROR and "defaultTopicQueueNums" in r.remark
    r = yield client.invoke(addr, RequestCode.UPDATE_BROKER_CONFIG, None, b'{"clientID":"x"}')
    assert r.code == RC.SYSTEM_ERROR and "unknown settings" in r.remark and "java.util.Properties" in r.remark
    assert broker.config.auto_create_topic_enable is False  # nothing else changed


@pytest_twisted.inlineCallbacks
def test_subscription_group_codes(client, addr, broker):
    body = b'{"groupName":"sgx","consumeEnable":false,"retryMaxTimes":3}'
    r = yield client.invoke(addr, RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, None, body)
    assert r.code == RC.SUCCESS
    r = yield client.invoke(addr, RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG)
    table = fastjson.loads(r.body)["subscriptionGroupTable"]
    assert table["sgx"]["consumeEnable"] is False and "TOOLS_CONSUMER" in table
    r = yield client.invoke(addr, RequestCode.DELETE_SUBSCRIPTIONGROUP, {"groupName": "sgx"})
    assert r.code == RC.SUCCESS and "sgx" not in broker.subscription_group_manager.table


def test_options_and_broker_conf(tmp_path):
    conf = tmp_path / "broker.conf"
    conf.write_text("# comment\nbrokerClusterName = C1\nbrokerName=b9\nlistenPort=20911\n"
                    "flushDiskType=SYNC_FLUSH\nmappedFileSizeCommitLog=1048576\nbrokerIP1=10.1.2.3\n")
    o = Options()
    o.parseOptions(["--config", str(conf), "--port", "30911", "--namesrv", "a:1;b:2", "--store", str(tmp_path)])
    c = o.config
    assert (c.broker_cluster_name, c.broker_name, c.listen_port, c.flush_disk_type.value) == (
        "C1", "b9", 30911, "SYNC_FLUSH")
    assert c.namesrv_list == ["a:1", "b:2"] and c.broker_addr == "10.1.2.3:30911"
    assert c.store_config().mapped_file_size_commit_log == 1048576
    with pytest.raises(SystemExit, match="SLAVE needs"):
        Options().parseOptions(["--role", "SLAVE"])
    with pytest.raises(usage.UsageError, match="not one of"):
        Options().parseOptions(["--flush", "SOMETIMES"])
    help_text = str(Options())
    for option in ("--port", "--namesrv", "--broker-name", "--cluster", "--broker-id", "--role", "--flush",
                   "--store", "--metrics-port", "--config"):
        assert option in help_text


def test_register_period_is_clamped():
    assert BrokerConfig(register_name_server_period=1000).register_period_seconds == 10
    assert BrokerConfig(register_name_server_period=600_000).register_period_seconds == 60
    assert BrokerConfig().register_period_seconds == 30


def test_state_files_fall_back_to_backup(make_broker):
    broker = make_broker()
    m = broker.consumer_offset_manager
    m.commit("g", "T", 0, 5)
    m.persist()
    m.commit("g", "T", 0, 6)
    m.persist()
    with open(m.path, "w") as f:
        f.write("{garbage")
    m.table = {}
    assert m.load() and m.query("g", "T", 0) == 5


class _ResetListener:
    """A client connection that records the RESET_CONSUMER_CLIENT_OFFSET requests the broker sends it."""

    def __init__(self, language: int) -> None:
        self.language = language
        self.got = []
        self.arrived = defer.Deferred()
        dispatcher = RequestDispatcher()
        dispatcher.register(RequestCode.RESET_CONSUMER_CLIENT_OFFSET, self._reset)
        self.remoting = RemotingClient(reactor, dispatcher)

    def _reset(self, request, channel):
        self.got.append(request)
        if not self.arrived.called:
            self.arrived.callback(request)

    def heartbeat(self, addr, client_id, group, topic):
        request = heartbeat_request(client_id, (), [(group, [topic], "CLUSTERING")])
        request.language = self.language
        return self.remoting.invoke(addr, request)


@pytest_twisted.inlineCallbacks
def test_invoke_broker_to_reset_offset(client, addr, broker):
    for qid in (0, 0, 0, 1):
        yield client.send(addr, "RstT", b"x", queue_id=qid)
    header = {"topic": "RstT", "group": "RstG", "timestamp": "0", "isForce": "true"}
    r = yield client.invoke(addr, RequestCode.INVOKE_BROKER_TO_RESET_OFFSET, header)
    assert r.code == RC.CONSUMER_NOT_ONLINE and "Consumer not online" in r.remark
    r = yield client.invoke(addr, RequestCode.INVOKE_BROKER_TO_RESET_OFFSET, dict(header, topic="NoSuchTopic"))
    assert r.code == RC.SYSTEM_ERROR and "no topic in this broker. topic=NoSuchTopic" in r.remark

    java, cpp = _ResetListener(LanguageCode.JAVA), _ResetListener(LanguageCode.CPP)
    try:
        for listener, cid in ((java, "127.0.0.1@java"), (cpp, "127.0.0.1@cpp")):
            assert (yield listener.heartbeat(addr, cid, "RstG", "RstT")).code == RC.SUCCESS
        broker.consumer_offset_manager.commit("RstG", "RstT", 0, 2)
        broker.consumer_offset_manager.commit("RstG", "RstT", 1, 1)
        r = yield client.invoke(addr, RequestCode.INVOKE_BROKER_TO_RESET_OFFSET, header)
        assert r.code == RC.SUCCESS, r.remark
        assert r.body == (b'{"offsetTable":{{"brokerName":"broker-t","queueId":0,"topic":"RstT"}:0,'
                          b'{"brokerName":"broker-t","queueId":1,"topic":"RstT"}:0,'
                          b'{"brokerName":"broker-t","queueId":2,"topic":"RstT"}:0,'
                          b'{"brokerName":"broker-t","queueId":3,"topic":"RstT"}:0}}')
        assert broker.consumer_offset_manager.query_queues("RstG", "RstT") == {0: 0, 1: 0, 2: 0, 3: 0}
        to_java, to_cpp = (yield java.arrived), (yield cpp.arrived)
        assert to_java.is_oneway and to_java.body == r.body
        assert to_java.ext_fields["group"] == "RstG" and to_java.ext_fields["timestamp"] == "0"
        assert fastjson.loads(to_cpp.body)["offsetTable"][0] == {"brokerName": "broker-t", "offset": 0,
                                                                "queueId": 0, "topic": "RstT"}

        # -1 is each queue's max offset
        r = yield client.invoke(addr, RequestCode.INVOKE_BROKER_TO_RESET_OFFSET, dict(header, timestamp="-1"))
        assert broker.consumer_offset_manager.query_queues("RstG", "RstT") == {0: 3, 1: 1, 2: 0, 3: 0}
        # not forced: a queue only moves back (a time after every message means each queue's max offset)
        broker.consumer_offset_manager.commit("RstG", "RstT", 0, 2)
        later = str(broker.now_ms() + 3600_000)
        for timestamp, expected in ((later, {0: 2, 1: 1, 2: 0, 3: 0}), ("0", {0: 0, 1: 0, 2: 0, 3: 0})):
            r = yield client.invoke(addr, RequestCode.INVOKE_BROKER_TO_RESET_OFFSET,
                                    dict(header, timestamp=timestamp, isForce="false"))
            assert r.code == RC.SUCCESS and broker.consumer_offset_manager.query_queues("RstG", "RstT") == expected
        yield poll(lambda: (len(java.got), len(cpp.got)), lambda n: n == (4, 4), 10, what="four resets each")
    finally:
        yield java.remoting.close()
        yield cpp.remoting.close()


def test_saved_runtime_settings_sit_between_config_file_and_options(tmp_path):
    conf = tmp_path / "broker.conf"
    conf.write_text("defaultTopicQueueNums=3\nslaveReadEnable=true\nmaxMessageSize=2000\n")
    saved = tmp_path / "store" / "config" / "broker.properties"
    saved.parent.mkdir(parents=True)
    saved.write_text("defaultTopicQueueNums=7\nnamesrvAddr=x:1\nlistenPort=5\n")
    o = Options()
    o.parseOptions(["--config", str(conf), "--store", str(tmp_path / "store"), "--namesrv", "a:1"])
    c = o.config
    assert (c.default_topic_queue_nums, c.slave_read_enable, c.max_message_size) == (7, True, 2000)
    assert c.namesrv_addr == "a:1" and c.listen_port != 5  # options win; non-runtime keys in the file are ignored
    saved.write_text("defaultTopicQueueNums=many\n")
    with pytest.raises(SystemExit, match="defaultTopicQueueNums"):
        Options().parseOptions(["--store", str(tmp_path / "store")])
