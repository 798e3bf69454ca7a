"""``twistd namesrv`` as a real process, driven over TCP by the project's own remoting client."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from mq.common.register_body import RegisterBrokerBody
from mq.common.route import DataVersion, TopicConfig
from mq.remoting.client import RemotingClient
from mq.remoting.codes import RequestCode, ResponseCode, SerializeType
from mq.remoting.command import RemotingCommand
from tests.support.polling import poll
from tests.support.processes import TWISTD, child_env, free_port, wait_until


def start_namesrv(twistd, tmp_path, name="ns", *extra):
    port = free_port()
    proc = twistd("namesrv", "--port", str(port), "--kv-config", str(tmp_path / f"{name}-kv.json"), *extra,
                  workdir=tmp_path / name)
    proc.wait_port(port)
    return proc, f"127.0.0.1:{port}"


def register(name, addr, topics, serialize_type=SerializeType.JSON):
    body = RegisterBrokerBody(DataVersion(1, 1), {t: TopicConfig(t, 4, 4, 6) for t in topics}).encode()
    return RemotingCommand.request(
        RequestCode.REGISTER_BROKER,
        {"brokerName": name, "brokerAddr": addr, "clusterName": "DefaultCluster",
         "haServerAddr": addr, "brokerId": "0"},
        body,
        serialize_type=serialize_type,
    )


@pytest.fixture
def client():
    c = RemotingClient(reactor)
    yield c
    pytest_twisted.blockon(c.close())


@pytest.mark.parametrize("serialize_type", [SerializeType.JSON, SerializeType.ROCKETMQ])
@pytest_twisted.inlineCallbacks
def test_register_and_route_over_tcp(twistd, tmp_path, client, serialize_type):
    proc, addr = start_namesrv(twistd, tmp_path)
    response = yield client.invoke(addr, register("broker-a", "10.0.0.1:10911", ["T"], serialize_type))
    assert response.code == ResponseCode.SUCCESS
    assert response.serialize_type == serialize_type
    route = yield client.invoke(addr, RemotingCommand.request(
        RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "T"}, serialize_type=serialize_type))
    assert route.code == ResponseCode.SUCCESS and route.serialize_type == serialize_type
    assert json.loads(route.body)["brokerDatas"][0]["brokerAddrs"] == {"0": "10.0.0.1:10911"}
    missing = yield client.invoke(addr, RemotingCommand.request(
        RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "nope"}, serialize_type=serialize_type))
    assert missing.code == ResponseCode.TOPIC_NOT_EXIST


@pytest_twisted.inlineCallbacks
def test_two_nameservers_know_nothing_of_each_other(twistd, tmp_path, client):
    _, first = start_namesrv(twistd, tmp_path, "ns1")
    _, second = start_namesrv(twistd, tmp_path, "ns2")
    yield client.invoke(first, register("broker-a", "10.0.0.1:10911", ["ONLY_FIRST"]))
    yield client.invoke(second, register("broker-b", "10.0.0.2:10911", ["ONLY_SECOND"]))
    results = yield defer.gatherResults([
        client.invoke(first, RemotingCommand.request(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "ONLY_SECOND"})),
        client.invoke(second, RemotingCommand.request(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "ONLY_FIRST"})),
        client.invoke(first, RemotingCommand.request(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "ONLY_FIRST"})),
    ])
    assert [r.code for r in results] == [ResponseCode.TOPIC_NOT_EXIST, ResponseCode.TOPIC_NOT_EXIST, ResponseCode.SUCCESS]


@pytest_twisted.inlineCallbacks
def test_broker_connection_close_drops_routes(twistd, tmp_path, client):
    _, addr = start_namesrv(twistd, tmp_path)
    broker = RemotingClient(reactor)
    yield broker.invoke(addr, register("broker-a", "10.0.0.1:10911", ["T"]))
    route = yield client.invoke(addr, RemotingCommand.request(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "T"}))
    assert route.code == ResponseCode.SUCCESS
    yield broker.close()
    # the server sees the close a moment later
    yield poll(lambda: client.invoke(addr, RemotingCommand.request(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "T"})),
               lambda r: r.code == ResponseCode.TOPIC_NOT_EXIST, 20, 0.02, "the route dropped with its broker")


@pytest_twisted.inlineCallbacks
def test_bad_frame_closes_only_that_connection(twistd, tmp_path, client):
    proc, addr = start_namesrv(twistd, tmp_path)
    yield client.invoke(addr, register("broker-a", "10.0.0.1:10911", ["T"]))
    host, port = addr.split(":")
    for garbage in (b"\xff\xff\xff\xff\x00\x00\x00\x00", b"\x7f\x00\x00\x00\x00\x00\x00\x00",
                    b"\x00\x00\x00\x10\x00\x00\x00\x20" + b"x" * 12, b"\x00\x00\x00\x08\x00\x00\x00\x04{{{{"):
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(garbage)
            s.settimeout(5)
            try:
                answer = s.recv(100)
            except ConnectionResetError:  # aborted: reset rather than FIN
                answer = b""
            assert answer == b""  # closed by the server, nothing sent back
    route = yield client.invoke(addr, RemotingCommand.request(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "T"}))
    assert route.code == ResponseCode.SUCCESS  # the broker's registration and this connection live on
    wait_until(lambda: proc.log_text().count("closing connection from 127.0.0.1") >= 4, 10, what="four log lines")
    assert "outside 4.." in proc.log_text() and "runs past the end" in proc.log_text()


@pytest_twisted.inlineCallbacks
def test_kv_config_survives_restart_and_graceful_stop(twistd, tmp_path, client):
    proc, addr = start_namesrv(twistd, tmp_path)
    put = RemotingCommand.request(RequestCode.PUT_KV_CONFIG, {"namespace": "NS", "key": "k", "value": "v"})
    assert (yield client.invoke(addr, put)).code == ResponseCode.SUCCESS
    client.close_connection(addr)
    assert proc.stop() in (0, -15)  # twistd re-raises the signal it stopped for
    assert "NameServer stopped" in proc.log_text()
    proc2, addr2 = start_namesrv(twistd, tmp_path)
    got = yield client.invoke(addr2, RemotingCommand.request(RequestCode.GET_KV_CONFIG, {"namespace": "NS", "key": "k"}))
    assert got.ext_fields == {"value": "v"}


def test_metrics_endpoint(twistd, tmp_path):
    metrics_port = free_port()
    proc, addr = start_namesrv(twistd, tmp_path, "ns", "--metrics-port", str(metrics_port))
    host, port = addr.split(":")
    with socket.create_connection((host, int(port))):
        pass
    proc.wait_port(metrics_port)
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    for name in ("mq_namesrv_brokers", "mq_namesrv_topics", "mq_namesrv_brokers_expired_total"):
        assert name in text


def test_help_lists_every_option():
    run = {"capture_output": True, "text": True, "timeout": 60, "env": child_env()}
    out = subprocess.run([sys.executable, "-c", TWISTD, "namesrv", "--help"], **run)
    assert out.returncode == 0
    options = ("--port", "--interface", "--scan-interval", "--broker-expiry", "--kv-config", "--metrics-port", "--config")
    for option in options:
        assert option in out.stdout
    listing = subprocess.run([sys.executable, "-c", TWISTD, "--help"], **run)
    assert "namesrv" in listing.stdout


def test_bad_option_is_a_usage_error(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", TWISTD, "-n", "namesrv", "--port", "eighty"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=child_env(),
    )
    # (twistd exits non-zero on a usage error from Twisted 26.10 on; older releases exit 0.)
    output = out.stdout + out.stderr
    assert "listenPort: 'eighty' is not an integer" in output
    assert "NameServer listening" not in output
