"""ScheduleMessageService on a task.Clock: parked messages come out at their time, not before, once, and
delivery progress carries over a restart."""

from __future__ import annotations

from types import SimpleNamespace

from mq.broker.schedule.delay_level import ScheduleMessageService
from mq.common.message_record import decode_messages
from mq.common.topic import SCHEDULE_TOPIC
from tests.store.storetestlib import inner, open_store, put, stop


def broker_on(tmp_path, store):
    clock = store.reactor
    config = SimpleNamespace(config_dir=str(tmp_path / "config"), is_slave=False, schedule_tick_millis=100)
    return SimpleNamespace(config=config, store=store, reactor=clock, now_ms=lambda: int(clock.seconds() * 1000))


def delivered(store, topic="Real"):
    cq = store.consume_queue(topic, 2)
    return 0 if cq is None else cq.max_offset


def test_delivery_on_time_once_and_across_a_restart(tmp_path):
    store = open_store(tmp_path / "store", message_delay_level="1s 5s")
    service = ScheduleMessageService(broker_on(tmp_path, store))
    service.start()
    clock = store.reactor
    for level, body in ((1, b"one"), (2, b"five"), (7, b"clamped")):
        msg = service.park(inner(topic="Real", body=body, queue_id=2, DELAY=str(level), TAGS="t"))
        assert (msg.topic, msg.queue_id) == (SCHEDULE_TOPIC, min(level, 2) - 1)
        assert put(store, msg).is_ok()
    clock.advance(0.9)
    assert delivered(store) == 0
    clock.advance(0.2)  # 1.1 s: level 1 is due
    assert delivered(store) == 1
    [m] = decode_messages(store.get_message("g", "Real", 2, 0, 32).body())
    assert (m.body, m.tags, "DELAY" in m.properties, m.properties["REAL_TOPIC"]) == (b"one", "t", False, "Real")
    clock.advance(3.0)  # 4.1 s: level 2 not yet
    assert delivered(store) == 1
    service.stop()  # a graceful stop: progress saved
    stop(store)

    store = open_store(tmp_path / "store", clock=clock, message_delay_level="1s 5s")
    service = ScheduleMessageService(broker_on(tmp_path, store))
    service.start()
    assert service.offsets == {1: 1}
    clock.advance(0.8)  # 4.9 s
    assert delivered(store) == 1  # nothing repeated, nothing early
    clock.advance(0.2)  # 5.1 s
    assert delivered(store) == 3
    assert service.offsets == {1: 1, 2: 2}
    service.stop()
    stop(store)


def test_a_shortened_table_delivers_what_waits_too_long_at_once(tmp_path):
    store = open_store(tmp_path / "store", message_delay_level="1s 1h")
    service = ScheduleMessageService(broker_on(tmp_path, store))
    assert put(store, service.park(inner(topic="Real", body=b"b", queue_id=2, DELAY="2"))).is_ok()
    stop(store)
    clock = store.reactor
    store = open_store(tmp_path / "store", clock=clock, message_delay_level="1s 2s")
    service = ScheduleMessageService(broker_on(tmp_path, store))
    service.start()
    clock.advance(0.1)  # parked for 1 h, but level 2 is 2 s now: out on the first tick
    assert delivered(store) == 1
    service.stop()
    stop(store)


def test_a_full_disk_pauses_delivery_without_dropping_or_logging_every_tick(tmp_path, log_events):
    disk = {"ratio": 0.5}
    store = open_store(tmp_path / "store", message_delay_level="1s 5s", disk_usage=lambda path: disk["ratio"])
    service = ScheduleMessageService(broker_on(tmp_path, store))
    service.start()
    clock = store.reactor
    assert put(store, service.park(inner(topic="Real", body=b"one", queue_id=2, DELAY="1"))).is_ok()
    disk["ratio"] = 0.95
    for _ in range(50):  # 5 s of ticks on a full disk
        clock.advance(0.1)
    assert delivered(store) == 0 and service.offsets.get(1, 0) == 0
    assert not [e for e in log_events if "delivering a delayed message" in str(e.get("log_format"))]
    disk["ratio"] = 0.5
    clock.advance(0.2)
    assert delivered(store) == 1 and service.offsets == {1: 1}
    service.stop()
    stop(store)
