"""The console in real processes without a browser: beside ``twistd mq``, and signing under ACL."""

from __future__ import annotations

import urllib.request

import pytest

from tests.acl.test_acl_process import start_acl_cluster
from tests.broker.cluster import processes
from tests.console.client import Console, refusal
from tests.support.processes import free_port, wait_until


def test_twistd_mq_serves_the_console_beside_its_broker(twistd, tmp_path):
    ns_port, broker_port, console_port = free_port(), free_port(), free_port()
    proc = twistd("mq", "--namesrv-port", str(ns_port), "--port", str(broker_port), "--ip", "127.0.0.1",
                  "--store", str(tmp_path / "store"), "--kv-config", str(tmp_path / "kv.json"),
                  "--console-port", str(console_port))
    proc.wait_port(console_port)
    console = Console(console_port)
    wait_until(lambda: console.call("cluster")["brokers"], what="the broker in the console")
    brokers = console.call("cluster")["brokers"]
    assert [(b["brokerName"], b["addr"], b["role"]) for b in brokers] == [
        ("broker-a", f"127.0.0.1:{broker_port}", "ASYNC_MASTER")]
    with urllib.request.urlopen(f"{console.base}/", timeout=10) as resp:
        assert b"mq console" in resp.read()
    assert f"console on http://127.0.0.1:{console_port}/" in proc.log_text()


@pytest.fixture(scope="module")
def acl_cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console-acl")
    with processes(tmp) as twistd:
        namesrv, _, _ = start_acl_cluster(twistd, tmp)
        consoles = {}
        for name, keys in (("admin", ["--access-key", "adminAccount", "--secret-key", "adminSecret1"]),
                           ("anonymous", [])):
            port = free_port()
            twistd("console", "--namesrv", namesrv.addr, "--port", str(port), *keys).wait_port(port)
            consoles[name] = Console(port)
        wait_until(lambda: consoles["admin"].call("cluster")["brokers"], what="the broker in the console")
        yield consoles


def test_under_acl_the_console_signs_with_its_account(acl_cluster):
    status, error = refusal(acl_cluster["anonymous"], "topic/create", {"topic": "ConsoleAcl"})
    assert status == 409 and "create topic 'ConsoleAcl'" in error
    assert acl_cluster["admin"].call("topic/create", {"topic": "ConsoleAcl"})["topicConfig"]["topicName"] == "ConsoleAcl"
    accounts = acl_cluster["admin"].call("acl")["brokers"]
    (listed,) = accounts.values()
    keys = {a["accessKey"]: a["secretKey"] for a in listed["plainAccessConfigs"]}
    assert set(keys) == {"adminAccount", "userAccount", "whiteAccount"}
    assert "adminSecret1" not in keys.values()  # secrets never leave masked
