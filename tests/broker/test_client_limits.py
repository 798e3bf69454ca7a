"""Heartbeat floods: new groups cost a table entry each (no state file rewritten per group), and the broker's
limits on client connections, online groups and auto-created subscription groups refuse what is past them."""

from __future__ import annotations

import itertools
import json

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from mq.broker import state_file
from mq.broker.service import BrokerService
from mq.common import fastjson, mixall
from mq.remoting.codes import FLAG_RESPONSE, RequestCode
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.command import RemotingCommand
from mq.remoting.serialization import encode_command
from tests.broker.conftest import broker_config
from tests.remoting.support import split_frames

_ports = itertools.count(20000)


class Broker:
    def __init__(self, tmp_path, **props) -> None:
        self.clock = MemoryReactorClock()
        self.clock.advance(1_700_000_000)
        self.svc = BrokerService(broker_config(tmp_path, **props), self.clock)
        self.svc.startService()

    def connect(self):
        proto = self.svc.factory.buildProtocol(IPv4Address("TCP", "10.0.0.9", next(_ports)))
        transport = StringTransport()
        proto.makeConnection(transport)
        return proto, transport

    def heartbeat(self, conn, consumers=(), producers=()):
        proto, transport = conn
        body = {"clientID": f"client-{id(proto)}",
                "consumerDataSet": [{"groupName": g, "consumeType": "CONSUME_PASSIVELY", "messageModel": "CLUSTERING",
                                     "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET",
                                     "subscriptionDataSet": [{"topic": "T", "subString": "*", "subVersion": 1}]}
                                    for g in consumers],
                "producerDataSet": [{"groupName": g} for g in producers]}
        transport.clear()
        proto.dataReceived(encode_command(RemotingCommand(RequestCode.HEART_BEAT, 1, 0, None, {},
                                                          json.dumps(body).encode())))
        # the broker may notify the member (a request) before it answers
        [answer] = [c for c in split_frames(transport.value()) if c.flag & FLAG_RESPONSE]
        return answer

    def close(self, conn):
        proto, transport = conn
        transport.loseConnection()
        proto.connectionLost(None)


@pytest.fixture
def make(tmp_path):
    made = []

    def build(**props) -> Broker:
        b = Broker(tmp_path, **props)
        made.append(b)
        return b

    yield build
    for b in made:
        b.svc.stopService()


def test_online_groups_are_capped_and_known_groups_still_pass(make):
    b = make(maxClientGroupNums=5)
    conn = b.connect()
    for i in range(4):
        assert b.heartbeat(conn, consumers=[f"C{i}"]).code == RC.SUCCESS
    assert b.heartbeat(conn, producers=["P0"]).code == RC.SUCCESS  # consumers and producers count together
    refused = b.heartbeat(conn, consumers=["C0", "C-new"])
    assert refused.code == RC.SYSTEM_BUSY and "maxClientGroupNums=5" in refused.remark, refused.remark
    assert "C-new" not in b.svc.consumer_manager.table  # refused whole
    assert b.heartbeat(conn, consumers=["C0", "C1", "C2", "C3"], producers=["P0"]).code == RC.SUCCESS
    other = b.connect()
    assert b.heartbeat(other, consumers=["C0"]).code == RC.SUCCESS  # a known group's new member is welcome
    b.close(conn)  # C1..C3 and P0 leave with their only member
    assert b.heartbeat(other, consumers=["C0", "C-new"], producers=["P-new"]).code == RC.SUCCESS
    assert set(b.svc.consumer_manager.table) == {"C0", "C-new"}


def test_auto_created_subscription_groups_are_capped(make):
    preset = len(mixall.PRESET_SUBSCRIPTION_GROUPS)
    b = make(maxSubscriptionGroupNums=preset + 3)
    conn = b.connect()
    assert b.heartbeat(conn, consumers=["G1", "G2"]).code == RC.SUCCESS
    refused = b.heartbeat(conn, consumers=["G3", "G4"])
    assert refused.code == RC.SUBSCRIPTION_GROUP_NOT_EXIST, refused
    assert "G3" in refused.remark and f"maxSubscriptionGroupNums={preset + 3}" in refused.remark, refused.remark
    assert "G3" not in b.svc.subscription_group_manager.table and "G3" not in b.svc.consumer_manager.table
    assert b.heartbeat(conn, consumers=["G3"]).code == RC.SUCCESS  # the last one that fits
    assert b.heartbeat(b.connect(), consumers=["G1"]).code == RC.SUCCESS  # known groups are not counted
    assert b.svc.subscription_group_manager.find("G9") is None  # pulls cannot create past it either


def test_client_connections_are_capped(make):
    b = make(maxClientChannelNums=3)
    conns = [b.connect() for _ in range(4)]
    for conn in conns[:3]:
        assert b.heartbeat(conn, producers=["P"]).code == RC.SUCCESS
    refused = b.heartbeat(conns[3], producers=["P"])
    assert refused.code == RC.SYSTEM_BUSY and "maxClientChannelNums=3" in refused.remark, refused.remark
    assert b.heartbeat(conns[0], producers=["P"]).code == RC.SUCCESS  # a registered connection goes on
    b.close(conns[0])
    assert b.heartbeat(conns[3], producers=["P"]).code == RC.SUCCESS


def test_new_groups_do_not_rewrite_state_files_each(make, monkeypatch):
    """A new group once rewrote subscriptionGroup.json and topics.json (each fsynced), 20 ms and growing with
    the tables; now they are saved once a second with every group made meanwhile."""
    b = make()
    writes = []
    real = state_file.write_atomically
    monkeypatch.setattr(state_file, "write_atomically", lambda path, text: (writes.append(path), real(path, text)))
    conn = b.connect()
    for i in range(200):
        assert b.heartbeat(conn, consumers=[f"flood-{i}"]).code == RC.SUCCESS
    assert writes == []
    b.clock.advance(1)
    assert sorted(p.rsplit("/", 1)[1] for p in writes) == ["subscriptionGroup.json", "topics.json"]
    saved = fastjson.loads(open(b.svc.subscription_group_manager.path).read())["subscriptionGroupTable"]
    topics = fastjson.loads(open(b.svc.topic_config_manager.path).read())["topicConfigTable"]
    assert all(f"flood-{i}" in saved and f"%RETRY%flood-{i}" in topics for i in range(200))
    b.clock.advance(5)
    assert len(writes) == 2  # nothing changed since


def test_closing_a_connection_forgets_it_in_every_group(make):
    b = make()
    conn, other = b.connect(), b.connect()
    assert b.heartbeat(conn, consumers=["A", "B"], producers=["P", "Q"]).code == RC.SUCCESS
    assert b.heartbeat(other, consumers=["A"], producers=["P"]).code == RC.SUCCESS
    b.close(conn)
    cm, pm = b.svc.consumer_manager, b.svc.producer_manager
    assert set(cm.table) == {"A"} and set(pm.table) == {"P"}
    assert conn[0] not in cm.groups_of.table and conn[0] not in pm.groups_of.table
    heartbeats = b.svc.dispatcher.processors[RequestCode.HEART_BEAT].__wrapped__.__self__  # under the name guard
    assert heartbeats.channels == 1


def test_state_files_read_the_same_from_the_c_encoder(make):
    b = make()
    conn = b.connect()
    b.heartbeat(conn, consumers=["G\u00e9\"x"])
    for manager in (b.svc.topic_config_manager, b.svc.subscription_group_manager):
        data = manager.encode()
        assert fastjson.dumps_string_keyed(data) == fastjson.dumps(data)
