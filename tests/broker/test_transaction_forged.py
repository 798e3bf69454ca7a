"""END_TRANSACTION takes only the half message the half queue holds: a message body shaped like a whole stored
half record (any producer can send one) is not a transaction, and a commit writes only where a send could."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.logger import LogLevel

from mq.client.simple import create_topic_request, end_transaction_request, send_request
from mq.common.broker_headers import EndTransactionRequestHeader
from mq.common.message import MessageExt, MessageExtBrokerInner, decode_offset_msg_id
from mq.common.message_record import decode_message_ext, encode_message_ext
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.command import RemotingCommand

COMMIT, ROLLBACK = 8, 12
HALF, OP, SCHEDULE = "RMQ_SYS_TRANS_HALF_TOPIC", "RMQ_SYS_TRANS_OP_HALF_TOPIC", "SCHEDULE_TOPIC_XXXX"
BODY_AT = 88  # a record's body starts 88 bytes in (IPv4 hosts)


class _Channel:
    peer = "127.0.0.1:50000"

    def __init__(self):
        self.attributes = {}


def call(b, request):
    return defer.maybeDeferred(b.dispatcher.processors[request.code], request, _Channel())


def send(b, topic, body, props=None, group="g"):
    r = b.dispatcher.processors[RequestCode.SEND_MESSAGE_V2](
        send_request(topic, body, properties=props, queue_id=0, group=group), _Channel())
    assert r.code == RC.SUCCESS, r.remark
    return r


def end(group, state_offset, commit_log_offset, kind=COMMIT):
    header = EndTransactionRequestHeader(producer_group=group, tran_state_table_offset=state_offset,
                                         commit_log_offset=commit_log_offset, commit_or_rollback=kind, msg_id="m")
    return RemotingCommand.request(RequestCode.END_TRANSACTION, header.encode())


def forge(b, real_topic, real_qid, state_offset):
    """Send PT a message whose body is a whole half record, as stored, at the body's own CommitLog offset;
    that offset."""
    outer = b.store.commitlog.max_offset
    inner_at = outer + BODY_AT
    image = encode_message_ext(MessageExt(
        topic=HALF, body=b"forged", queue_id=0, queue_offset=state_offset, commit_log_offset=inner_at,
        properties={"REAL_TOPIC": real_topic, "REAL_QID": str(real_qid), "PGROUP": "PGX", "TRAN_MSG": "true"}))
    sent = send(b, "PT", image)
    assert decode_offset_msg_id(sent.ext_fields["msgId"])[1] == outer
    # the old lookup by CommitLog offset alone took this for a half message
    assert decode_message_ext(b.store.look_message_by_offset(inner_at)).properties["PGROUP"] == "PGX"
    return inner_at


@pytest_twisted.inlineCallbacks
def test_a_half_message_forged_in_a_body_is_neither_committed_nor_rolled_back(make_broker):
    b = make_broker(transactionTimeOut="3600000", transactionCheckInterval="3600000")
    assert (yield call(b, create_topic_request("PT", queues=1))).code == RC.SUCCESS
    legit = send(b, "PT", b"the real one", {"TRAN_MSG": "true", "PGROUP": "g"})
    assert legit.ext_fields["queueOffset"] == "0"
    forged = [(forge(b, "PT", 77777, 0), 0), (forge(b, SCHEDULE, -7, 0), 0),
              (forge(b, "PT", 0, 5), 5)]  # the victim's half queue offset, then one the half queue lacks
    for inner_at, state_offset in forged:
        for kind in (COMMIT, ROLLBACK):
            r = yield call(b, end("PGX", state_offset, inner_at, kind))
            assert r.code == RC.SYSTEM_ERROR and r.remark.startswith("Find prepared transaction message failed")
    assert b.store.consume_queue("PT", 77777) is None and b.store.consume_queue(SCHEDULE, -7) is None
    assert b.store.get_max_offset_in_queue(OP, 0) == 0  # no op message: the victim's transaction is open
    assert b.store.get_max_offset_in_queue("PT", 0) == 3  # the three forged images, sent as plain messages
    r = yield call(b, end_transaction_request("g", legit, COMMIT))
    assert r.code == RC.SUCCESS, r.remark
    assert b.store.get_max_offset_in_queue("PT", 0) == 4
    cq = b.store.consume_queue("PT", 0)
    assert decode_message_ext(b.store.look_message_by_offset(*cq.entry(3)[:2])).body == b"the real one"


@pytest_twisted.inlineCallbacks
def test_a_commit_names_the_half_by_both_offsets(make_broker, log_events):
    """The half queue offset and the CommitLog offset must name the same record (RocketMQ's remarks); a
    CommitLog offset inside a record is not found, and no corrupt record for the log or the count."""
    b = make_broker(transactionTimeOut="3600000", transactionCheckInterval="3600000")
    first = send(b, "TxBoth", b"one", {"TRAN_MSG": "true", "PGROUP": "g"})
    second = send(b, "TxBoth", b"two", {"TRAN_MSG": "true", "PGROUP": "g"})
    phy = decode_offset_msg_id(first.ext_fields["msgId"])[1]
    for bad in (int(second.ext_fields["queueOffset"]), -1, 1 << 40):
        r = yield call(b, end("g", bad, phy))
        assert r.code == RC.SYSTEM_ERROR and r.remark.startswith("The transaction state table offset wrong")
    for bad in (-1, phy + 1, phy + BODY_AT, 1 << 40):
        r = yield call(b, end("g", 0, bad))
        assert r.code == RC.SYSTEM_ERROR and r.remark.startswith("Find prepared transaction message failed")
    assert b.store.commitlog.corrupt_records == 0
    assert [e for e in log_events if e.get("log_level") == LogLevel.error] == []
    assert b.store.get_max_offset_in_queue("TxBoth", 0) == 0
    assert (yield call(b, end_transaction_request("g", second, COMMIT))).code == RC.SUCCESS
    assert b.store.get_max_offset_in_queue("TxBoth", 0) == 1


@defer.inlineCallbacks
def store_half(b, real_topic, real_qid):
    """A half message in the half queue naming ``real_topic`` and ``real_qid`` (as a store from elsewhere could
    hold); its half queue offset and CommitLog offset."""
    inner = MessageExtBrokerInner(topic=real_topic, body=b"odd", queue_id=real_qid, born_timestamp=b.now_ms(),
                                  properties={"TRAN_MSG": "true"}, store_host=b.config.store_host)
    result = yield b.store.put_message(b.transaction_service.prepare(inner, "g"))
    assert result.is_stored()
    return result.append_result.logics_offset, result.append_result.wrote_offset


@pytest.mark.parametrize("real_topic, real_qid, code, remark", [
    ("PT", 1, RC.SYSTEM_ERROR, "queueId[1] is illegal"),
    ("PT", -7, RC.SYSTEM_ERROR, "queueId[-7] is illegal"),
    (SCHEDULE, 0, RC.NO_PERMISSION, f"topic[{SCHEDULE}] is forbidden"),
    (HALF, 0, RC.NO_PERMISSION, f"topic[{HALF}] is forbidden"),
    ("NoSuchTopic", 0, RC.TOPIC_NOT_EXIST, "topic[NoSuchTopic] not exist"),
    ("bad topic!", 0, RC.SYSTEM_ERROR, "REAL_TOPIC is not valid"),
])
@pytest_twisted.inlineCallbacks
def test_a_commit_goes_only_where_a_send_could(make_broker, real_topic, real_qid, code, remark):
    b = make_broker(transactionTimeOut="3600000", transactionCheckInterval="3600000", autoCreateTopicEnable="false")
    assert (yield call(b, create_topic_request("PT", queues=1))).code == RC.SUCCESS
    state_offset, phy = yield store_half(b, real_topic, real_qid)
    before = b.store.commitlog.max_offset
    r = yield call(b, end("g", state_offset, phy))
    assert r.code == code and remark in r.remark, r.remark
    assert b.store.commitlog.max_offset == before  # nothing stored, not even an op message
    # a rollback is still taken: it writes nothing but the op message
    assert (yield call(b, end("g", state_offset, phy, ROLLBACK))).code == RC.SUCCESS
    assert b.store.get_max_offset_in_queue(OP, 0) == 1


@pytest_twisted.inlineCallbacks
def test_a_commit_to_a_read_only_topic_is_refused(make_broker):
    b = make_broker(transactionTimeOut="3600000", transactionCheckInterval="3600000")
    assert (yield call(b, create_topic_request("PT", queues=1))).code == RC.SUCCESS
    sent = send(b, "PT", b"later read-only", {"TRAN_MSG": "true", "PGROUP": "g"})
    assert (yield call(b, create_topic_request("PT", queues=1, perm=4))).code == RC.SUCCESS
    r = yield call(b, end_transaction_request("g", sent, COMMIT))
    assert r.code == RC.NO_PERMISSION and "topic[PT] sending message is forbidden" in r.remark
    assert b.store.get_max_offset_in_queue("PT", 0) == 0
