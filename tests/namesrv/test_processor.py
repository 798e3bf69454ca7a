"""The NameServer's request handling, driven through the real protocol on in-memory transports."""

from __future__ import annotations

import json
import zlib

import pytest
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import formatEvent

from mq.common import fastjson
from mq.common.register_body import RegisterBrokerBody
from mq.common.route import DataVersion, TopicConfig
from mq.namesrv.config import NamesrvConfig
from mq.namesrv.kvconfig import KVConfigError
from mq.namesrv.service import NamesrvService
from mq.remoting.codes import RequestCode, ResponseCode, SerializeType
from mq.remoting.command import RemotingCommand
from mq.remoting.serialization import decode_command, encode_command
from tests.support.logs import logged_lines


class Peer:
    """One connection to the service's factory, speaking through a StringTransport."""

    def __init__(self, service: NamesrvService, port: int = 40000) -> None:
        self.transport = StringTransport(peerAddress=_Addr("127.0.0.1", port))
        self.proto = service.factory.buildProtocol(None)
        self.proto.makeConnection(self.transport)

    def call(self, request: RemotingCommand):
        request.opaque = 77
        self.transport.clear()
        self.proto.dataReceived(encode_command(request))
        data = self.transport.value()
        return decode_command(data) if data else None

    def close(self) -> None:
        self.proto.connectionLost(None)


class _Addr:
    def __init__(self, host, port):
        self.host, self.port = host, port


@pytest.fixture
def service(tmp_path):
    reactor = MemoryReactorClock()
    config = NamesrvConfig(listen_port=0, kv_config_path=str(tmp_path / "kv.json"))
    svc = NamesrvService(config, reactor)
    svc.startService()
    yield svc
    svc.stopService()


def register_request(name="broker-a", addr="10.0.0.1:10911", broker_id=0, configs=None, version=409,
                     compressed=False, crc=None, data_version=DataVersion(1, 1)):
    configs = configs or {"T": TopicConfig("T", 4, 4, 6)}
    body = RegisterBrokerBody(data_version, configs).encode(compressed)
    ext = {"brokerName": name, "brokerAddr": addr, "clusterName": "DefaultCluster",
           "haServerAddr": addr.replace("10911", "10912"), "brokerId": str(broker_id),
           "compressed": "true" if compressed else "false",
           "bodyCrc32": str(zlib.crc32(body) & 0x7FFFFFFF if crc is None else crc)}
    cmd = RemotingCommand.request(RequestCode.REGISTER_BROKER, ext, body)
    cmd.version = version
    return cmd


def route_request(topic="T", version=409, **extra):
    cmd = RemotingCommand.request(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic, **extra})
    cmd.version = version
    return cmd


def test_register_then_route_in_both_json_dialects(service):
    broker = Peer(service)
    assert broker.call(register_request()).code == ResponseCode.SUCCESS
    client = Peer(service, 40001)
    old = client.call(route_request(version=63))  # the C++ wheel's version
    assert old.code == ResponseCode.SUCCESS
    assert b'"brokerAddrs":{0:"10.0.0.1:10911"}' in old.body
    assert b" " not in old.body  # compact: Go splits brokerAddrs as text
    new = client.call(route_request(version=409))
    assert json.loads(new.body)["brokerDatas"][0]["brokerAddrs"] == {"0": "10.0.0.1:10911"}
    forced = client.call(route_request(version=63, acceptStandardJsonOnly="true"))
    assert forced.body == new.body
    route = json.loads(new.body)
    assert route["queueDatas"] == [
        {"brokerName": "broker-a", "perm": 6, "readQueueNums": 4, "topicSysFlag": 0, "writeQueueNums": 4}
    ]
    assert route["filterServerTable"] == {}


def test_route_cache_follows_changes(service):
    broker = Peer(service)
    broker.call(register_request(configs={"T": TopicConfig("T", 4, 4, 6)}))
    client = Peer(service, 40001)
    assert json.loads(client.call(route_request()).body)["queueDatas"][0]["writeQueueNums"] == 4
    broker.call(register_request(configs={"T": TopicConfig("T", 8, 8, 6)}, data_version=DataVersion(2, 2)))
    assert json.loads(client.call(route_request()).body)["queueDatas"][0]["writeQueueNums"] == 8


