"""TimerMessageService on a task.Clock over a real store: the send-side rules, delivery within the precision,
and progress across a graceful stop, a crash and lost wheel files, with nothing lost and nothing twice."""

from __future__ import annotations

import os
import shutil
from types import SimpleNamespace

from mq.broker.schedule.timer import ORIGIN, SPAN_MS, TimerMessageService, TimerRefusal, snap_precision
from mq.common.message_record import decode_messages
from mq.common.topic import SCHEDULE_TOPIC, TIMER_TOPIC
from mq.remoting.codes import ResponseCode
from tests.store.storetestlib import inner, open_store, put, stop

REAL = "Real"


def broker_on(tmp_path, store, **overrides):
    clock = store.reactor
    settings = dict(config_dir=str(tmp_path / "config"), store_path_root_dir=str(tmp_path / "store"),
                    is_slave=False, timer_wheel_enable=True, timer_precision_ms=1000, timer_max_delay_sec=259_200,
                    timer_flush_interval_ms=1000)
    settings.update(overrides)
    topics = SimpleNamespace(create_system=lambda *a, **k: None)
    return SimpleNamespace(config=SimpleNamespace(**settings), store=store, reactor=clock,
                           now_ms=lambda: int(clock.seconds() * 1000), topic_config_manager=topics)


def started(tmp_path, store, **overrides) -> TimerMessageService:
    service = TimerMessageService(broker_on(tmp_path, store, **overrides))
    service.start()
    return service


def fresh(tmp_path, **overrides):
    """A started service over a new store: (service, store, its clock)."""
    store = open_store(tmp_path / "store")
    service = started(tmp_path, store, **overrides)
    return service, store, store.reactor


def send(service, store, body: bytes, **props) -> None:
    msg = service.park(inner(topic=REAL, body=body, queue_id=1, **props))
    assert not isinstance(msg, TimerRefusal), msg
    assert put(store, msg).is_ok()


def bodies(store):
    out = []
    while True:  # a read returns 32 messages at most
        got = decode_messages(store.get_message("g", REAL, 1, len(out), 32).body())
        if not got:
            return out
        out += [m.body for m in got]


def run(clock, seconds: float, step: float = 0.05) -> None:
    for _ in range(int(round(seconds / step))):
        clock.advance(step)
        for _ in range(10_000):  # work continued on the next reactor turn
            if not any(c.getTime() <= clock.seconds() for c in clock.getDelayedCalls()):
                break
            clock.advance(0)


