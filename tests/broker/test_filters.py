"""Real ``twistd broker``: tag and SQL92 property filters, in pull headers and heartbeat subscriptions,
and malformed expressions refused with a clear error (the broker keeps serving)."""

from __future__ import annotations

import time

import pytest

from mq.client.simple import create_topic_request, pull_request, send_request
from mq.common import fastjson
from mq.common.filter_sql92 import compile_sql92
from mq.common.heartbeat import ConsumerData, HeartbeatData, SubscriptionData
from mq.common.message_record import decode_messages
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.command import RemotingCommand
from tests.broker.cluster import processes, restartable_broker
from tests.broker.wire import Wire, call

TAGS = ["TagA", "TagB", "TagC"]


def props_of(i):
    props = {"a": str(i), "b": "x" if i % 2 else "y"}
    if i % 3 == 0:
        props["c"] = f"c{i}"
    return props


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("filters")
    with processes(tmp) as twistd:
        broker = restartable_broker(twistd, tmp, "enablePropertyFilter=true\n", "flt-broker")["broker"]
        assert call(broker.addr, create_topic_request("FltTopic", queues=1)).code == RC.SUCCESS
        with Wire(broker.addr) as w:
            for i in range(1, 13):
                r = w.call(send_request("FltTopic", b"m%d" % i, tags=TAGS[i % 3], properties=props_of(i), queue_id=0))
                assert r.code == RC.SUCCESS
        yield broker


def pulled(addr, expression, kind, group="flt"):
    r = call(addr, pull_request(group, "FltTopic", 0, 0, subscription=expression, expression_type=kind))
    if r.code == RC.PULL_RETRY_IMMEDIATELY:  # nothing matched in the scanned range
        return []
    assert r.code == RC.SUCCESS, (r.code, r.remark)
    return [int(m.body[1:]) for m in decode_messages(r.body)]


@pytest.mark.parametrize("expression", [
    "a > 5 AND b = 'x'", "a BETWEEN 2 AND 4", "a NOT BETWEEN 2 AND 10", "b IN ('y')", "b NOT IN ('y', 'z')",
    "c IS NULL", "c IS NOT NULL", "NOT (a <= 10) OR c = 'c3'", "TAGS = 'TagB' AND a >= 4", "a <> 7 AND a < 9",
])
def test_sql92_filters(broker, expression):
    expected = [i for i in range(1, 13) if compile_sql92(expression).matches({**props_of(i), "TAGS": TAGS[i % 3]})]
    assert expected  # each expression selects something ...
    assert len(expected) < 12  # ... and leaves something out
    assert pulled(broker.addr, expression, "SQL92") == expected


def test_tag_filters(broker):
    assert pulled(broker.addr, "TagA || TagB", "TAG") == [i for i in range(1, 13) if i % 3 in (0, 1)]
    assert pulled(broker.addr, "TagC", "TAG") == [2, 5, 8, 11]
    assert pulled(broker.addr, "*", "TAG") == list(range(1, 13))


def heartbeat(sub_string, kind, group):
    sub = SubscriptionData.build("FltTopic", sub_string, int(time.time() * 1000), kind)
    data = HeartbeatData("127.0.0.1@flt", [], [ConsumerData(group, "CONSUME_ACTIVELY", "CLUSTERING",
                                                             "CONSUME_FROM_FIRST_OFFSET", [sub])])
    return RemotingCommand.request(RequestCode.HEART_BEAT, None, fastjson.dumps_bytes(data))


def test_heartbeat_subscription_used_by_pulls_without_one(broker):
    with Wire(broker.addr) as w:
        assert w.call(heartbeat("a >= 11 OR c = 'c6'", "SQL92", "flt_hb")).code == RC.SUCCESS
        no_sub = pull_request("flt_hb", "FltTopic", 0, 0)
        no_sub.ext_fields["sysFlag"] = "0"
        r = w.call(no_sub)
        assert r.code == RC.SUCCESS, r.remark
        assert [m.body for m in decode_messages(r.body)] == [b"m6", b"m11", b"m12"]


@pytest.mark.parametrize("expression", ["a >", "a", "a = 1 b", "(a = 1", "a IN 'x'", "a ~ 2", ""])
def test_malformed_expressions_are_refused_clearly(broker, expression):
    r = call(broker.addr, pull_request("flt_bad", "FltTopic", 0, 0, subscription=expression, expression_type="SQL92"))
    assert r.code == RC.SUBSCRIPTION_PARSE_FAILED and "invalid SQL92 expression" in r.remark, r.remark
    r = call(broker.addr, heartbeat(expression, "SQL92", "flt_bad_hb"))
    assert r.code == RC.SUBSCRIPTION_PARSE_FAILED and "flt_bad_hb" in r.remark and "FltTopic" in r.remark
    body = fastjson.dumps_bytes({"clientId": "c", "group": "g", "subscriptionData": {
        "topic": "FltTopic", "subString": expression, "expressionType": "SQL92"}})
    r = call(broker.addr, RemotingCommand.request(RequestCode.CHECK_CLIENT_CONFIG, None, body))
    assert r.code == RC.SUBSCRIPTION_PARSE_FAILED
    r = call(broker.addr, pull_request("flt_bad", "FltTopic", 0, 0, subscription="*", expression_type="REGEX"))
    assert r.code == RC.SYSTEM_ERROR and "unknown expression type" in r.remark
    assert pulled(broker.addr, "a = 1", "SQL92") == [1]  # still serving
