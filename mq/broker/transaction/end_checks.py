"""What an END_TRANSACTION may name: the half message it ends, and where a commit may write.

Both come from the request, and RocketMQ trusts them more than a broker open to any producer should: a record
read at a CommitLog offset alone could be a message body shaped like a half record (any producer can send one),
whose REAL_TOPIC, REAL_QID and queue offset would then be trusted, a commit into any topic and queue and an op
message ending someone else's transaction.
"""

from __future__ import annotations

from typing import Optional, Tuple

from mq.broker.topic.send_rules import topic_for_send, write_refusal
from mq.common.broker_headers import EndTransactionRequestHeader
from mq.common.message import MessageConst, MessageExt
from mq.common.message_record import decode_message_ext
from mq.common.route import TopicConfig
from mq.common.topic import DEFAULT_TOPIC, TRANS_HALF_TOPIC
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
    tc = topic_for_send(topics, props.get(_C.PROPERTY_REAL_TOPIC, ""), DEFAULT_TOPIC, default_queue_nums,
                        subject="The half message's REAL_TOPIC")
    if not isinstance(tc, TopicConfig):
        return tc
    queue_id = int_property(props.get(_C.PROPERTY_REAL_QUEUE_ID))
    if not 0 <= queue_id < max(tc.read_queue_nums, tc.write_queue_nums):  # the send's bound
        return RC.SYSTEM_ERROR, f"the half message's queueId[{queue_id}] is illegal, {tc!r}"
    return write_refusal(tc)
