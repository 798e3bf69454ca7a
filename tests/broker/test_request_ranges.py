"""Ranges of UPDATE_AND_CREATE_SUBSCRIPTIONGROUP's body (and of ``subscriptionGroup.json``) and the checks of
UPDATE_CONSUMER_OFFSET: what an admin or client may not make the broker build, save or publish."""

from __future__ import annotations

import json
import os

import pytest
from twisted.logger import globalLogPublisher

from mq.client.simple import heartbeat_request
from mq.common import fastjson
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.command import RemotingCommand
from mq.remoting.serialization import encode_command
from tests.broker.conftest import broker_config
from tests.robustness.harness import Peer
from tests.robustness.test_broker_fuzz import in_memory_broker


@pytest.fixture
def broker(tmp_path):
    svc = in_memory_broker(tmp_path)
    yield svc
    svc.stopService()


def call(broker, request: RemotingCommand) -> RemotingCommand:
    peer = Peer(broker.factory)
    peer.feed(encode_command(request))
    [r] = peer.responses()
    return r


def update_group(broker, **fields) -> RemotingCommand:
    body = fastjson.dumps_bytes({"groupName": "BIG", **fields})
    return call(broker, RemotingCommand.request(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, None, body))


# -- UPDATE_AND_CREATE_SUBSCRIPTIONGROUP -------------------------------------------------------------------

BOUNDS = [("retryQueueNums", 0, 1024), ("retryMaxTimes", -1, 1000), ("brokerId", 0, 1024),
          ("whichBrokerWhenConsumeSlowly", 0, 1024)]


@pytest.mark.parametrize(("key", "low", "high"), BOUNDS)
def test_group_number_fields_are_bounded(broker, key, low, high):
    """Each bound is accepted and stored; one past it is SYSTEM_ERROR naming the field, value and range, and
    leaves the group as it was."""
    groups = broker.subscription_group_manager.table
    for value in (low, high):
        r = update_group(broker, **{key: value})
        assert r.code == RC.SUCCESS, r.remark
        assert groups["BIG"].to_json()[key] == value
    for value in (low - 1, high + 1, 2_000_000, -(1 << 40)):
        r = update_group(broker, **{key: value})
        assert r.code == RC.SYSTEM_ERROR
        assert f"{key} {value} is out of range {low}..{high}" in r.remark
        assert groups["BIG"].to_json()[key] == high


@pytest.mark.parametrize("value", [b'"many"', b"1e400", b"NaN", b"[1]", b'{"a":1}'])
def test_group_number_field_of_another_type_is_refused_by_name(broker, value):
    """Not a number (a float too big for an int included): SYSTEM_ERROR naming the field, no group."""
    body = b'{"groupName":"BIG","retryQueueNums":' + value + b"}"
    r = call(broker, RemotingCommand.request(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, None, body))
    assert r.code == RC.SYSTEM_ERROR
    assert "retryQueueNums" in r.remark and "is not int" in r.remark
    assert "BIG" not in broker.subscription_group_manager.table


def test_a_refused_retry_queue_count_never_reaches_the_retry_topic(broker):
    """The review's case: 2,000,000 retry queues refused, so the heartbeat's %RETRY%BIG gets the default 1;
    the most a group may ask (1024, a topic's bound) is what its retry topic gets."""
    assert update_group(broker, retryQueueNums=2_000_000).code == RC.SYSTEM_ERROR
    assert call(broker, heartbeat_request("c1", consumers=[("BIG", ["T"], "CLUSTERING")])).code == RC.SUCCESS
    assert broker.topic_config_manager.select("%RETRY%BIG").read_queue_nums == 1
    body = fastjson.dumps_bytes({"groupName": "MOST", "retryQueueNums": 1024})
    call(broker, RemotingCommand.request(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, None, body))
    call(broker, heartbeat_request("c1", consumers=[("MOST", ["T"], "CLUSTERING")]))
    assert broker.topic_config_manager.select("%RETRY%MOST").write_queue_nums == 1024


def test_a_hand_edited_group_file_is_clamped_with_a_log_line(tmp_path):
    """``subscriptionGroup.json`` with values out of range: the group is loaded with each one brought to its
    nearest bound (its other settings, consumeEnable here, kept) and a warning names the group and changes."""
    config_dir = broker_config(tmp_path).config_dir
    os.makedirs(config_dir, exist_ok=True)
    group = {"groupName": "HAND", "consumeEnable": False, "retryQueueNums": 2_000_000, "retryMaxTimes": -5,
             "brokerId": 7, "whichBrokerWhenConsumeSlowly": 1 << 40}
    with open(os.path.join(config_dir, "subscriptionGroup.json"), "w") as f:
        json.dump({"subscriptionGroupTable": {"HAND": group}, "dataVersion": {"counter": 3, "timestamp": 1}}, f)
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        broker = in_memory_broker(tmp_path)
    finally:
        globalLogPublisher.removeObserver(events.append)
    try:
        sgc = broker.subscription_group_manager.table["HAND"].to_json()
        assert (sgc["consumeEnable"], sgc["retryQueueNums"], sgc["retryMaxTimes"], sgc["brokerId"],
                sgc["whichBrokerWhenConsumeSlowly"]) == (False, 1024, -1, 7, 1024)
        [line] = [e for e in events if "clamped" in e.get("log_format", "")]
        assert line["group"] == "HAND"
        assert line["changes"] == ("retryMaxTimes -5 -> -1, retryQueueNums 2000000 -> 1024, "
                                   "whichBrokerWhenConsumeSlowly 1099511627776 -> 1024")
    finally:
        broker.stopService()
