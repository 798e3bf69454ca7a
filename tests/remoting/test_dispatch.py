"""RequestDispatcher over a StringTransport: processors, errors, oneway requests, Deferreds."""

from __future__ import annotations

import pytest
from twisted.internet import defer

from mq.remoting.codes import FLAG_RESPONSE, ResponseCode, SerializeType
from mq.remoting.command import RemotingCommand
from mq.remoting.protocol import RequestDispatcher
from mq.remoting.serialization import encode_command
from tests.remoting.support import Recorder, SampleHeader, connect, failures, split_frames


def request(code, opaque=5, ext=None, oneway=False, serialize_type=SerializeType.JSON):
    cmd = RemotingCommand.request(code, ext, b"", oneway=oneway, serialize_type=serialize_type)
    cmd.opaque = opaque
    return encode_command(cmd)


def answers(transport):
    out = split_frames(transport.value())
    transport.clear()
    return out


@pytest.mark.parametrize("serialize_type", [SerializeType.JSON, SerializeType.ROCKETMQ])
def test_unknown_code_gets_request_code_not_supported_naming_it(serialize_type):
    proto, transport = connect(RequestDispatcher())
    proto.dataReceived(request(12345, opaque=9, serialize_type=serialize_type))
    [response] = answers(transport)
    assert response.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
    assert "12345" in response.remark
    assert response.opaque == 9 and response.flag == FLAG_RESPONSE
    assert response.serialize_type == serialize_type


def test_a_dispatcher_may_stay_silent_on_unknown_codes():
    """What the NameServer does (wire reference §0.10)."""
    dispatcher = RequestDispatcher(answer_unknown=False)
    dispatcher.register(105, lambda req, ch: req.response())
    proto, transport = connect(dispatcher)
    proto.dataReceived(request(12345, opaque=1) + request(105, opaque=2))
    [response] = answers(transport)
    assert response.opaque == 2


def test_processor_response_is_sent_with_the_request_opaque():
    dispatcher = RequestDispatcher()
    dispatcher.register(105, lambda req, ch: req.response(ResponseCode.SUCCESS, None, {"a": "b"}, b"body"))
    proto, transport = connect(dispatcher)
    proto.dataReceived(request(105, opaque=77) + request(105, opaque=78))
    first, second = answers(transport)
    assert (first.opaque, second.opaque) == (77, 78)
    assert first.code == ResponseCode.SUCCESS and first.is_response
    assert first.ext_fields == {"a": "b"} and first.body == b"body"


def test_processor_receives_the_channel_and_may_keep_state_on_it():
    seen = []

    def processor(req, channel):
        seen.append(channel)
        channel.attributes["client_id"] = req.field("clientID")
        return req.response()

    dispatcher = RequestDispatcher()
    dispatcher.register(34, processor)
    proto, _ = connect(dispatcher)
    proto.dataReceived(request(34, ext={"clientID": "c1"}))
    assert seen == [proto] and proto.attributes == {"client_id": "c1"}
    assert proto.peer == "192.168.1.1:54321"


def test_processor_exception_gives_system_error(log_events):
    def boom(req, channel):
        raise RuntimeError("disk on fire")

    dispatcher = RequestDispatcher()
    dispatcher.register(10, boom)
    proto, transport = connect(dispatcher)
    proto.dataReceived(request(10))
    [response] = answers(transport)
    assert response.code == ResponseCode.SYSTEM_ERROR
    assert "disk on fire" in response.remark
    assert len(failures(log_events)) == 1  # unexpected errors are logged with their traceback
    assert not transport.disconnecting


def test_header_field_error_gives_system_error_naming_the_field(log_events):
    dispatcher = RequestDispatcher()
    dispatcher.register(10, lambda req, ch: req.response(ResponseCode.SUCCESS, SampleHeader.decode(req.ext_fields).topic))
    proto, transport = connect(dispatcher)
    proto.dataReceived(request(10, ext={"queueId": "1"}))
    [response] = answers(transport)
    assert response.code == ResponseCode.SYSTEM_ERROR
    assert "'topic'" in response.remark and "missing" in response.remark
    assert failures(log_events) == []  # a client's mistake, not ours: no traceback


def test_oneway_requests_get_no_response():
    recorder = Recorder(lambda req: req.response())
    dispatcher = RequestDispatcher()
    dispatcher.register(15, recorder)
    dispatcher.register(16, lambda req, ch: 1 / 0)
    proto, transport = connect(dispatcher)
    proto.dataReceived(request(15, oneway=True) + request(16, oneway=True) + request(999, oneway=True))
    assert len(recorder.calls) == 1 and recorder.calls[0].is_oneway
    assert transport.value() == b""


def test_a_processor_returning_none_sends_nothing():
    dispatcher = RequestDispatcher()
    dispatcher.register(10, lambda req, ch: None)
    proto, transport = connect(dispatcher)
    proto.dataReceived(request(10))
    assert transport.value() == b""


