"""``mqadmin queryCq`` (Apache's tools ``command.queue``): the entries of one ConsumeQueue as the broker holds
them, for checking what a queue offset points at."""

from __future__ import annotations

from twisted.internet import defer

from mq.admin.api import AdminError, MQAdminAPI
from mq.admin.output import Result, table, to_json
from mq.admin.registry import bounded_int, command, lines, non_negative_int, opt
from mq.common import fastjson
from mq.common.broker_headers import QueryConsumeQueueRequestHeader
from mq.remoting.codes import RequestCode

#: The broker answers at most this many entries per request (mq.broker.processor.store_admin).
MAX_COUNT = 1000


@command(
    "queryCq", "Query cq command.",
    opt("-t", "--topic", required=True, help="topic name"),
    opt("-q", "--queue", required=True, type=bounded_int(0, 2**31 - 1), help="queue num, ie. 1"),
    opt("-i", "--index", required=True, type=non_negative_int, help="start queue index."),
    opt("-c", "--count", type=bounded_int(1, MAX_COUNT), default=10, help="how many."),
    opt("-b", "--broker", metavar="ADDR", help="broker addr."),
    opt("-g", "--consumer", help="consumer group."),
)
@defer.inlineCallbacks
def query_cq(api: MQAdminAPI, args):
    """QUERY_CONSUME_QUEUE to ``-b`` or the topic's first master: the queue's bounds, then per entry its
    CommitLog offset and size, tags code, whether the group's subscription matches it, and the message."""
    addr = args.broker
    if not addr:
        route = yield api.topic_route(args.topic)
        masters = sorted(b.master_addr() for b in route.broker_datas if b.master_addr())
        if not masters:
            raise AdminError(f"No topic route data! (topic '{args.topic}' has no master broker)")
        addr = masters[0]
    ext = QueryConsumeQueueRequestHeader(topic=args.topic, queue_id=args.queue, index=args.index, count=args.count,
                                         consumer_group=args.consumer).encode()
    response = yield api.broker_ok(addr, RequestCode.QUERY_CONSUME_QUEUE, f"query cq {args.queue}@{args.topic}", ext)
    body = fastjson.loads(response.body) if response.body else {}
    entries = body.get("queueData") or []
    data = {"brokerAddr": addr, "remark": response.remark, **body}
    text = []
    if body.get("subscriptionData") is not None:
        text += ["Subscription data: ", to_json(body["subscriptionData"]), "=" * 38]
    text += ["Queue data: ", f"max: {body.get('maxQueueIndex')}, min: {body.get('minQueueIndex')}", "=" * 38]
    if response.remark:
        text.append(response.remark)
    rows = [[args.index + i, e.get("physicOffset"), e.get("physicSize"), e.get("tagsCode"), e.get("eval"),
             e.get("msg")] for i, e in enumerate(entries)]
    text.append(table(["idx", "physicOffset", "physicSize", "tagsCode", "eval", "msg"], rows))
    return Result(data, lines(*text))
