"""ResponseMemo: repeated read-only requests answered from memory, byte for byte what the processor would say."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from mq.remoting.codes import FLAG_ONEWAY, RequestCode, ResponseCode, SerializeType
from mq.remoting.command import RemotingCommand
from mq.remoting.memo import MAX_HEADER, ResponseMemo
from mq.remoting.protocol import RequestDispatcher
from mq.remoting.serialization import encode_command

from .support import Recorder, connect, raw_frame, split_frames

CODE = RequestCode.GET_ROUTEINFO_BY_TOPIC


class World:
    """A processor whose answer depends on the request and on a state counter, and a connection with a memo."""

    def __init__(self, memo: bool = True) -> None:
        self.state = 0
        self.processor = Recorder(self.route)
        dispatcher = RequestDispatcher()
        dispatcher.register(CODE, self.processor)
        dispatcher.register(RequestCode.HEART_BEAT, self.processor)
        self.proto, self.transport = connect(dispatcher)
        self.memo = ResponseMemo([CODE], lambda: self.state) if memo else None
        self.proto.memo = self.memo

    def route(self, request: RemotingCommand) -> RemotingCommand:
        topic = request.ext_fields.get("topic")
        if topic is None:
            return request.response(ResponseCode.SYSTEM_ERROR, "the request has no topic")
        body = json.dumps({"topic": topic, "state": self.state, "version": request.version}).encode()
        return request.response(ResponseCode.SUCCESS, None, None, body)

    def send(self, data: bytes) -> bytes:
        self.transport.clear()
        self.proto.dataReceived(data)
        return self.transport.value()


def request(opaque: int, topic: str = "T", serialize_type: int = SerializeType.JSON, code: int = CODE) -> bytes:
    cmd = RemotingCommand.request(code, {"topic": topic})
    cmd.opaque = opaque
    cmd.serialize_type = serialize_type
    return encode_command(cmd)


def test_a_repeated_request_is_answered_without_the_processor_with_its_own_opaque():
    for serialize_type in (SerializeType.JSON, SerializeType.ROCKETMQ):
        world = World()
        first = world.send(request(7, serialize_type=serialize_type))
        again = world.send(request(123456, serialize_type=serialize_type))
        assert len(world.processor.calls) == 1
        a, b = split_frames(first)[0], split_frames(again)[0]
        assert (b.opaque, b.code, b.body, b.serialize_type, b.is_response) == (123456, a.code, a.body, serialize_type, True)
        assert again == request_answered_by_processor(123456, serialize_type)
        assert world.memo.hits == {(CODE, ResponseCode.SUCCESS): 1}


def request_answered_by_processor(opaque: int, serialize_type: int) -> bytes:
    world = World(memo=False)
    return world.send(request(opaque, serialize_type=serialize_type))


def test_a_change_of_state_empties_the_memo():
    world = World()
    world.send(request(1))
    world.state = 1
    answer = split_frames(world.send(request(2)))[0]
    assert len(world.processor.calls) == 2 and json.loads(answer.body)["state"] == 1
    world.send(request(3))
    assert len(world.processor.calls) == 2  # remembered again under the new state


def test_only_the_named_codes_other_requests_and_oneway_requests_go_to_the_processor():
    world = World()
    for i in range(3):
        world.send(request(i, code=RequestCode.HEART_BEAT))
    assert len(world.processor.calls) == 3
    world.send(request(1, topic="A"))
    world.send(request(2, topic="B"))  # another topic: another key
    assert len(world.processor.calls) == 5
    oneway = RemotingCommand.request(CODE, {"topic": "A"})
    oneway.flag |= FLAG_ONEWAY
    assert world.send(encode_command(oneway)) == b""  # never answered, memo or not
    assert len(world.processor.calls) == 6


def test_headers_it_cannot_read_safely_are_not_remembered():
    world = World()
    # a second "opaque": key (in extFields): not remembered, answered by the processor every time
    header = b'{"code":105,"extFields":{"topic":"T","opaque":"5"},"flag":0,"language":"JAVA","opaque":%d,"version":1}'
    for opaque in (1, 2):
        answer = split_frames(world.send(raw_frame(0, header % opaque)))[0]
        assert answer.opaque == opaque
    # an opaque of ten digits, and one written with spaces: the ordinary path, right answers
    for text in (b'{"code":105,"extFields":{"topic":"T"},"flag":0,"opaque":1234567890}',
                 b'{"code":105,"extFields":{"topic":"T"},"flag":0,"opaque" : 77}'):  # fmt: skip
        for _ in range(2):
            answer = split_frames(world.send(raw_frame(0, text)))[0]
            assert answer.opaque == json.loads(text)["opaque"]
    assert len(world.processor.calls) == 6 and world.memo.hits == {}


def test_error_answers_are_remembered_too():
    world = World()
    bare = b'{"code":105,"flag":0,"opaque":%d}'
    answers = [split_frames(world.send(raw_frame(0, bare % i)))[0] for i in (1, 2)]
    assert [(a.code, a.opaque) for a in answers] == [(ResponseCode.SYSTEM_ERROR, 1), (ResponseCode.SYSTEM_ERROR, 2)]
    assert len(world.processor.calls) == 1


_json_opaque = st.integers(-(2**31), 2**31 - 1)


@settings(max_examples=150, deadline=None)
@given(
    seen=st.lists(st.tuples(st.sampled_from(["T", "U", "é"]), st.sampled_from([0, 1]), _json_opaque), max_size=4),
    topic=st.sampled_from(["T", "U", "é"]),
    serialize_type=st.sampled_from([0, 1]),
    opaque=_json_opaque,
    version=st.sampled_from([1, 409]),
    extra=st.dictionaries(st.sampled_from(["opaque", "x", "topicx"]), st.text(max_size=3), max_size=2),
)
def test_memo_answers_equal_the_processor_answers_byte_for_byte(seen, topic, serialize_type, opaque, version, extra):
    """Whatever was asked before, a memo'd connection answers exactly as one without a memo."""
    with_memo, without = World(), World(memo=False)
    frames = []
    for t, s, o in seen + [(topic, serialize_type, opaque)]:
        cmd = RemotingCommand.request(CODE, {"topic": t, **extra})
        cmd.opaque, cmd.serialize_type, cmd.version = o, s, version
        frames.append(encode_command(cmd))
    for frame in frames:
        assert with_memo.send(frame) == without.send(frame)