def test_deferred_processors_answer_when_they_fire():
    pending = []

    def later(req, channel):
        d = defer.Deferred()
        pending.append((req, d))
        return d

    dispatcher = RequestDispatcher()
    dispatcher.register(11, later)
    proto, transport = connect(dispatcher)
    proto.dataReceived(request(11, opaque=1) + request(11, opaque=2) + request(11, opaque=3))
    assert transport.value() == b""
    (r1, d1), (r2, d2), (r3, d3) = pending
    d2.callback(r2.response(ResponseCode.PULL_NOT_FOUND))
    d1.errback(ValueError("no such queue"))
    [second, first] = answers(transport)
    assert (second.opaque, second.code) == (2, ResponseCode.PULL_NOT_FOUND)
    assert (first.opaque, first.code) == (1, ResponseCode.SYSTEM_ERROR) and "no such queue" in first.remark
    proto.connectionLost(None)
    d3.callback(r3.response())  # fires after the connection closed: nothing is written, nothing raises
    assert transport.value() == b""


def test_an_unencodable_response_still_answers(log_events):
    dispatcher = RequestDispatcher()
    dispatcher.register(10, lambda req, ch: "not a command")
    dispatcher.register(11, lambda req, ch: req.response(70000))  # does not fit the ROCKETMQ i16 code
    proto, transport = connect(dispatcher)
    proto.dataReceived(request(10, opaque=1) + request(11, opaque=2, serialize_type=SerializeType.ROCKETMQ))
    first, second = answers(transport)
    assert (first.opaque, first.code) == (1, ResponseCode.SYSTEM_ERROR)
    assert (second.opaque, second.code) == (2, ResponseCode.SYSTEM_ERROR)
    assert len(failures(log_events)) == 2


def test_observer_sees_request_and_response_codes():
    seen = []
    dispatcher = RequestDispatcher(observer=lambda code, rcode: seen.append((code, rcode)))
    dispatcher.register(10, lambda req, ch: req.response(ResponseCode.SUCCESS))
    proto, _ = connect(dispatcher)
    proto.dataReceived(request(10) + request(404))
    assert seen == [(10, ResponseCode.SUCCESS), (404, ResponseCode.REQUEST_CODE_NOT_SUPPORTED)]


def test_a_protocol_without_dispatcher_refuses_requests():
    proto, transport = connect(None)
    proto.dataReceived(request(10, opaque=4) + request(15, oneway=True))
    [response] = answers(transport)
    assert (response.opaque, response.code) == (4, ResponseCode.REQUEST_CODE_NOT_SUPPORTED)


def test_register_accepts_enum_codes():
    from mq.remoting.codes import RequestCode

    dispatcher = RequestDispatcher()
    dispatcher.register(RequestCode.HEART_BEAT, lambda req, ch: req.response())
    assert list(dispatcher.processors) == [34] and type(next(iter(dispatcher.processors))) is int


def test_the_answers_of_one_read_leave_in_one_write():
    """Eight requests in one chunk: eight answers, in order, in a single transport write; an answer that comes
    later (a Deferred firing outside the read) is written on its own at once."""
    pending = []

    def answer(req, channel):
        if req.code == 11:
            pending.append(defer.Deferred())
            return pending[-1].addCallback(lambda _: req.response())
        return req.response(ResponseCode.SUCCESS, None, {"n": str(req.opaque)})

    dispatcher = RequestDispatcher()
    dispatcher.register(10, answer)
    dispatcher.register(11, answer)
    proto, transport = connect(dispatcher)
    writes = []
    write = transport.write
    transport.write = lambda data: (writes.append(data), write(data))
    proto.dataReceived(b"".join(request(10, opaque=i) for i in range(1, 9)) + request(11, opaque=9))
    assert len(writes) == 1
    assert [(a.opaque, a.ext_fields["n"]) for a in answers(transport)] == [(i, str(i)) for i in range(1, 9)]
    pending[0].callback(None)
    assert len(writes) == 2 and [a.opaque for a in answers(transport)] == [9]


def test_answers_written_before_a_close_in_the_same_read_still_go_out():
    """A processor that closes the connection: the answers this read produced before it are still sent (as
    Twisted's buffer sends them before closing), the frames after it are not handled."""
    def closing(req, channel):
        channel.close()

    dispatcher = RequestDispatcher()
    dispatcher.register(10, lambda req, ch: req.response(ResponseCode.SUCCESS))
    dispatcher.register(11, closing)
    proto, transport = connect(dispatcher)
    proto.dataReceived(request(10, opaque=1) + request(10, opaque=2) + request(11, opaque=3) + request(10, opaque=4))
    assert [a.opaque for a in answers(transport)] == [1, 2]
    assert transport.disconnecting
