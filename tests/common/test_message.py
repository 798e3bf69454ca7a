"""The stored-message codec: fast forms against the construct schema, ids, properties, hashes, topics."""

from __future__ import annotations

import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mq.common.hashing import body_crc, index_key_hash, java_string_hash, tag_hash_code
from mq.common.message import (
    Message,
    MessageExt,
    MessageSysFlag,
    PullSysFlag,
    create_offset_msg_id,
    decode_offset_msg_id,
    normalize_host,
    properties_to_string,
    string_to_properties,
)
from mq.common.message_record import (
    BLANK_RECORD,
    HEAD,
    PREFIX_LAYOUTS,
    STORED_MESSAGE,
    RecordError,
    decode_for_restore,
    decode_message_ext,
    decode_messages,
    encode_message_ext,
    encode_record,
    encode_records,
    iter_records,
    record_properties,
    record_size,
    schema_dict,
)
from mq.common.names import is_valid_topic, topic_error

i32 = st.integers(-(2**31), 2**31 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
ports = st.integers(0, 65535)
v4 = st.binary(min_size=4, max_size=4).map(socket.inet_ntoa)
v6 = st.binary(min_size=16, max_size=16).map(lambda b: socket.inet_ntop(socket.AF_INET6, b)).filter(lambda h: "." not in h)
hosts = st.tuples(st.one_of(v4, v6), ports)
prop_text = st.text(st.characters(blacklist_characters="\x01\x02", blacklist_categories=("Cs",)), min_size=1, max_size=12)
topics = st.text(st.sampled_from("abcXYZ019_-%|"), min_size=1, max_size=127) | st.text(
    st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30
).filter(lambda t: len(t.encode()) <= 127)


@st.composite
def messages(draw) -> MessageExt:
    store_host = draw(hosts)
    msg = MessageExt(
        topic=draw(topics),
        body=draw(st.binary(max_size=300)),
        flag=draw(i32),
        properties=draw(st.dictionaries(prop_text, prop_text, max_size=6)),
        queue_id=draw(i32),
        queue_offset=draw(i64),
        sys_flag=draw(i32) & ~0x30,
        born_timestamp=draw(i64),
        born_host=draw(hosts),
        store_timestamp=draw(i64),
        store_host=store_host,
        commit_log_offset=draw(i64),
        reconsume_times=draw(i32),
        prepared_transaction_offset=draw(i64),
    )
    if ":" in msg.born_host[0]:
        msg.sys_flag |= MessageSysFlag.BORNHOST_V6_FLAG
    if ":" in msg.store_host[0]:
        msg.sys_flag |= MessageSysFlag.STOREHOSTADDRESS_V6_FLAG
    return msg


def _expected(msg: MessageExt, data: bytes) -> MessageExt:
    """What decoding must give back: the input plus the derived fields."""
    return MessageExt(
        **_fields(msg),
        store_size=len(data),
        body_crc=body_crc(msg.body),
        msg_id=create_offset_msg_id(msg.store_host, msg.commit_log_offset),
    )


def _fields(msg: MessageExt) -> dict:
    names = [a.name for a in MessageExt.__attrs_attrs__ if a.name not in ("store_size", "body_crc", "msg_id")]
    return {n: getattr(msg, n) for n in names}


@settings(max_examples=300, deadline=None)
@given(messages())
def test_fast_encoder_matches_schema_and_round_trips(msg):
    data = encode_message_ext(msg)
    assert data == STORED_MESSAGE.build(schema_dict(msg))
    props_len = len(properties_to_string(msg.properties).encode())
    assert len(data) == record_size(msg.sys_flag, len(msg.body), len(msg.topic.encode()), props_len)
    parsed = STORED_MESSAGE.parse(data)
    assert parsed.total_size == len(data)
    assert parsed.sys_flag == msg.sys_flag
    assert parsed.body == msg.body and parsed.topic == msg.topic
    assert string_to_properties(parsed.properties) == msg.properties
    decoded = decode_message_ext(data, check_crc=True)
    assert decoded == _expected(msg, data)


@settings(max_examples=150, deadline=None)
@given(messages(), st.lists(st.tuples(i32, st.binary(max_size=64), prop_text), min_size=2, max_size=6),
       st.sampled_from([0, 1]))
def test_batch_records_are_the_single_records_joined(msg, members, step):
    """``encode_records`` packs a batch's shared prefix fields once: its records must be byte for byte the
    single-record form (checked against the schema above) at each member's offsets."""
    items = [(flag, body, props.encode(), None) for flag, body, props in members]
    shared = (msg.sys_flag, msg.born_timestamp, msg.born_host, msg.store_timestamp, msg.store_host,
              msg.reconsume_times, msg.prepared_transaction_offset, msg.topic)
    data, sizes = encode_records(items, msg.queue_id, msg.queue_offset & 0xFFFFFFFF, 1000, *shared, step)
    expected = []
    phy = 1000
    for i, (flag, body, props, _) in enumerate(items):
        expected.append(encode_record(
            queue_id=msg.queue_id, flag=flag, queue_offset=(msg.queue_offset & 0xFFFFFFFF) + i * step,
            physical_offset=phy, sys_flag=msg.sys_flag, born_timestamp=msg.born_timestamp, born_host=msg.born_host,
            store_timestamp=msg.store_timestamp, store_host=msg.store_host, reconsume_times=msg.reconsume_times,
            prepared_transaction_offset=msg.prepared_transaction_offset, body=body, topic=msg.topic,
            properties=props))  # fmt: skip
        phy += len(expected[-1])
    assert data == b"".join(expected) and sizes == [len(r) for r in expected]


@settings(max_examples=200, deadline=None)
@given(messages())
def test_decode_for_restore_keeps_what_a_put_needs(msg):
    """The timer and delay-level fire path's decoder agrees with the full one on every field a put uses, for
    v4 and v6 born and store hosts alike."""
    data = encode_message_ext(msg)
    full = decode_message_ext(data)
    inner = decode_for_restore(data)
    for name in ("topic", "body", "flag", "properties", "queue_id", "sys_flag", "born_timestamp", "born_host",
                 "store_host", "body_crc", "reconsume_times"):
        assert getattr(inner, name) == getattr(full, name), name
    with pytest.raises(RecordError):
        decode_for_restore(data[:-1])


@settings(max_examples=100, deadline=None)
@given(st.lists(messages(), min_size=1, max_size=5))
def test_decode_messages_splits_a_concatenated_body(msgs):
    body = b"".join(encode_message_ext(m) for m in msgs)
    decoded = decode_messages(body)
    assert [d.body for d in decoded] == [m.body for m in msgs]
    assert [d.topic for d in decoded] == [m.topic for m in msgs]
    assert [d.born_host for d in decoded] == [m.born_host for m in msgs]
    assert [record_properties(body, pos) for pos, _ in iter_records(body)] == [m.properties for m in msgs]


def test_every_sys_flag_bit_survives():
    for bit in range(16):
        msg = MessageExt(topic="T", body=b"b", sys_flag=(1 << bit) & ~0x30, born_host=("1.2.3.4", 5))
        assert decode_message_ext(encode_message_ext(msg)).sys_flag == (1 << bit) & ~0x30


def test_v4_record_is_91_bytes_plus_lengths_and_v6_adds_12_each():
    props = "TAGS\x01a"
    v4msg = MessageExt(topic="Topic", body=b"12345", properties={"TAGS": "a"})
    assert len(encode_message_ext(v4msg)) == 91 + 5 + 5 + len(props)
    v6msg = MessageExt(topic="Topic", body=b"12345", properties={"TAGS": "a"}, born_host=("::1", 1), store_host=("fe80::2", 2))
    data = encode_message_ext(v6msg)
    assert len(data) == 91 + 24 + 5 + 5 + len(props)
    assert struct.unpack_from(">i", data, 36)[0] & 0x30 == 0x30


def test_decoder_rejects_inconsistent_records():
    data = bytearray(encode_message_ext(MessageExt(topic="T", body=b"hello")))
    with pytest.raises(RecordError):
        decode_message_ext(bytes(data[:-1]))
    bad_magic = bytearray(data)
    bad_magic[4] ^= 0xFF
    with pytest.raises(RecordError):
        decode_message_ext(bytes(bad_magic))
    bad_body = bytearray(data)
    bad_body[84 + 4] ^= 0x01
    decode_message_ext(bytes(bad_body))  # structurally fine
    with pytest.raises(RecordError):
        decode_message_ext(bytes(bad_body), check_crc=True)
    with pytest.raises(RecordError):
        list(iter_records(bytes(data) + b"\x00\x00"))


def _check_layout(layout, draw_values):
    values = draw_values
    packed = layout.pack(*values)
    assert packed == layout.schema.build(layout.as_dict(values))
    parsed = layout.schema.parse(packed)
    assert tuple(parsed[n] for n in layout.names) == layout.unpack(packed)


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_fixed_layouts_schema_and_fast_form_agree(data):
    from mq.store.checkpoint import CHECKPOINT
    from mq.store.consumequeue import CQ_ENTRY
    from mq.store.index import INDEX_ENTRY, INDEX_HEADER

    for layout in (*PREFIX_LAYOUTS, HEAD, BLANK_RECORD, CQ_ENTRY, INDEX_HEADER, INDEX_ENTRY, CHECKPOINT):
        values = []
        for con in layout.schema.subcons:
            fmt = con.subcon.fmtstr
            bits = struct.calcsize(fmt) * 8
            if fmt[-1].isupper():
                values.append(data.draw(st.integers(0, 2**bits - 1)))
            else:
                values.append(data.draw(st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)))
        _check_layout(layout, values)


