"""Real ``twistd broker`` processes: ordered-consumption queue locks and transactions.

The broker runs with a short lock life and a fast transaction checker (``broker.conf``), so nothing waits
for the defaults; every wait is a poll with a deadline.
"""

from __future__ import annotations

import socket

import pytest
import pytest_twisted

from mq.client.simple import (
    create_topic_request,
    end_transaction_request,
    heartbeat_request,
    lock_batch_request,
    send_request,
)
from mq.common import fastjson
from mq.common.broker_headers import CheckTransactionStateRequestHeader, EndTransactionRequestHeader
from mq.common.message import decode_offset_msg_id
from mq.common.message_record import decode_messages
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.command import RemotingCommand
from tests.broker.cluster import processes, pull_all, restartable_broker
from tests.broker.wire import Wire, call
from tests.support.processes import wait_until

LOCK_LIFE_MS = 5000  # longer than any stall between the calls that renew it
CHECK_INTERVAL_MS = 300
TX_TIMEOUT_MS = 500
CHECK_MAX = 3
CONF = (f"rebalanceLockMaxLiveTime={LOCK_LIFE_MS}\ntransactionCheckInterval={CHECK_INTERVAL_MS}\n"
        f"transactionTimeOut={TX_TIMEOUT_MS}\ntransactionCheckMax={CHECK_MAX}\n")
COMMIT, ROLLBACK, UNKNOWN = 8, 12, 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("locks_tx")
    with processes(tmp) as twistd:
        holder = restartable_broker(twistd, tmp, CONF, "ltx-broker")
        for topic in ("LockTopic", "TxTopic"):
            assert call(holder["broker"].addr, create_topic_request(topic, queues=4)).code == RC.SUCCESS
        yield holder


def all_queues(addr, topic):
    return [m for q in range(4) for m in pull_all(addr, topic, q)]


# --------------------------------------------------------------------------------------------- locks


def lock(w, client_id, queues, unlock=False):
    r = w.call(lock_batch_request("ltx_orderly", client_id, "ltx-broker", "LockTopic", queues, unlock))
    assert r.code == RC.SUCCESS, r.remark
    return None if unlock else sorted(mq["queueId"] for mq in fastjson.loads(r.body)["lockOKMQSet"])


def test_queue_locks_are_exclusive_and_expire_without_renewal(cluster):
    addr = cluster["broker"].addr
    with Wire(addr) as a, Wire(addr) as b:
        assert lock(a, "client-a", [0, 1]) == [0, 1]
        assert lock(b, "client-b", [0, 1, 2]) == [2]  # a holds 0 and 1
        assert lock(a, "client-a", [0, 1, 2]) == [0, 1]  # renewal; 2 is b's
        assert lock(b, "client-b", [0, 1, 2]) == [2]
        lock(b, "client-b", [0], unlock=True)  # only the holder frees a lock
        assert lock(b, "client-b", [0]) == []
        lock(a, "client-a", [0], unlock=True)
        assert lock(b, "client-b", [0]) == [0]
        # a stops renewing queue 1: b gets it once the lock is older than its life, not before (refused right
        # after the renewal; the life's exact end is test_rebalance_lock's, on task.Clock)
        assert lock(a, "client-a", [1]) == [1]
        assert lock(b, "client-b", [1]) == []
        wait_until(lambda: lock(b, "client-b", [1]) == [1], 15, 0.1, "queue 1's lock to expire")
        assert lock(a, "client-a", [1]) == []  # and now a is the one refused
        # other groups have their own locks
        r = a.call(lock_batch_request("ltx_other", "client-a", "ltx-broker", "LockTopic", [1]))
        assert [mq["queueId"] for mq in fastjson.loads(r.body)["lockOKMQSet"]] == [1]
        r = a.call(RemotingCommand.request(RequestCode.LOCK_BATCH_MQ, None, b"not json"))
        assert r.code == RC.SYSTEM_ERROR and "not valid" in r.remark


# --------------------------------------------------------------------------------------------- transactions


def send_half(w, group, body, queue_id=1, props=None):
    properties = {"TRAN_MSG": "true", "PGROUP": group, **(props or {})}
    r = w.call(send_request("TxTopic", body, tags="tx", properties=properties, queue_id=queue_id, group=group))
    assert r.code == RC.SUCCESS, r.remark
    return r


def half_messages(addr):
    return pull_all(addr, "RMQ_SYS_TRANS_HALF_TOPIC")


