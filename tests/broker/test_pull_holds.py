"""Long polling's bounds: a held pull's time is clamped, a closed connection's holds are dropped at once, one
connection may hold only so many, and a hold keeps nothing of the request's body."""

from __future__ import annotations

import pytest

from mq.client.simple import pull_request
from mq.remoting.codes import FLAG_RESPONSE
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.serialization import encode_command
from tests.broker.test_client_limits import Broker
from tests.remoting.support import split_frames

TOPIC = "HoldT"
HUGE = 2**62  # ms: the suspendTimeoutMillis of the report, 146 million years


@pytest.fixture
def b(tmp_path):
    broker = Broker(tmp_path)
    broker.svc.topic_config_manager.create_system(TOPIC, 4)
    yield broker
    broker.svc.stopService()


def pull(conn, queue_id=0, suspend_ms=HUGE, body=b"", opaque=1, **ext):
    """A suspendable pull at offset 0 of an empty queue (sysFlag 6); the responses it got at once."""
    proto, transport = conn
    request = pull_request("g", TOPIC, queue_id, 0, suspend_ms=suspend_ms)
    request.ext_fields.update(ext)
    request.opaque, request.body = opaque, body
    transport.clear()
    proto.dataReceived(encode_command(request))
    return [c for c in split_frames(transport.value()) if c.flag & FLAG_RESPONSE]


def timers(b) -> int:
    """The hold timers pending in the broker's clock."""
    return len([c for c in b.clock.getDelayedCalls() if c.func == b.svc.pull_hold_service._expire])


def test_a_huge_suspend_time_is_clamped(b):
    conn = b.connect()
    hold = b.svc.pull_hold_service
    assert pull(conn) == [] and hold.count == 1
    b.clock.advance(59.9)
    assert conn[1].value() == b"" and hold.count == 1
    b.clock.advance(0.2)  # pullHoldMaxTimeMills, 60 s by default: answered by the timeout
    [answer] = split_frames(conn[1].value())
    assert (answer.code, answer.opaque) == (RC.PULL_NOT_FOUND, 1)
    assert (hold.count, hold.woken_by_timeout, timers(b)) == (0, 1, 0)
    # the key changes at run time; a shorter time the client asks for is kept
    b.svc.config.pull_hold_max_time_mills = 5_000
    conn[1].clear()
    pull(conn, queue_id=1)
    pull(conn, queue_id=2, suspend_ms=2_000, opaque=2)
    b.clock.advance(2.1)
    assert [c.opaque for c in split_frames(conn[1].value())] == [2]
    b.clock.advance(3)
    assert [c.opaque for c in split_frames(conn[1].value())] == [2, 1] and hold.count == 0


def test_a_closed_connections_holds_are_dropped_with_their_timers(b):
    hold = b.svc.pull_hold_service
    gone, stays = b.connect(), b.connect()
    for i in range(50):
        assert pull(gone, queue_id=i % 4, opaque=i, body=b"x" * 4096) == []
    assert pull(stays, queue_id=0, opaque=99) == []
    assert hold.count == 51
    b.close(gone)
    assert hold.count == 1
    assert hold.dropped_by_close == 50
    assert gone[0] not in hold.by_channel and gone[0] not in hold.channel_bytes
    assert sum(len(w) for w in hold.table.values()) == 1
    assert timers(b) == 1
    # the other connection's hold is still answered by an arrival
    b.svc.pull_hold_service.notify_message_arriving(TOPIC, 0, 1)
    assert [c.opaque for c in split_frames(stays[1].value())] == [99] and hold.count == 0


def test_holds_per_connection_are_capped_with_system_busy(b):
    b.svc.config.pull_hold_max_per_connection = 3
    hold = b.svc.pull_hold_service
    greedy, other = b.connect(), b.connect()
    for i in range(3):
        assert pull(greedy, queue_id=i, opaque=i) == []
    [refused] = pull(greedy, queue_id=3, opaque=7)
    assert (refused.code, refused.opaque) == (RC.SYSTEM_BUSY, 7)
    assert "already has 3 pulls held (pullHoldMaxPerConnection 3)" in refused.remark
    assert pull(other, queue_id=3) == [] and hold.count == 4  # another connection has its own allowance
    b.clock.advance(61)  # the held ones time out and free their places
    assert hold.count == 0 and pull(greedy, queue_id=3) == []


def test_held_header_bytes_per_connection_are_capped(b, monkeypatch):
    from mq.broker.longpolling import pull_hold

    monkeypatch.setattr(pull_hold, "MAX_BYTES_PER_CONNECTION", 3 * (pull_hold.HOLD_OVERHEAD + 20_000))
    conn = b.connect()
    big = "a || " + "b" * 19_800  # a subscription expression of 20 KB
    for i in range(2):
        assert pull(conn, queue_id=i, opaque=i, subscription=big) == []
    [refused] = pull(conn, queue_id=2, opaque=2, subscription=big + "c" * 1_000)
    assert refused.code == RC.SYSTEM_BUSY and "bytes of pulls held" in refused.remark
    assert pull(conn, queue_id=2, opaque=3) == []  # a small one still fits


def test_a_hold_keeps_no_body_nor_extra_fields(b):
    conn = b.connect()
    assert pull(conn, body=b"x" * (1 << 20), padding="p" * 100_000) == []
    [held] = [h for w in b.svc.pull_hold_service.table.values() for h in w]
    assert held.request.body == b"" and "padding" not in held.request.ext_fields
    assert held.size < 2048
    b.svc.pull_hold_service.notify_message_arriving(TOPIC, 0, 1)
    [answer] = split_frames(conn[1].value())
    assert answer.opaque == 1  # the re-run from the kept fields answers the right request
