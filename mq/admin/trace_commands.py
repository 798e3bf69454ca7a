"""``mqadmin queryMsgTraceById``: a message's trace, as RocketMQ 4.9.8's tool prints it (or ``--json``).

Trace messages are found through the brokers' key index (QUERY_MESSAGE on the trace topic with the message id
as key, each broker hosting the topic asked in turn); their bodies are decoded by mq.common.trace_data, so
traces written by the Java client and by mq's read alike. The text shows the Pub rows, then the SubAfter rows
grouped by consumer group, in RocketMQ's columns; ``--json`` lists every record about the message (SubBefore
and EndTransaction too).
"""

from __future__ import annotations

import time
from typing import Dict, List

from twisted.internet import defer

from mq.admin.api import QUERY_MAX_TIMESTAMP, AdminError, MQAdminAPI, UsageError
from mq.admin.output import Result
from mq.admin.registry import _number, command, non_negative_int, opt
from mq.admin.targets import topic_brokers
from mq.common.names import topic_error
from mq.common.topic import TRACE_TOPIC
from mq.common.trace_data import TraceView, trace_views

#: The most trace messages one broker is asked for (the broker's own cap, defaultQueryMaxNum, may be lower).
MAX_NUM_LIMIT = 65536
_ROW = "{:<10} {:<20} {:<20} {:<20} {:<10} {:<10}"


def _max_num(text: str) -> int:
    return _number(text, int, "an integer", lambda v: 1 <= v <= MAX_NUM_LIMIT, f"must be 1 to {MAX_NUM_LIMIT}")


def _row(*cells) -> str:
    return _ROW.format(*("null" if c is None else str(c) for c in cells)).rstrip()


def _time(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000.0))


def trace_text(views: List[TraceView]) -> str:
    """RocketMQ's layout: a header and a row per Pub, then per consumer group a header and its Sub rows."""
    out: List[str] = []
    groups: Dict[str, List[TraceView]] = {}
    for v in views:
        if v.msg_type == "Pub":
            out += [_row("#Type", "#ProducerGroup", "#ClientHost", "#SendTime", "#CostTimes", "#Status"),
                    _row("Pub", v.group_name, v.client_host, _time(v.timestamp), f"{v.cost_time}ms", v.status), ""]
        elif v.msg_type == "SubAfter":
            groups.setdefault(str(v.group_name), []).append(v)
    for rows in groups.values():
        out.append(_row("#Type", "#ConsumerGroup", "#ClientHost", "#ConsumerTime", "#CostTimes", "#Status"))
        out += [_row("Sub", v.group_name, v.client_host, _time(v.timestamp), f"{v.cost_time}ms", v.status)
                for v in rows]
        out.append("")
    return "\n".join(out)


@command(
    "queryMsgTraceById", "Query a message trace",
    opt("-i", "--msgId", required=True, help="Message Id"),
    opt("-t", "--traceTopic", default=TRACE_TOPIC, help=f"The name value of message trace topic (default {TRACE_TOPIC})"),
    opt("-b", "--beginTimestamp", type=non_negative_int, default=0, help="Begin timestamp(ms). default:0"),
    opt("-e", "--endTimestamp", type=non_negative_int, default=QUERY_MAX_TIMESTAMP,
        help="End timestamp(ms). default:Long.MAX_VALUE"),
    opt("-num", "--maxNum", type=_max_num, default=64,
        help="The maximum number of messages returned by the query, default:64"),
)
@defer.inlineCallbacks
def query_msg_trace_by_id(api: MQAdminAPI, args):
    msg_id = args.msgId.strip()
    if not msg_id or any(ch.isspace() for ch in msg_id):
        raise UsageError(f"'{args.msgId}' is not a message id (one word: the index splits keys on spaces)")
    topic = args.traceTopic.strip()
    why = topic_error(topic)
    if why is not None:
        raise UsageError(f"-t: {why}")
    _, masters = yield topic_brokers(api, topic)
    messages: list = []
    for _, addr in sorted(masters.items()):
        messages.extend((yield api.query_message(addr, topic, msg_id, args.maxNum, args.beginTimestamp,
                                                 args.endTimestamp)))
    views = trace_views(msg_id, messages)  # at most MAX_TRACE_RECORDS records read, of all brokers' messages
    if not views:
        raise AdminError(f"no trace of message '{msg_id}' in topic '{topic}'")
    views.sort(key=lambda v: v.timestamp)
    return Result([v.to_json() for v in views], trace_text(views))
