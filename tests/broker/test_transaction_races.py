"""Every way one transaction could get two END_TRANSACTIONs that each store its commit, driven step by step
in process: two ends deciding while the first one's put is still in flight (a retry, or a check's answer and
the producer's own end), a commit whose op message the store refused, and a late end after a restart."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer

from mq.broker.transaction.service import TransactionalMessageService
from mq.client.simple import end_transaction_request, send_request
from mq.common.broker_headers import EndTransactionRequestHeader
from mq.common.message_record import decode_message_ext
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.command import RemotingCommand
from mq.store.results import PutMessageResult, PutMessageStatus

COMMIT, ROLLBACK = 8, 12
HALF, OP = "RMQ_SYS_TRANS_HALF_TOPIC", "RMQ_SYS_TRANS_OP_HALF_TOPIC"


class _Channel:
    peer = "127.0.0.1:50000"

    def __init__(self):
        self.attributes = {}


def send_half(b, topic):
    r = b.dispatcher.processors[RequestCode.SEND_MESSAGE_V2](
        send_request(topic, b"once", properties={"TRAN_MSG": "true", "PGROUP": "g"}, queue_id=0, group="g"),
        _Channel())
    assert r.code == RC.SUCCESS
    return r


def end(b, request):
    return defer.maybeDeferred(b.dispatcher.processors[RequestCode.END_TRANSACTION], request, _Channel())


def answer_for_copy(b, at, kind=COMMIT):
    """The producer's answer to the check about the copy at half queue offset ``at``."""
    cq = b.store.consume_queue(HALF, 0)
    copy = decode_message_ext(b.store.look_message_by_offset(*cq.entry(at)[:2]))
    header = EndTransactionRequestHeader(producer_group="g", tran_state_table_offset=at,
                                         commit_log_offset=copy.commit_log_offset, commit_or_rollback=kind,
                                         from_transaction_check=True, msg_id=copy.unique_key)
    return RemotingCommand.request(RequestCode.END_TRANSACTION, header.encode())


class HeldPuts:
    """The store's puts to ``topic`` held until ``release``, as a SYNC_FLUSH or DLedger put is."""

    def __init__(self, store, topic):
        self.put, self.topic, self.held = store.put_message, topic, []
        store.put_message = self

    def __call__(self, inner):
        if inner.topic != self.topic:
            return self.put(inner)
        d = defer.Deferred()
        self.held.append((inner, d))
        return d

    def release(self):
        while self.held:
            inner, d = self.held.pop(0)
            self.put(inner).chainDeferred(d)


@pytest.mark.parametrize("second", ["the same end again", "a check's answer"])
@pytest_twisted.inlineCallbacks
def test_a_second_end_while_the_first_commit_is_in_flight_stores_nothing(make_broker, second):
    b = make_broker(transactionTimeOut="0", transactionCheckInterval="3600000")
    sent = send_half(b, "TxRace")
    if second == "a check's answer":
        b.transaction_service.check()  # copied to half queue offset 1, its producer asked
        other = answer_for_copy(b, 1)
    else:
        other = end_transaction_request("g", sent, COMMIT)
    held = HeldPuts(b.store, "TxRace")
    first = end(b, end_transaction_request("g", sent, COMMIT))
    then = end(b, other)
    rollback = end(b, end_transaction_request("g", sent, ROLLBACK))
    assert not first.called and not then.called and len(held.held) == 1
    held.release()
    answers = yield defer.gatherResults([first, then, rollback])
    assert [r.code for r in answers] == [RC.SUCCESS] * 3
    assert held.held == [] and b.store.get_max_offset_in_queue("TxRace", 0) == 1  # stored once
    assert b.store.get_max_offset_in_queue(OP, 0) == 1 and b.transaction_service.ending == {}


@pytest_twisted.inlineCallbacks
def test_a_commit_whose_op_message_was_refused_is_not_stored_again(make_broker):
    b = make_broker(transactionTimeOut="0", transactionCheckInterval="3600000")
    sent = send_half(b, "TxUnmarked")
    put = b.store.put_message
    refused = []

    def refuse_the_first_op(inner):
        if inner.topic == OP and not refused:
            refused.append(inner)
            return defer.succeed(PutMessageResult(PutMessageStatus.SERVICE_NOT_AVAILABLE))
        return put(inner)

    b.store.put_message = refuse_the_first_op
    r = yield end(b, end_transaction_request("g", sent, COMMIT))
    assert r.code == RC.SUCCESS and refused and b.store.get_max_offset_in_queue(OP, 0) == 0
    again = yield end(b, end_transaction_request("g", sent, COMMIT))
    assert again.code == RC.SUCCESS
    assert b.store.get_max_offset_in_queue("TxUnmarked", 0) == 1
    # the checker does not ask about it (no copy appended) and writes its op message
    b.transaction_service.check()
    assert b.store.get_max_offset_in_queue(HALF, 0) == 1
    assert b.store.get_max_offset_in_queue(OP, 0) == 1 and b.transaction_service.unmarked == {}
    late = yield end(b, end_transaction_request("g", sent, COMMIT))
    assert late.code == RC.SUCCESS and b.store.get_max_offset_in_queue("TxUnmarked", 0) == 1


