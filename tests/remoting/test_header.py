"""Typed custom headers: decoding from extFields with wire or short names, encoding to strings."""

from __future__ import annotations

import enum

import attr
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mq.remoting.header import CommandHeader, HeaderFieldError, hfield, parse_bool
from tests.remoting.support import SampleHeader


def test_decode_with_wire_names():
    h = SampleHeader.decode({"topic": "T", "queueId": "3", "batch": "true", "tags": "A", "extra": "ignored"})
    assert h == SampleHeader("T", 3, True, "A", 16)


def test_decode_with_short_names():
    h = SampleHeader.decode_short({"b": "T", "e": "-2", "m": "false", "l": "5", "tags": "x"})
    assert h == SampleHeader("T", -2, False, "x", 5)


@attr.s(slots=True)
class _Sized(CommandHeader):
    small: int = hfield("small", int, bits=32)
    big: int = hfield("big", int)


@pytest.mark.parametrize("ext, field, java", [
    ({"small": str(2**31)}, "small", "an int"), ({"small": str(-(2**31) - 1)}, "small", "an int"),
    ({"big": str(2**63)}, "big", "a long"), ({"big": "-" + "9" * 40}, "big", "a long"),
])
def test_integers_out_of_java_range_are_refused_by_name(ext, field, java):
    with pytest.raises(HeaderFieldError, match=f"'{field}' is out of range for {java}"):
        _Sized.decode(ext)


def test_integers_at_java_limits_decode():
    h = _Sized.decode({"small": str(-(2**31)), "big": str(2**63 - 1)})
    assert (h.small, h.big) == (-(2**31), 2**63 - 1)


def test_optional_fields_take_their_defaults():
    h = SampleHeader.decode({"topic": "T", "queueId": "0"})
    assert (h.batch, h.tags, h.max_times) == (None, None, 16)


@pytest.mark.parametrize(
    "ext, field",
    [({"queueId": "1"}, "topic"), ({"topic": "T"}, "queueId"), ({}, "topic"), (None, "topic")],
)
def test_missing_required_field_names_it(ext, field):
    with pytest.raises(HeaderFieldError) as info:
        SampleHeader.decode(ext)
    assert info.value.field == field
    assert info.value.header == "SampleHeader"
    assert f"'{field}'" in str(info.value) and "missing" in str(info.value)


def test_missing_required_short_field_names_the_short_key():
    with pytest.raises(HeaderFieldError) as info:
        SampleHeader.decode_short({"b": "T"})
    assert info.value.field == "e"


@pytest.mark.parametrize("value", ["", "12a", "1.5", "0x10", "--1", "+", "ten"])
def test_malformed_int_is_an_error(value):
    with pytest.raises(HeaderFieldError) as info:
        SampleHeader.decode({"topic": "T", "queueId": value})
    assert info.value.field == "queueId" and "integer" in str(info.value)
    with pytest.raises(HeaderFieldError) as info:
        SampleHeader.decode({"topic": "T", "queueId": "1", "maxReconsumeTimes": value})
    assert info.value.field == "maxReconsumeTimes"


@pytest.mark.parametrize("value", ["yes", "2", "t", "truee", "null"])
def test_malformed_bool_is_an_error(value):
    with pytest.raises(HeaderFieldError) as info:
        SampleHeader.decode({"topic": "T", "queueId": "1", "batch": value})
    assert info.value.field == "batch" and "boolean" in str(info.value)


@pytest.mark.parametrize(
    "value, expected",
    [("true", True), ("TRUE", True), ("True", True), ("1", True), ("false", False), ("0", False), ("", False)],
)
def test_boolean_spellings(value, expected):
    """``"1"``/``"0"`` are accepted on purpose: the C++ client sends them."""
    assert SampleHeader.decode({"topic": "T", "queueId": "1", "batch": value}).batch is expected
    assert parse_bool(value) is expected


def test_signed_and_large_ints():
    assert SampleHeader.decode({"topic": "T", "queueId": "+7"}).queue_id == 7
    assert SampleHeader.decode({"topic": "T", "queueId": "1700000000000"}).queue_id == 1700000000000


