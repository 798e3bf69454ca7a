"""fastjson's dialect: unquoted integer map keys on output unless standard, both forms read back."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mq.common import fastjson


def test_integer_keys_are_unquoted_by_default_and_quoted_in_standard_mode():
    data = {"brokerAddrs": {0: "10.0.0.1:10911", 1: "10.0.0.2:10911"}, "cluster": "c"}
    assert fastjson.dumps(data) == '{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"},"cluster":"c"}'
    assert fastjson.dumps(data, standard=True) == (
        '{"brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"},"cluster":"c"}'
    )
    assert fastjson.dumps_bytes(data) == fastjson.dumps(data).encode()


def test_values_of_every_kind():
    class Obj:
        def to_json(self):
            return {"x": [1, 2]}

    data = {"s": "a\"b\\c\u00e9\n", "n": None, "t": True, "f": False, "i": -3, "r": 1.5, "l": [1, "2"], "o": Obj(), -1: 0}
    text = fastjson.dumps(data)
    assert " " not in text.replace("\\n", "")
    assert text.isascii()
    assert fastjson.loads(text) == {
        "s": "a\"b\\c\u00e9\n",
        "n": None,
        "t": True,
        "f": False,
        "i": -3,
        "r": 1.5,
        "l": [1, "2"],
        "o": {"x": [1, 2]},
        "-1": 0,
    }
    with pytest.raises(TypeError):
        fastjson.dumps({"x": object()})


def test_loads_reads_both_dialects_and_bytes():
    expected = {"brokerAddrs": {"0": "a:1", "12": "b:2"}}
    assert fastjson.loads('{"brokerAddrs":{0:"a:1",12:"b:2"}}') == expected
    assert fastjson.loads('{"brokerAddrs":{"0":"a:1","12":"b:2"}}') == expected
    assert fastjson.loads(b'{"brokerAddrs":{ 0 : "a:1" , 12:"b:2"}}') == expected


def test_strings_that_look_like_bare_keys_are_left_alone():
    text = '{0:"{1:2,3:4}","k":"a\\",5:\\"",7:[",8:"]}'
    assert fastjson.loads(text) == {"0": "{1:2,3:4}", "k": 'a",5:"', "7": [",8:"]}


def test_malformed_text_still_fails():
    with pytest.raises(ValueError):
        fastjson.loads("{0:}")
    with pytest.raises(ValueError):
        fastjson.loads('{"a":1')


def test_deep_nesting_is_a_value_error_not_a_recursion_error():
    for text in ("[" * 100_000 + "]" * 100_000, '{"a":' * 100_000):
        with pytest.raises(ValueError, match="nested too deeply"):
            fastjson.loads(text)


KEYISH = st.sampled_from(["{1:", ",2:", "{-3 :", '"', "\\", ":", "{", ","]) | st.text(max_size=6)
TRICKY_TEXT = st.lists(KEYISH, max_size=5).map("".join)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.integers(-1000, 1000), inner, max_size=4)
    | st.dictionaries(TRICKY_TEXT, inner, max_size=4),
    max_leaves=20,
)


def _stringify_keys(value):
    if isinstance(value, dict):
        return {str(k): _stringify_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify_keys(v) for v in value]
    return value


@given(VALUES)
def test_round_trip_in_both_modes(value):
    expected = _stringify_keys(value)
    assert fastjson.loads(fastjson.dumps(value)) == expected
    standard = fastjson.dumps(value, standard=True)
    assert json.loads(standard) == expected
    assert fastjson.loads(standard) == expected


def test_parse_errors_are_described_by_position_only():
    # The decoder's own message quotes the offending character; PyPy 7.3 can build that message as a malformed
    # string that crashes str.format later (a HEART_BEAT body of b"\xc2\x80" did), so the text is ours.
    with pytest.raises(ValueError) as info:
        fastjson.loads(b"\xc2\x80")
    assert str(info.value) == "not valid JSON at line 1 column 1 (char 0)"
    assert f"remark: {info.value}".endswith("(char 0)")
    with pytest.raises(ValueError, match="not valid JSON at line 2 column 3"):
        fastjson.loads('{\n  oops}')


def _count_calls(monkeypatch, name):
    calls = []
    real = getattr(fastjson, name, None)

    def counting(text):
        calls.append(len(text))
        return real(text)

    monkeypatch.setattr(fastjson, name, counting, raising=False)
    return calls


def test_malformed_text_that_is_not_a_bare_key_is_refused_without_a_rescan(monkeypatch):
    # The review's HEART_BEAT body: 16 MiB of "{,,,," was rescanned char by char in Python (5.6 s of CPU).
    fast = _count_calls(monkeypatch, "_quote_keys_fast")
    aware = _count_calls(monkeypatch, "_quote_bare_keys")
    for text in ("{" + "," * (16 << 20), "[1,-x]", '{"a":1,}', "{ x:1}", "{\"a\":1 2}"):
        with pytest.raises(ValueError):
            fastjson.loads(text)
    assert fast == [] and aware == []


def test_a_bare_key_gets_one_fast_pass_and_the_string_aware_scan_only_up_to_its_limit(monkeypatch):
    fast = _count_calls(monkeypatch, "_quote_keys_fast")
    aware = _count_calls(monkeypatch, "_quote_bare_keys")
    big = "{0:0" + "," * fastjson.STRING_AWARE_LIMIT
    with pytest.raises(ValueError):
        fastjson.loads(big)
    assert fast == [len(big)] and aware == []
    small = "{0:0" + "," * (fastjson.STRING_AWARE_LIMIT - 5)
    with pytest.raises(ValueError):
        fastjson.loads(small)
    assert fast == [len(big), len(small)] and aware == [len(small)]
    # fastjson's own output, however big, needs only the fast pass.
    del fast[:], aware[:]
    table = {"offsetTable": {f"t{i}@g": {q: i * q for q in range(4)} for i in range(50_000)}}
    text = fastjson.dumps(table)
    assert len(text) > fastjson.STRING_AWARE_LIMIT
    assert fastjson.loads(text) == json.loads(fastjson.dumps(table, standard=True))
    assert fast == [len(text)] and aware == []


def test_the_fast_pass_touching_a_string_is_caught_and_redone_string_aware(monkeypatch):
    aware = _count_calls(monkeypatch, "_quote_bare_keys")
    assert fastjson.loads('{0:"x,1:y", 2 :{-3:"{4:"}}') == {"0": "x,1:y", "2": {"-3": "{4:"}}
    assert len(aware) == 1
    # Past the limit such text is refused rather than scanned by a Python call per string.
    text = '{0:"x,1:y","pad":"' + "p" * fastjson.STRING_AWARE_LIMIT + '"}'
    with pytest.raises(ValueError):
        fastjson.loads(text)
    assert len(aware) == 1


def test_the_string_aware_scan_leaves_an_unclosed_string_alone():
    # Each of these quotes would start a string running to the end: a scan trying each is quadratic.
    text = '{0:"' + '\\"' * 500_000
    assert fastjson._quote_bare_keys(text) == text
    with pytest.raises(ValueError):
        fastjson.loads(text)
