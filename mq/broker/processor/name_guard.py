"""Every topic and group a request names in its header is checked before a processor sees it.

A topic or group that is not a legal name (``mq.common.names``) can name nothing the broker holds, and must
never become a file, a retry topic or a state-file key; RocketMQ refuses such names with ``SYSTEM_ERROR``, and
so does this guard, with a remark naming the field. It wraps the processors of a dispatcher in place (the VIP
port's table is a view of the same dict), so one check covers every code. Names carried in
bodies (heartbeats, lock batches, subscription group configs) are checked by their processors with the
same functions.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

from mq.common.names import group_error, topic_error
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand

#: The header fields that carry a name, with the check that applies; an empty value is left to the
#: processor (several of these fields are optional, an empty one meaning "all").
NAME_FIELDS: Tuple[Tuple[str, Callable[[str], Optional[str]]], ...] = (
    ("topic", topic_error),
    ("defaultTopic", topic_error),
    ("originTopic", topic_error),
    ("consumerGroup", group_error),
    ("producerGroup", group_error),
    ("group", group_error),
    ("groupName", group_error),
)
#: Codes that store a message check their names themselves, after the refusals that come first (a slave
#: refuses them whatever they name): sends their topic (their V2 headers have one-letter names), a send-back
#: its group, END_TRANSACTION its producer group against the half message's.
SELF_CHECKED = frozenset({RequestCode.SEND_MESSAGE, RequestCode.SEND_MESSAGE_V2, RequestCode.SEND_BATCH_MESSAGE,
                          RequestCode.SEND_REPLY_MESSAGE, RequestCode.SEND_REPLY_MESSAGE_V2,
                          RequestCode.CONSUMER_SEND_MSG_BACK, RequestCode.END_TRANSACTION})


def name_refusal(ext_fields: Optional[dict]) -> Optional[str]:
    """Why the header names an illegal topic or group, or None."""
    if not ext_fields:
        return None
    for field, check in NAME_FIELDS:
        value = ext_fields.get(field)
        if value and isinstance(value, str):
            why = check(value)
            if why is not None:
                return f"{field}: {why}"
    return None


def guard_names(dispatcher) -> None:
    """Wrap every processor registered so far (but those of ``SELF_CHECKED``) with the name check."""
    for code, processor in list(dispatcher.processors.items()):
        if code not in SELF_CHECKED:
            dispatcher.processors[code] = _guarded(processor)


def _guarded(processor):
    def guarded(request: RemotingCommand, channel):
        why = name_refusal(request.ext_fields)
        if why is not None:
            return request.response(ResponseCode.SYSTEM_ERROR, why)
        return processor(request, channel)

    guarded.__wrapped__ = processor
    return guarded
