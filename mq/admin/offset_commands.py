"""``mqadmin`` offset commands (Apache's tools ``command.offset``): reset and read consumer offsets."""

from __future__ import annotations

from typing import Dict

from twisted.internet import defer

from mq.admin.api import AdminError, MQAdminAPI, ResponseError, UsageError
from mq.admin.output import Result, join, table
from mq.admin.registry import (
    command,
    java_bool,
    opt,
)
from mq.admin.targets import (
    topic_brokers,
)
from mq.admin.values import MessageQueue, parse_timestamp
from mq.common.names import group_error
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
    offsets, fallback = yield _reset(api, args.group, args.topic, timestamp, args.force, args.cplus)
    rows, entries = _offset_rows(offsets)
    header = (f"rollback consumer offset by specified group[{args.group}], topic[{args.topic}], "
              f"force[{str(args.force).lower()}], timestamp(string)[{args.timestamp}], timestamp(long)[{timestamp}]")
    data = {"group": args.group, "topic": args.topic, "force": args.force, "timestamp": timestamp,
            "offsetsWrittenByTool": fallback,
            "offsets": entries}
    return Result(data, join(header, table(["brokerName", "queueId", "offset"], rows)))


#: The timestamp that means "the end of each queue" to INVOKE_BROKER_TO_RESET_OFFSET (skipAccumulatedMessage).
TO_THE_END = -1


def _offset_rows(offsets: Dict[MessageQueue, int]):
    return ([[mq.broker_name, mq.queue_id, off] for mq, off in sorted(offsets.items())],
            [{"brokerName": mq.broker_name, "queueId": mq.queue_id, "offset": off}
             for mq, off in sorted(offsets.items())])


@defer.inlineCallbacks
def _reset(api: MQAdminAPI, group: str, topic: str, timestamp: int, force: bool, cplus: bool = False):
    """({queue: new offset}, whether the tool wrote them itself) after asking each master of the topic to reset
    the group to ``timestamp`` (TO_THE_END: each queue's max offset)."""
    _, masters = yield topic_brokers(api, topic)
    offsets: Dict[MessageQueue, int] = {}
    fallback = False
    api.progress.begin("reset: queues done")  # each broker's queues join the total as it is reached
    for _, addr in sorted(masters.items()):
        code, remark, table_ = yield api.reset_offset_in_broker(addr, topic, group, timestamp, force, cplus)
        if code == RC.SUCCESS:
            offsets.update({mq: int(v) for mq, v in table_.items()})
            api.progress.add_total(len(table_))
            api.progress.advance(len(table_))
        elif code in (RC.CONSUMER_NOT_ONLINE, RC.REQUEST_CODE_NOT_SUPPORTED):
            fallback = True  # nobody online to tell (or a broker without the call): write the offsets directly
            part = yield _reset_offsets_in_broker_store(api, addr, group, topic, timestamp, force)
            offsets.update(part)
        else:
            raise ResponseError(f"reset offset of '{group}' on broker {addr}: {remark or code}", code, remark)
    return offsets, fallback


@defer.inlineCallbacks
def _reset_offsets_in_broker_store(api: MQAdminAPI, addr: str, group: str, topic: str, timestamp: int,
                                   force: bool):
    """The offline reset: per queue, the offset of ``timestamp`` becomes the group's committed offset."""
    _, stats = yield api.consume_stats(addr, group, topic)
    out: Dict[MessageQueue, int] = {}
    queues = sorted(mq for mq in stats if mq.topic == topic)
    api.progress.add_total(len(queues))
    for mq in queues:
        if timestamp == TO_THE_END:
            target = stats[mq].get("brokerOffset", 0)
        else:
            target = yield api.search_offset(addr, topic, mq.queue_id, timestamp)
        current = stats[mq].get("consumerOffset", 0)
        if force or target < current:
            yield api.update_consumer_offset(addr, group, topic, mq.queue_id, target)
            out[mq] = target
        else:
            out[mq] = current
        api.progress.advance()  # one queue searched and written: the slow part of an offline reset
    return out


@command(
    "skipAccumulatedMessage", "Skip all messages that are accumulated (not consumed) currently",
    opt("-g", "--group", required=True, help="set the consumer group"),
    opt("-t", "--topic", required=True, help="set the topic"),
    opt("-f", "--force", type=java_bool, default=True, metavar="true|false",
        help="set the force rollback by timestamp switch[true|false]"),
)
@defer.inlineCallbacks
def skip_accumulated_message(api: MQAdminAPI, args):
    """The group's offsets move to the end of each queue of the topic: a reset to timestamp -1, told to the
    online consumers as resetOffsetByTime does."""
    offsets, fallback = yield _reset(api, args.group, args.topic, TO_THE_END, args.force)
    rows, entries = _offset_rows(offsets)
    data = {"group": args.group, "topic": args.topic, "force": args.force, "offsetsWrittenByTool": fallback,
            "offsets": entries}
    return Result(data, table(["brokerName", "queueId", "offset"], rows))


@command(
    "cloneGroupOffset", "Clone offset from other group.",
    opt("-s", "--srcGroup", required=True, help="set source consumer group"),
    opt("-d", "--destGroup", required=True, help="set destination consumer group"),
    opt("-t", "--topic", required=True, help="set the topic"),
    opt("-o", "--offline", type=java_bool, default=False, metavar="true|false",
        help="the group or the topic is offline"),
)
@defer.inlineCallbacks
def clone_group_offset(api: MQAdminAPI, args):
    """The source group's committed offsets of the topic become the destination group's (UPDATE_CONSUMER_OFFSET
    per queue, on each master of the topic). Queues the source never committed are left alone."""
    if args.srcGroup == args.destGroup:
        raise UsageError("-s/--srcGroup and -d/--destGroup are the same group")
    for group in (args.srcGroup, args.destGroup):
        why = group_error(group)
        if why is not None:
            raise UsageError(f"invalid group name '{group}': {why}")
    _, masters = yield topic_brokers(api, args.topic)
    cloned: Dict[MessageQueue, int] = {}
    for name, addr in sorted(masters.items()):
        try:
            _, stats = yield api.consume_stats(addr, args.srcGroup, args.topic)
        except ResponseError as e:
            if e.code != RC.CONSUMER_NOT_ONLINE:  # "not consumed yet" on this broker: nothing to clone there
                raise
            continue
        for mq in sorted(stats):
            offset = stats[mq].get("consumerOffset", -1)
            if mq.topic == args.topic and mq.broker_name == name and offset >= 0:
                yield api.update_consumer_offset(addr, args.destGroup, args.topic, mq.queue_id, offset)
                cloned[mq] = offset
    if not cloned:
        raise AdminError(f"group '{args.srcGroup}' has no committed offset of topic '{args.topic}' to clone")
    rows, entries = _offset_rows(cloned)
    text = join(f"clone group offset success. srcGroup[{args.srcGroup}], destGroup=[{args.destGroup}], "
                f"topic[{args.topic}]", table(["brokerName", "queueId", "offset"], rows))
    return Result({"srcGroup": args.srcGroup, "destGroup": args.destGroup, "topic": args.topic,
                   "offsets": entries}, text)
