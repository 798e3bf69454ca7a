"""HA replication: the stream's schema, and a master and a slave in one process over loopback.

The slave is told its master's HA address (``haMasterAddress``) so no NameServer is needed here; the
process tests (test_ha_integration.py) learn it from the registration answer.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from mq.broker.ha.master import HAConfig, HAService
from mq.broker.service import BrokerService
from mq.common.ha_protocol import (
    OFFSET_REPORT,
    TRANSFER,
    TRANSFER_HEADER,
    ReportDecoder,
    TransferDecoder,
    encode_header,
    encode_report,
)
from mq.common.message_record import decode_messages
from mq.remoting.codes import ResponseCode as RC
from mq.store.config import BrokerRole, MessageStoreConfig
from mq.store.results import AppendMessageResult, AppendMessageStatus, PutMessageResult, PutMessageStatus
from tests.broker.conftest import broker_config
from tests.broker.ha_support import append_foreign
from tests.support.polling import poll

FAST = {"haSendHeartbeatInterval": 200, "haSlaveReconnectInterval": 100, "slaveSyncInterval": 200}


# -- the stream's schema ---------------------------------------------------------------------------


def test_schema_and_fast_forms_agree():
    assert OFFSET_REPORT.schema.build({"max_phy_offset": 123456789012}) == encode_report(123456789012)
    assert TRANSFER_HEADER.schema.build({"phy_offset": 4096, "body_size": 5}) == encode_header(4096, 5)
    whole = TRANSFER.build({"phy_offset": 4096, "data": b"hello"})
    assert whole == encode_header(4096, 5) + b"hello"
    assert TRANSFER.parse(whole).data == b"hello"


def test_decoders_split_any_chunking():
    stream = encode_header(0, 3) + b"abc" + encode_header(3, 0) + encode_header(3, 4) + b"defg"
    for cut in range(1, len(stream)):
        d = TransferDecoder()
        assert d.feed(stream[:cut]) + d.feed(stream[cut:]) == [(0, b"abc"), (3, b""), (3, b"defg")]
    reports = encode_report(7) + encode_report(1 << 40)
    for cut in range(len(reports) + 1):
        r = ReportDecoder()
        assert r.feed(reports[:cut]) + r.feed(reports[cut:]) == [7, 1 << 40]
    with pytest.raises(ValueError):
        TransferDecoder().feed(encode_header(0, -1))


# -- in-process master and slave -------------------------------------------------------------------


@pytest.fixture
def pair(tmp_path):
    """``make(role=..., **props)`` → (master, slave-maker); everything stopped at the end."""
    started = []

    def start(path, **props):
        svc = BrokerService(broker_config(path, **props), reactor)
        svc.startService()
        started.append(svc)
        return svc

    def master(role="ASYNC_MASTER", **props):
        return start(tmp_path / "m", brokerRole=role, brokerName="ha", **FAST, **props)

    def slave(m, name="s", **props):
        s = start(tmp_path / name, brokerRole="SLAVE", brokerId=1, brokerName="ha",
                  haMasterAddress=f"127.0.0.1:{m.config.ha_listen_port}", **FAST, **props)
        s.master_addr = m.config.broker_addr  # what a NameServer registration answer would say
        return s

    yield master, slave
    for svc in reversed(started):
        if svc.running:
            pytest_twisted.blockon(svc.stopService())


def commitlog_bytes(svc) -> bytes:
    """Every CommitLog file of a broker, concatenated (what must be identical on master and slave)."""
    store = svc.store
    return store.get_commit_log_data(store.get_min_phy_offset(), 1 << 30) or b""


def caught_up(master, slave):
    return poll(lambda: (slave.store.get_max_phy_offset(), master.store.get_max_phy_offset()),
                lambda r: r[0] == r[1] and r[0] > 0, timeout=30, what="the slave to catch up")


@pytest_twisted.inlineCallbacks
def test_slave_copies_master_byte_for_byte_and_serves_pulls(pair, client):
    master_of, slave_of = pair
    m = master_of()
    s = slave_of(m)
    maddr, saddr = m.config.broker_addr, s.config.broker_addr
    yield client.create_topic(maddr, "HaT", queues=2)
    for i in range(200):
        r = yield client.send(maddr, "HaT", b"m-%d" % i + b"x" * (i % 50), tags="t", queue_id=i % 2)
        assert r.code == RC.SUCCESS
    yield caught_up(m, s)
    assert commitlog_bytes(s) == commitlog_bytes(m)
    # the slave built its own queues: a pull from it returns what the master stored
    yield poll(lambda: "HaT" in s.topic_config_manager.table, bool, what="topic config copied to the slave")
    r = yield client.pull(saddr, "g", "HaT", 1, 0)
    assert r.code == RC.SUCCESS
    expected = [b"m-%d" % i + b"x" * (i % 50) for i in range(1, 200, 2)]
    assert [x.body for x in decode_messages(r.body)] == expected[:32]
    # a slave refuses writes
    r = yield client.send(saddr, "HaT", b"no")
    assert r.code == RC.SERVICE_NOT_AVAILABLE
    assert m.ha.slaves()[0]["lagBytes"] == 0


@pytest_twisted.inlineCallbacks
def test_sync_master_waits_for_the_slave(pair, client):
    master_of, slave_of = pair
    m = master_of("SYNC_MASTER", syncFlushTimeout=1000)
    maddr = m.config.broker_addr
    yield client.create_topic(maddr, "SyncT", queues=1)
    r = yield client.send(maddr, "SyncT", b"alone")
    assert r.code == RC.SLAVE_NOT_AVAILABLE  # stored, but no slave holds it
    s = slave_of(m)
    yield poll(lambda: m.ha.slave_ok(m.store.get_max_phy_offset()), bool, what="the slave connected")
    for i in range(20):
        r = yield client.send(maddr, "SyncT", b"sync-%d" % i)
        assert r.code == RC.SUCCESS, r.remark
        # acknowledged means the slave holds it already
        assert s.store.get_max_phy_offset() >= int(r.ext_fields["queueOffset"]) >= 0
        assert s.store.get_max_offset_in_queue("SyncT", 0) >= int(r.ext_fields["queueOffset"]) + 1
    families = {f.name: f for f in m.ha.gauges()}
    assert families["mq_broker_ha_connected_slaves"].samples[0].value == 1
    assert [x.value for x in families["mq_broker_ha_slave_lag_bytes"].samples] == [0]
    assert [x.value for x in families["mq_broker_ha_slave_lag_seconds"].samples] == [0]
    waits = {x.name: x.value for x in families["mq_broker_ha_sync_wait_seconds"].samples}
    assert waits["mq_broker_ha_sync_wait_seconds_count"] == 20
    # a slave that stops acknowledging: FLUSH_SLAVE_TIMEOUT after syncFlushTimeout
    s.ha_slave.proto.report = lambda offset: None
    r = yield client.send(maddr, "SyncT", b"late")
    assert r.code == RC.FLUSH_SLAVE_TIMEOUT
    assert m.ha.sync_results["timeout"] == 1
    lag = {x.labels["slave"]: x.value for x in {f.name: f for f in m.ha.gauges()}["mq_broker_ha_slave_lag_bytes"].samples}
    assert list(lag.values()) == [m.store.get_max_phy_offset() - m.ha.acked_offset] and m.ha.acked_offset > 0


@pytest.mark.parametrize("master_more", [0, 30, 400])
@pytest_twisted.inlineCallbacks
def test_diverged_slave_truncates_to_the_common_point(pair, client, tmp_path, master_more):
    """The slave holds records the master never had (master_more=0: the slave is ahead; 30: the logs
    part and the master wrote less since; 400: the master wrote more since)."""
    master_of, slave_of = pair
    m = master_of()
    maddr = m.config.broker_addr
    yield client.create_topic(maddr, "HaDiv", queues=1)
    for i in range(100):
        assert (yield client.send(maddr, "HaDiv", b"common-%d" % i, queue_id=0)).code == RC.SUCCESS
    s = slave_of(m)
    yield caught_up(m, s)
    common = m.store.get_max_phy_offset()
    yield s.stopService()
    foreign_end = append_foreign(tmp_path / "s" / "store", 50)
    for i in range(master_more):
        assert (yield client.send(maddr, "HaDiv", b"later-%d" % i, queue_id=0)).code == RC.SUCCESS
    s2 = slave_of(m)
    yield poll(lambda: s2.ha_slave.truncations, bool, timeout=30, what="the slave to truncate")
    if master_more == 0:
        assert (yield client.send(maddr, "HaDiv", b"after", queue_id=0)).code == RC.SUCCESS
    yield caught_up(m, s2)
    assert commitlog_bytes(s2) == commitlog_bytes(m)
    assert s2.ha_slave.truncations == 1
    assert s2.ha_slave.truncated_bytes == foreign_end - common  # cut exactly at the common point
    bodies = []
    offset = 0
    while True:
        r = s2.store.get_message("g", "HaDiv", 0, offset, 32)
        if not r.message_buffers:
            break
        bodies += [x.body for x in decode_messages(r.body())]
        offset = r.next_begin_offset
    assert not any(b.startswith(b"foreign") for b in bodies)
    assert len(bodies) == 100 + master_more + (1 if master_more == 0 else 0)


@pytest_twisted.inlineCallbacks
def test_empty_slave_catches_up_and_reconnects_after_master_restart(pair, client, tmp_path):
    master_of, slave_of = pair
    m = master_of()
    maddr = m.config.broker_addr
    yield client.create_topic(maddr, "HaE", queues=4)
    for i in range(300):
        yield client.send(maddr, "HaE", os.urandom(100 + i))
    s = slave_of(m)  # starts empty: catches up from the master's (only) CommitLog file
    yield caught_up(m, s)
    assert commitlog_bytes(s) == commitlog_bytes(m)
    assert s.ha_slave.truncations == 0
    yield m.stopService()
    yield poll(lambda: s.ha_slave.is_connected, lambda c: not c, what="the slave to notice")
    m2 = BrokerService(m.config, reactor)
    m2.startService()
    try:
        for i in range(50):
            yield client.send(maddr, "HaE", b"after-restart-%d" % i)
        yield caught_up(m2, s)
        assert commitlog_bytes(s) == commitlog_bytes(m2)
    finally:
        yield m2.stopService()


# -- the master's bookkeeping on a fake clock --------------------------------------------------------


class _Store:
    def __init__(self):
        self.end = 0
        self.config = MessageStoreConfig()

    def get_max_phy_offset(self):
        return self.end


def test_sync_waits_and_lag_on_a_fake_clock():
    clock = task.Clock()
    store = _Store()
    broker = SimpleNamespace(store=store, config=SimpleNamespace(broker_role=BrokerRole.SYNC_MASTER, is_slave=False),
                             reactor=clock)
    ha = HAService(broker, HAConfig(sync_timeout=5000), clock)
    slave = SimpleNamespace(ack=0, next=0, peer="s", bytes_sent=0, push=lambda: None)
    ha.connections.append(slave)
    store.end = 100
    ha.notify()
    clock.advance(0)  # the push runs at the end of the turn and samples the end with the time
    clock.advance(2)
    store.end = 300
    ha.notify()
    clock.advance(0)
    clock.advance(1)
    assert (ha.lag_seconds(0), ha.lag_seconds(100), ha.lag_seconds(300)) == (3, 1, 0)

    def put(offset, size):
        result = PutMessageResult(PutMessageStatus.PUT_OK, AppendMessageResult(AppendMessageStatus.PUT_OK, offset, size))
        outcome = []
        ha.replicated(defer.succeed(result)).addCallback(lambda r: outcome.append(r.status))
        return outcome

    first, second = put(100, 100), put(200, 100)
    clock.advance(1)
    assert first == second == []  # waiting for the slave
    slave.ack = 200
    ha.acked(slave)
    assert first == [PutMessageStatus.PUT_OK] and second == []
    clock.advance(4)  # 5 s after the second put
    assert second == [PutMessageStatus.FLUSH_SLAVE_TIMEOUT]
    assert put(0, 100) == [PutMessageStatus.PUT_OK]  # already acked
    assert ha.replicated(defer.succeed("x"), "false").result == "x"  # WAIT=false never waits
    ha.connections.clear()
    assert put(300, 10) == [PutMessageStatus.SLAVE_NOT_AVAILABLE]


def test_waiting_sync_sends_get_slave_not_available_as_soon_as_the_last_slave_goes():
    """A slave that dies under SYNC_MASTER load: its waiting sends are answered at once, not at syncFlushTimeout."""
    clock = task.Clock()
    store = _Store()
    broker = SimpleNamespace(store=store, config=SimpleNamespace(broker_role=BrokerRole.SYNC_MASTER, is_slave=False),
                             reactor=clock)
    ha = HAService(broker, HAConfig(sync_timeout=5000), clock)
    one, two = (SimpleNamespace(ack=0, next=0, peer=p, bytes_sent=0, push=lambda: None) for p in ("s1", "s2"))
    ha.connections.extend([one, two])
    store.end = 300
    outcomes = []
    for offset in (0, 100, 200):
        result = PutMessageResult(PutMessageStatus.PUT_OK, AppendMessageResult(AppendMessageStatus.PUT_OK, offset, 100))
        ha.replicated(defer.succeed(result)).addCallback(lambda r: outcomes.append((r.status, r.reason)))
    ha.connection_lost(one)
    assert outcomes == []  # the other slave may still acknowledge them
    two.ack = 100
    ha.acked(two)
    assert [s for s, _ in outcomes] == [PutMessageStatus.PUT_OK]
    ha.connection_lost(two)  # no reactor time passes
    assert [s for s, _ in outcomes] == [PutMessageStatus.PUT_OK] + [PutMessageStatus.SLAVE_NOT_AVAILABLE] * 2
    assert "connection closed" in outcomes[1][1]
    assert ha.sync_results == {"ok": 1, "timeout": 0, "not_available": 2}
    clock.advance(10)  # nothing answered twice at the old deadline
    assert len(outcomes) == 3 and not ha.waiters


def test_a_slave_catching_up_is_logged_every_interval_until_within_the_gap(log_events):
    from twisted.logger import formatEvent

    from mq.common.progress import LOG_EVERY

    clock = task.Clock()
    store = _Store()
    broker = SimpleNamespace(store=store, config=SimpleNamespace(broker_role=BrokerRole.ASYNC_MASTER, is_slave=False),
                             reactor=clock)
    ha = HAService(broker, HAConfig(max_gap_not_in_sync=1 << 20), clock)
    near = SimpleNamespace(ack=(100 << 20) - 1000, next=0, start_offset=0, peer="near")
    far = SimpleNamespace(ack=0, next=0, start_offset=20 << 20, peer="far")  # an empty slave: from the last file
    ha.connections.extend([near, far])
    store.end = 100 << 20

    def lines():
        return [formatEvent(e) for e in log_events if "catching up" in formatEvent(e)]

    ha.report_catch_up()
    clock.advance(LOG_EVERY / 2)
    far.ack = 30 << 20
    ha.report_catch_up()
    assert lines() == []  # not yet an interval
    clock.advance(LOG_EVERY / 2)
    far.ack = 60 << 20
    ha.report_catch_up()
    assert lines() == ["HA: slave far catching up: 40.0 of 80.0 MiB (50%), 8.0 MiB/s"]
    far.ack = store.end
    ha.report_catch_up()
    assert lines()[1:] == ["HA: slave far catching up: done, 80.0 MiB in 5.0 s"]
    assert not ha._catching_up


def test_the_ha_port_keeps_at_most_max_ha_connections(log_events):
    """Anyone can connect to the HA port (as in RocketMQ); each connection is a file descriptor."""
    from twisted.internet.address import IPv4Address
    from twisted.internet.testing import StringTransport

    from mq.broker.ha.master import MAX_HA_CONNECTIONS, HAFactory

    clock = task.Clock()
    broker = SimpleNamespace(store=_Store(), config=SimpleNamespace(broker_role=BrokerRole.ASYNC_MASTER,
                                                                     is_slave=False), reactor=clock)
    ha = HAService(broker, HAConfig(), clock)
    factory = HAFactory(ha)
    conns = []
    for port in range(MAX_HA_CONNECTIONS):
        conn = factory.buildProtocol(IPv4Address("TCP", "10.0.0.1", port))
        conn.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.1", port)))
        conns.append(conn)
    assert len(ha.connections) == MAX_HA_CONNECTIONS
    assert all(factory.buildProtocol(IPv4Address("TCP", "10.0.0.2", p)) is None for p in range(20))
    lines = [e["log_format"] for e in log_events if "HA: closed" in e.get("log_format", "")]
    assert len(lines) == 1  # one line for the flood
    conns[0].connectionLost(None)
    assert factory.buildProtocol(IPv4Address("TCP", "10.0.0.2", 99)) is not None
