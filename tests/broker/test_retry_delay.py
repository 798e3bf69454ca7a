"""Real ``twistd broker`` processes: queries, consumption retries and dead letters, delay levels.

The level table is short (``messageDelayLevel`` in broker.conf), so delays are seconds, not the defaults;
every wait is a poll with a deadline.
"""

from __future__ import annotations

import pytest

from mq.client.simple import (
    create_topic_request,
    message_properties,
    pull_request,
    query_message_request,
    send_back_request,
    send_header,
    send_request,
    view_message_request,
)
from mq.common import fastjson
from mq.common.message import MessageConst, decode_offset_msg_id
from mq.common.message_record import decode_messages
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.command import RemotingCommand
from tests.broker.cluster import processes, pull_all, restartable_broker
from tests.broker.wire import Wire, call
from tests.support.processes import wait_until

#: level 1 = 1 s, 2 = 2 s, 3 (a first retry) = 1 s, 4 (a second retry) = 2 s, the rest 1 s.
LEVELS = "1s 2s 1s 2s " + " ".join(["1s"] * 14)
DELAY_MS = {1: 1000, 2: 2000, 3: 1000, 4: 2000}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("semantics")
    with processes(tmp) as twistd:
        yield restartable_broker(twistd, tmp, f"messageDelayLevel={LEVELS}\n", "sem-broker")


def wait_messages(addr, topic, n, queue_id=0, timeout=20.0, group="sem_check"):
    found = []

    def enough():
        found[:] = pull_all(addr, topic, queue_id, group)
        return len(found) >= n

    wait_until(enough, timeout, 0.1, f"{n} message(s) in {topic}:{queue_id}")
    return found


def parked(addr, level):
    """What SCHEDULE_TOPIC_XXXX holds for a level (the records as parked, with their store times)."""
    return pull_all(addr, "SCHEDULE_TOPIC_XXXX", level - 1)


# --------------------------------------------------------------------------------------------- queries


def test_queries_by_key_unique_key_and_offset_id(cluster):
    addr = cluster["broker"].addr
    assert call(addr, create_topic_request("SemQuery", queues=2)).code == RC.SUCCESS
    sent = []
    with Wire(addr) as w:
        for i in range(6):
            props = message_properties(tags="q", keys=f"order-{i % 3} shared")
            header = send_header("SemQuery", i % 2, props)
            r = w.call(RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, header.encode_short(), b"q-%d" % i))
            assert r.code == RC.SUCCESS, r.remark
            sent.append((props[MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX], r.ext_fields["msgId"]))
        r = w.call(query_message_request("SemQuery", "order-1"))
        assert r.code == RC.SUCCESS
        assert sorted(m.body for m in decode_messages(r.body)) == [b"q-1", b"q-4"]
        assert int(r.ext_fields["indexLastUpdatePhyoffset"]) >= 0 and "indexLastUpdateTimestamp" in r.ext_fields
        r = w.call(query_message_request("SemQuery", "shared", max_num=3))
        assert r.code == RC.SUCCESS and len(decode_messages(r.body)) == 3
        r = w.call(query_message_request("SemQuery", sent[2][0], unique_key=True))
        assert r.code == RC.SUCCESS and [m.body for m in decode_messages(r.body)] == [b"q-2"]
        r = w.call(query_message_request("SemQuery", "order-1", begin=0, end=1))  # outside the time range
        assert r.code == RC.QUERY_NOT_FOUND
        r = w.call(query_message_request("OtherTopic", "order-1"))
        assert r.code == RC.QUERY_NOT_FOUND
        (host, _port), phy = decode_offset_msg_id(sent[3][1])
        r = w.call(view_message_request(phy))
        assert r.code == RC.SUCCESS
        [m] = decode_messages(r.body)
        assert (m.body, m.msg_id, m.unique_key) == (b"q-3", sent[3][1], sent[3][0])
        r = w.call(view_message_request(phy + 1))
        assert r.code == RC.SYSTEM_ERROR and "offset" in r.remark


# --------------------------------------------------------------------------------------------- retries


