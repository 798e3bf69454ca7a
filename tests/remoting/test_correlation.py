"""Requests sent from a RemotingProtocol: responses matched by opaque, timeouts, connection loss."""

from __future__ import annotations

import pytest
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from mq.remoting.codes import FLAG_ONEWAY, ResponseCode
from mq.remoting.command import RemotingCommand
from mq.remoting.protocol import RemotingConnectionError, RemotingTimeoutError
from mq.remoting.serialization import encode_command
from tests.remoting.support import connect, split_frames


def results(d):
    out = []
    d.addBoth(out.append)
    return out


def answer(proto, request, code=ResponseCode.SUCCESS, remark=None):
    proto.dataReceived(encode_command(request.response(code, remark)))


def test_responses_are_matched_by_opaque_in_any_order():
    clock = Clock()
    proto, transport = connect(None, clock)
    ds = [proto.send_request(RemotingCommand.request(105, {"topic": f"T{i}"})) for i in range(3)]
    sent = split_frames(transport.value())
    assert len({cmd.opaque for cmd in sent}) == 3
    assert all(not cmd.is_response and not cmd.is_oneway for cmd in sent)
    got = [results(d) for d in ds]
    for i in (2, 0, 1):
        answer(proto, sent[i], remark=sent[i].field("topic"))
    assert [r[0].remark for r in got] == ["T0", "T1", "T2"]
    assert clock.getDelayedCalls() == []  # every timer cancelled


def test_a_request_times_out_on_its_own_timeout():
    clock = Clock()
    proto, transport = connect(None, clock)
    slow = results(proto.send_request(RemotingCommand.request(10), timeout=3.0))
    fast = results(proto.send_request(RemotingCommand.request(11), timeout=1.0))
    clock.advance(0.999)
    assert slow == [] and fast == []
    clock.advance(0.002)
    assert slow == [] and len(fast) == 1
    assert fast[0].check(RemotingTimeoutError)
    assert "SEND_MESSAGE" not in str(fast[0].value) and "PULL_MESSAGE" in str(fast[0].value)
    clock.advance(2.0)
    assert len(slow) == 1 and slow[0].check(RemotingTimeoutError)
    # A late response matches nothing and is dropped quietly.
    for cmd in split_frames(transport.value()):
        answer(proto, cmd)
    assert not transport.disconnecting


def test_pending_requests_fail_with_connection_error_on_connection_loss():
    clock = Clock()
    proto, _ = connect(None, clock)
    lost = []
    proto.notify_on_lost(lost.append)
    got = [results(proto.send_request(RemotingCommand.request(10))) for _ in range(2)]
    proto.connectionLost(Failure(ConnectionDone()))
    assert all(len(r) == 1 and r[0].check(RemotingConnectionError) for r in got)
    assert clock.getDelayedCalls() == []
    assert lost == [proto]
    after = results(proto.send_request(RemotingCommand.request(10)))
    assert after[0].check(RemotingConnectionError)
    with pytest.raises(RemotingConnectionError):
        proto.send_oneway(RemotingCommand.request(10))


def test_send_oneway_sets_the_flag_and_expects_nothing():
    clock = Clock()
    proto, transport = connect(None, clock)
    cmd = RemotingCommand.request(15, {"a": "b"})
    proto.send_oneway(cmd)
    [sent] = split_frames(transport.value())
    assert sent.flag & FLAG_ONEWAY and sent.opaque == cmd.opaque
    assert clock.getDelayedCalls() == []


def test_send_request_clears_a_stray_oneway_flag():
    proto, transport = connect(None, Clock())
    proto.send_request(RemotingCommand.request(15, oneway=True))
    [sent] = split_frames(transport.value())
    assert not sent.is_oneway


def test_a_failing_lost_callback_does_not_stop_the_others(log_events):
    proto, _ = connect(None, Clock())
    calls = []
    proto.notify_on_lost(lambda p: 1 / 0)
    proto.notify_on_lost(calls.append)
    proto.connectionLost(Failure(ConnectionDone()))
    assert calls == [proto]