def test_in_process_ext_fields_with_native_values_decode():
    h = SampleHeader.decode({"topic": "T", "queueId": 4, "batch": True})
    assert (h.queue_id, h.batch) == (4, True)
    with pytest.raises(HeaderFieldError):
        SampleHeader.decode({"topic": "T", "queueId": 4.5})


def test_encode_gives_strings_only_and_leaves_out_absent_fields():
    ext = SampleHeader("T", 3, True, None, 16).encode()
    assert ext == {"topic": "T", "queueId": "3", "batch": "true", "maxReconsumeTimes": "16"}
    assert SampleHeader("T", 0, False).encode()["batch"] == "false"
    assert SampleHeader("T", 3, True, "x", 1).encode_short() == {"b": "T", "e": "3", "m": "true", "tags": "x", "l": "1"}


def test_int_enum_values_encode_as_digits():
    class Q(enum.IntEnum):
        THREE = 3

    assert SampleHeader("T", Q.THREE).encode()["queueId"] == "3"


@given(
    st.builds(
        SampleHeader,
        st.text(min_size=0, max_size=20),
        st.integers(-(2**63), 2**63 - 1),
        st.none() | st.booleans(),
        st.none() | st.text(max_size=10),
        st.integers(-(2**31), 2**31 - 1),
    )
)
def test_encode_decode_round_trip(h):
    for ext in (h.encode(),):
        assert all(type(k) is str and type(v) is str for k, v in ext.items())
        assert SampleHeader.decode(ext) == h
    assert SampleHeader.decode_short(h.encode_short()) == h


def test_short_forms_need_short_names():
    @attr.s(slots=True)
    class Plain(CommandHeader):
        group = hfield("consumerGroup", str)

    assert Plain.decode(None) == Plain(None)
    assert Plain("g").encode() == {"consumerGroup": "g"}
    with pytest.raises(TypeError):
        Plain.decode_short({})
    with pytest.raises(TypeError):
        Plain("g").encode_short()


def test_subclass_fields_are_included():
    @attr.s(slots=True)
    class Base(CommandHeader):
        bname = hfield("bname", str)

    @attr.s(slots=True)
    class Child(Base):
        topic = hfield("topic", str, required=True)

    assert Child.decode({"topic": "T", "bname": "b"}) == Child("b", "T")
    assert Base.decode({"topic": "T", "bname": "b"}) == Base("b")


_SPELLINGS = st.one_of(
    st.text(max_size=8), st.integers(-(2**70), 2**70).map(str), st.integers(-2, 1100).map(str),  # the small table
    st.sampled_from(["true", "false", "TRUE", "False", "1", "0", "", " 7", "7 ", "+5", "-3", "²", "١٢", "0x1", "01",
                     "1023", "1024", "-0"]),
)


def _reference(parse, value):
    """What the stand-alone parser makes of ``value``: the value or the exception class."""
    try:
        return parse(value)
    except (ValueError, TypeError) as e:
        return type(e)


@given(_SPELLINGS, _SPELLINGS)
@example("²", "TRUE")
@example("١٢", "1")
@example(" 7", "")
def test_generated_decoder_parses_as_the_parsers_do(number, flag):
    """The decoders' inline paths for plain spellings agree with ``_parse_int``/``parse_bool`` on any text."""
    from mq.remoting.header import _parse_int

    expected_int, expected_bool = _reference(_parse_int, number), _reference(parse_bool, flag)
    try:
        h = _Sized.decode({"small": number, "big": number})
        got_int = (h.small, h.big)
    except HeaderFieldError as e:
        got_int = e.reason
    if isinstance(expected_int, int) and -(2**31) <= expected_int < 2**31:
        assert got_int == (expected_int, expected_int)
    elif isinstance(expected_int, int) and -(2**63) <= expected_int < 2**63:
        assert got_int.startswith("is out of range for an int")
    else:
        assert isinstance(got_int, str) and got_int.startswith(("is not an integer", "is out of range"))
    try:
        got_bool = SampleHeader.decode_short({"b": "T", "e": "0", "m": flag}).batch
    except HeaderFieldError as e:
        got_bool = e.reason
    if isinstance(expected_bool, bool):
        assert got_bool is expected_bool
    else:
        assert got_bool.startswith("is not a boolean")
