"""What an END_TRANSACTION may name: the half message it ends, and where a commit may write.

Both come from the request, and RocketMQ trusts them more than a broker open to any producer should: a record
read at a CommitLog offset alone could be a message body shaped like a half record (any producer can send one),
whose REAL_TOPIC, REAL_QID and queue offset would then be trusted, a commit into any topic and queue and an op
message ending someone else's transaction.
"""

from __future__ import annotations

from typing import Optional, Tuple

from mq.common import mixall
from mq.common.broker_headers import EndTransactionRequestHeader
from mq.common.message import MessageConst, MessageExt
from mq.common.message_record import decode_message_ext
from mq.common.names import topic_error
from mq.common.route import PERM_WRITE
from mq.common.topic import DEFAULT_TOPIC, NOT_ALLOWED_SEND_TOPICS, TRANS_HALF_TOPIC
from mq.remoting.codes import ResponseCode as RC

_C = MessageConst


def int_property(text: Optional[str], default: int = -1) -> int:
    """A numeric message property, ``default`` when absent or not a number."""
    try:
        return int(text) if text else default
    except ValueError:
        return default


def requested_half(store, h: EndTransactionRequestHeader) -> Optional[MessageExt]:
    """The half message at ``commitLogOffset``, or None unless the half queue holds it (at the queue offset
    it claims: ``tranStateTableOffset`` is compared with that next, as RocketMQ does)."""
    if h.commit_log_offset < 0:
        return None
    raw = store.look_message_by_offset(h.commit_log_offset, requested=True)
    half = decode_message_ext(raw) if raw is not None else None
    if half is None or half.topic != TRANS_HALF_TOPIC or half.queue_id != 0:
        return None
    cq = store.consume_queue(TRANS_HALF_TOPIC, 0)
    entry = cq.entry(half.queue_offset) if cq is not None and half.queue_offset >= 0 else None
    return half if entry is not None and entry[0] == h.commit_log_offset else None


def commit_refusal(topics, default_queue_nums: int, half: MessageExt) -> Optional[Tuple[int, str]]:
    """Why the commit of ``half`` may not go to its REAL_TOPIC and REAL_QID (code, remark), or None: the
    send's rules again (the topic may have been deleted, made read-only or shrunk since), so a commit writes
    nowhere a send could not. ``topics``: the broker's TopicConfigManager."""
    props = half.properties
    topic = props.get(_C.PROPERTY_REAL_TOPIC, "")
    queue_id = int_property(props.get(_C.PROPERTY_REAL_QUEUE_ID))
    why = topic_error(topic)
    if why is not None:
        return RC.SYSTEM_ERROR, f"The half message's REAL_TOPIC is not valid: {why}."
    if topic in NOT_ALLOWED_SEND_TOPICS:
        return RC.NO_PERMISSION, f"Sending message to topic[{topic}] is forbidden."
    tc = topics.create_in_send(topic, DEFAULT_TOPIC, default_queue_nums)
    if tc is None:
        return RC.TOPIC_NOT_EXIST, f"topic[{topic}] not exist, apply first please! {mixall.FAQ_URL}"
    queues = max(tc.read_queue_nums, tc.write_queue_nums)  # the send's bound
    if not 0 <= queue_id < queues:
        return RC.SYSTEM_ERROR, f"the half message's queueId[{queue_id}] is illegal, {tc!r}"
    if not tc.perm & PERM_WRITE:
        return RC.NO_PERMISSION, f"the topic[{topic}] sending message is forbidden"
    return None
