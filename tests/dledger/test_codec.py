"""Raft messages through a real remoting frame, and the refusal of every malformed field."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mq.dledger import codec
from mq.dledger import entry as entry_codec
from mq.dledger.messages import AppendRequest, AppendResponse, Entry, TimeoutNow, VoteRequest, VoteResponse
from mq.remoting.serialization import decode_command, encode_command

ids = st.sampled_from(["n0", "n1", "n2", "a12"])
nums = st.integers(0, 2**63 - 1)


@st.composite
def appends(draw):
    prev = draw(st.integers(0, 2**40))
    term = draw(st.integers(0, 2**40))
    bodies = draw(st.lists(st.binary(max_size=64), max_size=5))
    entries = tuple(Entry(prev + 1 + k, term, b) for k, b in enumerate(bodies))
    return AppendRequest(draw(ids), draw(ids), term, prev, draw(nums), entries, draw(nums))


messages = st.one_of(
    st.builds(VoteRequest, ids, ids, nums, nums, nums, st.booleans(), st.booleans()),
    st.builds(VoteResponse, ids, ids, nums, st.booleans(), st.booleans()),
    appends(),
    st.builds(AppendResponse, ids, ids, nums, st.booleans(), nums, nums, nums),
    st.builds(TimeoutNow, ids, ids, nums),
)


@settings(max_examples=300, deadline=None)
@given(msg=messages)
def test_every_message_survives_a_frame(msg):
    frame = encode_command(codec.to_command(msg, "broker-a"))
    cmd = decode_command(frame)
    assert cmd.is_oneway
    assert codec.from_command(cmd) == ("broker-a", msg)


def _vote_cmd():
    return codec.to_command(VoteRequest("n0", "n1", 3, 10, 2, True, False), "broker-a")


@pytest.mark.parametrize("key,value,word", [
    ("term", "-1", "term"), ("term", "9223372036854775808", "term"), ("term", "1e3", "term"),
    ("term", "٣", "term"), ("pre", "1", "pre"), ("src", "node-0", "src"), ("dst", "n", "dst"),
    ("group", "a/b", "group"), ("group", "", "group"), ("lastIndex", None, "lastIndex"),
])
def test_a_bad_field_is_named(key, value, word):
    cmd = _vote_cmd()
    if value is None:
        del cmd.ext_fields[key]
    else:
        cmd.ext_fields[key] = value
    with pytest.raises(codec.CodecError, match=word):
        codec.from_command(cmd)


def test_bad_entries_and_bodies_are_refused():
    e = [Entry(5, 1, b"x"), Entry(6, 1, b"y")]
    good = codec.to_command(AppendRequest("n0", "n1", 1, 4, 1, tuple(e), 0), "g")
    assert codec.from_command(good)[1].entries == tuple(e)
    with pytest.raises(codec.CodecError, match="limit"):
        codec.from_command(good, max_entries=1)
    torn = attrs.evolve(good, body=good.body[:-1])
    with pytest.raises(codec.CodecError, match="entries"):
        codec.from_command(torn)
    flipped = bytearray(good.body)
    flipped[entry_codec.HEADER_SIZE] ^= 1
    with pytest.raises(codec.CodecError, match="CRC"):
        codec.from_command(attrs.evolve(good, body=bytes(flipped)))
    gap = codec.to_command(AppendRequest("n0", "n1", 1, 3, 1, tuple(e), 0), "g")
    with pytest.raises(codec.CodecError, match="does not follow"):
        codec.from_command(gap)
    with pytest.raises(codec.CodecError, match="no body"):
        codec.from_command(attrs.evolve(_vote_cmd(), body=b"x"))
    with pytest.raises(codec.CodecError, match="not a Raft message"):
        codec.from_command(attrs.evolve(_vote_cmd(), code=10))
