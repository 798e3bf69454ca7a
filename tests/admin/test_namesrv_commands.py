"""``mqadmin`` end to end against a real ``twistd namesrv``: NameServer-side commands, output and exit codes.

Brokers are simulated by REGISTER_BROKER requests (their addresses have nothing listening), which is also how
the tool's handling of an unreachable broker is checked.
"""

from __future__ import annotations

import json
import socket

import pytest

from mq.common.register_body import RegisterBrokerBody
from mq.common.route import DataVersion, TopicConfig
from mq.remoting.codes import RequestCode
from mq.remoting.command import RemotingCommand
from tests.admin.conftest import mqadmin, mqadmin_on_terminal
from tests.broker.wire import Wire
from tests.support.processes import free_port

DEAD_BROKER = f"127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def registered(namesrv):
    """broker-x of cluster ClusterX, with topics NsTopicA (4/4) and NsTopicB (2/2); its connection stays open."""
    body = RegisterBrokerBody(DataVersion(1, 1), {
        "NsTopicA": TopicConfig("NsTopicA", 4, 4, 6), "NsTopicB": TopicConfig("NsTopicB", 2, 2, 6),
    }).encode()
    request = RemotingCommand.request(RequestCode.REGISTER_BROKER, {
        "brokerName": "broker-x", "brokerAddr": DEAD_BROKER, "clusterName": "ClusterX",
        "haServerAddr": DEAD_BROKER, "brokerId": "0"}, body)
    wire = Wire(namesrv.addr)
    assert wire.call(request).code == 0
    yield namesrv
    wire.close()


def test_topic_list(registered):
    r = mqadmin("topicList", namesrv=registered.addr, process=True)  # the installed tool's own process
    assert r.code == 0, r.err
    assert {"NsTopicA", "NsTopicB"} <= set(r.out.split())
    r = mqadmin("topicList", "--json", namesrv=registered.addr)
    assert {"NsTopicA", "NsTopicB"} <= set(r.json())


def test_n_flag_wins_over_the_environment(registered):
    r = mqadmin("topicList", "-n", registered.addr, env={"NAMESRV_ADDR": "127.0.0.1:9"}, process=True)
    assert r.code == 0 and "NsTopicA" in r.out, r.err
    # a list: the first address is dead, the second answers
    r = mqadmin("topicList", "-n", f"127.0.0.1:9;{registered.addr}")
    assert r.code == 0 and "NsTopicA" in r.out, r.err


def test_topic_route_json_and_list(registered):
    r = mqadmin("topicRoute", "-t", "NsTopicA", namesrv=registered.addr)
    assert r.code == 0, r.err
    data = r.json()  # the default output is the route as indented JSON, like the original
    assert data["brokerDatas"] == [{"brokerAddrs": {"0": DEAD_BROKER}, "brokerName": "broker-x",
                                    "cluster": "ClusterX"}]
    assert data["queueDatas"][0]["readQueueNums"] == 4 and data["queueDatas"][0]["perm"] == 6
    r = mqadmin("topicRoute", "-t", "NsTopicB", "-l", namesrv=registered.addr)
    lines = r.out.splitlines()
    assert lines[0].split() == ["#ClusterName", "#BrokerName", "#BID", "#BrokerAddr", "#ReadQueueNums",
                                "#WriteQueueNums", "#Perm"]
    assert lines[1].split() == ["ClusterX", "broker-x", "0", DEAD_BROKER, "2", "2", "RW-"]


def test_topic_cluster_list(registered):
    r = mqadmin("topicClusterList", "-t", "NsTopicA", namesrv=registered.addr)
    assert (r.code, r.out) == (0, "ClusterX\n")
    assert mqadmin("topicClusterList", "-t", "NsTopicA", "--json", namesrv=registered.addr).json() == ["ClusterX"]


def test_cluster_list_shows_an_unreachable_broker_without_failing(registered):
    r = mqadmin("clusterList", namesrv=registered.addr)
    assert r.code == 0, r.err
    row = [line.split() for line in r.out.splitlines() if "broker-x" in line]
    assert row == [["ClusterX", "broker-x", "0", DEAD_BROKER] + ["-"] * 6]
    entry = [e for e in mqadmin("clusterList", "--json", namesrv=registered.addr).json()
             if e["brokerName"] == "broker-x"][0]
    assert entry["clusterName"] == "ClusterX" and entry["error"].startswith(f"cannot reach broker {DEAD_BROKER}")


def test_kv_config_update_and_delete(registered):
    r = mqadmin("updateKvConfig", "-s", "AdmNs", "-k", "key1", "-v", "value1", namesrv=registered.addr)
    assert (r.code, r.out) == (0, "update kv config in namesrv success\n"), r.err
    with Wire(registered.addr) as w:
        got = w.call(RemotingCommand.request(RequestCode.GET_KV_CONFIG, {"namespace": "AdmNs", "key": "key1"}))
        assert got.ext_fields["value"] == "value1"
        r = mqadmin("deleteKvConfig", "-s", "AdmNs", "-k", "key1", "--json", namesrv=registered.addr)
        assert r.code == 0 and r.json() == {"namespace": "AdmNs", "key": "key1", "nameServers": [registered.addr]}
        got = w.call(RemotingCommand.request(RequestCode.GET_KV_CONFIG, {"namespace": "AdmNs", "key": "key1"}))
        assert got.code == 22  # QUERY_NOT_FOUND