def test_commit_and_rollback(cluster):
    addr = cluster["broker"].addr
    with Wire(addr) as w:
        committed = send_half(w, "tx_plain", b"commit me")
        rolled = send_half(w, "tx_plain", b"roll me back")
        assert [m.body for m in all_queues(addr, "TxTopic") if m.body in (b"commit me", b"roll me back")] == []
        halves = {}
        for m in half_messages(addr):  # the original, not a copy the checker made meanwhile (a slow machine)
            halves.setdefault(m.body, m)
        half = halves[b"commit me"]
        assert (half.properties["REAL_TOPIC"], half.properties["REAL_QID"], half.sys_flag & 0xC) == ("TxTopic", "1", 0)
        r = w.call(end_transaction_request("tx_plain", committed, COMMIT))
        assert r.code == RC.SUCCESS, r.remark
        r = w.call(end_transaction_request("tx_plain", rolled, ROLLBACK))
        assert r.code == RC.SUCCESS, r.remark
        [m] = [m for m in pull_all(addr, "TxTopic", 1) if m.body in (b"commit me", b"roll me back")]
        assert m.body == b"commit me" and m.sys_flag & 0xC == COMMIT
        assert m.prepared_transaction_offset == half.commit_log_offset and "TRAN_MSG" not in m.properties
        assert m.unique_key == half.unique_key and m.tags == "tx"
        ops = [m.body for m in pull_all(addr, "RMQ_SYS_TRANS_OP_HALF_TOPIC")]
        assert str(half.queue_offset).encode() in ops and rolled.ext_fields["queueOffset"].encode() in ops
        # ending it again changes nothing; a wrong group or offset is refused
        assert w.call(end_transaction_request("tx_plain", committed, COMMIT)).code == RC.SUCCESS
        assert w.call(end_transaction_request("tx_other", rolled, COMMIT)).code == RC.SYSTEM_ERROR
        wrong = RemotingCommand.request(RequestCode.END_TRANSACTION, dict(
            end_transaction_request("tx_plain", rolled, COMMIT).ext_fields, tranStateTableOffset="999"))
        assert "offset wrong" in w.call(wrong).remark
    # several check rounds later, the rollback still never reached the topic and nothing was asked
    wait_until(lambda: checker_offset(addr) > int(rolled.ext_fields["queueOffset"]), 15, 0.1, "checker passing")
    bodies = [m.body for m in pull_all(addr, "TxTopic", 1)]
    assert bodies.count(b"commit me") == 1 and b"roll me back" not in bodies


def checker_offset(addr):
    r = call(addr, RemotingCommand.request(RequestCode.GET_ALL_CONSUMER_OFFSET))
    table = fastjson.loads(r.body)["offsetTable"]
    return int((table.get("RMQ_SYS_TRANS_HALF_TOPIC@CID_RMQ_SYS_TRANS") or {}).get("0", -1))


def producer(addr, group):
    w = Wire(addr, timeout=15)
    assert w.call(heartbeat_request(f"127.0.0.1@{group}", [group])).code == RC.SUCCESS
    return w


def answer(w, check, group, kind):
    h = CheckTransactionStateRequestHeader.decode(check.ext_fields)
    [msg] = decode_messages(check.body)
    end = EndTransactionRequestHeader(
        producer_group=group, tran_state_table_offset=msg.queue_offset, commit_log_offset=msg.commit_log_offset,
        commit_or_rollback=kind, from_transaction_check=True, msg_id=h.msg_id, transaction_id=h.transaction_id)
    w.send(RemotingCommand.request(RequestCode.END_TRANSACTION, end.encode(), oneway=True))


