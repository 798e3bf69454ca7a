"""UPDATE_BROKER_CONFIG on a broker driven by a clock: a value outside its range is refused with the key and the
range in the remark, and is applied and saved nowhere; an accepted change takes effect where it is used (the
store's size check, timers, client expiry, short polling), not only in the config object."""

from __future__ import annotations

import os

import pytest

from mq.broker.config import runtime_config_path
from mq.client.simple import heartbeat_request, pull_request, send_request
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.command import RemotingCommand
from mq.remoting.serialization import encode_command
from mq.store.results import PutMessageStatus
from tests.robustness.harness import Peer
from tests.robustness.test_broker_fuzz import in_memory_broker
from tests.store.storetestlib import inner, result_of


@pytest.fixture
def broker(tmp_path):
    svc = in_memory_broker(tmp_path)
    yield svc
    if svc.running:
        svc.stopService()


def call(peer: Peer, request: RemotingCommand) -> RemotingCommand:
    peer.feed(encode_command(request))
    [response] = peer.responses()
    return response


def update(broker, body: str) -> RemotingCommand:
    return call(Peer(broker.factory), RemotingCommand.request(RequestCode.UPDATE_BROKER_CONFIG, None, body.encode()))


@pytest.mark.parametrize("body, remark", [
    ("flushConsumerOffsetInterval=0", "flushConsumerOffsetInterval: 0 is outside 100..3600000 (ms)"),
    ("maxMessageSize=-5", "maxMessageSize: -5 is outside 1024..67108864 (bytes)"),
    ("channelExpiredTimeout=-1", "channelExpiredTimeout: -1 is outside 60000.. (ms)"),
    ("registerNameServerPeriod=-1", "registerNameServerPeriod: -1 is outside 10000..60000 (ms)"),
    ("shortPollingTimeMills=-1", "shortPollingTimeMills: -1 is outside 10..30000 (ms)"),
    ("defaultTopicQueueNums=100000", "defaultTopicQueueNums: 100000 is outside 1..1024"),
    ("brokerPermission=-2", "brokerPermission: -2 is outside 0..7"),
    # one bad key refuses the whole body: the good one is not applied either
    ("autoCreateTopicEnable=false\nmaxMessageSize=1e3", "maxMessageSize: '1e3' is not an integer"),
])
def test_a_value_out_of_range_is_refused_applied_nowhere_and_saved_nowhere(broker, body, remark):
    before = broker.config.to_properties()
    offsets_every = broker._loops["offsets"].interval
    r = update(broker, body)
    assert (r.code, r.remark) == (RC.SYSTEM_ERROR, remark)
    assert broker.config.to_properties() == before
    assert broker.store.config.max_message_size == broker.config.max_message_size == 4 << 20
    assert broker._loops["offsets"].interval == offsets_every
    assert not os.path.exists(runtime_config_path(broker.config.store_path_root_dir))


def test_max_message_size_reaches_the_send_check_and_the_store(broker):
    assert update(broker, "maxMessageSize=2048").code == RC.SUCCESS
    assert broker.store.config.max_message_size == 2048
    peer = Peer(broker.factory)
    r = call(peer, send_request("SizeT", b"x" * 3000))
    assert r.code == RC.MESSAGE_ILLEGAL and "over the maximum of 2048 bytes" in r.remark
    # what does not go through the send check (retries, delay levels, transactions) meets the store's
    assert result_of(broker.store.put_message(inner("SizeT", b"x" * 3000))).status is PutMessageStatus.MESSAGE_ILLEGAL
    assert update(broker, "maxMessageSize=4096").code == RC.SUCCESS
    assert call(peer, send_request("SizeT", b"x" * 3000)).code == RC.SUCCESS
    assert result_of(broker.store.put_message(inner("SizeT", b"y" * 3000))).status is PutMessageStatus.PUT_OK


def test_flush_consumer_offset_interval_restarts_its_timer(broker):
    path = broker.consumer_offset_manager.path
    broker.reactor.advance(5)  # the default timer (5 s) has run once: nothing to save yet
    broker.consumer_offset_manager.commit("G", "T", 0, 7)
    assert update(broker, "flushConsumerOffsetInterval=200").code == RC.SUCCESS
    assert broker._loops["offsets"].interval == 0.2
    broker.reactor.advance(0.1)
    assert not os.path.exists(path) or '"T@G"' not in open(path).read()
    broker.reactor.advance(0.15)  # 0.25 s after the change, long before the old 5 s
    assert '"T@G":{0:7}' in open(path).read().replace(" ", "").replace("\n", "")


def test_register_name_server_period_restarts_its_timer(broker, monkeypatch):
    calls = []
    monkeypatch.setattr(broker, "register_broker_all", lambda *a, **k: calls.append(broker.reactor.seconds()))
    assert update(broker, "registerNameServerPeriod=10000").code == RC.SUCCESS
    changed_at = broker.reactor.seconds()
    broker.reactor.advance(10)
    broker.reactor.advance(10)
    assert calls == [changed_at + 10, changed_at + 20]  # the old timer (30 s) would not have run yet


def test_channel_expired_timeout_reaches_the_client_managers(broker):
    client = Peer(broker.factory, port=40001)
    assert call(client, heartbeat_request("c1", consumers=[("CG", ["T"], "CLUSTERING")])).code == RC.SUCCESS
    broker.reactor.advance(120)  # the fixture's timeout is very long: the silent client stays
    assert not client.closed and "CG" in broker.consumer_manager.table
    assert update(broker, "channelExpiredTimeout=60000").code == RC.SUCCESS
    assert broker.consumer_manager.timeout == broker.producer_manager.timeout == 60_000
    broker.reactor.advance(10)  # the next scan of clients drops the one silent for over 60 s
    assert client.closed and "CG" not in broker.consumer_manager.table


def test_short_polling_time_reaches_the_pull_path(broker):
    peer = Peer(broker.factory)
    assert update(broker, "longPollingEnable=false\nshortPollingTimeMills=50").code == RC.SUCCESS
    call(peer, send_request("PollT", b"x", queue_id=0))
    peer.feed(encode_command(pull_request("PG", "PollT", 0, 1, suspend_ms=15_000)))
    assert peer.responses() == []  # held ...
    broker.reactor.advance(0.06)  # ... for 50 ms, not the 15 s the request asked for
    [r] = peer.responses()
    assert r.code == RC.PULL_NOT_FOUND


def test_broker_permission_is_registered_at_once(broker, monkeypatch):
    calls = []
    monkeypatch.setattr(broker, "register_broker_all", lambda *a, **k: calls.append(a))
    assert update(broker, "brokerPermission=4").code == RC.SUCCESS
    assert calls == [()]
    r = call(Peer(broker.factory), send_request("PermT", b"x"))
    assert r.code == RC.NO_PERMISSION


def test_a_body_of_many_unknown_keys_gets_a_short_remark(broker):
    r = update(broker, "".join(f"k{i}=1\n" for i in range(5000)))
    assert r.code == RC.SYSTEM_ERROR and "and 4990 more" in r.remark and len(r.remark) < 300


def test_a_body_with_a_malformed_escape_is_refused_not_crashed_on(broker):
    r = update(broker, "regionId=\\u12\n")
    assert r.code == RC.SYSTEM_ERROR and "not properties text" in r.remark
    assert update(broker, "regionId=Esc\\u0041ped\n").code == RC.SUCCESS
    assert broker.config.region_id == "EscAped"
