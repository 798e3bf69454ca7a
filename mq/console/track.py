"""Which consumer groups consumed a message: rocketmq-dashboard's message track (Java's messageTrackDetail).

For each group that consumes the message's topic (QUERY_TOPIC_CONSUME_BY_WHO on the topic's masters): not
online (no connection), pulling by itself (CONSUME_ACTIVELY: the broker cannot tell), or for a push group
whether its committed offset on the message's queue of the message's broker is past the message (consumed, or
consumed but filtered out when its subscription's tags leave the message's tag out) or not yet. The page
offers "resend to a consumer" beside each group.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from twisted.internet import defer

from mq.admin.api import AdminError, ResponseError
from mq.admin.targets import consumer_connection_of
from mq.admin.values import route_masters
from mq.console.dlq import stored_at
from mq.console.forms import Context, Form, route
from mq.remoting.codes import ResponseCode as RC

#: Most groups one message's track checks (each costs two or three admin calls).
MAX_GROUPS = 64

CONSUMED = "CONSUMED"
CONSUMED_BUT_FILTERED = "CONSUMED_BUT_FILTERED"
PULL = "PULL"
NOT_CONSUME_YET = "NOT_CONSUME_YET"
NOT_ONLINE = "NOT_ONLINE"
UNKNOWN = "UNKNOWN"


def track_type(connection: Dict[str, Any], consumed: bool, topic: str, tags: Optional[str]) -> str:
    """A group's track as Java's messageTrackDetail decides it, from its connection info and whether its
    offset is past the message."""
    if connection.get("consumeType") == "CONSUME_ACTIVELY":
        return PULL
    if not consumed:
        return NOT_CONSUME_YET
    sub = (connection.get("subscriptionTable") or {}).get(topic)
    if sub is not None:
        tags_set = sub.get("tagsSet") or []
        if tags_set and "*" not in tags_set and tags not in tags_set:
            return CONSUMED_BUT_FILTERED
    return CONSUMED


@route("messages/track", fields=["id"])
@defer.inlineCallbacks
def message_track(ctx: Context, form: Form):
    """The track of the message whose offset id is ``id``, one entry per consumer group of its topic."""
    msg_id = form.text("id", 64, required=True)
    addr, offset = yield stored_at(ctx, msg_id, "id")
    msg = yield ctx.api.view_message(addr, offset)
    masters = route_masters((yield ctx.api.topic_route(msg.topic)))
    groups: set = set()
    for _, master in sorted(masters.items()):
        try:
            groups.update((yield ctx.api.topic_consumed_by(master, msg.topic)))
        except AdminError:
            continue
    ordered = sorted(groups)
    tracks: List[Dict[str, Any]] = []
    for group in ordered[:MAX_GROUPS]:
        entry: Dict[str, Any] = {"consumerGroup": group, "trackType": UNKNOWN, "exceptionDesc": None}
        tracks.append(entry)
        try:
            _, connection = yield consumer_connection_of(ctx.api, group, None)
        except ResponseError as e:
            if e.code == RC.CONSUMER_NOT_ONLINE:
                entry["trackType"] = NOT_ONLINE
            entry["exceptionDesc"] = f"CODE:{e.code} DESC:{e.remark or e}"
            continue
        except AdminError as e:
            entry["exceptionDesc"] = str(e)
            continue
        consumed = False
        if connection.get("consumeType") != "CONSUME_ACTIVELY":
            try:
                _, table = yield ctx.api.consume_stats(addr, group, msg.topic)
            except AdminError as e:
                entry["exceptionDesc"] = str(e)
                continue
            consumed = any(mq.topic == msg.topic and mq.queue_id == msg.queue_id
                           and int(ow.get("consumerOffset") or 0) > msg.queue_offset for mq, ow in table.items())
        entry["trackType"] = track_type(connection, consumed, msg.topic, msg.tags)
    return {"offsetMsgId": msg_id, "topic": msg.topic, "tracks": tracks, "truncated": len(ordered) > MAX_GROUPS}
