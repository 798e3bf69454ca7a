"""A producer's END_TRANSACTION that arrives after the checker has moved past the transaction (its check was
answered, the copy's op message read and forgotten) changes nothing: the commit is stored once."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import defer

from mq.client.simple import end_transaction_request, send_request
from mq.common.broker_headers import EndTransactionRequestHeader
from mq.common.message_record import decode_message_ext
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.command import RemotingCommand

COMMIT = 8


class _Channel:
    peer = "127.0.0.1:50000"

    def __init__(self):
        self.attributes = {}


@pytest_twisted.inlineCallbacks
def test_a_late_end_after_the_checker_moved_on_is_ignored(make_broker):
    b = make_broker(transactionTimeOut="0", transactionCheckInterval="3600000")
    tx = b.transaction_service
    processors = b.dispatcher.processors
    channel = _Channel()
    sent = processors[RequestCode.SEND_MESSAGE_V2](
        send_request("TxLate", b"once", properties={"TRAN_MSG": "true", "PGROUP": "g"}, queue_id=0, group="g"), channel)
    assert sent.code == RC.SUCCESS
    tx.check()  # due at once: copied to the half queue's tail, its producer asked (none is connected)
    cq = b.store.consume_queue("RMQ_SYS_TRANS_HALF_TOPIC", 0)
    assert cq.max_offset == 2
    copy = decode_message_ext(b.store.look_message_by_offset(cq.entry(1)[0], cq.entry(1)[1]))
    answer = EndTransactionRequestHeader(producer_group="g", tran_state_table_offset=1,
                                         commit_log_offset=copy.commit_log_offset, commit_or_rollback=COMMIT,
                                         from_transaction_check=True, msg_id=copy.unique_key)
    end = processors[RequestCode.END_TRANSACTION]
    r = yield defer.maybeDeferred(end, RemotingCommand.request(RequestCode.END_TRANSACTION, answer.encode()), channel)
    assert r.code == RC.SUCCESS
    assert b.store.get_max_offset_in_queue("TxLate", 0) == 1
    tx.check()  # passes the ended copy: its op message is no longer needed by the checker
    tx.check()
    late = yield defer.maybeDeferred(end, end_transaction_request("g", sent, COMMIT), channel)
    assert late.code == RC.SUCCESS
    assert b.store.get_max_offset_in_queue("TxLate", 0) == 1  # stored once


def test_ended_transactions_are_remembered_up_to_the_bound(make_broker, monkeypatch):
    import collections

    from mq.broker.transaction import service

    monkeypatch.setattr(service, "ENDED_MEMORY", 2)
    tx = make_broker().transaction_service
    tx.ops = collections.deque([(0, (0,)), (1, (1,)), (2, (3, 2))])
    tx.done = {0: 1, 1: 1, 2: 1, 3: 1}
    tx.half_offset = 10
    tx._prune_ops()
    assert (tx.ops, tx.done, list(tx.ended)) == (collections.deque(), {}, [3, 2])
