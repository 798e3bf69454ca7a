"""Puts and reads: statuses, offsets, filters, batches, refusals, transactions, replication hooks."""

from __future__ import annotations

import struct

import pytest

from mq.common.hashing import java_string_hash
from mq.common.message import MessageSysFlag, create_offset_msg_id, decode_offset_msg_id
from mq.common.message_record import BLANK_MAGIC_CODE, decode_message_ext, decode_messages
from mq.store import BrokerRole, GetMessageStatus, PutMessageStatus, TagFilter
from mq.store.mappedfile import StoreError

from .storetestlib import T0, assert_consistent, inner, open_store, put, result_of, scan_commitlog, stop

S = GetMessageStatus


def test_put_then_get_returns_the_stored_bytes(tmp_path):
    store = open_store(tmp_path)
    results = [put(store, inner(body=b"m%d" % i, queue_id=i % 2, tags="a", uniq=f"U{i}")) for i in range(10)]
    assert all(r.status is PutMessageStatus.PUT_OK for r in results)
    assert [r.append_result.logics_offset for r in results] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    first = results[0].append_result
    assert first.wrote_offset == 0 and first.msg_id == create_offset_msg_id(("10.0.0.5", 10911), 0)
    assert decode_offset_msg_id(results[3].append_result.msg_id)[1] == results[3].append_result.wrote_offset

    got = store.get_message("g", "T", 1, 0, 32)
    assert got.status is S.FOUND and got.message_count == 5 and got.next_begin_offset == 5
    assert (got.min_offset, got.max_offset) == (0, 5)
    msgs = decode_messages(got.body())
    assert [m.body for m in msgs] == [b"m1", b"m3", b"m5", b"m7", b"m9"]
    assert [m.queue_offset for m in msgs] == [0, 1, 2, 3, 4]
    m = msgs[0]
    assert m.topic == "T" and m.store_host == ("10.0.0.5", 10911) and m.born_host == ("192.168.0.7", 50000)
    assert m.store_timestamp == int(T0 * 1000) and m.properties["TAGS"] == "a"
    # raw bytes, identical to the CommitLog
    assert got.message_buffers[0] == store.look_message_by_offset(results[1].append_result.wrote_offset)
    assert store.look_message_ext_by_offset(results[1].append_result.wrote_offset).body == b"m1"
    assert_consistent(store)


def test_get_statuses_and_next_begin_offsets(tmp_path):
    store = open_store(tmp_path)
    assert store.get_message("g", "T", 0, 0, 32).status is S.NO_MATCHED_LOGIC_QUEUE
    for i in range(3):
        put(store, inner(body=b"%d" % i))
    r = store.get_message("g", "T", 0, 3, 32)
    assert (r.status, r.next_begin_offset) == (S.OFFSET_OVERFLOW_ONE, 3)
    r = store.get_message("g", "T", 0, 9, 32)
    assert (r.status, r.next_begin_offset) == (S.OFFSET_OVERFLOW_BADLY, 0)  # min is 0: RocketMQ answers min
    r = store.get_message("g", "T", 0, 1, 1)
    assert (r.status, r.next_begin_offset, r.message_count) == (S.FOUND, 2, 1)
    r = store.get_message("g", "T", 0, 0, 32, max_total_bytes=1)
    assert r.message_count == 1  # the first message always fits
    assert store.get_max_offset_in_queue("T", 0) == 3 and store.get_min_offset_in_queue("T", 0) == 0
    assert store.get_max_offset_in_queue("nope", 0) == 0


def test_no_message_in_queue_and_offset_too_small_after_truncation(tmp_path):
    store = open_store(tmp_path)
    put(store, inner())
    store.truncate(0)
    r = store.get_message("g", "T", 0, 5, 32)
    assert (r.status, r.next_begin_offset) == (S.NO_MESSAGE_IN_QUEUE, 0)


