"""Trace bodies: mq's encoder writes byte for byte what the Java client writes, and the decoder reads the Java
(4.4 to 4.9.8), Go and cloud layouts, built here by hand from the documented format, not by our encoder."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mq.common.message import MessageExt
from mq.common.trace_data import (
    ConsumeReturnType,
    MessageType,
    TraceBean,
    TraceContext,
    TraceType,
    decode,
    encode,
    index_keys,
    trace_views,
)

A, B = "\x01", "\x02"
MSG_ID = "7F00000100002A9F0000000000000001"
OFFSET_ID = "7F00000100002A9F00000000000004D2"


def java(*fields) -> str:
    """A record as TraceDataEncoder appends it: fields joined by 0x01, 0x02 at the end."""
    return A.join(str(f) for f in fields) + B


# What a Java 4.9.8 client writes for one send, one consumed message and one commit.
JAVA_PUB = java("Pub", 1700000000123, "DefaultRegion", "PG", "TopicA", MSG_ID, "TagA", "k1 k2", "10.0.0.5:10911",
                11, 3, 0, OFFSET_ID, "true")
JAVA_SUB_BEFORE = java("SubBefore", 1700000000200, "DefaultRegion", "CG", "REQ1", MSG_ID, 0, "k1 k2")
JAVA_SUB_AFTER = java("SubAfter", "REQ1", MSG_ID, 7, "true", "k1 k2", 0, 1700000000207, "CG")
JAVA_END = java("EndTransaction", 1700000000300, "DefaultRegion", "PG", "TopicA", MSG_ID, "null", "null",
                "10.0.0.5:10911", 2, "TX1", "COMMIT_MESSAGE", "false")


def test_encoder_writes_the_java_layouts_exactly():
    bean = TraceBean(msg_id=MSG_ID, topic="TopicA", tags="TagA", keys="k1 k2", store_host="10.0.0.5:10911",
                     offset_msg_id=OFFSET_ID, body_length=11)
    assert encode(TraceContext(TraceType.Pub, 1700000000123, "DefaultRegion", "PG", 3, True, beans=[bean])) == JAVA_PUB
    before = TraceContext(TraceType.SubBefore, 1700000000200, "DefaultRegion", "CG", request_id="REQ1",
                          beans=[TraceBean(msg_id=MSG_ID, keys="k1 k2")])
    assert encode(before) == JAVA_SUB_BEFORE
    after = TraceContext(TraceType.SubAfter, 1700000000207, "DefaultRegion", "CG", 7, True, "REQ1", 0,
                         beans=[TraceBean(msg_id=MSG_ID, keys="k1 k2")])
    assert encode(after) == JAVA_SUB_AFTER
    end = TraceContext(TraceType.EndTransaction, 1700000000300, "DefaultRegion", "PG", beans=[TraceBean(
        msg_id=MSG_ID, topic="TopicA", store_host="10.0.0.5:10911", msg_type=MessageType.Trans_msg_Commit,
        transaction_id="TX1", transaction_state="COMMIT_MESSAGE")])
    assert encode(end) == JAVA_END  # tags and keys unset: Java prints null


def test_a_consumed_batch_is_one_record_per_message():
    beans = [TraceBean(msg_id=f"ID{i}", keys=None) for i in range(3)]
    text = encode(TraceContext(TraceType.SubAfter, 5, None, "CG", 2, False, "R", int(ConsumeReturnType.FAILED),
                               beans=beans))
    assert text.count(B) == 3 and text.split(B)[1] == java("SubAfter", "R", "ID1", 2, "false", "null", 4, 5, "CG")[:-1]


def test_java_body_decodes_record_by_record():
    contexts, bad = decode(JAVA_PUB + JAVA_SUB_BEFORE + JAVA_SUB_AFTER + JAVA_END)
    assert bad == 0
    pub, before, after, end = contexts
    assert (pub.trace_type, pub.timestamp, pub.region_id, pub.group_name, pub.cost_time, pub.success) == (
        TraceType.Pub, 1700000000123, "DefaultRegion", "PG", 3, True)
    b = pub.beans[0]
    assert (b.topic, b.msg_id, b.tags, b.keys, b.store_host, b.body_length, b.msg_type, b.offset_msg_id) == (
        "TopicA", MSG_ID, "TagA", "k1 k2", "10.0.0.5:10911", 11, MessageType.Normal_Msg, OFFSET_ID)
    assert (before.request_id, before.beans[0].retry_times, before.group_name) == ("REQ1", 0, "CG")
    assert (after.request_id, after.cost_time, after.success, after.context_code, after.timestamp,
            after.group_name) == ("REQ1", 7, True, 0, 1700000000207, "CG")
    e = end.beans[0]
    assert (e.msg_type, e.transaction_id, e.transaction_state, e.from_transaction_check, e.tags) == (
        MessageType.Trans_msg_Commit, "TX1", "COMMIT_MESSAGE", False, "null")
    # and back: what we decode re-encodes to the same bytes
    assert "".join(encode(c) for c in contexts) == JAVA_PUB + JAVA_SUB_BEFORE + JAVA_SUB_AFTER + JAVA_END


def test_older_and_other_clients_layouts():
    # 4.4: Pub without offsetMsgId (13 fields); Go: a 15th field, the client host
    old_pub = java("Pub", 1, "R", "PG", "T", MSG_ID, "t", "k", "h:1", 4, 5, 3, "false")
    go_pub = java("Pub", 1, "R", "PG", "T", MSG_ID, "t", "k", "h:1", 4, 5, 1, OFFSET_ID, "true", "10.1.1.1")
    # SubAfter: 6 fields (before contextCode), 7, 8 (timestamp, no group), and the cloud form ending in 0x01
    sub6 = java("SubAfter", "R", MSG_ID, 9, "false", "k")
    sub7 = java("SubAfter", "R", MSG_ID, 9, "true", "k", 2)
    sub8 = java("SubAfter", "R", MSG_ID, 9, "true", "k", 0, 77)
    cloud = "SubAfter" + A + A.join(["R", MSG_ID, "9", "true", "k", "3"]) + A
    contexts, bad = decode(old_pub + go_pub + sub6 + sub7 + sub8 + cloud)
    assert bad == 0 and len(contexts) == 6
    assert (contexts[0].success, contexts[0].beans[0].offset_msg_id, contexts[0].beans[0].msg_type) == (
        False, None, MessageType.Delay_Msg)
    assert (contexts[1].beans[0].client_host, contexts[1].beans[0].offset_msg_id) == ("10.1.1.1", OFFSET_ID)
    assert [(c.context_code, c.timestamp, c.group_name) for c in contexts[2:]] == [
        (0, 0, None), (2, 0, None), (0, 77, None), (3, 0, None)]


def test_unreadable_records_are_skipped_and_counted_not_fatal():
    short = java("Pub", 1, "R")
    bad_number = java("SubBefore", "soon", "R", "CG", "REQ", MSG_ID, 0, "k")
    bad_type = java("Pub", 1, "R", "PG", "T", MSG_ID, "t", "k", "h:1", 4, 5, 9, OFFSET_ID, "true")
    bad_state = java("EndTransaction", 1, "R", "PG", "T", MSG_ID, "t", "k", "h", 2, "TX", "MAYBE", "false")
    unknown = java("Hello", 1, 2)
    contexts, bad = decode(short + bad_number + JAVA_PUB + bad_type + bad_state + unknown)
    assert bad == 5 and [c.trace_type for c in contexts] == [TraceType.Pub]


TOKENS = [A, B, "Pub", "SubBefore", "SubAfter", "EndTransaction", "1", "-3", "99", "x", "true", "COMMIT_MESSAGE", ""]


@given(st.lists(st.sampled_from(TOKENS + [A] * 8), max_size=120).map("".join))
def test_decoding_any_text_never_raises(text):
    contexts, bad = decode(text)
    assert bad >= 0 and all(c.beans for c in contexts)


def test_index_keys_are_ids_and_each_key_once():
    keys: dict = {}
    index_keys(TraceContext(TraceType.SubBefore, beans=[TraceBean(msg_id="A", keys="k1  k2"),
                                                        TraceBean(msg_id="B", keys="k2"), TraceBean(msg_id="C")]), keys)
    assert list(keys) == ["A", "k1", "k2", "B", "C"]


def test_trace_views_keep_only_the_queried_message_and_take_the_born_host():
    other = JAVA_PUB.replace(MSG_ID, "OTHER")
    msg = MessageExt(topic="RMQ_SYS_TRACE_TOPIC", body=(other + JAVA_PUB + JAVA_SUB_AFTER).encode(),
                     born_host=("10.9.8.7", 52000))
    views = trace_views(MSG_ID, [msg])
    assert [(v.msg_type, v.group_name, v.client_host, v.status) for v in views] == [
        ("Pub", "PG", "10.9.8.7", "success"), ("SubAfter", "CG", "10.9.8.7", "success")]
    assert views[0].to_json()["offSetMsgId"] == OFFSET_ID


def test_a_batch_pub_is_found_by_each_member_id_with_its_own_offset_id():
    """Java records a batch send as one Pub whose msgId and offsetMsgId join the members' with commas."""
    ids, offsets = ["ID1", MSG_ID, "ID3"], ["OFF1", OFFSET_ID, "OFF3"]
    batch = java("Pub", 1700000000123, "DefaultRegion", "PG", "TopicA", ",".join(ids), "null", "null",
                 "10.0.0.5:10911", 300, 3, 0, ",".join(offsets), "true")
    msg = MessageExt(topic="RMQ_SYS_TRACE_TOPIC", body=batch.encode(), born_host=("10.9.8.7", 52000))
    (view,) = trace_views(MSG_ID, [msg])
    assert (view.msg_type, view.msg_id, view.offset_msg_id, view.topic, view.keys) == (
        "Pub", MSG_ID, OFFSET_ID, "TopicA", "null")
    assert trace_views("ID", [msg]) == [] and trace_views("OFF1", [msg]) == []
    uneven = MessageExt(topic="RMQ_SYS_TRACE_TOPIC", body=batch.replace(",".join(offsets), "X").encode())
    assert trace_views("ID3", [uneven])[0].offset_msg_id == "X"  # lists that do not match: kept whole
    keys: dict = {}
    index_keys(TraceContext(TraceType.Pub, beans=[TraceBean(msg_id=",".join(ids))]), keys)
    assert list(keys) == ids