# ------------------------------------------------------------------ properties


def test_properties_codec():
    assert properties_to_string({"A": "1", "B": "2"}) == "A\x011\x02B\x012"
    assert string_to_properties("A\x011\x02B\x012\x02") == {"A": "1", "B": "2"}
    assert string_to_properties("A\x011\x02\x02B\x012") == {"A": "1", "B": "2"}
    assert string_to_properties("A\x01\x02\x01x\x02junk\x02C\x01v\x01w") == {"C": "v\x01w"}
    assert string_to_properties("") == {}


@given(st.dictionaries(prop_text, prop_text))
def test_properties_round_trip(props):
    text = properties_to_string(props)
    assert not text.endswith("\x02")
    assert string_to_properties(text) == props
    assert string_to_properties(text + "\x02") == props


# ------------------------------------------------------------------ message helpers


def test_message_helpers():
    m = Message("T", b"x")
    assert m.tags is None and m.keys == [] and m.delay_time_level == 0 and m.wait_store_msg_ok
    m.tags = "TagA"
    m.keys = ["k1", "k2"]
    m.delay_time_level = 3
    m.unique_key = "U1"
    m.put_property("WAIT", "FALSE")
    assert m.properties == {"TAGS": "TagA", "KEYS": "k1 k2", "DELAY": "3", "UNIQ_KEY": "U1", "WAIT": "FALSE"}
    assert m.keys == ["k1", "k2"] and m.delay_time_level == 3 and m.unique_key == "U1"
    assert not m.wait_store_msg_ok
    m.keys = " a  b "
    assert m.keys == ["a", "b"]
    m.tags = None
    assert "TAGS" not in m.properties