def test_precedence_bounds_and_refusals(tmp_path):
    store = open_store(tmp_path / "store")
    service = TimerMessageService(broker_on(tmp_path, store, timer_max_delay_sec=60))
    now = service.broker.now_ms()
    park = service.park
    # Seconds beat ms beat an absolute time (RocketMQ 5.x HookUtils).
    m = park(inner(topic=REAL, TIMER_DELAY_SEC="10", TIMER_DELAY_MS="20000", TIMER_DELIVER_MS=str(now + 30_000)))
    assert (m.topic, m.queue_id, m.properties["TIMER_OUT_MS"], m.tags_code) == (TIMER_TOPIC, 0, str(now + 10_000),
                                                                               now + 10_000)
    assert (m.properties["REAL_TOPIC"], m.properties["REAL_QID"]) == (REAL, "0")
    m = park(inner(topic=REAL, TIMER_DELAY_MS="20000", TIMER_DELIVER_MS=str(now + 30_000)))
    assert m.tags_code == now + 20_000
    assert park(inner(topic=REAL, TIMER_DELIVER_MS=str(now + 30_000))).tags_code == now + 30_000
    # Due already: stored in its topic at once, unchanged.
    for past in ({"TIMER_DELIVER_MS": str(now - 5)}, {"TIMER_DELAY_SEC": "0"}, {"TIMER_DELAY_MS": "-3"}):
        assert park(inner(topic=REAL, **past)).topic == REAL
    # Beyond the maximum, or no number: MESSAGE_ILLEGAL with a remark naming what was wrong.
    r = park(inner(topic=REAL, TIMER_DELAY_SEC="61"))
    assert r.code == ResponseCode.MESSAGE_ILLEGAL and "max delay 60000ms" in r.remark
    for bad in ("soon", "1e3", "", " ", "--5", "9" * 40, "+5", "0x10"):
        r = park(inner(topic=REAL, TIMER_DELAY_MS=bad))
        assert isinstance(r, TimerRefusal) and r.code == ResponseCode.MESSAGE_ILLEGAL and "TIMER_DELAY_MS" in r.remark
    # A delay level is parked before: it carries no timer keys and passes.
    assert park(inner(topic=SCHEDULE_TOPIC, TIMER_DELAY_SEC="5")).topic == SCHEDULE_TOPIC
    # Only the broker marks deliveries.
    m = park(inner(topic=REAL, **{ORIGIN: "123"}))
    assert ORIGIN not in m.properties and ORIGIN not in m.properties_string
    off = TimerMessageService(broker_on(tmp_path, store, timer_wheel_enable=False))
    r = off.park(inner(topic=REAL, TIMER_DELAY_SEC="5"))
    assert r.code == ResponseCode.SYSTEM_ERROR and "timerWheelEnable" in r.remark
    assert [snap_precision(p) for p in (100, 150, 200, 499, 500, 999, 1000)] == [100, 100, 200, 200, 500, 500, 1000]
    stop(store)


def test_delivered_within_the_precision_never_early_with_metrics(tmp_path):
    service, store, clock = fresh(tmp_path)
    send(service, store, b"a", TIMER_DELAY_MS="2500", TAGS="t", KEYS="k")
    send(service, store, b"b", TIMER_DELAY_SEC="1")
    assert bodies(store) == []
    run(clock, 0.95)
    assert bodies(store) == [] and service.pending == 2
    run(clock, 0.3)  # 1.25 s
    assert bodies(store) == [b"b"]
    run(clock, 1.2)  # 2.45 s: a is due at 2.5 s
    assert bodies(store) == [b"b"]
    run(clock, 1.3)  # 3.75 s: within one precision (1 s) plus a tick
    assert bodies(store) == [b"b", b"a"]
    msgs = decode_messages(store.get_message("g", REAL, 1, 0, 32).body())
    a = msgs[1].properties
    assert (a["TAGS"], a["KEYS"], "REAL_TOPIC" in a, "REAL_QID" in a) == ("t", "k", False, False)
    assert int(a["TIMER_DEQUEUE_MS"]) - int(a["TIMER_OUT_MS"]) < 1000 + 200
    assert (service.pending, service.fired, service.lateness.count) == (0, 2, 2)
    assert service.lateness.max < 1.2
    names = {f.name for f in service.metrics()}
    assert names == {"mq_broker_timer_pending", "mq_broker_timer_fired", "mq_broker_timer_cancelled",
                     "mq_broker_timer_lateness_seconds"}
    service.stop()
    stop(store)


def one_a_second(tmp_path, n: int):
    """A started service with ``n`` timers sent, due 1, 2, ... n seconds later (bodies b"0", b"1"...)."""
    store = open_store(tmp_path / "store")
    service = started(tmp_path, store)
    for i in range(n):
        send(service, store, b"%d" % i, TIMER_DELAY_SEC=str(1 + i))
    return service, store, store.reactor


def test_a_graceful_restart_resumes_without_repeating(tmp_path):
    service, store, clock = one_a_second(tmp_path, 6)
    run(clock, 2.5)
    assert bodies(store) == [b"0", b"1"]
    service.stop()
    stop(store)
    clock.advance(2.0)  # down for 2 s: 2 and 3 are due on restart (at 4.5 s)
    store = open_store(tmp_path / "store", clock=clock)
    service = started(tmp_path, store)
    run(clock, 0.3)
    assert bodies(store) == [b"0", b"1", b"2", b"3"]
    run(clock, 1.6)
    assert bodies(store) == [b"0", b"1", b"2", b"3", b"4", b"5"]
    assert service.pending == 0
    service.stop()
    stop(store)