def test_decoding_stops_at_the_record_limit_and_trace_views_share_it_across_messages():
    contexts, _ = decode(JAVA_PUB * 5, limit=2)
    assert len(contexts) == 2
    msgs = [MessageExt(topic="RMQ_SYS_TRACE_TOPIC", body=(JAVA_PUB * 3).encode()) for _ in range(4)]
    assert len(trace_views(MSG_ID, msgs, limit=5)) == 5
    assert len(trace_views(MSG_ID, msgs)) == 12


def test_views_carry_what_joins_a_consumption_and_names_a_send():
    cloud = "SubAfter" + A + A.join(["REQ2", MSG_ID, "9", "false", "k", "9"]) + A  # a code ConsumeReturnType lacks
    msg = MessageExt(topic="RMQ_SYS_TRACE_TOPIC", body=(JAVA_PUB + JAVA_SUB_BEFORE + JAVA_SUB_AFTER + JAVA_END
                                                       + cloud).encode())
    pub, before, after, end, odd = [v.to_json() for v in trace_views(MSG_ID, [msg])]
    assert (pub["messageType"], pub["requestId"], pub["retryTimes"], pub["contextCode"]) == (
        "Normal_Msg", None, None, None)
    assert (before["requestId"], before["retryTimes"], before["contextCode"]) == ("REQ1", 0, None)
    assert (after["requestId"], after["contextCode"], after["messageType"]) == ("REQ1", "SUCCESS", None)
    assert (end["messageType"], end["transactionId"], end["transactionState"]) == (
        "Trans_msg_Commit", "TX1", "COMMIT_MESSAGE")
    assert (odd["requestId"], odd["status"], odd["contextCode"]) == ("REQ2", "failed", "9")


