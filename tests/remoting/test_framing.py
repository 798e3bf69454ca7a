"""Framing over a StringTransport: reassembly, and bad input closing only the connection that sent it."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.logger import globalLogPublisher

from mq.remoting.codes import SerializeType
from mq.remoting.command import RemotingCommand
from mq.remoting.protocol import RequestDispatcher
from mq.remoting.serialization import DEFAULT_MAX_FRAME_LENGTH, encode_command
from tests.remoting.support import PEER, Recorder, connect, failures, messages, raw_frame, split_frames


def recording():
    recorder = Recorder()
    dispatcher = RequestDispatcher()
    for code in (10, 11, 12):
        dispatcher.register(code, recorder)
    return dispatcher, recorder


COMMANDS = [
    RemotingCommand(10, 1, 0, None, {"topic": "T", "queueId": "0"}, b"hello"),
    RemotingCommand(11, 2, 0, "r", None, b"", serialize_type=SerializeType.ROCKETMQ),
    RemotingCommand(12, 3, 0, None, {"k": "v" * 50}, bytes(range(256))),
]
STREAM = b"".join(encode_command(cmd) for cmd in COMMANDS)


def test_a_stream_split_at_every_byte_boundary_reassembles():
    for cut in range(1, len(STREAM)):
        dispatcher, recorder = recording()
        proto, transport = connect(dispatcher)
        proto.dataReceived(STREAM[:cut])
        proto.dataReceived(STREAM[cut:])
        assert recorder.calls == COMMANDS, cut
        assert not transport.disconnecting


def test_a_stream_fed_one_byte_at_a_time_reassembles():
    dispatcher, recorder = recording()
    proto, transport = connect(dispatcher)
    for i in range(len(STREAM)):
        proto.dataReceived(STREAM[i : i + 1])
    assert recorder.calls == COMMANDS
    assert not transport.disconnecting


@given(st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_a_stream_split_anywhere_reassembles(cuts):
    dispatcher, recorder = recording()
    proto, _ = connect(dispatcher)
    bounds = [0] + sorted(cuts) + [len(STREAM)]
    for a, b in zip(bounds, bounds[1:]):
        proto.dataReceived(STREAM[a:b])
    assert recorder.calls == COMMANDS


def test_many_frames_in_one_chunk_are_all_dispatched_in_order():
    dispatcher, recorder = recording()
    proto, _ = connect(dispatcher)
    cmds = [RemotingCommand(10, i, 0, None, {"i": str(i)}, b"x" * (i % 7)) for i in range(500)]
    proto.dataReceived(b"".join(encode_command(cmd) for cmd in cmds))
    assert recorder.calls == cmds


def test_a_partial_frame_waits_for_the_rest():
    dispatcher, recorder = recording()
    proto, transport = connect(dispatcher)
    frame = encode_command(COMMANDS[0])
    proto.dataReceived(frame[:-1])
    assert recorder.calls == []
    proto.dataReceived(b"")
    assert recorder.calls == []
    proto.dataReceived(frame[-1:] + frame[:3])
    assert recorder.calls == [COMMANDS[0]]
    proto.dataReceived(frame[3:])
    assert recorder.calls == [COMMANDS[0], COMMANDS[0]]
    assert not transport.disconnecting


def test_a_large_frame_arriving_in_small_chunks():
    dispatcher, recorder = recording()
    proto, _ = connect(dispatcher)
    cmd = RemotingCommand(10, 1, 0, None, None, bytes(1_000_000))
    frame = encode_command(cmd)
    for i in range(0, len(frame), 4096):
        proto.dataReceived(frame[i : i + 4096])
    assert recorder.calls == [cmd]


def test_a_frame_of_exactly_the_maximum_size_is_accepted():
    dispatcher, recorder = recording()
    proto, transport = connect(dispatcher, max_frame_length=1024)
    header = b'{"code":10}'
    frame = raw_frame(0, header, b"x" * (1024 - 8 - len(header)))
    assert len(frame) == 1024
    proto.dataReceived(frame)
    assert len(recorder.calls) == 1
    assert not transport.disconnecting


BAD_INPUT = {
    "negative length": (struct.pack(">iI", -1, 10), "frame length -1"),
    "length too small": (struct.pack(">iI", 3, 0), "frame length 3"),
    "length over the default maximum": (
        struct.pack(">iI", DEFAULT_MAX_FRAME_LENGTH - 3, 10),
        f"frame length {DEFAULT_MAX_FRAME_LENGTH - 3}",
    ),
    "header length past the frame end": (raw_frame(0, b'{"code":10}', length=4 + 5), "header length 11"),
    "unparseable JSON header": (raw_frame(0, b'{"code":10,'), "JSON header does not parse"),
    "JSON header that is not an object": (raw_frame(0, b"[10]"), "not an object"),
    "JSON header with no code": (raw_frame(0, b'{"opaque":10}'), "'code' is missing"),
    "unparseable ROCKETMQ header": (raw_frame(1, b"\x00" * 12), "shorter than its fixed part"),
    "ROCKETMQ remark past the header": (
        raw_frame(1, struct.pack(">hBhiii", 10, 0, 409, 1, 0, 99) + struct.pack(">i", 0)),
        "remark length 99",
    ),
    "unknown serialize type": (raw_frame(3, b'{"code":10}'), "unknown serialize type 3"),
    "bad length seen in a short prefix": (struct.pack(">i", -7), "frame length -7"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_aborts_that_connection_only(case, log_events):
    data, reason = BAD_INPUT[case]
    dispatcher, recorder = recording()
    good = encode_command(COMMANDS[0])
    other, other_transport = connect(dispatcher)
    proto, transport = connect(dispatcher)

    proto.dataReceived(good + data)
    assert recorder.calls == [COMMANDS[0]]  # what came before the bad frame was handled
    assert transport.disconnected, "the connection was not aborted"
    lines = [m for m in messages(log_events) if "closing connection" in m]
    assert len(lines) == 1
    assert PEER in lines[0] and reason in lines[0], lines[0]

    proto.dataReceived(good)  # anything after is ignored
    assert len(recorder.calls) == 1

    other.dataReceived(good)  # the other connection keeps working
    assert recorder.calls == [COMMANDS[0], COMMANDS[0]]
    assert not other_transport.disconnecting
    assert failures(log_events) == []


def test_the_maximum_frame_length_is_configurable(log_events):
    dispatcher, recorder = recording()
    proto, transport = connect(dispatcher, max_frame_length=1024)
    proto.dataReceived(struct.pack(">iI", 1021, 10))
    assert transport.disconnected
    assert any("frame length 1021" in m for m in messages(log_events))
    roomy, roomy_transport = connect(dispatcher)
    roomy.dataReceived(struct.pack(">iI", 1021, 10))
    assert not roomy_transport.disconnecting


def test_the_default_maximum_is_16_mib_including_the_length_prefix():
    dispatcher, _ = recording()
    proto, transport = connect(dispatcher)
    proto.dataReceived(struct.pack(">iI", 16 * 1024 * 1024 - 4, 10))  # a 16 MiB frame: waits for it
    assert not transport.disconnecting
    proto, transport = connect(dispatcher)
    proto.dataReceived(struct.pack(">iI", 16 * 1024 * 1024 - 3, 10))
    assert transport.disconnected


def plausible_frames():
    """Frames whose prefix is sane and whose header is junk, JSON-ish or binary-ish."""
    junk_json = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=10,
    )
    json_header = st.builds(
        lambda d, extra: __import__("json").dumps({**d, **extra}).encode(),
        st.fixed_dictionaries(
            {},
            optional={
                "code": st.integers(-5, 400) | junk_json,
                "opaque": st.integers() | junk_json,
                "flag": st.integers(0, 3) | junk_json,
                "language": st.sampled_from(["JAVA", "CPP", "x"]) | st.integers() | junk_json,
                "version": st.integers() | junk_json,
                "remark": junk_json,
                "extFields": st.dictionaries(st.text(max_size=5), junk_json, max_size=4) | junk_json,
            },
        ),
        st.dictionaries(st.text(max_size=5), junk_json, max_size=2),
    )
    header = json_header | st.binary(max_size=60)
    return st.builds(
        lambda t, h, b: raw_frame(t, h, b), st.sampled_from([0, 0, 1, 2]), header, st.binary(max_size=20)
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(plausible_frames() | st.binary(max_size=40), max_size=6), st.data())
def test_arbitrary_bytes_never_raise_out_of_data_received(parts, data):
    log_events: list = []
    globalLogPublisher.addObserver(log_events.append)
    try:
        _feed(parts, data, log_events)
    finally:
        globalLogPublisher.removeObserver(log_events.append)


def _feed(parts, data, log_events):
    dispatcher = RequestDispatcher()
    dispatcher.register(10, lambda request, channel: request.response(0, "ok", {"n": 1}))
    proto, transport = connect(dispatcher)
    stream = b"".join(parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=4)))
    bounds = [0] + cuts + [len(stream)]
    for a, b in zip(bounds, bounds[1:]):
        proto.dataReceived(stream[a:b])
    # Whatever was written back is well-formed frames.
    split_frames(transport.value())
    assert failures(log_events) == []