def test_check_back_commits_a_transaction_the_producer_left_open(cluster):
    addr = cluster["broker"].addr
    with producer(addr, "tx_check") as w:
        r = send_half(w, "tx_check", b"checked", props={"KEYS": "tx-key"})
        check = w.next_request(timeout=15)
        assert check.code == RequestCode.CHECK_TRANSACTION_STATE and check.is_oneway
        # not before transactionTimeOut: test_transaction_clock's (task.Clock); here the round trip
        h = CheckTransactionStateRequestHeader.decode(check.ext_fields)
        [msg] = decode_messages(check.body)
        assert (msg.topic, msg.queue_id, msg.body, msg.keys) == ("TxTopic", 1, b"checked", ["tx-key"])
        assert h.msg_id == h.transaction_id == msg.unique_key
        assert decode_offset_msg_id(h.offset_msg_id)[1] == h.commit_log_offset == msg.commit_log_offset
        assert msg.properties["TRANSACTION_CHECK_TIMES"] == "1"
        assert msg.properties["TRAN_PREPARED_QUEUE_OFFSET"] == r.ext_fields["queueOffset"]
        answer(w, check, "tx_check", COMMIT)
        wait_until(lambda: b"checked" in [m.body for m in pull_all(addr, "TxTopic", 1)], 10, 0.1, "the commit")
        # no further checks for it; the late end of the original is ignored too
        assert w.call(end_transaction_request("tx_check", r, COMMIT)).code == RC.SUCCESS
        assert [m.body for m in pull_all(addr, "TxTopic", 1)].count(b"checked") == 1
        # a check the broker sent before the answer reached it (a stall here longer than a check round) came in
        # ahead of that call's response on this connection: only checks after it count
        w.requests.clear()
        with pytest.raises(socket.timeout):
            w.next_request(timeout=3 * CHECK_INTERVAL_MS / 1000.0 + TX_TIMEOUT_MS / 1000.0)


def discarded(addr):
    return pull_all(addr, "TRANS_CHECK_MAX_TIME_TOPIC")


@pytest.mark.parametrize("behaviour", ["unknown", "silent"])
def test_unresolved_transactions_are_checked_up_to_the_maximum_then_discarded(cluster, behaviour):
    addr = cluster["broker"].addr
    group = f"tx_{behaviour}"
    body = f"never decided ({behaviour})".encode()
    with producer(addr, group) as w:
        send_half(w, group, body)
        times = []
        for _ in range(CHECK_MAX):
            check = w.next_request(timeout=15)
            [msg] = decode_messages(check.body)
            times.append(msg.properties["TRANSACTION_CHECK_TIMES"])
            if behaviour == "unknown":
                answer(w, check, group, UNKNOWN)
        assert times == ["1", "2", "3"]
        wait_until(lambda: body in [m.body for m in discarded(addr)], 15, 0.1, "the discard")
        with pytest.raises(socket.timeout):  # discarded: never asked again
            w.next_request(timeout=3 * CHECK_INTERVAL_MS / 1000.0)
    assert body not in [m.body for m in all_queues(addr, "TxTopic")]


def test_transactions_survive_a_restart(cluster):
    addr = cluster["broker"].addr
    with Wire(addr) as w:
        before = send_half(w, "tx_restart", b"open across the restart")
        done = send_half(w, "tx_restart", b"committed before the restart")
        assert w.call(end_transaction_request("tx_restart", done, COMMIT)).code == RC.SUCCESS
    # checks sent while no producer of the group is online count too (as in RocketMQ): allow plenty, so the
    # open transaction is still there when the producer is back after the restart
    conf = cluster["conf"]
    conf.write_text(conf.read_text().replace(f"transactionCheckMax={CHECK_MAX}", "transactionCheckMax=1000"))
    broker = cluster["restart"]()
    with producer(broker.addr, "tx_restart") as w:
        check = w.next_request(timeout=15)
        [msg] = decode_messages(check.body)
        assert msg.body == b"open across the restart"  # the committed one is not asked about
        answer(w, check, "tx_restart", COMMIT)
        wait_until(lambda: b"open across the restart" in [m.body for m in pull_all(broker.addr, "TxTopic", 1)],
                   10, 0.1, "the commit after the restart")
        assert w.call(end_transaction_request("tx_restart", before, ROLLBACK)).code == RC.SUCCESS  # too late
    bodies = [m.body for m in pull_all(broker.addr, "TxTopic", 1)]
    assert bodies.count(b"open across the restart") == 1 and bodies.count(b"committed before the restart") == 1



@pytest_twisted.inlineCallbacks
def test_end_transaction_unknown_is_answered_and_a_bad_state_named(client, addr, broker):
    """In-process broker: UNKNOW sent as a call gets SUCCESS (Java would leave it to time out); a
    commitOrRollback that is none of 0/8/12 is SYSTEM_ERROR naming the value."""
    header = EndTransactionRequestHeader("pg", 0, 0, UNKNOWN, msg_id="m")
    r = yield client.invoke(addr, RequestCode.END_TRANSACTION, header.encode())
    assert r.code == RC.SUCCESS and "unknown" in r.remark
    header.commit_or_rollback = 5
    r = yield client.invoke(addr, RequestCode.END_TRANSACTION, header.encode())
    assert r.code == RC.SYSTEM_ERROR and "commitOrRollback 5" in r.remark
