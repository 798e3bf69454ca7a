"""The command codec: both header serializations, schema/fast-form agreement, normalisation, flags."""

from __future__ import annotations

import json
import struct

import construct as c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mq.common.layout import FixedLayout
from mq.remoting.codes import FLAG_ONEWAY, FLAG_RESPONSE, LanguageCode, ResponseCode, SerializeType
from mq.remoting.command import RemotingCommand
from mq.remoting.serialization import (
    FRAME,
    FRAME_LENGTH,
    FRAME_PREFIX,
    ROCKETMQ_HEADER,
    ROCKETMQ_HEADER_FIXED,
    FrameError,
    decode_command,
    decode_rocketmq_header,
    encode_command,
    encode_json_header,
    encode_rocketmq_header,
)
from tests.remoting.support import raw_frame

I16 = st.integers(-(2**15), 2**15 - 1)
I32 = st.integers(-(2**31), 2**31 - 1)
# Keys and values as the ROCKETMQ header can carry them: non-empty (length 0 means null there).
TEXT = st.text(min_size=1, max_size=40)
EXT = st.dictionaries(TEXT, TEXT, min_size=1, max_size=8)


@st.composite
def json_commands(draw):
    return RemotingCommand(
        code=draw(st.integers(-(2**40), 2**40)),
        opaque=draw(st.integers(-(2**40), 2**40)),
        flag=draw(st.integers(0, 3)),
        remark=draw(st.none() | st.text(max_size=40)),
        ext_fields=draw(st.none() | st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=8)),
        body=draw(st.binary(max_size=300)),
        language=draw(st.sampled_from(list(LanguageCode))),
        version=draw(st.integers(0, 2**31 - 1)),
        serialize_type=SerializeType.JSON,
    )


@st.composite
def rocketmq_commands(draw):
    return RemotingCommand(
        code=draw(I16),
        opaque=draw(I32),
        flag=draw(I32),
        remark=draw(st.none() | TEXT),
        ext_fields=draw(st.none() | EXT),
        body=draw(st.binary(max_size=300)),
        language=draw(st.integers(0, 255)),
        version=draw(I16),
        serialize_type=SerializeType.ROCKETMQ,
    )


# -- round trips -------------------------------------------------------------------------------------


@given(json_commands())
def test_json_round_trip(cmd):
    assert decode_command(encode_command(cmd)) == cmd


@given(rocketmq_commands())
def test_rocketmq_round_trip(cmd):
    assert decode_command(encode_command(cmd)) == cmd


def test_rocketmq_empty_values_read_as_null():
    """Length 0 means null in the binary header: an empty remark or value does not come back."""
    cmd = RemotingCommand(10, 1, 0, "", {"k": "", "x": "y"}, serialize_type=SerializeType.ROCKETMQ)
    back = decode_command(encode_command(cmd))
    assert back.remark is None
    assert back.ext_fields == {"x": "y"}
    empty = RemotingCommand(10, 1, 0, None, {}, serialize_type=SerializeType.ROCKETMQ)
    assert decode_command(encode_command(empty)).ext_fields is None


def test_json_header_is_compact_alphabetical_fastjson_style():
    """Byte for byte the shape of a 4.9.8 broker response (wire reference §1.2)."""
    request = RemotingCommand(310, 42, 0, None, {"a": "g"})
    response = request.response(ResponseCode.SUCCESS, ext_fields={"queueId": "1", "queueOffset": "7"})
    assert encode_json_header(response) == (
        b'{"code":0,"extFields":{"queueId":"1","queueOffset":"7"},"flag":1,"language":"JAVA",'
        b'"opaque":42,"serializeTypeCurrentRPC":"JSON","version":409}'
    )
    frame = encode_command(response)
    header = encode_json_header(response)
    assert frame[:8] == struct.pack(">ii", 4 + len(header), len(header))


def test_json_header_escapes_non_ascii_and_keeps_remark():
    cmd = RemotingCommand(1, 7, 1, "caf\u00e9 \u2603", None)
    header = encode_json_header(cmd)
    assert header.isascii()
    assert json.loads(header)["remark"] == "caf\u00e9 \u2603"
    assert decode_command(encode_command(cmd)).remark == "caf\u00e9 \u2603"


