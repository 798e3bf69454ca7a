"""``mqadmin`` offset commands (Apache's tools ``command.offset``): reset and read consumer offsets."""

from __future__ import annotations

from typing import Dict

from twisted.internet import defer

from mq.admin.api import (
    AdminError,
    MessageQueue,
    MQAdminAPI,
    ResponseError,
    UsageError,
    parse_timestamp,
)
from mq.admin.output import Result, join, table
from mq.admin.registry import (
    command,
    java_bool,
    opt,
)
from mq.admin.targets import (
    topic_brokers,
)
from mq.remoting.codes import ResponseCode as RC


@command(
    "getConsumerStatus", "get consumer status from client.",
    opt("-g", "--group", required=True, help="the consumer group"),
    opt("-t", "--topic", required=True, help="the topic"),
    opt("-i", "--originClientId", metavar="CLIENT", help="only the consumer with this client id (or address)"),
)
@defer.inlineCallbacks
def get_consumer_status(api: MQAdminAPI, args):
    """The offsets each online consumer of the group holds for the topic's queues, as the consumers report
    them to a broker of the topic (INVOKE_BROKER_TO_GET_CONSUMER_STATUS)."""
    _, masters = yield topic_brokers(api, args.topic)
    addr = sorted(masters.items())[0][1]
    status = yield api.consumer_status(addr, args.topic, args.group, args.originClientId)
    if not status:
        which = f" with client id or address '{args.originClientId}'" if args.originClientId else ""
        raise AdminError(f"no consumer of group '{args.group}'{which} reported its offsets via broker {addr}")
    rows = [[cid, mq.broker_name, mq.queue_id, offset]
            for cid, queues in sorted(status.items()) for mq, offset in sorted(queues.items())]
    data = {"group": args.group, "topic": args.topic, "originClientId": args.originClientId or "",
            "brokerAddr": addr,
            "consumerTable": {cid: [dict(mq.to_json(), offset=offset) for mq, offset in sorted(queues.items())]
                              for cid, queues in sorted(status.items())}}
    header = (f"get consumer status from client. group={args.group}, topic={args.topic}, "
              f"originClientId={args.originClientId or ''}")
    return Result(data, join(header, table(["clientId", "brokerName", "queueId", "offset"], rows)))


@command(
    "resetOffsetByTime", "Reset consumer offset by timestamp(without client restart)",
    opt("-g", "--group", required=True, help="the consumer group"),
    opt("-t", "--topic", required=True, help="the topic"),
    opt("-s", "--timestamp", required=True, help="the timestamp [now|currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]"),
    opt("-f", "--force", type=java_bool, default=True, metavar="true|false",
        help="rollback even when the new offset is past the committed one (default true)"),
    opt("-c", "--cplus", action="store_true", help="reset c++ client offset"),
)
@defer.inlineCallbacks
def reset_offset_by_time(api: MQAdminAPI, args):
    try:
        timestamp = parse_timestamp(args.timestamp)
    except ValueError as e:
        raise UsageError(str(e)) from None
    _, masters = yield topic_brokers(api, args.topic)
    offsets: Dict[MessageQueue, int] = {}
    fallback = False
    for _, addr in sorted(masters.items()):
        code, remark, table_ = yield api.reset_offset_in_broker(addr, args.topic, args.group, timestamp, args.force,
                                                                args.cplus)
        if code == RC.SUCCESS:
            offsets.update({mq: int(v) for mq, v in table_.items()})
        elif code in (RC.CONSUMER_NOT_ONLINE, RC.REQUEST_CODE_NOT_SUPPORTED):
            fallback = True  # nobody online to tell (or a broker without the call): write the offsets directly
            part = yield _reset_offsets_in_broker_store(api, addr, args.group, args.topic, timestamp, args.force)
            offsets.update(part)
        else:
            raise ResponseError(f"reset offset of '{args.group}' on broker {addr}: {remark or code}", code, remark)
    rows = [[mq.broker_name, mq.queue_id, off] for mq, off in sorted(offsets.items())]
    header = (f"rollback consumer offset by specified group[{args.group}], topic[{args.topic}], "
              f"force[{str(args.force).lower()}], timestamp(string)[{args.timestamp}], timestamp(long)[{timestamp}]")
    data = {"group": args.group, "topic": args.topic, "force": args.force, "timestamp": timestamp,
            "offsetsWrittenByTool": fallback,
            "offsets": [{"brokerName": mq.broker_name, "queueId": mq.queue_id, "offset": off}
                        for mq, off in sorted(offsets.items())]}
    return Result(data, join(header, table(["brokerName", "queueId", "offset"], rows)))


@defer.inlineCallbacks
def _reset_offsets_in_broker_store(api: MQAdminAPI, addr: str, group: str, topic: str, timestamp: int,
                                   force: bool):
    """The offline reset: per queue, the offset of ``timestamp`` becomes the group's committed offset."""
    _, stats = yield api.consume_stats(addr, group, topic)
    out: Dict[MessageQueue, int] = {}
    for mq in sorted(stats):
        if mq.topic != topic:
            continue
        target = yield api.search_offset(addr, topic, mq.queue_id, timestamp)
        current = stats[mq].get("consumerOffset", 0)
        if force or target < current:
            yield api.update_consumer_offset(addr, group, topic, mq.queue_id, target)
            out[mq] = target
        else:
            out[mq] = current
    return out
