"""Dead-letter messages sent back to their group (one or a batch), exported, and any message handed to one
online consumer.

rocketmq-dashboard resends a dead-letter message by asking one online consumer to consume it directly
(CONSUME_MESSAGE_DIRECTLY): the listener then sees it as a message of ``%DLQ%<group>``, once, with no retry if
it fails again. This console sends a copy to the group's retry topic ``%RETRY%<group>`` instead, which every
consumer of the group already subscribes to: with ``RETRY_TOPIC`` set to the topic the message first came
from, the consumer's client hands it to the listener as a message of that topic, with its original id, keys,
tags and properties, and it gets the group's full number of retries again. The direct way is there too, for
any message and a consumer the user picks (``message/consume-directly``, the dashboard's "Resend Message").
"""

from __future__ import annotations

import re
import time

from twisted.internet import defer

from mq.admin.api import AdminError
from mq.admin.values import route_masters
from mq.common import mixall
from mq.common.message import MessageConst, decode_offset_msg_id
from mq.console.forms import BadRequest, Context, Form, admin, known_broker, route

MC = MessageConst
#: Properties the broker wrote for where and how the message was stored, not part of what was sent.
STORE_PROPERTIES = frozenset({
    MC.PROPERTY_MIN_OFFSET, MC.PROPERTY_MAX_OFFSET, MC.PROPERTY_REAL_TOPIC, MC.PROPERTY_REAL_QUEUE_ID,
    MC.PROPERTY_DELAY_TIME_LEVEL, MC.PROPERTY_CONSUME_START_TIMESTAMP, MC.PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET,
    MC.PROPERTY_WAIT_STORE_MSG_OK, MC.PROPERTY_TAGS, MC.PROPERTY_KEYS,
})


#: Most dead-letter messages one batch resend sends back.
MAX_BATCH = 100
#: What a client id is made of: ``ip@pid`` or ``ip@instance#...`` (Java adds a unit name after ``@``).
CLIENT_ID = re.compile(r"[A-Za-z0-9@#._:%|\[\]-]{1,255}")


def client_id_field(form: Form) -> str:
    client_id = form.text("clientId", 255, required=True)
    if not CLIENT_ID.fullmatch(client_id):
        raise BadRequest(f"clientId: {client_id[:64]!r} is not a client id")
    return client_id


@defer.inlineCallbacks
def stored_at(ctx: Context, msg_id: str, field: str = "offsetMsgId"):
    """(broker address, commit log offset) of an offset message id naming a broker the NameServer lists."""
    try:
        (host, port), offset = decode_offset_msg_id(msg_id)
    except ValueError:
        raise BadRequest(f"{field}: not an offset message id (32 or 56 hexadecimal characters)") from None
    addr = yield known_broker(ctx.api, f"{host}:{port}")
    return addr, offset


@route("message/consume-directly", "POST", ["group", "clientId", "offsetMsgId"])
@defer.inlineCallbacks
def consume_directly(ctx: Context, form: Form):
    """Have one online consumer of ``group`` run its listener on a stored message (CONSUME_MESSAGE_DIRECTLY,
    relayed by the broker that stores it); how it went (ConsumeMessageDirectlyResult)."""
    group, client_id = form.group(), client_id_field(form)
    msg_id = form.text("offsetMsgId", 64, required=True)
    addr, _ = yield stored_at(ctx, msg_id)
    result = yield ctx.api.consume_message_directly(addr, group, client_id, msg_id)
    return dict(result.to_json(), offsetMsgId=msg_id, clientId=client_id)


@route("dlq/resend", "POST", ["group", "offsetMsgId"])
def dlq_resend(ctx: Context, form: Form):
    """Send one dead-letter message of ``group`` back to the group through its retry topic."""
    group = form.group()
    return _resend(ctx, group, form.text("offsetMsgId", 64, required=True))


@route("dlq/batch-resend", "POST", ["group", "offsetMsgIds"])
@defer.inlineCallbacks
def dlq_batch_resend(ctx: Context, form: Form):
    """Send several dead-letter messages of ``group`` back (at most MAX_BATCH), one after another: each gets
    its own result or error, so one bad id does not stop the others."""
    group = form.group()
    ids = form.values.get("offsetMsgIds")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise BadRequest("offsetMsgIds: a list of offset message ids")
    if len(ids) > MAX_BATCH:
        raise BadRequest(f"offsetMsgIds: {len(ids)} ids, more than {MAX_BATCH}")
    results = []
    for msg_id in dict.fromkeys(i.strip() for i in ids):
        try:
            sent = yield _resend(ctx, group, msg_id)
            results.append(dict(sent, offsetMsgId=msg_id))
        except (BadRequest, AdminError) as e:
            results.append({"offsetMsgId": msg_id[:64], "error": str(e)})
    return {"group": group, "results": results, "sent": sum("error" not in r for r in results)}


@route("dlq/export", fields=["group", "begin", "end"])
@defer.inlineCallbacks
def dlq_export(ctx: Context, form: Form):
    """The group's dead-letter messages stored in [begin, end] with whole bodies and every property (at most
    ``max_messages``), for the page to save as a file."""
    group = form.group()
    begin, end = form.timestamp("begin"), form.timestamp("end")
    found = yield admin(ctx.api, "consumeMessage", topic=mixall.dlq_topic(group), beginTimestamp=begin,
                        endTimestamp=end, MessageNumber=ctx.config.max_messages)
    found.sort(key=lambda m: m["storeTimestamp"])
    return {"group": group, "exportedAt": int(time.time() * 1000), "messages": found}


@defer.inlineCallbacks
def _resend(ctx: Context, group: str, msg_id: str):
    if len(msg_id) > 64:
        raise BadRequest("offsetMsgId: longer than 64 characters")
    addr, offset = yield stored_at(ctx, msg_id)
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