def test_decodes_a_hand_written_java_request():
    header = (
        b'{"code":105,"extFields":{"topic":"TopicTest"},"flag":0,"language":"JAVA",'
        b'"opaque":3,"serializeTypeCurrentRPC":"JSON","version":409}'
    )
    cmd = decode_command(raw_frame(0, header, b"body"))
    assert (cmd.code, cmd.opaque, cmd.flag, cmd.language, cmd.version) == (105, 3, 0, LanguageCode.JAVA, 409)
    assert cmd.ext_fields == {"topic": "TopicTest"}
    assert cmd.body == b"body"
    assert cmd.remark is None


def test_json_header_tolerates_surrounding_whitespace_and_missing_optional_fields():
    cmd = decode_command(raw_frame(0, b'  {"code":34}\n'))
    assert (cmd.code, cmd.opaque, cmd.flag, cmd.language, cmd.version) == (34, 0, 0, LanguageCode.JAVA, 0)


@pytest.mark.parametrize(
    "header",
    [
        b'{"code":34',
        b'{"code":34} x',
        b"[1,2]",
        b'{"opaque":1}',
        b'{"code":"x"}',
        b'{"code":1.5}',
        b'{"code":true}',
        b'{"code":1,"extFields":[1]}',
        b'{"code":1,"language":[1]}',
        b"\xff\xfe",
        b"[" * 100000,
        b"",
    ],
)
def test_bad_json_headers_raise_frame_error(header):
    with pytest.raises(FrameError):
        decode_command(raw_frame(0, header))


def test_numeric_strings_in_standard_fields_are_accepted():
    cmd = decode_command(raw_frame(0, b'{"code":"105","opaque":"9","flag":"0","version":"63"}'))
    assert (cmd.code, cmd.opaque, cmd.version) == (105, 9, 63)


@pytest.mark.parametrize(
    "header",
    [
        b"\x00" * 20,  # shorter than the fixed part
        struct.pack(">hBhii", 1, 0, 1, 1, 0) + struct.pack(">i", 50) + b"x" + struct.pack(">i", 0),
        struct.pack(">hBhii", 1, 0, 1, 1, 0) + struct.pack(">i", -2) + struct.pack(">i", 0),
        struct.pack(">hBhii", 1, 0, 1, 1, 0) + struct.pack(">ii", 0, 99),
        struct.pack(">hBhii", 1, 0, 1, 1, 0) + struct.pack(">ii", 0, -1),
        # an entry whose value length runs past the map
        struct.pack(">hBhii", 1, 0, 1, 1, 0) + struct.pack(">ii", 0, 8) + struct.pack(">h", 1) + b"k"
        + struct.pack(">i", 5) + b"v",
        # a truncated entry
        struct.pack(">hBhii", 1, 0, 1, 1, 0) + struct.pack(">ii", 0, 3) + struct.pack(">h", 1) + b"k",
        # invalid UTF-8 in the remark
        struct.pack(">hBhii", 1, 0, 1, 1, 0) + struct.pack(">i", 2) + b"\xff\xff" + struct.pack(">i", 0),
    ],
)
def test_bad_rocketmq_headers_raise_frame_error(header):
    with pytest.raises(FrameError):
        decode_command(raw_frame(1, header))


def test_unknown_serialize_type_raises_frame_error():
    with pytest.raises(FrameError, match="serialize type 7"):
        decode_command(raw_frame(7, b'{"code":1}'))


@pytest.mark.parametrize(
    "frame",
    [b"\x00\x00\x00", raw_frame(0, b'{"code":1}', length=99), raw_frame(0, b'{"code":1}')[:-1]],
)
def test_decode_command_checks_the_frame_length(frame):
    with pytest.raises(FrameError):
        decode_command(frame)


# -- schemas and fast forms agree --------------------------------------------------------------------


@given(json_commands() | rocketmq_commands())
def test_frame_schema_and_fast_form_agree(cmd):
    frame = encode_command(cmd)
    header = encode_json_header(cmd) if cmd.serialize_type == 0 else encode_rocketmq_header(cmd)
    fields = {
        "length": 4 + len(header) + len(cmd.body),
        "serialize_type": cmd.serialize_type,
        "header_length": len(header),
        "header": header,
        "body": cmd.body,
    }
    assert FRAME.build(fields) == frame
    parsed = FRAME.parse(frame)
    assert {k: parsed[k] for k in fields} == fields
    length, word = FRAME_PREFIX.unpack_from(frame, 0)
    assert FRAME_PREFIX.as_dict((length, word)) == {"length": length, "header_word": word}
    assert FRAME_PREFIX.schema.parse(frame[:8]) == c.Container(length=length, header_word=word)
    assert FRAME_LENGTH.unpack_from(frame, 0) == (length,)


