"""Cancelling pending timer messages (TIMER_DEL_UNIQKEY, RocketMQ 5.x) on a task.Clock over a real store: the
send-side rules, what is cancelled and what is not, the bound on pending cancellations, and a restart and a
crash that keep cancelled timers from coming back."""

from __future__ import annotations

from mq.broker.schedule.timer import TimerRefusal
from mq.broker.schedule.timer_cancel import CANCEL_QUEUE
from mq.common.topic import TIMER_TOPIC
from mq.remoting.codes import ResponseCode
from tests.broker.test_timer_clock import REAL, bodies, crash, fresh, run, send, started
from tests.store.storetestlib import inner, open_store, put, stop
from tests.support.logs import logged_lines


def cancel(service, store, value: str, at: int, topic: str = REAL):
    msg = service.park(inner(topic=topic, body=b"0", TIMER_DELIVER_MS=str(at), TIMER_DEL_UNIQKEY=value))
    if isinstance(msg, TimerRefusal):
        return msg
    assert (msg.topic, msg.queue_id) == (TIMER_TOPIC, CANCEL_QUEUE)
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


def test_an_unreadable_cancellation_never_holds_the_wheel(tmp_path, log_events):
    service, store, clock = fresh(tmp_path)
    at = service.broker.now_ms() + 1000
    send(service, store, b"a", uniq="UA", TIMER_DELIVER_MS=str(at))
    assert cancel(service, store, f"{REAL}+UX", at) is None
    cq = store.consume_queue(TIMER_TOPIC, CANCEL_QUEUE)
    cq.entry = lambda offset: None  # its file damaged
    run(clock, 1.5)
    assert bodies(store) == [b"a"] and logged_lines(log_events, "is unreadable: skipped")
    service.stop()
    stop(store)
