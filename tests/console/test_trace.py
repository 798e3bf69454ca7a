"""Trace records as the RocketMQ clients write them, read back into one message's trace."""

from __future__ import annotations

import json

from twisted.internet import defer

from mq.common.message import MessageExt
from mq.console.trace import decode_records, trace_view
from tests.console.test_web import FakeAdmin, error_of, http, make

C, F = "\x01", "\x02"
MSG = "0A0000010BB818B4AAC2530B7A8A0000"
OTHER = "0A0000010BB818B4AAC2530B7A8A0001"


def record(*fields) -> str:
    return C.join(str(f) for f in fields) + F


def pub(msg_id: str, offset_id=None, client=None) -> str:
    fields = ["Pub", 1700000000000, "DefaultRegion", "PG", "Orders", msg_id, "TagA", "k1", "10.0.0.5:10911", 12, 3, 0]
    if offset_id is not None:
        fields.append(offset_id)
    fields.append("true")
    if client is not None:
        fields.append(client)
    return record(*fields)


def trace_body() -> bytes:
    return "".join([
        pub(MSG, "0A00000500002A9F0000000000000000"),
        pub(OTHER),
        record("SubBefore", 1700000000100, "DefaultRegion", "CG", "req-1", MSG, 0, "k1"),
        record("SubAfter", "req-1", MSG, 7, "false", "k1", 4),
        record("SubBefore", 1700000005000, "DefaultRegion", "CG", "req-2", MSG, 1, "k1"),
        record("SubAfter", "req-2", MSG, 5, "true", "k1", 0, 1700000005005, "CG"),
        record("SubBefore", 1700000000200, "DefaultRegion", "CG2", "req-3", MSG, 0, "k1"),
        record("Nonsense", 1, 2),
        "SubAfter" + C + C.join(["req-4", MSG, "9", "true", "k1", "0"]) + C,  # CLOUD: no 0x02, trailing 0x01
    ]).encode()


def test_records_of_every_shape_decode():
    records = decode_records(trace_body())
    assert [r["type"] for r in records] == ["Pub", "Pub", "SubBefore", "SubAfter", "SubBefore", "SubAfter",
                                             "SubBefore", "SubAfter"]
    first, old = records[0], records[1]
    assert first["offsetMsgId"] == "0A00000500002A9F0000000000000000" and first["success"] is True
    assert "offsetMsgId" not in old and old["success"] is True  # 13 fields, before offsetMsgId existed
    assert first["msgType"] == "Normal_Msg" and first["costTime"] == 3 and first["bodyLength"] == 12
    assert records[3]["contextCode"] == "FAILED" and records[3]["success"] is False
    assert records[5]["groupName"] == "CG"
    assert records[7]["requestId"] == "req-4" and records[7]["contextCode"] == "SUCCESS"
    go = decode_records(pub(MSG, "X", client="10.0.0.9").encode())[0]
    assert go["clientHost"] == "10.0.0.9"
    assert len(decode_records(trace_body(), limit=3)) == 3


def test_one_messages_trace_joins_attempts_by_request():
    view = trace_view(decode_records(trace_body()), MSG)
    assert [s["msgId"] for s in view["sends"]] == [MSG]
    cg = view["consumers"]["CG"]
    assert [(a["retryTimes"], a["status"], a["finished"]) for a in cg] == [(0, "FAILED", True), (1, "SUCCESS", True)]
    assert view["consumers"]["CG2"][0]["finished"] is False
    assert view["consumers"]["%UNKNOWN_GROUP%"][0]["requestId"] == "req-4"


class TraceAdmin(FakeAdmin):
    def query_message(self, addr, topic, key, max_num=64, **kw):
        self.calls.append(("query_message", addr, topic, key, max_num))
        m = MessageExt(topic=topic, body=trace_body())
        return defer.succeed([m])


def test_the_trace_route_asks_each_master_of_the_trace_topic():
    api, site = make()
    site.resource.api.ctx.api = TraceAdmin()
    status, _, body = http(site, "GET", f"/api/messages/trace?id={MSG}")
    assert status == 200, body
    data = json.loads(body)
    assert data["traceTopic"] == "RMQ_SYS_TRACE_TOPIC" and data["traceMessages"] == 1
    assert list(data["consumers"]) == ["%UNKNOWN_GROUP%", "CG", "CG2"]
    calls = site.resource.api.ctx.api.calls
    assert ("query_message", "10.0.0.5:10911", "RMQ_SYS_TRACE_TOPIC", MSG, 64) in calls
    status, _, body = http(site, "GET", "/api/messages/trace?id=nothex&traceTopic=T")
    assert status == 400 and "not a message id" in error_of(body)