def test_send_back_retries_with_delays_and_counts_then_dead_letters(cluster):
    addr = cluster["broker"].addr
    group = "sem_retry_group"
    assert call(addr, create_topic_request("SemRetry", queues=1)).code == RC.SUCCESS
    r = call(addr, send_request("SemRetry", b"fail me", tags="t1", keys="k-retry"))
    assert r.code == RC.SUCCESS
    first_id = r.ext_fields["msgId"]
    [original] = pull_all(addr, "SemRetry", 0, group)

    # first failure: %RETRY%group, delay level 3 (1 s here), reconsume count 1
    r = call(addr, send_back_request(group, original.commit_log_offset, origin_topic="SemRetry"))
    assert r.code == RC.SUCCESS, r.remark
    [retry1] = wait_messages(addr, f"%RETRY%{group}", 1)
    [parked1] = parked(addr, 3)
    assert (retry1.body, retry1.tags, retry1.reconsume_times) == (b"fail me", "t1", 1)
    assert retry1.properties["RETRY_TOPIC"] == "SemRetry"
    assert retry1.properties["ORIGIN_MESSAGE_ID"] == first_id
    assert retry1.unique_key == original.unique_key  # what clients show as the message id
    assert "DELAY" not in retry1.properties
    waited = retry1.store_timestamp - parked1.store_timestamp
    assert waited >= DELAY_MS[3], waited  # never early; how late is test_schedule_clock's (task.Clock)

    # second failure: level 4 (2 s here), count 2
    assert call(addr, send_back_request(group, retry1.commit_log_offset)).code == RC.SUCCESS
    retries = wait_messages(addr, f"%RETRY%{group}", 2)
    retry2 = retries[1]
    [parked2] = parked(addr, 4)
    assert retry2.reconsume_times == 2 and retry2.properties["ORIGIN_MESSAGE_ID"] == first_id
    waited = retry2.store_timestamp - parked2.store_timestamp
    assert waited >= DELAY_MS[4], waited

    # the group allows 2 reconsumes: the next failure is a dead letter, at once
    group_conf = {"groupName": group, "retryMaxTimes": 2, "retryQueueNums": 1, "consumeEnable": True}
    r = call(addr, RemotingCommand.request(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, None,
                                           fastjson.dumps_bytes(group_conf)))
    assert r.code == RC.SUCCESS
    assert call(addr, send_back_request(group, retry2.commit_log_offset)).code == RC.SUCCESS
    [dead] = wait_messages(addr, f"%DLQ%{group}", 1, timeout=5)
    assert (dead.body, dead.reconsume_times, dead.properties["RETRY_TOPIC"]) == (b"fail me", 3, "SemRetry")
    assert len(pull_all(addr, f"%RETRY%{group}", 0, "sem_check2")) == 2  # nothing more was retried

    # the DLQ is listed, readable (above), and its messages can be re-sent to their topic
    r = call(addr, RemotingCommand.request(RequestCode.GET_ALL_TOPIC_CONFIG))
    dlq = fastjson.loads(r.body)["topicConfigTable"][f"%DLQ%{group}"]
    assert (dlq["readQueueNums"], dlq["perm"]) == (1, 6)
    r = call(addr, send_request(dead.properties["RETRY_TOPIC"], dead.body, tags=dead.tags, keys="resent"))
    assert r.code == RC.SUCCESS
    assert [m.body for m in pull_all(addr, "SemRetry", 0, "sem_check3")] == [b"fail me", b"fail me"]

    # a negative delay level asks for the DLQ straight away; an unknown offset is an error
    assert call(addr, send_back_request(group, original.commit_log_offset, delay_level=-1)).code == RC.SUCCESS
    assert len(wait_messages(addr, f"%DLQ%{group}", 2, timeout=5)) == 2
    r = call(addr, send_back_request(group, 1 << 40))
    assert r.code == RC.SYSTEM_ERROR and "offset" in r.remark


def test_client_fallback_send_to_retry_topic_goes_to_dlq_at_the_maximum(cluster):
    addr = cluster["broker"].addr
    group = "sem_fallback_group"
    call(addr, pull_request(group, "SemRetry", 0, 0))  # creates the group (16 reconsumes)
    with Wire(addr) as w:
        for times in (15, 16):
            props = message_properties(tags="fb", properties={"RETRY_TOPIC": "SemRetry", "DELAY": str(3 + times)})
            header = send_header(f"%RETRY%{group}", 0, props)
            header.reconsume_times = times
            r = w.call(RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, header.encode_short(), b"fb-%d" % times))
            assert r.code == RC.SUCCESS, r.remark
    [dead] = wait_messages(addr, f"%DLQ%{group}", 1, timeout=5)
    assert (dead.body, dead.reconsume_times, "DELAY" in dead.properties) == (b"fb-16", 16, False)
    [retry] = wait_messages(addr, f"%RETRY%{group}", 1)  # 15 < 16: delayed, then retried
    assert retry.body == b"fb-15"


