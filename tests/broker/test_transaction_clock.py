"""When a half message is first checked, on the broker's fake clock: not before ``transactionTimeOut`` after
its producer's born time, at once after (the process test checks the round trip with a real producer)."""

from __future__ import annotations

from mq.client.simple import send_request
from mq.common.message_record import decode_message_ext
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC
from tests.robustness.test_broker_fuzz import in_memory_broker

HALF = "RMQ_SYS_TRANS_HALF_TOPIC"


class _Channel:
    peer = "127.0.0.1:50000"

    def __init__(self):
        self.attributes = {}


def half_queue(broker):
    """The half queue's records: (body, TRANSACTION_CHECK_TIMES) each, the original and its check copies."""
    cq = broker.store.consume_queue(HALF, 0)
    out = []
    for off in range(cq.min_offset, cq.max_offset):
        msg = decode_message_ext(broker.store.look_message_by_offset(*cq.entry(off)[:2]))
        out.append((msg.body, msg.properties.get("TRANSACTION_CHECK_TIMES")))
    return out


def test_a_half_message_is_checked_once_it_is_transaction_timeout_old(tmp_path):
    broker = in_memory_broker(tmp_path, transactionTimeOut="500", transactionCheckInterval="3600000")
    try:
        request = send_request("TxT", b"half", properties={"TRAN_MSG": "true", "PGROUP": "g"}, queue_id=0, group="g")
        request.ext_fields["g"] = str(broker.now_ms())  # bornTimestamp: the producer's clock is the broker's
        r = broker.dispatcher.processors[RequestCode.SEND_MESSAGE_V2](request, _Channel())
        assert r.code == RC.SUCCESS
        broker.reactor.advance(0.499)
        broker.transaction_service.check()
        assert half_queue(broker) == [(b"half", None)]  # 499 ms old: not yet
        broker.reactor.advance(0.001)
        broker.transaction_service.check()
        assert half_queue(broker) == [(b"half", None), (b"half", "1")]  # checked: a copy with its first check
    finally:
        broker.stopService()
