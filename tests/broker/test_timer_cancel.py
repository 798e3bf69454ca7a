"""Cancelling pending timer messages (TIMER_DEL_UNIQKEY, RocketMQ 5.x) on a task.Clock over a real store: the
send-side rules, what is cancelled and what is not, the bound on pending cancellations, and a restart and a
crash that keep cancelled timers from coming back."""

from __future__ import annotations

import json

from mq.broker.schedule.timer import TimerRefusal
from mq.broker.schedule.timer_cancel import LEGACY_QUEUE
from mq.common.topic import TIMER_TOPIC
from mq.remoting.codes import ResponseCode
from tests.broker.test_timer_clock import REAL, bodies, crash, fresh, run, send, started
from tests.store.storetestlib import inner, open_store, put, stop
from tests.support.logs import logged_lines


def cancel(service, store, value: str, at: int, topic: str = REAL):
    msg = service.park(inner(topic=topic, body=b"0", TIMER_DELIVER_MS=str(at), TIMER_DEL_UNIQKEY=value))
    if isinstance(msg, TimerRefusal):
        return msg
    assert (msg.topic, msg.queue_id, msg.tags_code) == (TIMER_TOPIC, 0, -at)  # with the timers, as 5.x
    assert put(store, msg).is_ok()
    return None


def test_a_cancellation_needs_a_time_in_the_future(tmp_path):
    store = open_store(tmp_path / "store")
    service = started(tmp_path, store)
    now = service.broker.now_ms()
    for props in ({}, {"TIMER_DELIVER_MS": str(now - 1)}, {"TIMER_DELAY_SEC": "0"}):
        r = service.park(inner(topic=REAL, TIMER_DEL_UNIQKEY=f"{REAL}+U1", **props))
        assert isinstance(r, TimerRefusal) and r.code == ResponseCode.MESSAGE_ILLEGAL and "TIMER_DEL_UNIQKEY" in r.remark
    assert service.refusal({"TIMER_DEL_UNIQKEY": "U1"}).code == ResponseCode.MESSAGE_ILLEGAL
    service.stop()
    stop(store)


def test_cancelled_timers_are_never_delivered_and_others_are(tmp_path):
    service, store, clock = fresh(tmp_path)
    now = service.broker.now_ms()
    at = now + 2000
    send(service, store, b"a", uniq="UA", TIMER_DELIVER_MS=str(at))
    send(service, store, b"a-again", uniq="UA", TIMER_DELIVER_MS=str(at - 300))  # a retry: same id and window
    send(service, store, b"b", uniq="UB", TIMER_DELIVER_MS=str(at))
    send(service, store, b"a-later", uniq="UA", TIMER_DELIVER_MS=str(at + 1000))  # another window
    send(service, store, b"c", uniq="UC", TIMER_DELAY_SEC="2")
    assert cancel(service, store, f"{REAL}+UA", at) is None  # 5.3's form
    assert cancel(service, store, "UC", now + 2000) is None  # 5.0-5.2's: the bare id, this topic
    assert cancel(service, store, "Other+UB", at) is None  # another topic's UB: not this one
    run(clock, 1.5)
    assert bodies(store) == [] and len(service.cancels.pending) == 3
    run(clock, 1.0)
    assert bodies(store) == [b"b"]
    run(clock, 1.2)
    assert bodies(store) == [b"b", b"a-later"]
    assert (service.cancels.cancelled, service.fired, service.pending) == (3, 2, 0)
    families = {f.name: f for f in service.metrics()}
    assert families["mq_broker_timer_cancelled"].samples[0].value == 3
    service.save()
    assert service.cancels.pending == {}  # their windows have fired
    service.stop()
    stop(store)


def test_pending_cancellations_are_bounded(tmp_path):
    store = open_store(tmp_path / "store")
    service = started(tmp_path, store)
    service.cancels.max_pending = 2
    clock = store.reactor
    at = service.broker.now_ms() + 1000
    assert cancel(service, store, f"{REAL}+U1", at) is None
    assert cancel(service, store, f"{REAL}+U2", at) is None  # not read yet: counted all the same
    r = cancel(service, store, f"{REAL}+U3", at)
    assert r.code == ResponseCode.SYSTEM_ERROR and "flow control" in r.remark
    run(clock, 2.0)  # read, their window fired, dropped
    service.save()
    assert cancel(service, store, f"{REAL}+U3", service.broker.now_ms() + 1000) is None
    service.stop()
    stop(store)


def test_cancellations_survive_a_restart_and_a_crash(tmp_path):
    service, store, clock = fresh(tmp_path, timer_flush_interval_ms=60_000)
    now = service.broker.now_ms()
    for i in range(10):
        send(service, store, b"%d" % i, uniq=f"U{i}", TIMER_DELIVER_MS=str(now + 1000 + 500 * i))
    for i in (2, 7):
        assert cancel(service, store, f"{REAL}+U{i}", now + 1000 + 500 * i) is None
    run(clock, 0.3)
    service.stop()  # a graceful stop: the checkpoint names the oldest pending cancellation
    stop(store)
    store = open_store(tmp_path / "store", clock=clock)
    service = started(tmp_path, store, timer_flush_interval_ms=60_000)
    run(clock, 0.3)
    assert len(service.cancels.pending) == 2
    service.save()  # the last checkpoint before the crash: nothing fired
    run(clock, 2.8)  # 0..4 due (by 3.0 s); 2 cancelled after the checkpoint
    assert bodies(store) == [b"0", b"1", b"3", b"4"]
    crash(service, store)
    store = open_store(tmp_path / "store", clock=clock)
    service = started(tmp_path, store)
    run(clock, 4.0)
    assert bodies(store) == [b"0", b"1", b"3", b"4", b"5", b"6", b"8", b"9"]
    assert service.pending == 0 and service.cancels.cancelled == 2  # 2 again (the redone work) and 7
    service.stop()
    stop(store)