def test_unknown_topic_is_topic_not_exist(service):
    response = Peer(service).call(route_request("nope"))
    assert response.code == ResponseCode.TOPIC_NOT_EXIST
    assert "nope" in response.remark


def test_response_uses_request_serialization(service):
    Peer(service).call(register_request())
    request = route_request()
    request.serialize_type = SerializeType.ROCKETMQ
    response = Peer(service, 40001).call(request)
    assert response.serialize_type == SerializeType.ROCKETMQ and response.code == ResponseCode.SUCCESS
    assert response.opaque == 77 and response.is_response


def test_compressed_registration(service):
    assert Peer(service).call(register_request(compressed=True)).code == ResponseCode.SUCCESS
    assert Peer(service, 40001).call(route_request()).code == ResponseCode.SUCCESS


def test_a_compressed_registration_that_inflates_past_a_frame_is_refused(service):
    """A zlib bomb: 16 KiB that would inflate to 16 MiB + 1 byte (and a megabyte to a gigabyte) is refused once
    the bound is reached, the broker not registered."""
    from mq.common.register_body import MAX_INFLATED_REGISTER_BODY

    request = register_request(compressed=True)
    request.body = zlib.compress(b"\0" * (MAX_INFLATED_REGISTER_BODY + 1), 9)
    request.ext_fields["bodyCrc32"] = str(zlib.crc32(request.body) & 0x7FFFFFFF)
    response = Peer(service).call(request)
    assert response.code == ResponseCode.SYSTEM_ERROR
    assert f"inflates to more than {MAX_INFLATED_REGISTER_BODY} bytes" in response.remark
    assert service.routes.broker_live_table == {}
    assert Peer(service, 40001).call(route_request()).code == ResponseCode.TOPIC_NOT_EXIST


def test_crc_mismatch_and_bad_body_refused(service):
    response = Peer(service).call(register_request(crc=12345))
    assert response.code == ResponseCode.SYSTEM_ERROR and "crc32" in response.remark
    bad = register_request()
    bad.body = b"{not json"
    bad.ext_fields["bodyCrc32"] = "0"
    response = Peer(service).call(bad)
    assert response.code == ResponseCode.SYSTEM_ERROR and "register body" in response.remark
    assert service.routes.broker_live_table == {}


def test_old_broker_version_sends_bare_wrapper(service):
    request = register_request(version=36)
    wrapper = {"dataVersion": {"counter": 1, "timestamp": 1},
               "topicConfigTable": {"OLD": TopicConfig("OLD", 2, 2, 6).to_json()}}
    request.body = fastjson.dumps_bytes(wrapper)
    request.ext_fields["bodyCrc32"] = "0"
    assert Peer(service).call(request).code == ResponseCode.SUCCESS
    assert service.routes.pickup_topic_route_data("OLD") is not None


def test_slave_registration_answer_names_master(service):
    Peer(service).call(register_request())
    response = Peer(service, 40001).call(register_request(addr="10.0.0.2:10911", broker_id=1))
    assert response.ext_fields == {"haServerAddr": "10.0.0.1:10912", "masterAddr": "10.0.0.1:10911"}


def test_missing_header_field_named(service):
    request = register_request()
    del request.ext_fields["brokerAddr"]
    response = Peer(service).call(request)
    assert response.code == ResponseCode.SYSTEM_ERROR and "brokerAddr" in response.remark
    request = register_request()
    request.ext_fields["brokerId"] = "zero"
    response = Peer(service).call(request)
    assert response.code == ResponseCode.SYSTEM_ERROR and "brokerId" in response.remark


def test_unknown_code_answered_not_supported(service):
    response = Peer(service).call(RemotingCommand.request(4242))
    assert response.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED and "4242" in response.remark


def test_oneway_registration_gets_no_answer_but_registers(service):
    request = register_request()
    request.flag = 2
    assert Peer(service).call(request) is None
    assert "10.0.0.1:10911" in service.routes.broker_live_table


def test_closed_connection_drops_broker_at_once(service):
    broker = Peer(service)
    broker.call(register_request())
    broker.close()
    assert Peer(service, 40001).call(route_request()).code == ResponseCode.TOPIC_NOT_EXIST


def test_scan_loop_expires_silent_brokers(service):
    reactor = service.reactor
    broker = Peer(service)
    broker.call(register_request())
    reactor.advance(10)
    for _ in range(11):
        reactor.advance(10)
    assert "10.0.0.1:10911" in service.routes.broker_live_table  # 120 s: not yet
    reactor.advance(10)
    assert service.routes.broker_live_table == {}
    assert broker.transport.disconnecting
    assert service.metrics.brokers_expired._value.get() == 1


