"""Whether a transaction's commit is already in the store, read from the store itself.

An end normally knows a transaction is over from its op message. When that may be missing though the commit
landed (a DLedger put that timed out waiting for its quorum and committed later, a crash between the commit
and its op message, a new leader), the committed record is looked up by its UNIQ_KEY in the message index:
a record of the real topic (or the delay-level or timer topic it was parked in) with the COMMIT sysFlag whose
prepared transaction offset is that of the half message or of its original, or that names the original's
queue offset as ``TRAN_PREPARED_QUEUE_OFFSET`` (a commit of a check's copy). Without the index
(``messageIndexEnable=false``) or a UNIQ_KEY nothing is found.
"""

from __future__ import annotations

from typing import Optional

from mq.common.message import MessageConst, MessageExt, MessageSysFlag
from mq.common.message_record import decode_message_ext
from mq.common.topic import SCHEDULE_TOPIC, TIMER_TOPIC

_C = MessageConst
#: Records of one UNIQ_KEY read at most (a producer's retries of one send share it).
MAX_CANDIDATES = 64


def commit_stored(store, half: MessageExt, original: Optional[MessageExt], key: int) -> bool:
    """Whether ``store`` holds a commit of the transaction whose original half message is at half queue
    offset ``key`` (``half``: the half message an end names; ``original``: the one at ``key``, if readable)."""
    props = half.properties
    uniq = props.get(_C.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
    if not uniq:
        return False
    prepared = {half.commit_log_offset}
    if original is not None:
        prepared.add(original.commit_log_offset)
    topics = [props.get(_C.PROPERTY_REAL_TOPIC, half.topic)]
    if _C.PROPERTY_DELAY_TIME_LEVEL in props:
        topics.append(SCHEDULE_TOPIC)
    if any(k.startswith("TIMER_") for k in props):
        topics.append(TIMER_TOPIC)
    for topic in topics:
        for raw in store.query_message(topic, uniq, MAX_CANDIDATES, 0, 2 ** 62).message_buffers:
            msg = decode_message_ext(raw, with_body=False)
            if MessageSysFlag.get_transaction_value(msg.sys_flag) != MessageSysFlag.TRANSACTION_COMMIT_TYPE:
                continue
            named = msg.properties.get(_C.PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET)
            if msg.prepared_transaction_offset in prepared or named == str(key):
                return True
    return False