def test_compressed_trace_messages_are_inflated_bounded_and_bad_ones_skipped(monkeypatch):
    """Trace producers compress bodies of 4 KiB or more (nearly every trace message): the reader inflates
    them; one that does not inflate is skipped, one inflating past MAX_TRACE_BODY is cut there."""
    import zlib

    from mq.common import trace_data

    records = JAVA_PUB + JAVA_SUB_AFTER + JAVA_PUB.replace(MSG_ID, "OTHER") * 100
    packed = MessageExt(topic="RMQ_SYS_TRACE_TOPIC", body=zlib.compress(records.encode()), sys_flag=1,
                        born_host=("10.9.8.7", 1))
    broken = MessageExt(topic="RMQ_SYS_TRACE_TOPIC", body=b"not zlib", sys_flag=1, born_host=("10.9.8.8", 1))
    views = trace_views(MSG_ID, [broken, packed])
    assert [(v.msg_type, v.client_host) for v in views] == [("Pub", "10.9.8.7"), ("SubAfter", "10.9.8.7")]
    monkeypatch.setattr(trace_data, "MAX_TRACE_BODY", len(JAVA_PUB) + 5)  # the SubAfter lies past the bound
    assert [v.msg_type for v in trace_views(MSG_ID, [packed])] == ["Pub"]