def _header(topic: str, opaque: int = 1) -> bytes:
    return b'{"code":105,"extFields":{"topic":"%s"},"flag":0,"opaque":%d}' % (topic.encode(), opaque)


def test_a_request_with_a_body_is_answered_but_not_remembered():
    # The review: a new 4 MiB body with each route query grew the NameServer by 4 MB a request.
    world = World()
    for i in range(5):
        body = bytes([i]) * (4 << 20)
        answer = split_frames(world.send(raw_frame(0, _header("T", i), body)))[0]
        assert answer.opaque == i and answer.code == ResponseCode.SUCCESS
    world.send(raw_frame(0, _header("T", 9), b"x"))
    world.send(raw_frame(0, _header("T", 10), b"x"))  # the same small body again: still the processor
    assert len(world.processor.calls) == 7
    assert world.memo.size == 0 and not world.memo._entries and world.memo.hits == {}


def test_only_headers_under_the_limit_are_remembered():
    world = World()
    short = "t" * (MAX_HEADER - 1 - len(_header("")))
    assert len(_header(short)) == MAX_HEADER - 1
    longer = short + "u"
    for topic in (short, longer):
        for opaque in (1, 2):
            assert split_frames(world.send(raw_frame(0, _header(topic, opaque))))[0].opaque == opaque
    assert len(world.processor.calls) == 3  # the short one once, the 1024-byte one twice
    assert world.memo.hits == {(CODE, ResponseCode.SUCCESS): 1}


def test_the_memo_is_bounded_by_bytes_and_entries_oldest_dropped_first():
    world = World()
    one = World()
    one.send(request(1, topic="T000"))
    entry_size = one.memo.size
    assert entry_size > 0
    world.memo = world.proto.memo = ResponseMemo([CODE], lambda: world.state, max_bytes=3 * entry_size)
    for i in range(10):
        world.send(request(1, topic=f"T{i:03d}"))
        assert world.memo.size <= 3 * entry_size
    assert len(world.memo._entries) == 3 and world.memo.size == 3 * entry_size
    calls = len(world.processor.calls)
    world.send(request(2, topic="T009"))  # among the newest: from the memo
    world.send(request(2, topic="T000"))  # dropped: the processor again
    assert len(world.processor.calls) == calls + 1
    world.memo = world.proto.memo = ResponseMemo([CODE], lambda: world.state, max_entries=2)
    for i in range(5):
        world.send(request(1, topic=f"T{i:03d}"))
    assert len(world.memo._entries) == 2
    world.send(request(3, topic="T004"))
    assert world.memo.hits == {(CODE, ResponseCode.SUCCESS): 1}
    world.state = 1
    world.send(request(4, topic="T004"))
    assert world.memo.size == entry_size  # emptied for the new state, then the one answer


def test_an_answer_bigger_than_the_whole_bound_is_not_kept():
    world = World()
    world.memo = world.proto.memo = ResponseMemo([CODE], lambda: world.state, max_bytes=10)
    world.send(request(1))
    world.send(request(2))
    assert len(world.processor.calls) == 2 and world.memo.size == 0
