"""A bad setting in a ``--config`` file, in the runtime changes a broker saved, or in an option stops a real
``twistd`` start: status not 0, and one line that names the key and its range (no traceback, no option list)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.processes import TWISTD, child_env, free_port


def start(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", TWISTD, "-n", "--pidfile=", *args], capture_output=True,
                          text=True, timeout=30, cwd=tmp_path, env=child_env())


def assert_refused_in_one_line(out: subprocess.CompletedProcess, *expected: str) -> None:
    lines = (out.stdout + out.stderr).strip().splitlines()
    assert out.returncode != 0, lines
    assert len(lines) == 1, lines
    for text in expected:
        assert text in lines[0], lines


@pytest.mark.parametrize("conf, expected", [
    ("flushConsumerOffsetInterval=0\n", "flushConsumerOffsetInterval: 0 is outside 100..3600000 (ms)"),
    ("defaultTopicQueueNums=100000\n", "defaultTopicQueueNums: 100000 is outside 1..1024"),
    ("mappedFileSizeCommitLog=0\n", "mappedFileSizeCommitLog: 0 is outside 4096..2147483647 (bytes)"),  # a store key
    ("haSendHeartbeatInterval=-1\n", "haSendHeartbeatInterval: -1 is outside 100..600000 (ms)"),  # replication's
    ("messageDelayLevel=1s 5q\n", "messageDelayLevel: '5q' is not a delay"),
    ("msgTraceTopicName=bad topic\n", "msgTraceTopicName: the topic 'bad topic' contains characters"),
])
def test_broker_refuses_a_bad_value_in_its_config_file(tmp_path, conf, expected):
    (tmp_path / "broker.conf").write_text(f"brokerName=bad-conf\n{conf}")
    out = start(tmp_path, "broker", "--config", str(tmp_path / "broker.conf"), "--store", str(tmp_path / "store"),
                "--port", str(free_port()), "--namesrv", "127.0.0.1:1")
    assert_refused_in_one_line(out, "broker: ", expected, f"(in --config {tmp_path / 'broker.conf'})")


@pytest.mark.parametrize("conf, args, expected", [
    ("enableDLegerCommitLog=true\ndLegerPeers=n0-127.0.0.1:1;n1-nowhere\n", ["--dledger-self-id", "n0"],
     "dLegerPeers: 'n1-nowhere' is not id-host:port"),
    ("dLegerPeers=n0-127.0.0.1:1;n1-127.0.0.1:2;n2-127.0.0.1:3\n", ["--dledger", "--dledger-self-id", "n7"],
     "dLegerSelfId: 'n7' is not one of the dLegerPeers ids (n0, n1, n2)"),
])
def test_broker_refuses_a_bad_dledger_group(tmp_path, conf, args, expected):
    (tmp_path / "broker.conf").write_text(conf)
    out = start(tmp_path, "broker", "--config", str(tmp_path / "broker.conf"), "--store", str(tmp_path / "store"),
                "--port", str(free_port()), "--namesrv", "127.0.0.1:1", *args)
    assert_refused_in_one_line(out, "broker: ", expected)


def test_broker_refuses_an_option_out_of_range(tmp_path):
    out = start(tmp_path, "broker", "--store", str(tmp_path / "store"), "--port", "65535", "--namesrv", "127.0.0.1:1")
    assert_refused_in_one_line(out, "listenPort: 65535 is outside 1..65534 (in the command-line options)")


def test_broker_refuses_a_bad_value_in_its_saved_runtime_changes(tmp_path):
    saved = tmp_path / "store" / "config" / "broker.properties"
    saved.parent.mkdir(parents=True)
    saved.write_text("maxMessageSize=-5\n")  # as a broker before this fix could save it
    out = start(tmp_path, "broker", "--store", str(tmp_path / "store"), "--port", str(free_port()),
                "--namesrv", "127.0.0.1:1")
    assert_refused_in_one_line(out, f"maxMessageSize: -5 is outside 1024..67108864 (bytes) (in {saved})")


@pytest.mark.parametrize("args, conf, expected", [
    ((), "brokerChannelExpiredTime=-1\n", "brokerChannelExpiredTime: -1 is outside 1..86400 (s)"),
    ((), "listenPort=70000\n", "listenPort: 70000 is outside 1..65535"),
    (("--scan-interval", "0"), "", "scanNotActiveBrokerInterval: 0 is outside 1..60 (s)"),
])
def test_namesrv_refuses_a_bad_value_in_its_config_file_or_options(tmp_path, args, conf, expected):
    (tmp_path / "namesrv.conf").write_text(f"kvConfigPath={tmp_path / 'kv.json'}\n{conf}")
    out = start(tmp_path, "namesrv", "--config", str(tmp_path / "namesrv.conf"), "--port", str(free_port()), *args)
    assert_refused_in_one_line(out, "namesrv: ", expected)


def test_standalone_refuses_a_bad_broker_value(tmp_path):
    (tmp_path / "broker.conf").write_text("shortPollingTimeMills=-1\n")
    out = start(tmp_path, "mq", "--config", str(tmp_path / "broker.conf"), "--store", str(tmp_path / "store"),
                "--kv-config", str(tmp_path / "kv.json"))
    assert_refused_in_one_line(out, "mq: ", "shortPollingTimeMills: -1 is outside 10..30000 (ms)")


def test_standalone_refuses_a_namesrv_port_out_of_range(tmp_path):
    out = start(tmp_path, "mq", "--namesrv-port", "0", "--store", str(tmp_path / "store"),
                "--kv-config", str(tmp_path / "kv.json"))
    assert_refused_in_one_line(out, "mq: ", "listenPort: 0 is outside 1..65535")


@pytest.mark.parametrize("plugin, conf, expected", [
    ("broker", "brokerNmae=typo\n", "unknown setting 'brokerNmae' (did you mean brokerName?)"),
    ("broker", "storePathDLedgerCommitLog=/x\n", "storePathDLedgerCommitLog: mq does not implement a DLedger log"),
    ("namesrv", "listenPrt=9876\n", "unknown setting 'listenPrt' (did you mean listenPort?)"),
    ("mq", "flushDiskTyp=SYNC_FLUSH\n", "unknown setting 'flushDiskTyp' (did you mean flushDiskType?)"),
])
def test_an_unknown_key_in_a_config_file_stops_the_start_naming_the_nearest_key(tmp_path, plugin, conf, expected):
    (tmp_path / "x.conf").write_text(conf)
    args = {"broker": ["--store", str(tmp_path / "store"), "-n", "127.0.0.1:1", "--port", str(free_port())],
            "namesrv": ["--kv-config", str(tmp_path / "kv.json"), "--port", str(free_port())],
            "mq": ["--store", str(tmp_path / "store"), "--kv-config", str(tmp_path / "kv.json")]}[plugin]
    out = start(tmp_path, plugin, "-c", str(tmp_path / "x.conf"), *args)
    assert_refused_in_one_line(out, f"{plugin}: ", expected)


@pytest.mark.parametrize("plugin", ["namesrv", "mq"])
def test_a_kv_config_file_over_its_bound_stops_the_start_and_is_kept(tmp_path, plugin):
    kv = tmp_path / "kv.json"
    big = '{"configTable":{"NS":{"k":"' + "x" * (8 * 1024 * 1024) + '"}}}'
    kv.write_text(big)
    args = {"namesrv": ["--port", str(free_port())],
            "mq": ["--store", str(tmp_path / "store"), "--namesrv-port", str(free_port()), "--port", str(free_port()),
                   "--console-port", "0"]}[plugin]
    out = start(tmp_path, plugin, "--kv-config", str(kv), *args)
    assert_refused_in_one_line(out, f"{plugin}: KV config: {kv} is larger than 8388608 bytes: trim it or move it away")
    assert kv.read_text() == big
