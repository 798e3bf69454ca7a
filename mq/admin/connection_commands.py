"""``mqadmin`` connection commands (Apache's tools ``command.connection`` and ``command.producer``): the
clients of a group, and every producer a broker knows."""

from __future__ import annotations

from twisted.internet import defer

from mq.admin.api import (
    MQAdminAPI,
)
from mq.admin.output import Result, table
from mq.admin.registry import (
    BROKER_ADDR,
    command,
    lines,
    opt,
)
from mq.admin.targets import (
    consumer_connection_of,
    first_success,
    topic_brokers,
)


@command(
    "consumerConnection", "Query consumer's socket connection, client version and subscription",
    opt("-g", "--consumerGroup", required=True, help="consumer group name"),
    BROKER_ADDR,
)
@defer.inlineCallbacks
def consumer_connection(api: MQAdminAPI, args):
    _, conn = yield consumer_connection_of(api, args.consumerGroup, args.brokerAddr)
    connections = sorted(conn.get("connectionSet") or [], key=lambda c: c.get("clientId", ""))
    rows = [[i + 1, c.get("clientId"), c.get("clientAddr"), c.get("language"), c.get("version")]
            for i, c in enumerate(connections)]
    subs = conn.get("subscriptionTable") or {}
    sub_rows = [[i + 1, topic, (sub or {}).get("subString", "")] for i, (topic, sub) in enumerate(sorted(subs.items()))]
    text = lines(
        table(["", "ClientId", "ClientAddr", "Language", "Version"], rows), "",
        "Below is subscription:",
        table(["", "Topic", "SubExpression"], sub_rows), "",
        f"ConsumeType: {conn.get('consumeType', '')}",
        f"MessageModel: {conn.get('messageModel', '')}",
        f"ConsumeFromWhere: {conn.get('consumeFromWhere', '')}",
    )
    return Result(conn, text)


@command(
    "producerConnection", "Query producer's socket connection and client version",
    opt("-g", "--producerGroup", required=True, help="producer group name"),
    opt("-t", "--topic", required=True, help="topic name"),
)
@defer.inlineCallbacks
def producer_connection(api: MQAdminAPI, args):
    _, masters = yield topic_brokers(api, args.topic)
    _, conn = yield first_success(sorted(masters.items()),
                                  lambda a: api.producer_connection(a, args.producerGroup))
    connections = sorted(conn.get("connectionSet") or [], key=lambda c: c.get("clientId", ""))
    rows = [[i + 1, c.get("clientId"), c.get("clientAddr"), c.get("language"), c.get("version")]
            for i, c in enumerate(connections)]
    return Result(conn, table(["", "ClientId", "ClientAddr", "Language", "Version"], rows))


@command(
    "producer", "Query producer's instances, connection, status, etc.",
    opt("-b", "--broker", required=True, metavar="ADDR", help="broker address"),
)
@defer.inlineCallbacks
def producer(api: MQAdminAPI, args):
    """Every producer group the broker holds and its instances, one line each as the original prints them."""
    table_info = yield api.all_producer_info(args.broker.strip())
    data = table_info.get("data") or {}
    text = []
    for group in sorted(data):
        instances = data[group] or []
        if not instances:
            text.append(f"producer group ({group}) instances are empty")
        for p in sorted(instances, key=lambda p: p.get("clientId", "")):
            text.append(f"producer group ({group}) instance : clientId={p.get('clientId')},"
                        f"remoteIP={p.get('remoteIP')}, language={p.get('language')}, version={p.get('version')}, "
                        f"lastUpdateTimestamp={p.get('lastUpdateTimestamp')}")
    return Result(table_info, lines(*text))
