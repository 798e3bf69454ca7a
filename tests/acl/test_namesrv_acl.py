"""Signed writes on a real ``twistd namesrv --acl``: nobody without an admin signature changes a route.

Off by default: an unsigned REGISTER_BROKER still works against a NameServer started without ``--acl``.
"""

from __future__ import annotations

import zlib
from types import SimpleNamespace

import pytest

from mq.acl.signing import Credentials
from mq.common.register_body import RegisterBrokerBody
from mq.common.route import DataVersion, TopicConfig
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand
from tests.admin.conftest import mqadmin, start_broker, start_namesrv
from tests.broker.wire import Wire, call
from tests.support.processes import free_port, wait_until

ADMIN = Credentials("nsAdmin01", "nsAdminSecret")
USER = Credentials("nsUser001", "nsUserSecret")
PLAIN_ACL = f"""\
accounts:
  - accessKey: {ADMIN.access_key}
    secretKey: {ADMIN.secret_key}
    admin: true
  - accessKey: {USER.access_key}
    secretKey: {USER.secret_key}
    admin: false
    defaultTopicPerm: PUB|SUB
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    (home / "conf").mkdir()
    (home / "conf" / "plain_acl.yml").write_text(PLAIN_ACL)
    return home


@pytest.fixture(scope="module")
def acl_namesrv(home, tmp_path_factory):
    proc = start_namesrv(tmp_path_factory.mktemp("namesrv"), "--acl", env={"ROCKETMQ_HOME": str(home)})
    yield proc
    proc.stop(timeout=15)


def register_request(topic: str, broker_name: str, addr: str) -> RemotingCommand:
    body = RegisterBrokerBody(DataVersion(1, 1), {topic: TopicConfig(topic, 4, 4, 6)}).encode()
    ext = {"brokerName": broker_name, "brokerAddr": addr, "clusterName": "FakeCluster", "haServerAddr": addr,
           "brokerId": "0", "compressed": "false", "bodyCrc32": str(zlib.crc32(body) & 0x7FFFFFFF)}
    return RemotingCommand.request(RequestCode.REGISTER_BROKER, ext, body)


def route(namesrv, topic):
    return call(namesrv.addr, RemotingCommand.request(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic}))


def test_unsigned_and_non_admin_writes_are_refused_and_change_nothing(acl_namesrv):
    for signer, reason in ((None, "No accessKey is configured"),
                           (USER, f"Need admin permission for request code={int(RequestCode.REGISTER_BROKER)}"),
                           (Credentials(ADMIN.access_key, "wrongSecret"), "Check signature failed")):
        request = register_request("HijackTopic", "fake-broker", "10.6.6.6:10911")
        if signer is not None:
            signer.sign_request(request)
        r = call(acl_namesrv.addr, request)
        assert r.code == ResponseCode.SYSTEM_ERROR and reason in r.remark, r.remark
        assert route(acl_namesrv, "HijackTopic").code == ResponseCode.TOPIC_NOT_EXIST
    for code, ext in ((RequestCode.PUT_KV_CONFIG, {"namespace": "ns", "key": "k", "value": "v"}),
                      (RequestCode.WIPE_WRITE_PERM_OF_BROKER, {"brokerName": "any"}),
                      (RequestCode.UPDATE_NAMESRV_CONFIG, None)):
        r = call(acl_namesrv.addr, RemotingCommand.request(code, ext, b"brokerChannelExpiredTime=1"
                                                           if code == RequestCode.UPDATE_NAMESRV_CONFIG else b""))
        assert r.code == ResponseCode.SYSTEM_ERROR and "No accessKey is configured" in r.remark, (code, r.remark)
    # Reads stay open.
    r = call(acl_namesrv.addr, RemotingCommand.request(RequestCode.GET_BROKER_CLUSTER_INFO))
    assert r.code == ResponseCode.SUCCESS
    r = call(acl_namesrv.addr, RemotingCommand.request(RequestCode.GET_KV_CONFIG, {"namespace": "ns", "key": "k"}))
    assert r.code == ResponseCode.QUERY_NOT_FOUND


def test_mqadmin_writes_need_an_admin_account(acl_namesrv):
    args = ("updateKvConfig", "-s", "AclNs", "-k", "key1", "-v", "v1")
    r = mqadmin(*args, namesrv=acl_namesrv.addr)
    assert r.code == 1 and "No accessKey is configured" in r.err
    r = mqadmin(*args, "--access-key", USER.access_key, "--secret-key", USER.secret_key, namesrv=acl_namesrv.addr)
    assert r.code == 1 and "Need admin permission" in r.err
    r = mqadmin(*args, "--access-key", ADMIN.access_key, "--secret-key", ADMIN.secret_key, namesrv=acl_namesrv.addr)
    assert r.code == 0, r.err
    r = call(acl_namesrv.addr, RemotingCommand.request(RequestCode.GET_KV_CONFIG, {"namespace": "AclNs", "key": "key1"}))
    assert r.ext_fields["value"] == "v1"


def test_an_admin_signature_registers(acl_namesrv):
    with Wire(acl_namesrv.addr) as w:  # a broker's routes live as long as its connection
        r = w.call(ADMIN.sign_request(register_request("SignedTopic", "signed-broker", "10.7.7.7:10911")))
        assert r.code == ResponseCode.SUCCESS, r.remark
        assert route(acl_namesrv, "SignedTopic").code == ResponseCode.SUCCESS


def test_broker_with_credentials_registers_and_clients_route_to_it(acl_namesrv, tmp_path):
    for d in ("plain", "keyed"):
        (tmp_path / d).mkdir()
    plain = start_broker(tmp_path / "plain", acl_namesrv.addr, name="acl-nokeys", cluster="NsAclCluster")
    keyed = start_broker(tmp_path / "keyed", acl_namesrv.addr, name="acl-keyed", cluster="NsAclCluster",
                         conf_extra=f"accessKey={ADMIN.access_key}\nsecretKey={ADMIN.secret_key}\n")
    try:
        wait_until(lambda: mqadmin("clusterList", "--json", namesrv=acl_namesrv.addr).out.count("acl-keyed") > 0,
                   30, what="the broker with credentials registered")
        r = mqadmin("updateTopic", "-b", keyed.addr, "-t", "NsAclTopic", "--json", namesrv=acl_namesrv.addr)
        assert r.code == 0, r.err
        route_json = mqadmin("topicRoute", "-t", "NsAclTopic", "--json", namesrv=acl_namesrv.addr).json()
        assert route_json["brokerDatas"][0]["brokerAddrs"] == {"0": keyed.addr}
        r = mqadmin("sendMessage", "-t", "NsAclTopic", "-p", "routed", "--json", namesrv=acl_namesrv.addr)
        assert r.code == 0 and r.json()["brokerName"] == "acl-keyed", r.err
        # The broker without keys never made it into the routes, and the NameServer says why.
        assert "acl-nokeys" not in mqadmin("clusterList", "--json", namesrv=acl_namesrv.addr).out
        wait_until(lambda: "No accessKey is configured" in acl_namesrv.log_text(), 10, what="the refusal logged")
    finally:
        plain.stop(timeout=15)
        keyed.stop(timeout=15)


def test_off_by_default_unsigned_registration_works(tmp_path):
    namesrv = start_namesrv(tmp_path)
    try:
        with Wire(namesrv.addr) as w:
            assert w.call(register_request("OpenTopic", "open-broker", "10.8.8.8:10911")).code == 0
            assert route(namesrv, "OpenTopic").code == ResponseCode.SUCCESS
    finally:
        namesrv.stop(timeout=15)


def test_twistd_mq_with_acl_guards_its_own_nameserver(twistd, tmp_path, home):
    """The one-process cluster under ``--acl``: its broker registers signed with its account, an unsigned
    registration that would take over a route is refused (before, its NameServer took anything)."""
    ns_port, broker_port = free_port(), free_port()
    conf = tmp_path / "broker.conf"
    conf.write_text(f"accessKey={ADMIN.access_key}\nsecretKey={ADMIN.secret_key}\n")
    proc = twistd("mq", "--acl", "--namesrv-port", str(ns_port), "--port", str(broker_port), "--ip", "127.0.0.1",
                  "--store", str(tmp_path / "store"), "--kv-config", str(tmp_path / "kv.json"), "--console-port", "0",
                  "--config", str(conf), env={"ROCKETMQ_HOME": str(home)})
    proc.wait_port(ns_port)
    namesrv = SimpleNamespace(addr=f"127.0.0.1:{ns_port}")
    wait_until(lambda: route(namesrv, "TBW102").code == ResponseCode.SUCCESS, 30, what="the broker's own routes")
    r = call(namesrv.addr, register_request("TBW102", "broker-a", "10.6.6.6:10911"))
    assert r.code == ResponseCode.SYSTEM_ERROR and "No accessKey is configured" in r.remark
    assert "10.6.6.6:10911" not in route(namesrv, "TBW102").body.decode()
