"""Pulls: statuses, tag filtering, offset commits, long polling, and every refusal's code and remark."""

from __future__ import annotations

import pytest_twisted

from mq.client.simple import pull_request
from mq.common.message_record import decode_messages
from mq.common.route import PERM_WRITE
from mq.remoting.codes import ResponseCode as RC
from tests.support.polling import poll


@pytest_twisted.inlineCallbacks
def test_statuses_and_header(client, addr):
    yield client.create_topic(addr, "PullT", queues=2)
    r = yield client.pull(addr, "g", "PullT", 0, 0)
    assert (r.code, r.remark) == (RC.PULL_NOT_FOUND, "NO_MATCHED_LOGIC_QUEUE")
    assert set(r.ext_fields) == {"suggestWhichBrokerId", "nextBeginOffset", "minOffset", "maxOffset"}
    r = yield client.pull(addr, "g", "PullT", 0, 5)
    assert (r.code, r.ext_fields["nextBeginOffset"]) == (RC.PULL_OFFSET_MOVED, "0")
    for i in range(3):
        yield client.send(addr, "PullT", b"m%d" % i, tags="a" if i != 1 else "b", queue_id=0)
    r = yield client.pull(addr, "g", "PullT", 0, 0, max_nums=2)
    assert r.code == RC.SUCCESS and r.remark == "FOUND" and r.body
    assert r.ext_fields == {"suggestWhichBrokerId": "0", "nextBeginOffset": "2", "minOffset": "0", "maxOffset": "3"}
    r = yield client.pull(addr, "g", "PullT", 0, 3)
    assert (r.code, r.remark) == (RC.PULL_NOT_FOUND, "OFFSET_OVERFLOW_ONE")
    r = yield client.pull(addr, "g", "PullT", 0, 9)
    assert (r.code, r.remark) == (RC.PULL_OFFSET_MOVED, "OFFSET_OVERFLOW_BADLY")
    r = yield client.pull(addr, "g", "PullT", 0, 0, subscription="b")
    assert [m.body for m in decode_messages(r.body)] == [b"m1"]
    r = yield client.pull(addr, "g", "PullT", 0, 1, subscription="zzz")
    assert (r.code, r.remark, r.ext_fields["nextBeginOffset"]) == (RC.PULL_RETRY_IMMEDIATELY, "NO_MATCHED_MESSAGE", "3")


@pytest_twisted.inlineCallbacks
def test_commit_offset_in_pull(client, addr, broker):
    yield client.send(addr, "PullC", b"x", queue_id=0)
    yield client.pull(addr, "cg", "PullC", 0, 0, commit_offset=7)
    assert broker.consumer_offset_manager.query("cg", "PullC", 0) == 7
    r = yield client.query_offset(addr, "cg", "PullC", 0)
    assert r.ext_fields == {"offset": "7"}


def holds(broker, n):
    return poll(lambda: broker.pull_hold_service.count, lambda c: c == n, 10, 0.01, f"{n} pulls held")


@pytest_twisted.inlineCallbacks
def test_long_poll_woken_by_arrival_and_by_timeout(client, addr, broker):
    yield client.create_topic(addr, "PullLP", queues=1)
    held = client.pull(addr, "g", "PullLP", 0, 0, suspend_ms=10000)
    yield holds(broker, 1)
    assert not held.called
    yield client.send(addr, "PullLP", b"now", queue_id=0)
    r = yield held  # answered by the arrival: the timeout would answer PULL_NOT_FOUND, without the message
    assert r.code == RC.SUCCESS and [m.body for m in decode_messages(r.body)] == [b"now"]
    assert (broker.pull_hold_service.woken_by_arrival, broker.pull_hold_service.woken_by_timeout) == (1, 0)
    # a filter that does not match keeps the hold; the timeout then answers PULL_NOT_FOUND. The pull held
    # beside it without a filter is the marker: once the arrival has woken it, it has passed the other by.
    held = client.pull(addr, "g", "PullLP", 0, 1, subscription="wanted", suspend_ms=3000)  # outlives a stall
    marker = client.pull(addr, "g2", "PullLP", 0, 1, suspend_ms=10000)
    yield holds(broker, 2)
    yield client.send(addr, "PullLP", b"other", tags="other", queue_id=0)
    r = yield marker
    assert [m.body for m in decode_messages(r.body)] == [b"other"]
    assert not held.called and broker.pull_hold_service.count == 1
    r = yield held
    assert r.code in (RC.PULL_NOT_FOUND, RC.PULL_RETRY_IMMEDIATELY)
    assert broker.pull_hold_service.count == 0 and broker.pull_hold_service.woken_by_timeout == 1