def test_wipe_and_add_write_perm(registered):
    r = mqadmin("wipeWritePerm", "-b", "broker-x", namesrv=registered.addr)
    assert r.code == 0, r.err
    assert r.out == f"wipe write perm of broker[broker-x] in name server[{registered.addr}] OK, 2\n"
    route = mqadmin("topicRoute", "-t", "NsTopicA", "--json", namesrv=registered.addr).json()
    assert route["queueDatas"][0]["perm"] == 4
    r = mqadmin("addWritePerm", "-b", "broker-x", "--json", namesrv=registered.addr)
    assert r.code == 0 and r.json() == {"brokerName": "broker-x", "topicCounts": {registered.addr: 2}}
    route = mqadmin("topicRoute", "-t", "NsTopicA", "--json", namesrv=registered.addr).json()
    assert route["queueDatas"][0]["perm"] == 6


def test_unknown_topic_is_route_not_found(registered):
    for args in (["topicRoute", "-t", "NoSuchTopic"], ["topicStatus", "-t", "NoSuchTopic"],
                 ["topicClusterList", "-t", "NoSuchTopic"]):
        r = mqadmin(*args, namesrv=registered.addr)
        assert r.code == 1 and r.out == ""
        assert r.err == (f"mqadmin {args[0]}: topic route not found: no route for topic 'NoSuchTopic' "
                         "on the NameServer\n")


def test_unknown_cluster(registered):
    r = mqadmin("brokerStatus", "-c", "NoCluster", namesrv=registered.addr)
    assert (r.code, r.err) == (1, "mqadmin brokerStatus: cluster 'NoCluster' not found on the NameServer\n")


def test_unreachable_broker_exit_3(registered):
    r = mqadmin("topicStatus", "-t", "NsTopicA", namesrv=registered.addr)
    assert r.code == 3
    assert r.err.startswith(f"mqadmin topicStatus: cannot reach broker {DEAD_BROKER}: ")
    assert len(r.err.splitlines()) == 1


def test_unreachable_namesrv_exit_3():
    dead = f"127.0.0.1:{free_port()}"
    r = mqadmin("topicList", namesrv=dead, process=True)
    assert r.code == 3 and r.out == ""
    assert r.err.startswith(f"mqadmin topicList: cannot reach NameServer {dead}: ")
    assert len(r.err.splitlines()) == 1
    r = mqadmin("updateKvConfig", "-s", "a", "-k", "b", "-v", "c", "-n", f"{dead};127.0.0.1:9")
    assert r.code == 3 and r.err.startswith(f"mqadmin updateKvConfig: cannot reach NameServer {dead}: ")
    r = mqadmin("topicList", "-n", f"{dead};127.0.0.1:9")
    assert r.code == 3 and r.err.startswith(f"mqadmin topicList: cannot reach any NameServer of {dead};127.0.0.1:9: "
                                            f"{dead}: ")
    assert "; 127.0.0.1:9: " in r.err and len(r.err.splitlines()) == 1


def test_a_silent_server_is_a_timeout_exit_3():
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        addr = "127.0.0.1:%d" % silent.getsockname()[1]
        r = mqadmin("topicList", "--timeout", "0.5", namesrv=addr)
    assert r.code == 3
    assert r.err == (f"mqadmin topicList: no answer from NameServer {addr}: no response to "
                     f"GET_ALL_TOPIC_LIST_FROM_NAMESERVER from {addr} within 0.5 s\n")


def test_no_namesrv_at_all_exit_2():
    r = mqadmin("topicList", process=True)
    assert r.code == 2 and "no NameServer address" in r.err


def _on_a_terminal(*args: str, namesrv: str) -> str:
    """stdout of ``mqadmin`` run with a pseudo-terminal as its stdout."""
    run = mqadmin_on_terminal(*args, namesrv=namesrv, env={"COLUMNS": "200"})
    assert run.code == 0, run.err
    return run.out.replace("\r\n", "\n")


def test_tables_are_drawn_on_a_terminal_and_plain_in_a_pipe(registered):
    drawn = _on_a_terminal("topicRoute", "-t", "NsTopicA", "-l", namesrv=registered.addr)
    assert "\x1b[" in drawn and "─" in drawn and "broker-x" in drawn
    plain = mqadmin("topicRoute", "-t", "NsTopicA", "-l", namesrv=registered.addr).out
    assert "\x1b" not in plain and "─" not in plain
    assert [line.split() for line in plain.splitlines()] == [
        ["#ClusterName", "#BrokerName", "#BID", "#BrokerAddr", "#ReadQueueNums", "#WriteQueueNums", "#Perm"],
        ["ClusterX", "broker-x", "0", DEAD_BROKER, "4", "4", "RW-"],
    ]
    # --json is the same document on a terminal and in a pipe
    as_json = _on_a_terminal("topicRoute", "-t", "NsTopicA", "-l", "--json", namesrv=registered.addr)
    assert json.loads(as_json) == mqadmin("topicRoute", "-t", "NsTopicA", "-l", "--json", namesrv=registered.addr).json()
