"""The console's trace page: records decoded by mq.common.trace_data (its layouts are tested in
tests/common/test_trace_data.py), grouped into one message's sends and consumption attempts."""

from __future__ import annotations

import json

from twisted.internet import defer

from mq.common.message import MessageExt
from mq.common.trace_data import trace_views
from mq.console.trace import trace_page
from tests.console.test_web import FakeAdmin, error_of, http, make

C, F = "\x01", "\x02"
MSG = "0A0000010BB818B4AAC2530B7A8A0000"
OTHER = "0A0000010BB818B4AAC2530B7A8A0001"


def record(*fields) -> str:
    return C.join(str(f) for f in fields) + F


def pub(msg_id: str, offset_id=None) -> str:
    fields = ["Pub", 1700000000000, "DefaultRegion", "PG", "Orders", msg_id, "TagA", "k1", "10.0.0.5:10911", 12, 3, 0]
    if offset_id is not None:
        fields.append(offset_id)
    return record(*fields, "true")


def trace_body() -> bytes:
    return "".join([
        pub(MSG, "0A00000500002A9F0000000000000000"),
        pub(OTHER),
        record("SubBefore", 1700000000100, "DefaultRegion", "CG", "req-1", MSG, 0, "k1"),
        record("SubAfter", "req-1", MSG, 7, "false", "k1", 4),
        record("SubBefore", 1700000005000, "DefaultRegion", "CG", "req-2", MSG, 1, "k1"),
        record("SubAfter", "req-2", MSG, 5, "true", "k1", 0, 1700000005005, "CG"),
        record("SubBefore", 1700000000200, "DefaultRegion", "CG2", "req-3", MSG, 0, "k1"),
        record("EndTransaction", 1700000000050, "DefaultRegion", "PG", "Orders", MSG, "TagA", "k1", "10.0.0.5:10911",
               2, "TX1", "ROLLBACK_MESSAGE", "true"),
        record("Nonsense", 1, 2),
        "SubAfter" + C + C.join(["req-4", MSG, "9", "true", "k1", "0"]) + C,  # CLOUD: no 0x02, trailing 0x01
    ]).encode()


def traced(body: bytes = None) -> MessageExt:
    return MessageExt(topic="RMQ_SYS_TRACE_TOPIC", body=trace_body() if body is None else body,
                      born_host=("10.0.0.7", 50000))


def test_one_messages_trace_joins_attempts_by_request():
    view = trace_page(MSG, trace_views(MSG, [traced()]))
    assert [(s["msgType"], s["messageType"], s["status"], s["transactionState"]) for s in view["sends"]] == [
        ("Pub", "Normal_Msg", "success", None), ("EndTransaction", "Trans_msg_Commit", "success", "ROLLBACK_MESSAGE")]
    assert view["sends"][0]["offSetMsgId"] == "0A00000500002A9F0000000000000000"
    cg = view["consumers"]["CG"]
    assert [(a["retryTimes"], a["status"], a["contextCode"], a["finished"]) for a in cg] == [
        (0, "failed", "FAILED", True), (1, "success", "SUCCESS", True)]
    assert cg[0]["clientHost"] == "10.0.0.7" and cg[1]["beginTimestamp"] == 1700000005000
    assert view["consumers"]["CG2"][0]["finished"] is False
    unknown = view["consumers"]["%UNKNOWN_GROUP%"][0]
    assert (unknown["requestId"], unknown["beginTimestamp"], unknown["costTime"]) == ("req-4", None, 9)


def test_a_page_reads_at_most_the_record_limit_of_all_messages():
    body = pub(MSG).encode() * 3
    assert len(trace_page(MSG, trace_views(MSG, [traced(body)] * 3, limit=7))["sends"]) == 7


class TraceAdmin(FakeAdmin):
    def query_message(self, addr, topic, key, max_num=64, **kw):
        self.calls.append(("query_message", addr, topic, key, max_num))
        return defer.succeed([traced()])


def test_the_trace_route_asks_each_master_of_the_trace_topic():
    api, site = make()
    site.resource.api.ctx.api = TraceAdmin()
    status, _, body = http(site, "GET", f"/api/messages/trace?id={MSG}")
    assert status == 200, body
    data = json.loads(body)
    assert data["traceTopic"] == "RMQ_SYS_TRACE_TOPIC" and data["traceMessages"] == 1
    assert list(data["consumers"]) == ["%UNKNOWN_GROUP%", "CG", "CG2"]
    assert data["sends"][0]["clientHost"] == "10.0.0.7"
    calls = site.resource.api.ctx.api.calls
    assert ("query_message", "10.0.0.5:10911", "RMQ_SYS_TRACE_TOPIC", MSG, 64) in calls
    status, _, body = http(site, "GET", "/api/messages/trace?id=nothex&traceTopic=T")
    assert status == 400 and "not a message id" in error_of(body)