def crash(service, store):
    """A SIGKILL: no stop, no checkpoint; the files keep what was written (the page cache survives)."""
    service.running = False
    if service._next is not None and service._next.active():
        service._next.cancel()
    service.wheel.close()
    store.crash_close()


def test_a_crash_loses_nothing_and_repeats_nothing(tmp_path):
    service, store, clock = fresh(tmp_path, timer_flush_interval_ms=60_000)
    for i in range(20):
        send(service, store, b"%d" % i, TIMER_DELAY_MS=str(500 + 100 * i))  # 0.5 s .. 2.4 s
    run(clock, 0.3)
    service.save()  # the last checkpoint: 20 linked, nothing fired
    for i in range(20, 40):
        send(service, store, b"%d" % i, TIMER_DELAY_MS=str(200 + 100 * i))  # linked after it
    run(clock, 2.5)  # some fired after it
    fired = bodies(store)
    assert 10 < len(fired) < 40
    crash(service, store)
    store = open_store(tmp_path / "store", clock=clock)
    service = started(tmp_path, store)
    assert len(service.delivered_before) == len(fired)
    run(clock, 3.0)
    got = bodies(store)
    assert sorted(got) == sorted(b"%d" % i for i in range(40)) and len(got) == 40
    assert service.pending == 0
    service.stop()
    stop(store)


def test_lost_wheel_files_are_rebuilt_from_the_timer_queue(tmp_path):
    service, store, clock = one_a_second(tmp_path, 10)
    run(clock, 4.5)
    assert len(bodies(store)) == 4
    service.stop()
    stop(store)
    shutil.rmtree(tmp_path / "store" / "timer")
    store = open_store(tmp_path / "store", clock=clock)
    service = started(tmp_path, store)
    run(clock, 0.25)
    assert service.pending == 6 and len(bodies(store)) == 4
    run(clock, 7.0)
    assert bodies(store) == [b"%d" % i for i in range(10)]
    service.stop()
    stop(store)
    # And with the checkpoint gone too: the CommitLog's marks keep what was delivered from coming again.
    shutil.rmtree(tmp_path / "store" / "timer")
    os.unlink(tmp_path / "config" / "timerCheckpoint.json")
    store = open_store(tmp_path / "store", clock=clock)
    service = started(tmp_path, store)
    run(clock, 1.0)
    assert len(bodies(store)) == 10
    service.stop()
    stop(store)


def test_beyond_the_span_a_timer_is_linked_again_and_fires_on_time(tmp_path):
    service, store, clock = fresh(tmp_path)
    far = SPAN_MS + 5_000
    send(service, store, b"far", TIMER_DELAY_MS=str(far))
    run(clock, 0.3)
    clock.advance(far / 1000.0 - 2.0)  # jump near its time: the loop catches up over many turns
    run(clock, 1.0)
    assert bodies(store) == []
    run(clock, 2.5)
    assert bodies(store) == [b"far"]
    service.stop()
    stop(store)


def test_a_delay_level_wins_and_drops_the_timer_properties(tmp_path):
    from mq.broker.schedule.delay_level import ScheduleMessageService

    store = open_store(tmp_path / "store", message_delay_level="1s 5s")
    broker = broker_on(tmp_path, store, schedule_tick_millis=100)
    timers = TimerMessageService(broker)
    levels = ScheduleMessageService(broker)
    msg = timers.park(levels.park(inner(topic=REAL, DELAY="2", TIMER_DELAY_SEC="60", TIMER_DELIVER_MS="1")))
    assert (msg.topic, msg.queue_id) == (SCHEDULE_TOPIC, 1)
    assert not any(k.startswith("TIMER_") for k in msg.properties) and "TIMER_" not in msg.properties_string
    stop(store)
