"""No one message holds a loop: the delay levels and the transaction checker pass over a message that can never
be stored (with a log line, to its DLQ when it was a retry), and wait only while the store itself refuses."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

from twisted.internet import defer

from mq.broker.schedule.delay_level import ScheduleMessageService
from mq.common.message_record import decode_messages
from mq.common.route import TopicConfig
from mq.store.results import PutMessageResult, PutMessageStatus
from tests.robustness.test_broker_fuzz import in_memory_broker
from tests.store.storetestlib import inner, open_store, put, stop


def _service_on(tmp_path, store):
    clock = store.reactor
    config = SimpleNamespace(config_dir=str(tmp_path / "config"), is_slave=False, schedule_tick_millis=100)
    made = {}

    def create_system(topic, queue_nums, perm=6, topic_sys_flag=0):
        return made.setdefault(topic, TopicConfig(topic, queue_nums, queue_nums, perm))

    broker = SimpleNamespace(config=config, store=store, reactor=clock, now_ms=lambda: int(clock.seconds() * 1000),
                             topic_config_manager=SimpleNamespace(create_system=create_system))
    return ScheduleMessageService(broker)


def _bodies(store, topic, queue_id=0):
    cq = store.consume_queue(topic, queue_id)
    if cq is None:
        return []
    return [m.body for m in decode_messages(store.get_message("g", topic, queue_id, 0, 32).body())]


def _parked(tmp_path, *messages):
    """A store with one 1 s level, its started service, and ``(topic, body)`` messages parked at the level."""
    store = open_store(tmp_path / "store", message_delay_level="1s")
    service = _service_on(tmp_path, store)
    service.start()
    for topic, body in messages:
        assert put(store, service.park(inner(topic=topic, body=body, queue_id=0, DELAY="1"))).is_ok()
    return store, service


@contextlib.contextmanager
def _refusing(store):
    """The store refuses every put for a reason of its own while this lasts."""
    refusal = PutMessageResult(PutMessageStatus.SERVICE_NOT_AVAILABLE, reason="the disk is full")
    real = store.put_message, store.put_message_now
    store.put_message = lambda msg: defer.succeed(refusal)
    store.put_message_now = lambda msg: refusal  # the fire path's synchronous form
    try:
        yield
    finally:
        store.put_message, store.put_message_now = real


def test_an_undeliverable_delayed_message_does_not_hold_its_level(tmp_path):
    # Parked as by an older broker that took any group: "%RETRY%bad/group" can never be stored, nor can its
    # DLQ; "%RETRY%" + 121 characters cannot either, but its DLQ ("%DLQ%" + 121) can.
    long_group = "g" * 121
    store, service = _parked(tmp_path, ("%RETRY%bad/group", b"bad"), ("%RETRY%" + long_group, b"long"),
                             ("Real", b"good"))
    store.reactor.advance(1.2)
    assert _bodies(store, "Real") == [b"good"]
    assert _bodies(store, "%DLQ%" + long_group) == [b"long"]
    assert service.offsets == {1: 3} and service.undeliverable == 2
    service.stop()
    stop(store)
    # The progress is saved: a restart does not try them again.
    store = open_store(tmp_path / "store", clock=store.reactor, message_delay_level="1s")
    service = _service_on(tmp_path, store)
    service.start()
    store.reactor.advance(1.2)
    assert _bodies(store, "Real") == [b"good"] and service.undeliverable == 0
    service.stop()
    stop(store)


def test_a_body_over_a_lowered_max_size_is_dropped_not_retried(tmp_path):
    store, service = _parked(tmp_path, ("Real", b"x" * 600), ("Real", b"small"))
    store.config.max_message_size = 512  # lowered at run time after the first was parked
    store.reactor.advance(1.2)
    assert _bodies(store, "Real") == [b"small"] and service.undeliverable == 1
    service.stop()
    stop(store)


def test_a_store_wide_refusal_waits_and_loses_nothing(tmp_path):
    store, service = _parked(tmp_path, ("Real", b"waits"))
    with _refusing(store):
        store.reactor.advance(1.5)
        assert _bodies(store, "Real") == [] and service.offsets.get(1, 0) == 0 and service.undeliverable == 0
    store.reactor.advance(0.2)
    assert _bodies(store, "Real") == [b"waits"]
    service.stop()
    stop(store)


# -------------------------------------------------------------------- the transaction checker cannot be blocked


def _half_copies(broker, start):
    """(body, check count) of every half-queue record from ``start`` on (the copies the checker made)."""
    cq = broker.store.consume_queue("RMQ_SYS_TRANS_HALF_TOPIC", 0)
    got = broker.store.get_message("g", "RMQ_SYS_TRANS_HALF_TOPIC", 0, start, 64)
    return [] if cq is None else [(m.body, m.properties.get("TRANSACTION_CHECK_TIMES"))
                                  for m in decode_messages(got.body())]


def _put_half(broker, body, **props):
    msg = inner(topic="TxnT", body=body, queue_id=0, TRAN_MSG="true", PGROUP="PG", **props)
    msg.born_timestamp = broker.now_ms()
    assert put(broker.store, broker.transaction_service.prepare(msg, "PG")).is_ok()


def test_a_long_immunity_does_not_hold_the_checker(tmp_path):
    broker = in_memory_broker(tmp_path)
    try:
        _put_half(broker, b"immune", CHECK_IMMUNITY_TIME_IN_SECONDS=str(10**9))
        _put_half(broker, b"ordinary")
        broker.reactor.advance(61)  # one check round, past transactionTimeOut (6 s)
        copies = _half_copies(broker, 2)
        assert (b"ordinary", "1") in copies  # checked: not held behind the immune one
        assert (b"immune", "0") in copies  # waits at the tail, not counted as a check
        assert broker.transaction_service.half_offset >= 2
    finally:
        broker.stopService()


def test_a_refusing_store_stops_the_round_and_loses_no_transaction(tmp_path):
    broker = in_memory_broker(tmp_path)
    try:
        _put_half(broker, b"open")
        with _refusing(broker.store):
            broker.reactor.advance(61)
            assert broker.transaction_service.half_offset == 0  # looked at again next round
        broker.reactor.advance(60)
        assert _half_copies(broker, 1) == [(b"open", "1")]
        assert broker.transaction_service.half_offset == 1
    finally:
        broker.stopService()