@pytest_twisted.inlineCallbacks
def test_a_late_end_after_a_restart_is_ignored(make_broker):
    b = make_broker(transactionTimeOut="0", transactionCheckInterval="3600000")
    tx = b.transaction_service
    sent = send_half(b, "TxRestart")
    tx.check()
    r = yield end(b, answer_for_copy(b, 1))
    assert r.code == RC.SUCCESS and b.store.get_max_offset_in_queue("TxRestart", 0) == 1
    tx.check()  # past the ended copy: its op message pruned, remembered as ended
    tx.check()
    assert tx.ops == type(tx.ops)() and tx.ended
    tx.stop()
    again = TransactionalMessageService(b)  # what a restarted broker starts with: the store and the offsets
    again.start()
    try:
        late = yield defer.maybeDeferred(again.end_transaction, end_transaction_request("g", sent, COMMIT),
                                         _Channel())
        assert late.code == RC.SUCCESS
        assert b.store.get_max_offset_in_queue("TxRestart", 0) == 1  # stored once
    finally:
        again.stop()


@pytest_twisted.inlineCallbacks
def test_a_late_end_older_than_the_ended_memory_is_ignored(make_broker, monkeypatch):
    from mq.broker.transaction import service

    monkeypatch.setattr(service, "ENDED_MEMORY", 1)  # one remembered end: the other one is forgotten
    b = make_broker(transactionTimeOut="0", transactionCheckInterval="3600000", messageIndexEnable="true")
    tx = b.transaction_service
    sent = [send_half(b, "TxForgot"), send_half(b, "TxForgot")]
    tx.check()  # both copied (half queue offsets 2 and 3) and asked about
    for at in (2, 3):
        r = yield end(b, answer_for_copy(b, at))
        assert r.code == RC.SUCCESS
    tx.check()
    tx.check()
    assert len(tx.ended) == 1 and tx.ops == type(tx.ops)()
    for s in sent:
        late = yield end(b, end_transaction_request("g", s, COMMIT))
        assert late.code == RC.SUCCESS
    assert b.store.get_max_offset_in_queue("TxForgot", 0) == 2  # each stored once


@pytest_twisted.inlineCallbacks
def test_a_discarded_transaction_is_still_committed_by_a_late_end_once(make_broker):
    b = make_broker(transactionTimeOut="0", transactionCheckInterval="3600000", transactionCheckMax="1")
    tx = b.transaction_service
    sent = send_half(b, "TxGivenUp")
    tx.check()  # copied, checked once
    tx.check()  # checked transactionCheckMax times: discarded
    assert b.store.get_max_offset_in_queue("TRANS_CHECK_MAX_TIME_TOPIC", 0) == 1 and tx.half_offset == 2
    tx.stop()
    again = TransactionalMessageService(b)  # a restart in between: it still knows the transaction was given up
    again.start()
    try:
        for _ in range(2):
            r = yield defer.maybeDeferred(again.end_transaction, end_transaction_request("g", sent, COMMIT),
                                          _Channel())
            assert r.code == RC.SUCCESS
        assert b.store.get_max_offset_in_queue("TxGivenUp", 0) == 1
    finally:
        again.stop()


@pytest.mark.parametrize("copy", ["still being appended", "refused after the checker moved on"])
@pytest_twisted.inlineCallbacks
def test_an_end_while_the_checks_copy_is_not_stored_commits(make_broker, copy):
    b = make_broker(transactionTimeOut="0", transactionCheckInterval="3600000")
    tx = b.transaction_service
    sent = send_half(b, "TxCopying")
    held = HeldPuts(b.store, HALF)
    tx.check()  # the copy's put is in flight (as under DLedger); the checker has moved past the original
    assert tx.half_offset == 1 and len(held.held) == 1
    if copy == "refused after the checker moved on":
        held.held.pop()[1].callback(PutMessageResult(PutMessageStatus.SERVICE_NOT_AVAILABLE))
        assert tx.given_up
    r = yield end(b, end_transaction_request("g", sent, COMMIT))
    assert r.code == RC.SUCCESS and b.store.get_max_offset_in_queue("TxCopying", 0) == 1
    held.release()
    tx.check()  # the copy, if stored, is ended: not asked about, nor stored again by a late end
    again = yield end(b, end_transaction_request("g", sent, COMMIT))
    assert again.code == RC.SUCCESS and b.store.get_max_offset_in_queue("TxCopying", 0) == 1


