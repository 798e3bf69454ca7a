"""Ranges of UPDATE_AND_CREATE_SUBSCRIPTIONGROUP's body (and of ``subscriptionGroup.json``) and the checks of
UPDATE_CONSUMER_OFFSET: what an admin or client may not make the broker build, save or publish."""

from __future__ import annotations

import json
import os

import pytest
from twisted.logger import globalLogPublisher

from mq.client.simple import heartbeat_request, update_offset_request
from mq.common import fastjson
from mq.common.route import TopicConfig
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


# -- UPDATE_CONSUMER_OFFSET --------------------------------------------------------------------------------


def commit(broker, group: str, topic: str, queue_id: int, offset: int = 5, oneway: bool = False):
    request = update_offset_request(group, topic, queue_id, offset)
    if not oneway:
        return call(broker, request)
    request = RemotingCommand.request(RequestCode.UPDATE_CONSUMER_OFFSET, request.ext_fields, oneway=True)
    peer = Peer(broker.factory)
    peer.feed(encode_command(request))
    assert peer.responses() == []
    return None


def test_an_offset_of_an_unknown_topic_is_refused(broker):
    """TOPIC_NOT_EXIST (RocketMQ 5's check), oneway commits too: nothing enters the offset table."""
    r = commit(broker, "G", "NO_SUCH_TOPIC", 0)
    assert (r.code, r.remark) == (RC.TOPIC_NOT_EXIST, "Topic NO_SUCH_TOPIC not exist!")
    for n in range(50):
        commit(broker, "G", f"MADE_UP_{n}", 0, oneway=True)
    assert broker.consumer_offset_manager.table == {}


def test_an_offset_of_a_queue_id_out_of_range_is_refused(broker):
    """Queue ids 0..max(read, write)-1 are committed; -1, the max and 2^31-1 are SYSTEM_ERROR (the code of
    4.x's pull for an illegal queue id) naming the id and the topic's queue counts."""
    broker.topic_config_manager.update(TopicConfig("T", 2, 4))
    for qid in (0, 3):
        assert commit(broker, "G", "T", qid).code == RC.SUCCESS
    for qid in (-1, 4, (1 << 31) - 1):
        r = commit(broker, "G", "T", qid)
        assert r.code == RC.SYSTEM_ERROR
        assert f"queueId[{qid}] is illegal, topic:[T] readQueueNums:[2] writeQueueNums:[4]" in r.remark
        commit(broker, "G", "T", qid, oneway=True)
    assert broker.consumer_offset_manager.query_queues("G", "T") == {0: 5, 3: 5}


def test_an_offset_of_an_unknown_group_is_refused_only_without_auto_creation(tmp_path):
    """autoCreateSubscriptionGroup=false: SUBSCRIPTION_GROUP_NOT_EXIST (RocketMQ 5's check, made before the
    topic's); a group created by an admin is committed for. With auto-creation (the default) a commit creates
    the group as a heartbeat would, but not for a commit refused for its topic or queue id."""
    strict = in_memory_broker(tmp_path / "strict", autoCreateSubscriptionGroup="false")
    try:
        strict.topic_config_manager.update(TopicConfig("T", 1, 1))
        r = commit(strict, "NOGROUP", "NO_SUCH_TOPIC", 0)
        assert (r.code, r.remark) == (RC.SUBSCRIPTION_GROUP_NOT_EXIST, "Group NOGROUP not exist!")
        assert commit(strict, "NOGROUP", "T", 0).code == RC.SUBSCRIPTION_GROUP_NOT_EXIST
        assert update_group(strict).code == RC.SUCCESS
        assert commit(strict, "BIG", "T", 0).code == RC.SUCCESS
        assert strict.consumer_offset_manager.query_queues("BIG", "T") == {0: 5}
    finally:
        strict.stopService()
    loose = in_memory_broker(tmp_path / "loose")
    try:
        loose.topic_config_manager.update(TopicConfig("T", 1, 1))
        assert commit(loose, "NEW", "NO_SUCH_TOPIC", 0).code == RC.TOPIC_NOT_EXIST
        assert commit(loose, "NEW", "T", 9).code == RC.SYSTEM_ERROR
        assert "NEW" not in loose.subscription_group_manager.table
        assert commit(loose, "NEW", "T", 0).code == RC.SUCCESS
        assert "NEW" in loose.subscription_group_manager.table
    finally:
        loose.stopService()


def test_an_offset_does_not_create_a_group_past_the_table_bound(tmp_path):
    """Auto-creation stops at maxSubscriptionGroupNums (as for heartbeats): made-up group names cannot grow the
    offset table without end either; SUBSCRIPTION_GROUP_NOT_EXIST."""
    broker = in_memory_broker(tmp_path, maxSubscriptionGroupNums="1")
    try:
        broker.topic_config_manager.update(TopicConfig("T", 1, 1))
        r = commit(broker, "NEW", "T", 0)
        assert (r.code, r.remark) == (RC.SUBSCRIPTION_GROUP_NOT_EXIST, "Group NEW not exist!")
        assert commit(broker, "TOOLS_CONSUMER", "T", 0).code == RC.SUCCESS  # a group the broker has
        assert set(broker.consumer_offset_manager.groups_of_topic("T")) == {"TOOLS_CONSUMER"}
    finally:
        broker.stopService()


def test_a_consumer_commits_for_its_retry_topic(broker):
    """What a real consumer does after its heartbeat: commit offsets for its topic and its %RETRY% topic."""
    broker.topic_config_manager.update(TopicConfig("T", 4, 4))
    assert call(broker, heartbeat_request("c1", consumers=[("CG", ["T"], "CLUSTERING")])).code == RC.SUCCESS
    assert commit(broker, "CG", "T", 3).code == RC.SUCCESS
    assert commit(broker, "CG", "%RETRY%CG", 0).code == RC.SUCCESS
    assert broker.consumer_offset_manager.query_queues("CG", "%RETRY%CG") == {0: 5}
