"""The example files of ``conf/``, RocketMQ's own layouts, each started as real ``twistd`` processes: a NameServer
and every broker of the layout (``-c conf/<layout>/<file>``), a message sent to each master is received there
and, in the layouts with slaves, copied to its slave; ``conf/broker.conf`` with ``conf/plain_acl.yml`` checks
signatures as the sample accounts say; ``conf/dledger``'s three nodes elect a master that takes a send."""

from __future__ import annotations

import pytest

from mq.acl.signing import Credentials
from mq.client.simple import pull_request, send_request
from mq.common.message_record import decode_messages
from mq.remoting.codes import ResponseCode
from tests.broker.cluster import route_of, start_namesrv
from tests.broker.wire import call
from tests.support.processes import REPO, free_port, wait_until

CONF = REPO / "conf"
LAYOUTS = {
    "2m-noslave": ["broker-a", "broker-b"],
    "2m-2s-async": ["broker-a", "broker-a-s", "broker-b", "broker-b-s"],
    "2m-2s-sync": ["broker-a", "broker-a-s", "broker-b", "broker-b-s"],
}
#: Appended to a copy of each example, for a test: small CommitLog files, and a slave that copies topics
#: within half a second rather than ten (later lines win in a properties file).
TEST_LINES = "\nmappedFileSizeCommitLog=4194304\nmappedFileSizeConsumeQueue=120000\nslaveSyncInterval=500\n"
TOPIC = "ConfExampleTopic"


def test_conf_holds_rocketmqs_example_files():
    for layout, brokers in LAYOUTS.items():
        assert sorted(p.stem for p in (CONF / layout).glob("*.properties")) == brokers
    assert (CONF / "broker.conf").is_file() and (CONF / "plain_acl.yml").is_file()


def start_broker(twistd, tmp_path, conf_file, namesrv, *extra):
    conf = tmp_path / f"{conf_file.parent.name}-{conf_file.name}"
    conf.write_text(conf_file.read_text() + TEST_LINES)
    port = free_port()  # the brokers already started hold their ports, so this one's neighbours are free too
    proc = twistd("broker", "-c", str(conf), "-n", namesrv.addr, "--port", str(port), "--ip", "127.0.0.1",
                  "--store", str(tmp_path / f"store-{conf_file.stem}"), *extra)
    proc.wait_port(port)
    proc.addr = f"127.0.0.1:{port}"
    return proc


def pulled_bodies(addr: str) -> list:
    r = call(addr, pull_request("conf_check", TOPIC, 0, 0))
    return [m.body for m in decode_messages(r.body)] if r.code == ResponseCode.SUCCESS else []


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_example_layout_serves_a_send_and_a_receive(twistd, tmp_path, layout):
    namesrv = start_namesrv(twistd, tmp_path)
    brokers = {}
    for name in sorted(LAYOUTS[layout], key=lambda n: n.endswith("-s")):  # masters first
        brokers[name] = start_broker(twistd, tmp_path, CONF / layout / f"{name}.properties", namesrv)
    for name, proc in brokers.items():
        if name.endswith("-s"):
            proc.wait_log("HA: connected to the master", 30)
    masters = [n for n in brokers if not n.endswith("-s")]
    for name in masters:
        r = call(brokers[name].addr, send_request(TOPIC, f"{layout} {name}".encode(), queue_id=0))
        assert r.code == ResponseCode.SUCCESS, (name, r.code, r.remark)
        assert pulled_bodies(brokers[name].addr) == [f"{layout} {name}".encode()]
    for name in brokers:
        if name.endswith("-s"):  # the slave has its master's message
            addr, body = brokers[name].addr, f"{layout} {name[:-2]}".encode()
            wait_until(lambda: pulled_bodies(addr) == [body], 30, what=f"the message on {name}")  # noqa: B023

    def registered():
        route = route_of(namesrv, TOPIC)
        return route is not None and {(b.broker_name, tuple(sorted(b.broker_addrs))) for b in route.broker_datas}

    expected = {(m, tuple(sorted([0, 1] if f"{m}-s" in brokers else [0]))) for m in masters}
    wait_until(lambda: registered() == expected, 30, what=f"the route of {TOPIC} naming {expected}")


def test_broker_conf_with_plain_acl_yml_checks_the_sample_accounts(twistd, tmp_path):
    namesrv = start_namesrv(twistd, tmp_path)
    broker = start_broker(twistd, tmp_path, CONF / "broker.conf", namesrv, "--acl", "--acl-file",
                          str(CONF / "plain_acl.yml"))
    user = Credentials("RocketMQ", "12345678")
    refused = call(broker.addr, send_request("topicB", b"unsigned", queue_id=0))
    assert refused.code != ResponseCode.SUCCESS and "accessKey" in (refused.remark or ""), refused.remark
    denied = call(broker.addr, user.sign_request(send_request("topicA", b"x", queue_id=0)))  # topicA=DENY
    assert denied.code != ResponseCode.SUCCESS, denied.remark
    sent = call(broker.addr, user.sign_request(send_request("topicB", b"signed", queue_id=0)))  # PUB|SUB
    assert sent.code == ResponseCode.SUCCESS, sent.remark
    pulled = call(broker.addr, user.sign_request(pull_request("groupB", "topicB", 0, 0)))
    assert pulled.code == ResponseCode.SUCCESS, pulled.remark
    assert [m.body for m in decode_messages(pulled.body)] == [b"signed"]


def test_dledger_example_elects_a_master_that_serves_a_send_and_a_receive(twistd, tmp_path):
    """conf/dledger's three nodes as written, but for free Raft ports (a later dLegerPeers line wins): the group
    elects a master, the NameServer routes brokerId 0 of RaftNode00 to it, and it takes a send."""
    files = sorted((CONF / "dledger").glob("broker-n*.conf"))
    assert [f.name for f in files] == ["broker-n0.conf", "broker-n1.conf", "broker-n2.conf"]
    namesrv = start_namesrv(twistd, tmp_path)
    peers = ";".join(f"n{i}-127.0.0.1:{free_port()}" for i in range(len(files)))
    brokers = []
    for f in files:
        conf = tmp_path / f"raft-{f.name}"
        conf.write_text(f.read_text() + f"\ndLegerPeers={peers}\n")
        brokers.append(start_broker(twistd, tmp_path, conf, namesrv))

    def master():
        route = route_of(namesrv, "TBW102")
        for bd in (route.broker_datas if route is not None else []):
            if bd.broker_name == "RaftNode00" and 0 in bd.broker_addrs:
                return bd.broker_addrs[0]
        return None

    wait_until(lambda: master() in {b.addr for b in brokers}, 60, what="a routed master of RaftNode00")
    addr = master()
    r = call(addr, send_request(TOPIC, b"dledger example", queue_id=0))
    assert r.code == ResponseCode.SUCCESS, (r.code, r.remark)
    wait_until(lambda: pulled_bodies(addr) == [b"dledger example"], 30, what="the message on the master")