@pytest_twisted.inlineCallbacks
def test_a_commit_reported_failed_but_stored_is_found_by_the_next_end(make_broker):
    """A DLedger put that timed out waiting for its quorum may still land: the next end looks for the
    committed record (by UNIQ_KEY) before storing, once the log has settled past it."""
    b = make_broker(transactionTimeOut="0", transactionCheckInterval="3600000", messageIndexEnable="true")
    tx = b.transaction_service
    sent = send_half(b, "TxUncertain")
    put = b.store.put_message

    def stored_but_timed_out(inner):
        if inner.topic != "TxUncertain":
            return put(inner)
        return put(inner).addCallback(lambda _: PutMessageResult(PutMessageStatus.OS_PAGECACHE_BUSY, reason="TIMEOUT"))

    b.store.put_message = stored_but_timed_out
    r = yield end(b, end_transaction_request("g", sent, COMMIT))
    assert r.code == RC.SYSTEM_ERROR and b.store.get_max_offset_in_queue("TxUncertain", 0) == 1
    b.store.put_message = put
    for _ in range(2):  # the producer asks again (or a check's answer comes): the record is found
        r = yield end(b, end_transaction_request("g", sent, COMMIT))
        assert r.code == RC.SUCCESS
    assert b.store.get_max_offset_in_queue("TxUncertain", 0) == 1 and b.store.get_max_offset_in_queue(OP, 0) == 1
    tx.check()  # ended: no copy, no check
    assert b.store.get_max_offset_in_queue(HALF, 0) == 1
    # While the log has not reached the failed put's end (its quorum may still come), ends are refused.
    other = send_half(b, "TxUncertain")
    b.store.put_message = stored_but_timed_out
    r = yield end(b, end_transaction_request("g", other, COMMIT))
    b.store.put_message = put
    [key] = tx.uncertain
    assert r.code == RC.SYSTEM_ERROR and key == int(other.ext_fields["queueOffset"])
    tx.uncertain[key] = b.store.commitlog.max_offset + 1
    r = yield end(b, end_transaction_request("g", other, COMMIT))
    assert r.code == RC.SYSTEM_ERROR and "ask again" in r.remark
    assert b.store.get_max_offset_in_queue("TxUncertain", 0) == 2


@pytest_twisted.inlineCallbacks
def test_a_commit_whose_op_message_was_lost_in_a_restart_is_not_stored_again(make_broker):
    b = make_broker(transactionTimeOut="0", transactionCheckInterval="3600000", messageIndexEnable="true")
    sent = send_half(b, "TxLostOp")
    put = b.store.put_message

    def no_op_messages(inner):
        if inner.topic == OP:  # as if the op message were lost in a crash right after the commit
            return defer.succeed(PutMessageResult(PutMessageStatus.SERVICE_NOT_AVAILABLE))
        return put(inner)

    b.store.put_message = no_op_messages
    r = yield end(b, end_transaction_request("g", sent, COMMIT))
    assert r.code == RC.SUCCESS and b.store.get_max_offset_in_queue(OP, 0) == 0
    b.store.put_message = put
    b.transaction_service.stop()
    again = TransactionalMessageService(b)  # restarted: the memory of the unmarked commit is gone
    again.start()
    try:
        r = yield defer.maybeDeferred(again.end_transaction, end_transaction_request("g", sent, COMMIT), _Channel())
        assert r.code == RC.SUCCESS
        assert b.store.get_max_offset_in_queue("TxLostOp", 0) == 1 and b.store.get_max_offset_in_queue(OP, 0) == 1
    finally:
        again.stop()


@pytest_twisted.inlineCallbacks
def test_a_copy_lost_with_its_leader_leaves_the_transaction_open_on_the_next(make_broker):
    """The checker's progress is saved while a copy's put is in flight (a DLedger quorum); the leader dies
    and the copy never lands: the next leader, starting from that progress, still commits the producer's end."""
    b = make_broker(transactionTimeOut="0", transactionCheckInterval="3600000")
    tx = b.transaction_service
    sent = send_half(b, "TxLostCopy")
    held = HeldPuts(b.store, HALF)
    tx.check()  # passes the original; its copy is held
    assert tx.half_offset == 1 and len(held.held) == 1
    tx._loop.stop()
    tx._loop = None
    b.store.put_message = held.put  # the copy is never stored: the leader died
    again = TransactionalMessageService(b)  # the next leader, from the progress the old one saved
    again.start()
    try:
        r = yield defer.maybeDeferred(again.end_transaction, end_transaction_request("g", sent, COMMIT), _Channel())
        assert r.code == RC.SUCCESS and b.store.get_max_offset_in_queue("TxLostCopy", 0) == 1
    finally:
        again.stop()


@pytest_twisted.inlineCallbacks
def test_an_end_that_fails_midway_does_not_hold_up_the_next(make_broker):
    b = make_broker(transactionTimeOut="0", transactionCheckInterval="3600000")
    tx = b.transaction_service
    sent = send_half(b, "TxRaises")
    committed = tx._committed

    def raises(half):
        tx._committed = committed
        raise RuntimeError("building the committed message failed")

    tx._committed = raises
    first = end(b, end_transaction_request("g", sent, COMMIT))
    assert first.called
    with pytest.raises(RuntimeError):
        yield first
    then = end(b, end_transaction_request("g", sent, COMMIT))
    assert then.called and tx.ending == {}
    r = yield then
    assert r.code == RC.SUCCESS and b.store.get_max_offset_in_queue("TxRaises", 0) == 1