def test_query_data_version_and_unregister(service):
    broker = Peer(service)
    broker.call(register_request(data_version=DataVersion(3, 3)))
    ext = {"brokerName": "broker-a", "brokerAddr": "10.0.0.1:10911", "clusterName": "DefaultCluster", "brokerId": "0"}
    same = broker.call(RemotingCommand.request(RequestCode.QUERY_DATA_VERSION, dict(ext), b'{"counter":3,"timestamp":3}'))
    assert same.ext_fields == {"changed": "false"}
    other = broker.call(RemotingCommand.request(RequestCode.QUERY_DATA_VERSION, dict(ext), b'{"counter":4,"timestamp":4}'))
    assert other.ext_fields == {"changed": "true"}
    assert broker.call(RemotingCommand.request(RequestCode.UNREGISTER_BROKER, dict(ext))).code == ResponseCode.SUCCESS
    assert Peer(service, 40001).call(route_request()).code == ResponseCode.TOPIC_NOT_EXIST


def test_cluster_info_and_topic_lists(service):
    Peer(service).call(register_request(configs={"T": TopicConfig("T"), "U": TopicConfig("U")}))
    client = Peer(service, 40001)
    info = client.call(RemotingCommand.request(RequestCode.GET_BROKER_CLUSTER_INFO))
    assert b'"brokerAddrs":{0:"10.0.0.1:10911"}' in info.body
    assert fastjson.loads(info.body)["clusterAddrTable"] == {"DefaultCluster": ["broker-a"]}
    topics = client.call(RemotingCommand.request(RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER))
    assert json.loads(topics.body) == {"topicList": ["T", "U"]}
    by_cluster = client.call(RemotingCommand.request(RequestCode.GET_TOPICS_BY_CLUSTER, {"cluster": "DefaultCluster"}))
    assert json.loads(by_cluster.body) == {"topicList": ["T", "U"]}
    system = client.call(RemotingCommand.request(RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_NS))
    assert json.loads(system.body) == {"topicList": ["DefaultCluster", "broker-a"], "brokerAddr": "10.0.0.1:10911"}
    deleted = client.call(RemotingCommand.request(RequestCode.DELETE_TOPIC_IN_NAMESRV, {"topic": "U"}))
    assert deleted.code == ResponseCode.SUCCESS
    assert json.loads(client.call(RemotingCommand.request(RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER)).body) == {
        "topicList": ["T"]
    }


def test_write_perm_codes(service):
    Peer(service).call(register_request(configs={"T": TopicConfig("T"), "U": TopicConfig("U")}))
    client = Peer(service, 40001)
    wiped = client.call(RemotingCommand.request(RequestCode.WIPE_WRITE_PERM_OF_BROKER, {"brokerName": "broker-a"}))
    assert wiped.ext_fields == {"wipeTopicCount": "2"}
    assert json.loads(client.call(route_request()).body)["queueDatas"][0]["perm"] == 4
    added = client.call(RemotingCommand.request(RequestCode.ADD_WRITE_PERM_OF_BROKER, {"brokerName": "broker-a"}))
    assert added.ext_fields == {"addTopicCount": "2"}
    assert json.loads(client.call(route_request()).body)["queueDatas"][0]["perm"] == 6


