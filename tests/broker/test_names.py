"""Names from the wire on an in-process broker: no topic or group a request names reaches a path, a state
file, a client table, a retry topic or a delay level unless it is a legal name (RocketMQ's rule, matched
whole); DELETE_TOPIC_IN_BROKER removes only what the store holds."""

from __future__ import annotations

import os

import pytest_twisted

from mq.client.simple import (
    heartbeat_request,
    lock_batch_request,
    pull_request,
    query_offset_request,
    send_back_request,
    update_offset_request,
)
from mq.common import fastjson
from mq.common.message import decode_offset_msg_id
from mq.common.message_record import decode_messages
from mq.common.topic import SCHEDULE_TOPIC
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC

BAD_GROUPS = ["bad/group", "../g", "g\n", "", "g" * 256, "g\x00", "é"]


def _tree(path):
    """Every file and directory under ``path``, for "nothing changed" checks."""
    return sorted(os.path.join(d, n) for d, dirs, files in os.walk(path) for n in dirs + files)


@pytest_twisted.inlineCallbacks
def test_delete_topic_never_leaves_the_store(client, addr, broker, tmp_path):
    outside = tmp_path / "outside"
    (outside / "victim").mkdir(parents=True)
    (outside / "victim" / "data").write_text("keep me")
    store = tmp_path / "store"
    yield client.send(addr, "KeepMe", b"kept", queue_id=0)
    queue_root = store / "consumequeue"
    relative = os.path.relpath(outside / "victim", queue_root)  # ../../outside/victim
    before = _tree(store)
    for topic in (relative, str(outside / "victim"), "..", ".", "../..", "KeepMe/..", "KeepMe/0", "KeepMe\n",
                  "../consumequeue/KeepMe", "x" * 300):
        r = yield client.invoke(addr, RequestCode.DELETE_TOPIC_IN_BROKER, {"topic": topic})
        assert r.code == RC.SYSTEM_ERROR and "topic" in r.remark, (topic, r)
    assert (outside / "victim" / "data").read_text() == "keep me"
    assert _tree(store) == before
    r = yield client.pull(addr, "g", "KeepMe", 0, 0)
    assert [m.body for m in decode_messages(r.body)] == [b"kept"]
    # A legal name the broker does not hold removes nothing (not even a directory of that name).
    stray = queue_root / "NotATopic"
    stray.mkdir()
    queues_before = _tree(queue_root)
    for topic in ("NotATopic", "%2e%2e", "%RETRY%"):
        r = yield client.invoke(addr, RequestCode.DELETE_TOPIC_IN_BROKER, {"topic": topic})
        assert r.code == RC.SUCCESS
    assert stray.is_dir() and _tree(queue_root) == queues_before
    # The topic itself still goes.
    r = yield client.invoke(addr, RequestCode.DELETE_TOPIC_IN_BROKER, {"topic": "KeepMe"})
    assert r.code == RC.SUCCESS and not (queue_root / "KeepMe").exists()


@pytest_twisted.inlineCallbacks
def test_a_trailing_newline_is_no_topic(client, addr, broker):
    r = yield client.create_topic(addr, "Newline\n")
    assert r.code == RC.SYSTEM_ERROR and "characters outside" in r.remark
    r = yield client.send(addr, "Newline\n", b"x")
    assert r.code == RC.SYSTEM_ERROR and "characters outside" in r.remark
    assert not any(t.endswith("\n") for t in broker.topic_config_manager.table)


@pytest_twisted.inlineCallbacks
def test_send_back_refuses_illegal_groups(client, addr, broker):
    r = yield client.send(addr, "SendBackT", b"failed once", queue_id=0)
    offset = decode_offset_msg_id(r.ext_fields["msgId"])[1]
    for group in BAD_GROUPS + ["g" * 121]:  # 121: legal, but %RETRY%<group> would be 128 characters
        r = yield client.call(addr, send_back_request(group, offset))
        assert r.code == RC.SYSTEM_ERROR and "group" in r.remark, (group, r)
    assert broker.store.consume_queue(SCHEDULE_TOPIC, 2) is None
    assert not [t for t in broker.topic_config_manager.table if t.startswith(("%RETRY%", "%DLQ%"))]
    assert set(broker.subscription_group_manager.table) & set(BAD_GROUPS) == set()
    r = yield client.call(addr, send_back_request("good_group", offset))
    assert r.code == RC.SUCCESS


@pytest_twisted.inlineCallbacks
def test_illegal_groups_are_refused_wherever_they_arrive(client, addr, broker):
    yield client.send(addr, "GroupsT", b"x", queue_id=0)
    for group in BAD_GROUPS[:3] + ["g\n"]:
        for request in (
            heartbeat_request("c1", consumers=[(group, ["GroupsT"], "CLUSTERING")]),
            heartbeat_request("c1", producer_groups=[group]),
            pull_request(group, "GroupsT", 0, 0),
            query_offset_request(group, "GroupsT", 0),
            update_offset_request(group, "GroupsT", 0, 1),
            lock_batch_request(group, "c1", "broker-t", "GroupsT", [0]),
        ):
            r = yield client.call(addr, request)
            if group:
                assert r.code == RC.SYSTEM_ERROR and "group" in r.remark, (group, request.code, r)
            else:
                assert r.code != RC.SUCCESS or request.code == RequestCode.HEART_BEAT, (request.code, r)
        body = fastjson.dumps_bytes({"groupName": group, "consumeEnable": True, "retryQueueNums": 1})
        r = yield client.invoke(addr, RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, body=body)
        assert r.code == RC.SYSTEM_ERROR and "groupName" in r.remark, (group, r)
    r = yield client.call(addr, heartbeat_request("c1", consumers=[("G", ["Topic\n"], "CLUSTERING")]))
    assert r.code == RC.SYSTEM_ERROR and "topic" in r.remark
    assert set(broker.consumer_manager.table) & set(BAD_GROUPS + ["G"]) == set()
    saved = open(broker.subscription_group_manager.path).read() if os.path.exists(
        broker.subscription_group_manager.path) else ""
    assert "bad/group" not in saved and "../g" not in saved
    offsets = broker.consumer_offset_manager.encode() if hasattr(broker.consumer_offset_manager, "encode") else {}
    assert "bad/group" not in fastjson.dumps(offsets)
