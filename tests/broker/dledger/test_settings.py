"""The DLedger keys: parsed, checked each on its own and together, and the ports a node listens on."""

from __future__ import annotations

import pytest
from twisted.internet import task

from mq.broker.config import BrokerConfig, layered_config
from mq.broker.dledger.settings import DLedgerSettings, parse_peers, slave_id
from mq.broker.tap import Options

PEERS = "n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913"


def test_peers_parse_in_order():
    assert parse_peers(f" {PEERS} ;") == {"n0": ("127.0.0.1", 40911), "n1": ("127.0.0.1", 40912),
                                          "n2": ("127.0.0.1", 40913)}
    assert parse_peers("a1-[::1]:5") == {"a1": ("[::1]", 5)}


@pytest.mark.parametrize("text, why", [
    ("", "no peers"),
    ("n0-127.0.0.1", "is not id-host:port"),
    ("n0-127.0.0.1:0", "is not id-host:port"),
    ("n0-h:1;n0-h:2", "n0 is listed twice"),
    ("n1-h:1;m1-h:2", "another id has the number 1"),
    ("node0-h:1", "is not one letter and a number"),
    (";".join(f"n{i}-h:{i + 1}" for i in range(10)), "10 peers is more than 9"),
])
def test_bad_peers_are_named(text, why):
    with pytest.raises(ValueError, match=why):
        parse_peers(text)


def test_slave_ids_follow_rocketmq():
    assert [slave_id(i) for i in ("n0", "n1", "n2", "x9")] == [1, 2, 3, 10]


def test_settings_from_the_file_and_the_options_together(tmp_path):
    file_props = {"enableDLegerCommitLog": "true", "dLegerPeers": PEERS, "brokerName": "broker-a",
                  "storePathRootDir": str(tmp_path)}
    config, _ = layered_config(file_props, {"dLegerSelfId": "n1", "preferredLeaderId": "n2;n0"})
    s = DLedgerSettings.from_broker_config(config)
    assert (s.group, s.self_id, s.port, s.slave_id, s.preferred_leader) == ("broker-a", "n1", 40912, 2, "n2")
    ports = {what: port for port, _, what in config.listens()}
    assert ports["the Raft port, this node's dLegerPeers entry"] == 40912
    assert not any("HA port" in what for what in ports)  # classic replication is not used
    assert DLedgerSettings.from_broker_config(BrokerConfig(d_leger_peers=PEERS)) is None  # off by default


@pytest.mark.parametrize("props, why", [
    ({"dLegerSelfId": "n5"}, "dLegerSelfId: 'n5' is not one of the dLegerPeers ids"),
    ({"dLegerSelfId": "n0", "preferredLeaderId": "n4"}, "preferredLeaderId: 'n4' is not one of"),
    ({"dLegerSelfId": "n0", "dLegerGroup": "bad group"}, "dLegerGroup: "),
    ({"dLegerSelfId": "zero"}, "dLegerSelfId: node id 'zero' is not one letter and a number"),
])
def test_a_bad_group_stops_the_start(tmp_path, props, why):
    with pytest.raises(ValueError, match=why):
        layered_config({"enableDLegerCommitLog": "true", "dLegerPeers": PEERS, "storePathRootDir": str(tmp_path),
                        **props}, {})


def test_the_options_carry_the_keys_and_skip_the_role_checks(tmp_path):
    options = Options()
    options.parseOptions(["--dledger", "--dledger-peers", PEERS, "--dledger-self-id", "n2", "--dledger-group", "g",
                          "--preferred-leader", "n0", "--store", str(tmp_path), "--broker-id", "0", "--role", "SLAVE",
                          "--dledger-cache-bytes", "4096"])
    c = options.config
    assert (c.enable_d_leger_commit_log, c.d_leger_group, c.d_leger_self_id, c.preferred_leader_id,
            c.d_leger_cache_bytes) == (True, "g", "n2", "n0", 4096)
    help_text = str(options)
    for option in ("--dledger ", "--dledger-peers", "--dledger-self-id", "--dledger-group", "--preferred-leader",
                   "--dledger-cache-bytes"):
        assert option in help_text


def test_the_example_group_in_conf_dledger_is_valid(tmp_path):
    from mq.common.properties import parse_properties
    from tests.support.processes import REPO

    ports = set()
    for i in range(3):
        props = parse_properties((REPO / "conf" / "dledger" / f"broker-n{i}.conf").read_text())
        config, _ = layered_config(props, {"storePathRootDir": str(tmp_path / f"n{i}")})
        s = DLedgerSettings.from_broker_config(config)
        assert (s.self_id, s.group, len(s.peers)) == (f"n{i}", "RaftNode00", 3)
        ports |= {port for port, _, _ in config.listens()}
    assert len(ports) == 9  # listenPort, VIP port and Raft port (no HA port) of each: all distinct


def test_the_cache_bytes_setting_has_a_range_and_reaches_the_raft_log(tmp_path):
    from mq.broker.dledger.group import open_driver
    from mq.dledger.log import DEFAULT_CACHE_BYTES

    base = {"enableDLegerCommitLog": "true", "dLegerPeers": PEERS, "dLegerSelfId": "n0",
            "storePathRootDir": str(tmp_path)}
    assert layered_config(base, {})[0].d_leger_cache_bytes == DEFAULT_CACHE_BYTES
    with pytest.raises(ValueError, match=r"dLegerCacheBytes: -1 is outside 0\.\."):
        layered_config({**base, "dLegerCacheBytes": "-1"}, {})
    config, _ = layered_config({**base, "dLegerCacheBytes": "1000"}, {})
    assert config.d_leger_cache_bytes == 1000
    driver = open_driver(task.Clock(), DLedgerSettings.from_broker_config(config), str(tmp_path / "d"),
                         lambda *a: None, lambda *a: None, lambda *a: None, 0, cache_bytes=config.d_leger_cache_bytes)
    assert driver.node.log.cache_bytes == 1000


def test_the_raft_port_keeps_a_handful_of_connections():
    """A group's peers are a few; the process's file descriptors are the store's and the clients'."""
    from mq.broker.dledger.transport import MAX_PEER_CONNECTIONS, RaftTransport

    config = BrokerConfig(enable_d_leger_commit_log=True, d_leger_peers=PEERS, d_leger_self_id="n0")
    transport = RaftTransport(task.Clock(), DLedgerSettings.from_broker_config(config), lambda m: None,
                              lambda *a: None)
    assert transport.factory.limits.max_connections() == MAX_PEER_CONNECTIONS == 64
