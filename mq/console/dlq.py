"""Dead-letter messages sent back to their group.

rocketmq-dashboard resends a dead-letter message by asking one online consumer to consume it directly
(CONSUME_MESSAGE_DIRECTLY), which needs a consumer online and a broker that relays the request. This console
instead sends a copy to the group's retry topic ``%RETRY%<group>``, which every consumer of the group already
subscribes to: with ``RETRY_TOPIC`` set to the topic the message first came from, the consumer's client hands it
to the listener as a message of that topic, with its original id, keys, tags and properties, and it gets the
group's full number of retries again.
"""

from __future__ import annotations

from twisted.internet import defer

from mq.admin.api import route_masters
from mq.common import mixall
from mq.common.message import MessageConst, decode_offset_msg_id
from mq.console.forms import BadRequest, Context, Form, known_broker, route

MC = MessageConst
#: Properties the broker wrote for where and how the message was stored, not part of what was sent.
STORE_PROPERTIES = frozenset({
    MC.PROPERTY_MIN_OFFSET, MC.PROPERTY_MAX_OFFSET, MC.PROPERTY_REAL_TOPIC, MC.PROPERTY_REAL_QUEUE_ID,
    MC.PROPERTY_DELAY_TIME_LEVEL, MC.PROPERTY_CONSUME_START_TIMESTAMP, MC.PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET,
    MC.PROPERTY_WAIT_STORE_MSG_OK, MC.PROPERTY_TAGS, MC.PROPERTY_KEYS,
})


@route("dlq/resend", "POST", ["group", "offsetMsgId"])
@defer.inlineCallbacks
def dlq_resend(ctx: Context, form: Form):
    """Send one dead-letter message of ``group`` back to the group through its retry topic."""
    group = form.group()
    msg_id = form.text("offsetMsgId", 64, required=True)
    try:
        (host, port), offset = decode_offset_msg_id(msg_id)
    except ValueError:
        raise BadRequest("offsetMsgId: not an offset message id (32 or 56 hexadecimal characters)") from None
    addr = yield known_broker(ctx.api, f"{host}:{port}")
    msg = yield ctx.api.view_message(addr, offset)
    if msg.topic != mixall.dlq_topic(group):
        raise BadRequest(f"offsetMsgId: the message is in topic '{msg.topic}', not a dead-letter message of "
                         f"group '{group}'")
    origin = msg.properties.get(MC.PROPERTY_RETRY_TOPIC)
    if not origin:
        raise BadRequest("offsetMsgId: the message does not say which topic it came from (no RETRY_TOPIC)")
    retry = mixall.retry_topic(group)
    route_data = yield ctx.api.topic_route(retry)
    masters = route_masters(route_data)
    if not masters:
        raise BadRequest(f"group: its retry topic '{retry}' has no master broker")
    name, target = sorted(masters.items())[0]
    properties = {k: v for k, v in msg.properties.items() if k not in STORE_PROPERTIES}
    properties[MC.PROPERTY_RETRY_TOPIC] = origin
    result = yield ctx.api.send_message(target, name, retry, 0, msg.body, tags=msg.tags or None,
                                        keys=" ".join(msg.keys) or None, properties=properties)
    result.update(topic=retry, originTopic=origin)
    return result