def test_kv_config_round_trip_and_persistence(service, tmp_path):
    client = Peer(service)
    put = RemotingCommand.request(RequestCode.PUT_KV_CONFIG, {"namespace": "NS", "key": "k", "value": "v1"})
    assert client.call(put).code == ResponseCode.SUCCESS
    got = client.call(RemotingCommand.request(RequestCode.GET_KV_CONFIG, {"namespace": "NS", "key": "k"}))
    assert got.ext_fields == {"value": "v1"}
    listed = client.call(RemotingCommand.request(RequestCode.GET_KVLIST_BY_NAMESPACE, {"namespace": "NS"}))
    assert json.loads(listed.body) == {"table": {"k": "v1"}}
    # Survives a restart: a new service reads the file.
    reloaded = NamesrvService(NamesrvConfig(listen_port=0, kv_config_path=str(tmp_path / "kv.json")), MemoryReactorClock())
    reloaded.startService()
    try:
        assert reloaded.kv.get("NS", "k") == "v1"
    finally:
        reloaded.stopService()
    delete = RemotingCommand.request(RequestCode.DELETE_KV_CONFIG, {"namespace": "NS", "key": "k"})
    assert client.call(delete).code == ResponseCode.SUCCESS
    missing = client.call(RemotingCommand.request(RequestCode.GET_KV_CONFIG, {"namespace": "NS", "key": "k"}))
    assert missing.code == ResponseCode.QUERY_NOT_FOUND
    missing_ns = client.call(RemotingCommand.request(RequestCode.GET_KVLIST_BY_NAMESPACE, {"namespace": "NS"}))
    assert missing_ns.code == ResponseCode.QUERY_NOT_FOUND
    no_value = client.call(RemotingCommand.request(RequestCode.PUT_KV_CONFIG, {"namespace": "NS", "key": "k"}))
    assert no_value.code == ResponseCode.SYSTEM_ERROR and "value" in no_value.remark


def kv_put(namespace="NS", key="k", value="v"):
    return RemotingCommand.request(RequestCode.PUT_KV_CONFIG, {"namespace": namespace, "key": key, "value": value})


@pytest.mark.parametrize("table, request_fields, remark", [
    ({}, {"namespace": "N" * 256}, "is longer than 255 characters"),
    ({}, {"key": "k" * 256}, "the key 'kkkk"),
    ({}, {"value": "é" * 32769}, "the value is 65538 bytes, more than 65536"),  # 2 bytes each in UTF-8
    ({f"NS{i}": {"k": "v"} for i in range(100)}, {"namespace": "NEW"}, "already 100 namespaces"),
    ({"NS": {f"k{i}": "v" for i in range(10_000)}}, {"key": "new"}, "namespace 'NS' already has 10000 keys"),
    ({"NS": {f"k{i}": "x" * 65536 for i in range(127)}}, {"key": "new", "value": "x" * 65536},
     "the KV config file would be 8389801 bytes, more than 8388608"),  # each value within its bound, the whole over 8 MiB
])
def test_kv_put_beyond_a_bound_is_refused_naming_it_and_changes_nothing(service, tmp_path, table, request_fields,
                                                                        remark):
    service.kv.table = table
    service.kv.persist()
    on_disk = (tmp_path / "kv.json").read_bytes()
    version = service.kv.version
    answer = Peer(service).call(kv_put(**request_fields))
    assert answer.code == ResponseCode.SYSTEM_ERROR
    assert answer.remark.startswith("KV config not changed: ") and remark in answer.remark
    assert len(answer.remark) < 200
    assert service.kv.table == table and service.kv.version == version
    assert (tmp_path / "kv.json").read_bytes() == on_disk


def test_kv_put_at_a_bound_is_taken(service):
    """A full namespace takes a new value for a key it has; the longest names and value are taken."""
    service.kv.table = {"NS": {f"k{i}": "v" for i in range(10_000)}}
    client = Peer(service)
    assert client.call(kv_put(key="k7", value="broker-a:8")).code == ResponseCode.SUCCESS
    assert service.kv.get("NS", "k7") == "broker-a:8"
    assert client.call(kv_put("N" * 255, "k" * 255, "x" * 65536)).code == ResponseCode.SUCCESS
    assert service.kv.get("N" * 255, "k" * 255) == "x" * 65536


def test_kv_put_logs_the_length_of_the_value_not_the_value(service, log_events):
    assert Peer(service).call(kv_put("ORDER_TOPIC_CONFIG", "T", "broker-a:8;broker-b:8")).code == ResponseCode.SUCCESS
    Peer(service).call(kv_put(value="secret" * 20000))
    lines = [formatEvent(e) for e in log_events]
    assert "KV config put ORDER_TOPIC_CONFIG T (21 characters)" in lines
    assert not [line for line in lines if "broker-a:8" in line or "secret" in line]
    assert logged_lines(log_events, "PUT_KV_CONFIG from 127.0.0.1:40000 refused: the value is 120000 bytes")