def test_sys_flag_helpers():
    assert MessageSysFlag.get_transaction_value(0x4 | 0x1) == MessageSysFlag.TRANSACTION_PREPARED_TYPE
    assert MessageSysFlag.reset_transaction_value(0xD, MessageSysFlag.TRANSACTION_COMMIT_TYPE) == 0x9
    assert PullSysFlag.build(True, True, False, False) == 0x3
    assert PullSysFlag.clear_commit_offset_flag(0x7) == 0x6


# ------------------------------------------------------------------ ids, hashes, topics


def test_offset_msg_id_v4_and_v6():
    mid = create_offset_msg_id(("192.168.1.10", 10911), 0x1234)
    assert mid == "C0A8010A00002A9F0000000000001234"
    assert decode_offset_msg_id(mid) == (("192.168.1.10", 10911), 0x1234)
    mid6 = create_offset_msg_id(("2001:db8::1", 10911), 7)
    assert len(mid6) == 56 and mid6 == mid6.upper()
    assert decode_offset_msg_id(mid6) == (("2001:db8::1", 10911), 7)
    with pytest.raises(ValueError):
        decode_offset_msg_id("ABCD")


def test_normalize_host():
    assert normalize_host("::ffff:10.1.2.3") == "10.1.2.3"
    assert normalize_host("::1") == "::1"


def _java_hash_reference(s: str) -> int:
    h = 0
    data = s.encode("utf-16-be", "surrogatepass")
    for (u,) in struct.iter_unpack(">H", data):
        h = (31 * h + u) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def test_java_string_hash_known_values():
    assert java_string_hash("") == 0
    assert java_string_hash("a") == 97
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("Hello World") == -862545276
    assert java_string_hash("\U0001f600") == 0xD83D * 31 + 0xDE00  # two UTF-16 code units
    assert tag_hash_code(None) == 0 and tag_hash_code("") == 0
    assert index_key_hash("Hello World") == 862545276


@given(st.text(max_size=300))
def test_java_string_hash_matches_reference(s):
    assert java_string_hash(s) == _java_hash_reference(s)
    assert 0 <= index_key_hash(s) <= 0x7FFFFFFF


def test_body_crc_is_masked():
    assert body_crc(b"hello") == 0x3610A686 & 0x7FFFFFFF
    assert all(0 <= body_crc(bytes([i])) <= 0x7FFFFFFF for i in range(256))


def test_topic_validation():
    assert is_valid_topic("TopicTest") and is_valid_topic("%RETRY%group_1|x-y")
    assert topic_error("") and topic_error("a b") and topic_error("t" * 128) and topic_error("é")
    assert is_valid_topic("t" * 127)