def _schema_fields(cmd: RemotingCommand) -> dict:
    return {
        "code": cmd.code,
        "language": cmd.language,
        "version": cmd.version,
        "opaque": cmd.opaque,
        "flag": cmd.flag,
        "remark": cmd.remark or "",
        "ext_fields": [{"key": k, "value": v} for k, v in (cmd.ext_fields or {}).items()],
    }


@given(rocketmq_commands())
def test_rocketmq_header_schema_and_fast_form_agree(cmd):
    fast = encode_rocketmq_header(cmd)
    fields = _schema_fields(cmd)
    assert ROCKETMQ_HEADER.build(fields) == fast
    parsed = ROCKETMQ_HEADER.parse(fast)
    assert parsed.remark == fields["remark"]
    assert [(e.key, e.value) for e in parsed.ext_fields] == [(e["key"], e["value"]) for e in fields["ext_fields"]]
    assert [parsed[k] for k in ROCKETMQ_HEADER_FIXED.names] == [fields[k] for k in ROCKETMQ_HEADER_FIXED.names]
    # And the fast decoder reads what the schema writes.
    assert decode_rocketmq_header(ROCKETMQ_HEADER.build(fields), cmd.body) == cmd


INT_CONSTRUCTS = [c.Int8ub, c.Int8sb, c.Int16ub, c.Int16sb, c.Int32ub, c.Int32sb, c.Int64ub, c.Int64sb]


def _value_for(con):
    bits = con.sizeof() * 8
    if con.fmtstr[1].isupper():
        return st.integers(0, 2**bits - 1)
    return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


@st.composite
def layouts_with_values(draw):
    cons = draw(st.lists(st.sampled_from(INT_CONSTRUCTS), min_size=1, max_size=8))
    layout = FixedLayout(*((f"f{i}", con) for i, con in enumerate(cons)))
    values = tuple(draw(_value_for(con)) for con in cons)
    return layout, values


@settings(max_examples=200)
@given(layouts_with_values())
def test_fixed_layout_schema_and_fast_form_agree(case):
    layout, values = case
    packed = layout.pack(*values)
    assert packed == layout.schema.build(layout.as_dict(values))
    assert layout.size == layout.schema.sizeof() == len(packed)
    parsed = layout.schema.parse(packed)
    assert tuple(parsed[name] for name in layout.names) == layout.unpack(packed) == values
    buf = bytearray(3 + layout.size)
    layout.pack_into(buf, 3, *values)
    assert layout.unpack_from(buf, 3) == values


@pytest.mark.parametrize("con", [c.Int32sl, c.Int24ub, c.Bytes(4), c.CString("utf8")])
def test_fixed_layout_refuses_what_has_no_big_endian_fast_form(con):
    with pytest.raises(TypeError):
        FixedLayout(("x", con))


def test_rocketmq_header_fixed_part_is_21_bytes():
    cmd = RemotingCommand(10, 1, 0, serialize_type=SerializeType.ROCKETMQ)
    assert ROCKETMQ_HEADER_FIXED.size + 8 == len(encode_rocketmq_header(cmd)) == 21


# -- extFields normalisation ----------------------------------------------------------------------


def test_ext_fields_numbers_and_booleans_become_strings_on_decode():
    """C++ sends some ints as numbers, Node sends native numbers and booleans (wire reference §0.2)."""
    header = (
        b'{"code":10,"extFields":{"queueId":3,"big":1700000000000,"neg":-5,"unitMode":true,'
        b'"batch":false,"s":"x","gone":null,"f":1.5,"o":{"a":[1,2]}},"language":"CPP","opaque":1}'
    )
    cmd = decode_command(raw_frame(0, header))
    assert cmd.ext_fields == {
        "queueId": "3",
        "big": "1700000000000",
        "neg": "-5",
        "unitMode": "true",
        "batch": "false",
        "s": "x",
        "f": "1.5",
        "o": '{"a":[1,2]}',
    }
    assert all(type(v) is str for v in cmd.ext_fields.values())


@pytest.mark.parametrize("serialize_type", [SerializeType.JSON, SerializeType.ROCKETMQ])
def test_ext_fields_are_written_as_strings_only(serialize_type):
    class Kind(int):
        pass

    cmd = RemotingCommand(
        0,
        1,
        FLAG_RESPONSE,
        None,
        {"queueId": 1, "ok": True, "no": False, "none": None, "kind": Kind(4), "s": "v"},
        serialize_type=serialize_type,
    )
    frame = encode_command(cmd)
    if serialize_type == SerializeType.JSON:
        ext = json.loads(frame[8:])["extFields"]
    else:
        ext = decode_command(frame).ext_fields
    assert ext == {"queueId": "1", "ok": "true", "no": "false", "kind": "4", "s": "v"}