def test_tag_filter_uses_hash_then_exact_tag(tmp_path):
    assert java_string_hash("Aa") == java_string_hash("BB")  # a real collision
    store = open_store(tmp_path)
    for tag in ["Aa", "BB", "C", "Aa"]:
        put(store, inner(tags=tag, body=tag.encode()))
    r = store.get_message("g", "T", 0, 0, 32, message_filter=TagFilter(["Aa"]))
    assert r.status is S.FOUND and [m.body for m in decode_messages(r.body())] == [b"Aa", b"Aa"]
    assert r.message_queue_offsets == [0, 3] and r.next_begin_offset == 4
    r = store.get_message("g", "T", 0, 1, 1, message_filter=TagFilter(["zzz"]))
    assert (r.status, r.message_count, r.next_begin_offset) == (S.NO_MATCHED_MESSAGE, 0, 4)
    assert TagFilter.from_expression("*").match_all and TagFilter.from_expression("a || b").tags == {"a", "b"}


def test_records_roll_to_the_next_file_with_a_blank_record(tmp_path):
    store = open_store(tmp_path)  # 16 KiB CommitLog files
    offsets = [put(store, inner(body=b"x" * 1000)).append_result.wrote_offset for i in range(40)]
    file_size = store.commitlog.file_size
    assert all(o // file_size == (o + 1100) // file_size for o in offsets)  # no record spans files
    boundary = [o for o in offsets if o % file_size == 0 and o > 0][0]
    prev_end = max(o for o in offsets if o < boundary) + offsets[1] - offsets[0]
    f0 = store.commitlog.files.files[0]
    size, magic = struct.unpack_from(">ii", f0.mm, prev_end - f0.start)
    assert magic == BLANK_MAGIC_CODE and size == file_size - (prev_end - f0.start)
    first = store.get_message("g", "T", 0, 0, 64)
    assert first.message_count == 32 and first.next_begin_offset == 32  # 32 entries per queue file in tests
    assert store.get_message("g", "T", 0, 32, 64).message_count == 8
    assert len(scan_commitlog(store)) == 40
    assert_consistent(store)


def test_batch_put(tmp_path):
    store = open_store(tmp_path)
    put(store, inner())
    batch = [inner(body=b"b%d" % i, uniq=f"B{i}") for i in range(3)]
    d = store.put_messages(batch)
    store.reactor.advance(0)
    r = result_of(d)
    ar = r.append_result
    assert r.status is PutMessageStatus.PUT_OK and ar.msg_num == 3 and ar.logics_offset == 1
    ids = ar.msg_id.split(",")
    assert len(ids) == 3
    offs = [decode_offset_msg_id(i)[1] for i in ids]
    got = decode_messages(store.get_message("g", "T", 0, 1, 32).body())
    assert [m.commit_log_offset for m in got] == offs and [m.queue_offset for m in got] == [1, 2, 3]
    assert ar.wrote_bytes == sum(m.store_size for m in got)
    bad = result_of(store.put_messages([inner(), inner(queue_id=1)]))
    assert bad.status is PutMessageStatus.MESSAGE_ILLEGAL


@pytest.mark.parametrize("host", [("10.0.0.5", 10911), ("fe80::1:2", 65535), ("255.255.255.255", 0)])
def test_batch_msg_ids_are_the_offset_ids_joined(host):
    """A batch's msgIds come from one buffer hex-encoded with a comma per id: each is ``create_offset_msg_id``."""
    from mq.store.results import AppendMessageResult, AppendMessageStatus

    for offsets in ((0, 1), (5, 2**40 + 7, 2**63 - 1), tuple(range(0, 33 * 211, 211))):
        ar = AppendMessageResult(AppendMessageStatus.PUT_OK, offsets[0], 1, 0, 0, len(offsets), host, offsets)
        assert ar.msg_id == ",".join(create_offset_msg_id(host, o) for o in offsets)


@pytest.mark.parametrize(
    "msg, status",
    [
        (inner(body=b"x" * 2049), PutMessageStatus.MESSAGE_ILLEGAL),
        (inner(topic="bad topic"), PutMessageStatus.MESSAGE_ILLEGAL),
        (inner(topic="t" * 128), PutMessageStatus.MESSAGE_ILLEGAL),
        (inner(BIG="v" * 40000), PutMessageStatus.PROPERTIES_SIZE_EXCEEDED),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(tmp_path, msg, status):
    store = open_store(tmp_path, max_message_size=2048)
    put(store, inner())
    before = store.get_max_phy_offset(), store.get_max_offset_in_queue(msg.topic, 0)
    r = put(store, msg)
    assert r.status is status and r.reason
    assert (store.get_max_phy_offset(), store.get_max_offset_in_queue(msg.topic, 0)) == before
    assert store.stats().put_message_failures == 1


def test_slave_and_stopped_store_refuse_puts(tmp_path):
    slave = open_store(tmp_path / "s", broker_role=BrokerRole.SLAVE)
    assert put(slave, inner()).status is PutMessageStatus.SERVICE_NOT_AVAILABLE
    store = open_store(tmp_path / "m")
    stop(store)
    assert put(store, inner()).status is PutMessageStatus.SERVICE_NOT_AVAILABLE


def test_transaction_records_skip_the_consume_queue(tmp_path):
    store = open_store(tmp_path)
    put(store, inner(body=b"normal"))
    prepared = put(store, inner(body=b"half", sys_flag=MessageSysFlag.TRANSACTION_PREPARED_TYPE, uniq="H"))
    rollback = put(store, inner(body=b"rb", sys_flag=MessageSysFlag.TRANSACTION_ROLLBACK_TYPE, uniq="R"))
    commit = put(store, inner(body=b"commit", sys_flag=MessageSysFlag.TRANSACTION_COMMIT_TYPE))
    assert prepared.append_result.logics_offset == 0 and rollback.append_result.logics_offset == 0
    assert commit.append_result.logics_offset == 1
    bodies = [m.body for m in decode_messages(store.get_message("g", "T", 0, 0, 32).body())]
    assert bodies == [b"normal", b"commit"]
    assert store.query_message("T", "H", 10, 0, 2**62).message_buffers  # prepared is indexed
    assert not store.query_message("T", "R", 10, 0, 2**62).message_buffers  # rollback is not
    assert decode_message_ext(store.look_message_by_offset(prepared.append_result.wrote_offset)).body == b"half"


def test_schedule_topic_tags_code_is_the_delivery_time_and_hook_is_replaceable(tmp_path):
    store = open_store(tmp_path)
    r = put(store, inner(topic="SCHEDULE_TOPIC_XXXX", queue_id=2, DELAY="3"))
    e = store.consume_queue("SCHEDULE_TOPIC_XXXX", 2).entry(0)
    assert e[2] == r.append_result.store_timestamp + 10_000
    store.tags_code_fn = lambda topic, props, ts: 42
    put(store, inner(tags="x"))
    assert store.consume_queue("T", 0).entry(0)[2] == 42


def test_arrival_listener_is_called_after_dispatch(tmp_path):
    store = open_store(tmp_path)
    seen = []

    def listener(topic, qid, offset, tags_code, ts, props):
        seen.append((topic, qid, offset, tags_code, props.get("TAGS")))
        assert store.get_max_offset_in_queue(topic, qid) == offset + 1

    store.message_arriving_listener = listener
    put(store, inner(queue_id=3, tags="t1"))
    put(store, inner(queue_id=3, tags="t1"))
    assert seen == [("T", 3, 0, java_string_hash("t1"), "t1"), ("T", 3, 1, java_string_hash("t1"), "t1")]


def test_time_lookups(tmp_path):
    store = open_store(tmp_path)
    clock = store.reactor
    stamps = []
    for _ in range(6):
        stamps.append(put(store, inner()).append_result.store_timestamp)
        clock.advance(10)
    assert store.get_offset_in_queue_by_time("T", 0, stamps[3]) == 3
    assert store.get_offset_in_queue_by_time("T", 0, stamps[3] - 1) == 3
    assert store.get_offset_in_queue_by_time("T", 0, 0) == 0
    assert store.get_offset_in_queue_by_time("T", 0, stamps[-1] + 1) == 6
    assert store.get_earliest_message_time("T", 0) == stamps[0] == store.get_earliest_message_time()
    assert store.get_message_store_timestamp("T", 0, 4) == stamps[4]
    assert store.get_message_store_timestamp("T", 0, 99) == -1


def test_store_timestamps_never_go_back(tmp_path):
    store = open_store(tmp_path)
    a = put(store, inner()).append_result.store_timestamp
    store.now_ms = lambda: a - 5000
    assert put(store, inner()).append_result.store_timestamp == a


def test_query_by_key_with_time_range_and_max(tmp_path):
    store = open_store(tmp_path)
    clock = store.reactor
    for i in range(5):
        put(store, inner(keys="order-1 other", uniq=f"U{i}", body=b"%d" % i))
        clock.advance(100)
    put(store, inner(topic="T2", keys="order-1"))
    res = store.query_message("T", "order-1", 32, 0, 2**62)
    assert sorted(m.body for m in decode_messages(res.body())) == [b"0", b"1", b"2", b"3", b"4"]
    assert len(store.query_message("T", "order-1", 2, 0, 2**62).message_buffers) == 2
    t2 = int((T0 + 200) * 1000)
    res = store.query_message("T", "order-1", 32, t2, t2 + 250_000)
    assert sorted(m.body for m in decode_messages(res.body())) == [b"2", b"3", b"4"]
    assert [m.body for m in decode_messages(store.query_message("T", "U3", 32, 0, 2**62).body())] == [b"3"]
    assert not store.query_message("T", "nope", 32, 0, 2**62).message_buffers
    last = res.index_last_update_phyoffset
    assert last + len(store.look_message_by_offset(last)) == store.get_max_phy_offset()


def test_replication_raw_append_builds_queues_and_index(tmp_path):
    master = open_store(tmp_path / "m")
    slave = open_store(tmp_path / "s", broker_role=BrokerRole.SLAVE)
    for i in range(30):
        put(master, inner(body=b"x" * 300, queue_id=i % 3, uniq=f"U{i}"))
    while slave.get_max_phy_offset() < master.get_max_phy_offset():
        off = slave.get_max_phy_offset()
        chunk = master.get_commit_log_data(off, 1000)  # splits records: the slave waits for whole ones
        assert slave.append_raw(off, chunk)
    assert not slave.append_raw(0, b"xx")
    assert slave.stats().dispatch_behind_bytes == 0
    for q in range(3):
        assert slave.get_message("g", "T", q, 0, 32).body() == master.get_message("g", "T", q, 0, 32).body()
    assert_consistent(slave)


def test_truncate_drops_the_tail_everywhere(tmp_path):
    store = open_store(tmp_path)
    offs = [put(store, inner(uniq=f"U{i}", queue_id=i % 2)).append_result.wrote_offset for i in range(10)]
    store.truncate(offs[6])
    assert store.get_max_phy_offset() == offs[6]
    assert store.get_max_offset_in_queue("T", 0) == 3 and store.get_max_offset_in_queue("T", 1) == 3
    assert store.look_message_by_offset(offs[7]) is None
    r = put(store, inner(queue_id=0, uniq="NEW"))
    assert r.append_result.wrote_offset == offs[6] and r.append_result.logics_offset == 3
    assert not store.query_message("T", "U6", 10, 0, 2**62).message_buffers
    assert_consistent(store)


def test_delete_topics_and_stats(tmp_path):
    store = open_store(tmp_path)
    put(store, inner(topic="A"))
    put(store, inner(topic="B"))
    store.delete_topics(["A"])
    assert store.consume_queue("A", 0) is None and store.get_max_offset_in_queue("A", 0) == 0
    assert not (tmp_path / "consumequeue" / "A").exists()
    assert put(store, inner(topic="A")).append_result.logics_offset == 0
    s = store.stats()
    assert s.put_message_times_total == 3 and s.commit_log_max_offset == store.get_max_phy_offset()


def test_a_second_store_cannot_open_the_same_directory(tmp_path):
    open_store(tmp_path)
    with pytest.raises(StoreError):
        open_store(tmp_path)


def test_offset_msg_ids_from_many_store_hosts_keep_a_bounded_cache():
    """The hex head of each store host is cached (64 hosts at most); every id is still create_offset_msg_id's."""
    from mq.common.message import create_offset_msg_id
    from mq.store import results
    from mq.store.results import AppendMessageResult, AppendMessageStatus

    for i in range(200):
        host = (f"10.0.{i // 256}.{i % 256}", 10911 + i)
        one = AppendMessageResult(AppendMessageStatus.PUT_OK, 1000 + i, 100, store_host=host)
        assert one.msg_id == create_offset_msg_id(host, 1000 + i)
        two = AppendMessageResult(AppendMessageStatus.PUT_OK, 5, 20, store_host=host, msg_num=2, offsets=(5, 15))
        assert two.msg_id == create_offset_msg_id(host, 5) + "," + create_offset_msg_id(host, 15)
        assert len(results._HOST_HEX) <= 64