def legacy_cancel(service, store, value: str, at: int, topic: str = REAL) -> None:
    """A cancellation as earlier versions of mq stored it: in queue 1 of the timer topic, its due time as its tags code."""
    msg = service.park(inner(topic=topic, body=b"0", TIMER_DELIVER_MS=str(at), TIMER_DEL_UNIQKEY=value))
    msg.queue_id, msg.tags_code = LEGACY_QUEUE, at
    assert put(store, msg).is_ok()


def as_written_by_0_1(service) -> None:
    """The checkpoint as earlier versions of mq wrote it: ``cancelFrom`` (its queue 1 offset) and no ``cancelFrom0``."""
    data = json.loads(open(service.path).read())
    assert "cancelFrom0" in data
    del data["cancelFrom0"]
    open(service.path, "w").write(json.dumps(data))


def test_cancellations_stored_by_the_old_version_are_honoured_after_the_upgrade(tmp_path):
    """Earlier versions of mq parked cancellations in queue 1: a store it wrote (timers in queue 0, cancellations in queue 1,
    its checkpoint naming the oldest pending one) is read as it was, after a graceful stop or a SIGKILL, and
    new cancellations go to queue 0 beside them."""
    service, store, clock = fresh(tmp_path, timer_flush_interval_ms=60_000)
    now = service.broker.now_ms()
    for i in range(6):
        send(service, store, b"%d" % i, uniq=f"U{i}", TIMER_DELIVER_MS=str(now + 1000 + 500 * i))
    legacy_cancel(service, store, f"{REAL}+U1", now + 1500)
    legacy_cancel(service, store, "U4", now + 3000)  # 5.0-5.2's bare id
    run(clock, 0.3)
    assert len(service.cancels.pending) == 2
    service.stop()  # a graceful stop by the old version
    stop(store)
    as_written_by_0_1(service)
    store = open_store(tmp_path / "store", clock=clock)
    service = started(tmp_path, store, timer_flush_interval_ms=60_000)
    assert cancel(service, store, f"{REAL}+U5", now + 3500) is None  # a new one: queue 0
    run(clock, 0.3)
    assert len(service.cancels.pending) == 3
    service.save()  # the new version's checkpoint: both queues' oldest pending cancellations
    data = json.loads(open(service.path).read())
    assert (data["cancelFrom"], data["cancelFrom0"]) == (0, 6)
    run(clock, 1.3)  # U0 (1.0 s) delivered, U1 (1.5 s) cancelled, then a SIGKILL
    assert bodies(store) == [b"0"]
    crash(service, store)
    store = open_store(tmp_path / "store", clock=clock)
    service = started(tmp_path, store)
    run(clock, 3.5)
    assert bodies(store) == [b"0", b"2", b"3"]  # U1 (again), U4 (legacy) and U5 (new) cancelled
    assert service.pending == 0 and service.cancels.cancelled == 3
    service.stop()
    stop(store)


def test_an_unreadable_cancellation_never_holds_the_wheel(tmp_path, log_events):
    service, store, clock = fresh(tmp_path)
    at = service.broker.now_ms() + 1000
    send(service, store, b"a", uniq="UA", TIMER_DELIVER_MS=str(at))
    legacy_cancel(service, store, f"{REAL}+UX", at)
    cq = store.consume_queue(TIMER_TOPIC, LEGACY_QUEUE)
    cq.entry = lambda offset: None  # its file damaged
    run(clock, 1.5)
    assert bodies(store) == [b"a"] and logged_lines(log_events, "is unreadable: skipped")
    service.stop()
    stop(store)


def test_a_timer_linked_late_is_not_delivered_before_a_later_cancellation_is_read(tmp_path):
    """A timer already due when linked (the service behind, after a stop) is delivered at once; a
    cancellation stored after it in the timer queue is read first all the same (cancellations are read ahead
    of linking), so it is not delivered."""
    service, store, clock = fresh(tmp_path)
    service.stop()  # the service is down while the timer and its cancellation are stored...
    now = service.broker.now_ms()
    send(service, store, b"late", uniq="UL", TIMER_DELIVER_MS=str(now + 500))
    send(service, store, b"other", uniq="UO", TIMER_DELIVER_MS=str(now + 500))
    assert cancel(service, store, f"{REAL}+UL", now + 500) is None
    clock.advance(2.0)  # ... and starts again after both are due
    service = started(tmp_path, store)
    run(clock, 0.5)
    assert bodies(store) == [b"other"] and service.cancels.cancelled == 1
    service.stop()
    stop(store)


def test_the_dispatcher_gives_a_cancellation_the_same_tags_code_as_the_send_path():
    """On recovery and on a slave the ConsumeQueue is built from the CommitLog: a cancellation's tags code
    there is its due time negated, as ``park`` set it; a timer's is its due time."""
    from mq.store.dispatch import make_tags_code_fn

    code = make_tags_code_fn({1: 1000})
    assert code(TIMER_TOPIC, {"TIMER_OUT_MS": "1700000000123", "TIMER_DEL_UNIQKEY": "T+U"}, 5) == -1700000000123
    assert code(TIMER_TOPIC, {"TIMER_OUT_MS": "1700000000123"}, 5) == 1700000000123