def _raw(client, addr, **changes):
    request = pull_request("g", "PullR", 0, 0)
    request.ext_fields.update({k: v for k, v in changes.items() if v is not None})
    for k in [k for k, v in changes.items() if v is None]:
        del request.ext_fields[k]
    return client.call(addr, request)


@pytest_twisted.inlineCallbacks
def test_refusals_have_their_code_and_remark(client, addr, broker):
    yield client.create_topic(addr, "PullR", queues=2)
    yield client.create_topic(addr, "PullWO", queues=1, perm=PERM_WRITE)
    cases = [
        ({"topic": "NoSuchTopic"}, RC.TOPIC_NOT_EXIST, "topic[NoSuchTopic] not exist"),
        ({"queueId": "2"}, RC.SYSTEM_ERROR, "queueId[2] is illegal"),
        ({"queueId": "-1"}, RC.SYSTEM_ERROR, "queueId[-1] is illegal"),
        ({"topic": "PullWO"}, RC.NO_PERMISSION, "the topic[PullWO] pulling message is forbidden"),
        ({"sysFlag": "0"}, RC.SUBSCRIPTION_NOT_EXIST, "the consumer's group info not exist"),
        ({"expressionType": "SQL92", "subscription": "a > 1"}, RC.SYSTEM_ERROR, "enablePropertyFilter=false"),
        ({"queueOffset": None}, RC.SYSTEM_ERROR, "'queueOffset' is missing"),
    ]
    for changes, code, remark in cases:
        r = yield _raw(client, addr, **changes)
        assert (r.code, remark in (r.remark or "")) == (code, True), (changes, r.code, r.remark)
    # heartbeat subscriptions: a pull without the subscription flag uses them
    yield client.heartbeat(addr, consumers=[("g", ["OtherTopic"], "CLUSTERING")])
    r = yield _raw(client, addr, sysFlag="0")
    assert (r.code, "the consumer's subscription not exist" in r.remark) == (RC.SUBSCRIPTION_NOT_EXIST, True)
    yield client.heartbeat(addr, consumers=[("g", ["PullR"], "CLUSTERING")])
    r = yield _raw(client, addr, sysFlag="0", subVersion=str(2**62))
    assert (r.code, "not latest" in r.remark) == (RC.SUBSCRIPTION_NOT_LATEST, True)
    r = yield _raw(client, addr, sysFlag="0")
    assert r.code == RC.PULL_NOT_FOUND
    # groups: consumption disabled, unknown group without auto-creation, broker not readable
    broker.subscription_group_manager.find("g").consume_enable = False
    r = yield _raw(client, addr)
    assert (r.code, r.remark) == (RC.NO_PERMISSION, "subscription group no permission, g")
    broker.config.auto_create_subscription_group = False
    r = yield _raw(client, addr, consumerGroup="NewGroup")
    assert r.code == RC.SUBSCRIPTION_GROUP_NOT_EXIST and "[NewGroup] does not exist" in r.remark
    broker.config.broker_permission = PERM_WRITE
    r = yield _raw(client, addr)
    assert r.code == RC.NO_PERMISSION and "pulling message is forbidden" in r.remark