def test_a_kv_file_over_its_bound_stops_the_service_and_is_kept(tmp_path):
    path = tmp_path / "kv.json"
    big = fastjson.dumps({"configTable": {"NS": {f"k{i}": "x" * 65536 for i in range(129)}}})
    path.write_text(big)
    with pytest.raises(KVConfigError, match=f"{path} is larger than 8388608 bytes: trim it or move it away"):
        NamesrvService(NamesrvConfig(listen_port=0, kv_config_path=str(path)), MemoryReactorClock())
    assert path.read_text() == big and not (tmp_path / "kv.json.bak").exists()


def test_order_topic_conf_in_route_and_register_answer(service):
    client = Peer(service, 40001)
    client.call(RemotingCommand.request(RequestCode.PUT_KV_CONFIG,
                                       {"namespace": "ORDER_TOPIC_CONFIG", "key": "T", "value": "broker-a:4"}))
    answer = Peer(service).call(register_request())
    assert json.loads(answer.body) == {"table": {"T": "broker-a:4"}}
    assert "orderTopicConf" not in json.loads(client.call(route_request()).body)
    service.config.order_message_enable = True  # as UPDATE_NAMESRV_CONFIG would: remembered answers are stale
    assert json.loads(client.call(route_request()).body)["orderTopicConf"] == "broker-a:4"
    client.call(RemotingCommand.request(RequestCode.PUT_KV_CONFIG,
                                       {"namespace": "ORDER_TOPIC_CONFIG", "key": "T", "value": "broker-a:8"}))
    assert json.loads(client.call(route_request()).body)["orderTopicConf"] == "broker-a:8"
    client.call(RemotingCommand.request(RequestCode.DELETE_KV_CONFIG, {"namespace": "ORDER_TOPIC_CONFIG", "key": "T"}))
    assert "orderTopicConf" not in json.loads(client.call(route_request()).body)


def test_repeated_route_queries_are_answered_from_memory_and_counted(service):
    from prometheus_client import generate_latest

    broker = Peer(service)
    broker.call(register_request())
    client = Peer(service, 40001)
    answers = [client.call(route_request()) for _ in range(5)]
    assert len({a.body for a in answers}) == 1 and all(a.opaque == 77 for a in answers)
    assert service.memo.hits == {(RequestCode.GET_ROUTEINFO_BY_TOPIC, ResponseCode.SUCCESS): 4}
    text = generate_latest(service.metrics.registry).decode()
    assert 'mq_namesrv_requests_total{request="GET_ROUTEINFO_BY_TOPIC",response="SUCCESS"} 5.0' in text
    again = generate_latest(service.metrics.registry).decode()  # a second scrape counts nothing twice
    assert 'mq_namesrv_requests_total{request="GET_ROUTEINFO_BY_TOPIC",response="SUCCESS"} 5.0' in again
    # routes carry filter servers: a re-registration that changes only them changes the answer
    with_filter = register_request()
    body = RegisterBrokerBody(DataVersion(1, 1), {"T": TopicConfig("T", 4, 4, 6)}, ["10.0.0.1:9999"]).encode(False)
    with_filter.body = body
    with_filter.ext_fields["bodyCrc32"] = str(zlib.crc32(body) & 0x7FFFFFFF)
    assert broker.call(with_filter).code == ResponseCode.SUCCESS
    assert json.loads(client.call(route_request()).body)["filterServerTable"] == {"10.0.0.1:10911": ["10.0.0.1:9999"]}
    broker.close()  # the broker's connection closes: its routes go at once, remembered answers with them
    assert client.call(route_request()).code == ResponseCode.TOPIC_NOT_EXIST


def test_namesrv_config_get_and_update(service):
    client = Peer(service)
    got = client.call(RemotingCommand.request(RequestCode.GET_NAMESRV_CONFIG))
    assert b"brokerChannelExpiredTime=120.0" in got.body
    ok = client.call(RemotingCommand.request(RequestCode.UPDATE_NAMESRV_CONFIG, None, b"brokerChannelExpiredTime=300\n"))
    assert ok.code == ResponseCode.SUCCESS and service.config.broker_expiry == 300.0
    refused = client.call(RemotingCommand.request(RequestCode.UPDATE_NAMESRV_CONFIG, None, b"listenPort=1\n"))
    assert refused.code == ResponseCode.SYSTEM_ERROR and "listenPort" in refused.remark
    unknown = client.call(RemotingCommand.request(RequestCode.UPDATE_NAMESRV_CONFIG, None, b"bogus=1\n"))
    assert unknown.code == ResponseCode.SYSTEM_ERROR and "bogus" in unknown.remark