# --------------------------------------------------------------------------------------------- delays


def _send_delayed(addr, topic, bodies_levels, queue_id=0):
    with Wire(addr) as w:
        for body, level in bodies_levels:
            r = w.call(send_request(topic, body, tags="d", properties={"DELAY": str(level)}, queue_id=queue_id))
            assert r.code == RC.SUCCESS, r.remark


def delay_offsets(addr):
    r = call(addr, RemotingCommand.request(RequestCode.GET_ALL_DELAY_OFFSET))
    assert r.code == RC.SUCCESS
    return {int(k): v for k, v in fastjson.loads(r.body)["offsetTable"].items()}


def test_delayed_messages_delivered_on_time_across_a_restart(cluster):
    broker = cluster["broker"]
    assert call(broker.addr, create_topic_request("SemDelay", queues=2)).code == RC.SUCCESS
    before_l1, before_l2 = len(parked(broker.addr, 1)), len(parked(broker.addr, 2))
    _send_delayed(broker.addr, "SemDelay", [(b"d-2s", 2), (b"d-1s", 1), (b"d-99", 99)], queue_id=1)
    assert pull_all(broker.addr, "SemDelay", 1, "sem_d") == []  # parked, not visible yet
    broker = cluster["restart"]()  # graceful stop before they are due
    got = wait_messages(broker.addr, "SemDelay", 3, queue_id=1)
    assert sorted(m.body for m in got) == [b"d-1s", b"d-2s", b"d-99"]
    top = [m for m in parked(broker.addr, 18) if m.body == b"d-99"]  # clamped to the highest level (1 s here)
    assert [m.properties["DELAY"] for m in top] == ["18"]
    parked_at = {m.body: m.store_timestamp for m in parked(broker.addr, 1) + parked(broker.addr, 2) + top}
    assert len(parked(broker.addr, 2)) == before_l2 + 1 and len(parked(broker.addr, 1)) == before_l1 + 1
    for m in got:
        assert m.queue_id == 1 and m.properties["REAL_TOPIC"] == "SemDelay" and "DELAY" not in m.properties
        assert m.store_timestamp - parked_at[m.body] >= (2000 if m.body == b"d-2s" else 1000)

    # a second restart after delivery repeats nothing: markers sent afterwards come out behind the rest
    offsets = delay_offsets(broker.addr)
    broker = cluster["restart"]()
    assert delay_offsets(broker.addr) == offsets
    _send_delayed(broker.addr, "SemDelay", [(b"marker-1", 1), (b"marker-2", 2)], queue_id=1)
    got = wait_messages(broker.addr, "SemDelay", 5, queue_id=1)
    assert sorted(m.body for m in got) == [b"d-1s", b"d-2s", b"d-99", b"marker-1", b"marker-2"]


def test_due_messages_all_delivered_none_early_under_load(cluster):
    addr = cluster["broker"].addr
    assert call(addr, create_topic_request("SemLoad", queues=4)).code == RC.SUCCESS
    n = 400
    with Wire(addr) as w:
        opaques = []
        for i in range(n):  # pipelined: delayed and plain sends interleaved
            opaques.append(w.send(send_request("SemLoad", b"L%d" % i, properties={"DELAY": "1"}, queue_id=i % 4)))
            opaques.append(w.send(send_request("SemLoad", b"P%d" % i, queue_id=i % 4)))
        for opaque in opaques:
            assert w.receive(opaque).code == RC.SUCCESS
    delivered = []

    def all_delivered():
        delivered[:] = [m for q in range(4) for m in pull_all(addr, "SemLoad", q, "sem_load") if m.body[:1] == b"L"]
        return len(delivered) >= n

    wait_until(all_delivered, 30, 0.2, f"the {n} delayed messages delivered")
    assert len(delivered) == n
    parked_at = {m.body: m.store_timestamp for m in parked(addr, 1) if m.body[:1] == b"L"}
    late = [m.store_timestamp - parked_at[m.body] - 1000 for m in delivered]
    assert min(late) >= 0, min(late)  # how late under load is a speed figure, not a test's bound