# -- responses, flags, language -------------------------------------------------------------------


@pytest.mark.parametrize("serialize_type", [SerializeType.JSON, SerializeType.ROCKETMQ])
def test_response_uses_the_request_serialization_type(serialize_type):
    request = decode_command(encode_command(RemotingCommand.request(10, {"a": "b"}, serialize_type=serialize_type)))
    response = request.response(ResponseCode.SUCCESS, "ok")
    assert response.serialize_type == serialize_type
    frame = encode_command(response)
    assert frame[4] == serialize_type
    assert decode_command(frame).serialize_type == serialize_type


def test_flags():
    request = RemotingCommand.request(10)
    assert request.flag == 0 and not request.is_response and not request.is_oneway
    oneway = RemotingCommand.request(15, oneway=True)
    assert oneway.flag == FLAG_ONEWAY and oneway.is_oneway and not oneway.is_response
    request.opaque = 77
    response = request.response(ResponseCode.SYSTEM_ERROR, "x")
    assert response.flag == FLAG_RESPONSE and response.is_response and not response.is_oneway
    assert (response.opaque, response.code, response.remark) == (77, ResponseCode.SYSTEM_ERROR, "x")
    back = decode_command(encode_command(response))
    assert back.is_response and back.opaque == 77


@pytest.mark.parametrize(
    "value, expected",
    [
        (b'"JAVA"', LanguageCode.JAVA),
        (b'"CPP"', LanguageCode.CPP),
        (b'"GO"', LanguageCode.GO),
        (b'"RUST"', LanguageCode.RUST),
        (b"9", LanguageCode.GO),
        (b"1", LanguageCode.CPP),
        (b'"COBOL"', LanguageCode.OTHER),
    ],
)
def test_language_as_name_or_ordinal(value, expected):
    cmd = decode_command(raw_frame(0, b'{"code":1,"language":' + value + b"}"))
    assert cmd.language == expected


def test_language_is_written_by_name_in_json_and_as_a_byte_in_rocketmq():
    cmd = RemotingCommand.request(10)  # language PYTHON
    assert json.loads(encode_json_header(cmd))["language"] == "PYTHON"
    cmd.language = 200
    assert json.loads(encode_json_header(cmd))["language"] == "OTHER"
    cmd.language = LanguageCode.GO
    cmd.serialize_type = SerializeType.ROCKETMQ
    assert encode_rocketmq_header(cmd)[2] == 9


def test_field_accessor():
    cmd = RemotingCommand(10, ext_fields={"topic": "T"})
    assert cmd.field("topic") == "T"
    assert cmd.field("x", "d") == "d"
    assert RemotingCommand(10).field("topic") is None


@settings(max_examples=300, deadline=None)
@given(
    opaque=st.integers(-(2**31), 2**31 - 1),
    offsets=st.lists(st.integers(0, 2**63 - 1), min_size=1, max_size=4),
    queue_id=st.integers(0, 65535),
    offset=st.integers(-1, 2**63 - 1),
    region=st.text(max_size=12),
    trace=st.sampled_from(["true", "false"]),
)
def test_response_template_frame_is_the_encoded_command(opaque, offsets, queue_id, offset, region, trace):
    """A send answer's pre-encoded frame is byte for byte what encode_command writes for the same command."""
    from mq.remoting.codes import CURRENT_VERSION
    from mq.remoting.serialization import ResponseTemplate

    msg_id = ",".join(f"7F00000100002A9F{o:016X}" for o in offsets)
    ext = {"msgId": msg_id, "queueId": str(queue_id), "queueOffset": str(offset), "MSG_REGION": region,
           "TRACE_ON": trace}
    cmd = RemotingCommand(ResponseCode.SUCCESS, opaque, FLAG_RESPONSE, None, ext, b"", LanguageCode.JAVA,
                          CURRENT_VERSION, SerializeType.JSON)
    template = ResponseTemplate(ResponseCode.SUCCESS, FLAG_RESPONSE, {"msgId": None, "queueId": None,
                                "queueOffset": None, "MSG_REGION": region, "TRACE_ON": trace}, CURRENT_VERSION)
    frame = template.frame(opaque, msg_id, str(queue_id), str(offset))
    if "\x00" in region:
        assert frame is None
        return
    assert frame == encode_command(cmd)
    cmd.frame = frame
    assert encode_command(cmd) is frame and decode_command(frame) == cmd