@pytest.mark.parametrize("body", [b"7", b"[1]", b'"v"', b'{"counter":Infinity}', b'{"counter":[1]}'])
def test_query_data_version_refuses_a_body_that_is_not_a_data_version(service, body):
    request = RemotingCommand.request(RequestCode.QUERY_DATA_VERSION, {
        "brokerName": "broker-a", "brokerAddr": "10.0.0.1:10911", "clusterName": "DefaultCluster", "brokerId": "0"},
        body)
    response = Peer(service).call(request)
    assert response.code == ResponseCode.SYSTEM_ERROR
    assert response.remark.startswith("data version body does not parse") and "object has no" not in response.remark


@pytest.mark.parametrize("body, remark", [
    (b"brokerChannelExpiredTime=-1\n", "brokerChannelExpiredTime: -1 is outside 1..86400 (s)"),
    (b"brokerChannelExpiredTime=30\n", "brokerChannelExpiredTime: 30 is outside 90..86400 (s) when changed while"),
    (b"brokerChannelExpiredTime=nan\n", "brokerChannelExpiredTime: 'nan' is not a finite number"),
    (b"scanNotActiveBrokerInterval=0\n", "scanNotActiveBrokerInterval: 0 is outside 1..60 (s)"),
    (b"orderMessageEnable=true\nscanNotActiveBrokerInterval=1e9\n", "scanNotActiveBrokerInterval: 1000000000 is"),
])
def test_namesrv_config_update_out_of_range_is_refused_and_changes_nothing(service, body, remark):
    broker = Peer(service)
    broker.call(register_request())
    before = service.config.as_properties()
    refused = Peer(service).call(RemotingCommand.request(RequestCode.UPDATE_NAMESRV_CONFIG, None, body))
    assert refused.code == ResponseCode.SYSTEM_ERROR and remark in refused.remark
    assert service.config.as_properties() == before
    service.reactor.advance(60)  # several scans: the broker, 60 s silent, is still there
    assert "10.0.0.1:10911" in service.routes.broker_live_table


def test_namesrv_config_changes_reach_the_scan(service):
    """A new expiry applies at the next scan; a new scan interval restarts the scan's timer."""
    broker = Peer(service)
    broker.call(register_request())
    body = b"brokerChannelExpiredTime=100\nscanNotActiveBrokerInterval=50\n"
    assert Peer(service).call(RemotingCommand.request(RequestCode.UPDATE_NAMESRV_CONFIG, None, body)).code == 0
    assert service.routes.broker_expiry_ms == 100_000
    service.reactor.advance(100)  # scans at 50 and 100 s: 100 s silent is not more than 100 s
    assert "10.0.0.1:10911" in service.routes.broker_live_table
    service.reactor.advance(49)  # no scan between 100 and 150 s, though the old interval (10 s) would scan
    assert "10.0.0.1:10911" in service.routes.broker_live_table
    service.reactor.advance(1)
    assert service.routes.broker_live_table == {}


def test_repeating_the_scan_interval_does_not_postpone_the_scan(service):
    """Restarting the timer on every update would let a peer that repeats one keep scans from ever running."""
    broker = Peer(service)
    broker.call(register_request())
    for _ in range(125):  # scans every 10 s; the broker is now 125 s silent, and the next scan (at 130 s) drops it
        service.reactor.advance(1)
    assert "10.0.0.1:10911" in service.routes.broker_live_table
    body = b"scanNotActiveBrokerInterval=10\n"
    for _ in range(5):
        assert Peer(service).call(RemotingCommand.request(RequestCode.UPDATE_NAMESRV_CONFIG, None, body)).code == 0
        service.reactor.advance(2)
    assert service.routes.broker_live_table == {}


def test_made_up_request_codes_share_one_metrics_series(service):
    from prometheus_client import generate_latest

    client = Peer(service, 40002)
    for code in range(60_000, 60_050):  # codes no RocketMQ version has
        assert client.call(RemotingCommand.request(code)).code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
    text = generate_latest(service.metrics.registry).decode()
    assert 'mq_namesrv_requests_total{request="UNKNOWN(-1)",response="REQUEST_CODE_NOT_SUPPORTED"} 50.0' in text
    assert 'request="60001"' not in text and "UNKNOWN(60001)" not in text  # not "60001" alone: timestamps hold it
    assert len(service.metrics._request_counters) < 10
