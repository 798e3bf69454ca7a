"""``mqadmin`` message commands (Apache's tools ``command.message``): query, print, send, consume."""

from __future__ import annotations

import random
from typing import Any, Callable, Dict, Optional

from twisted.internet import defer

from mq.admin.api import AdminError, MQAdminAPI, ResponseError, UsageError
from mq.admin.output import Result, message_json, message_text, table
from mq.admin.probe import MAX_PROBE_SIZE, MAX_PROBES, average_after_first, filler, timed_send
from mq.admin.registry import (
    bounded_int,
    command,
    java_bool,
    non_negative_int,
    opt,
    positive_int,
    timestamp_arg,
)
from mq.admin.targets import (
    broker_of,
    queues_of,
    topic_brokers,
    with_topic,
)
from mq.admin.values import MessageQueue
from mq.common import mixall
from mq.common.message import decode_offset_msg_id
from mq.common.route import PERM_WRITE
from mq.remoting.codes import ResponseCode as RC

TOOLS_PRODUCER_GROUP = "TOOLS_PRODUCER"


@command(
    "queryMsgById", "Query Message by Id",
    opt("-i", "--msgId", required=True, help="message id (the offset msgId; several separated by ,)"),
    opt("-g", "--consumerGroup", help="consumer group name (with -d: push the message to that consumer)"),
    opt("-d", "--clientId", help="consumer's client id (with -g: it consumes the message directly)"),
)
@defer.inlineCallbacks
def query_msg_by_id(api: MQAdminAPI, args):
    """Print the messages; with ``-g`` and ``-d``, have that online consumer run its listener on each one
    (CONSUME_MESSAGE_DIRECTLY) and print how it went, as RocketMQ's tool does."""
    push = bool(args.consumerGroup and args.clientId)
    data, blocks = [], []
    for msg_id in [m.strip() for m in args.msgId.split(",") if m.strip()]:
        try:
            (host, port), offset = decode_offset_msg_id(msg_id)
        except ValueError:
            raise UsageError(f"'{msg_id}' is not an offset message id (32 or 56 hex characters)") from None
        addr = f"{host}:{port}"
        msg = yield api.view_message(addr, offset)
        if push:
            result = yield api.consume_message_directly(addr, args.consumerGroup, args.clientId, msg_id)
            data.append(dict(result.to_json(), msgId=msg_id))
            blocks.append(str(result))
        else:
            data.append(message_json(msg))
            blocks.append(message_text(msg))
    return Result(data if len(data) != 1 else data[0], "\n\n".join(blocks))


@defer.inlineCallbacks
def _query_by_key(api: MQAdminAPI, topic: str, key: str, unique: bool):
    _, masters = yield topic_brokers(api, topic)
    found = []
    for name, addr in sorted(masters.items()):
        messages = yield api.query_message(addr, topic, key, unique=unique)
        found.extend((name, m) for m in messages)
    return found


@command(
    "queryMsgByKey", "Query Message by Key",
    opt("-t", "--topic", required=True, help="topic name"),
    opt("-k", "--msgKey", required=True, help="message key"),
)
@defer.inlineCallbacks
def query_msg_by_key(api: MQAdminAPI, args):
    found = yield _query_by_key(api, args.topic, args.msgKey, unique=False)
    if not found:
        raise AdminError(f"no message with key '{args.msgKey}' in topic '{args.topic}'")
    rows = [[m.unique_key or m.msg_id, m.msg_id, name, m.queue_id, m.queue_offset] for name, m in found]
    data = [message_json(m, name, with_body=False) for name, m in found]
    return Result(data, table(["Message ID", "Offset Message ID", "Broker Name", "QID", "Offset"], rows))


@command(
    "queryMsgByUniqueKey", "Query Message by Unique key",
    opt("-i", "--msgId", required=True, help="message id (the client's unique key)"),
    opt("-t", "--topic", required=True, help="the topic of msg"),
    opt("-a", "--showAll", action="store_true", help="print all message, the limit is 32"),
)
@defer.inlineCallbacks
def query_msg_by_unique_key(api: MQAdminAPI, args):
    found = yield _query_by_key(api, args.topic, args.msgId, unique=True)
    if not found:
        raise AdminError(f"no message with unique key '{args.msgId}' in topic '{args.topic}'")
    found = found if args.showAll else found[:1]
    data = [message_json(m, name) for name, m in found]
    text = "\n\n".join(message_text(m, name) for name, m in found)
    return Result(data if args.showAll else data[0], text)


@command(
    "queryMsgByOffset", "Query Message by offset",
    opt("-t", "--topic", required=True, help="topic name"),
    opt("-b", "--brokerName", required=True, help="broker name"),
    opt("-i", "--queueId", required=True, type=non_negative_int, help="queue id"),
    opt("-o", "--offset", required=True, type=non_negative_int, help="queue offset"),
)
@defer.inlineCallbacks
def query_msg_by_offset(api: MQAdminAPI, args):
    _, addr = yield broker_of(api, args.topic, args.brokerName)
    code, _, messages = yield api.pull(addr, mixall.TOOLS_CONSUMER_GROUP, args.topic, args.queueId, args.offset, 1)
    if not messages:
        raise AdminError(f"no message at offset {args.offset} of {args.topic}:{args.brokerName}:{args.queueId}")
    msg = messages[0]
    return Result(message_json(msg, args.brokerName), message_text(msg, args.brokerName))


#: The flags printMsg and printMsgByQueue share: the charset, the tag filter and the time window.
READ_OPTIONS = (
    opt("-c", "--charsetName", default="UTF-8", help="charset of the bodies (default UTF-8)"),
    opt("-s", "--subExpression", default="*", help="subscribe expression (eg: TagA || TagB)"),
    opt("-b", "--beginTimestamp", type=timestamp_arg, metavar="TIME",
        help="begin timestamp [now|currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]"),
    opt("-e", "--endTimestamp", type=timestamp_arg, metavar="TIME",
        help="end timestamp [now|currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]"),
)


@defer.inlineCallbacks
def _scan_queue(api: MQAdminAPI, addr: str, group: str, mq: MessageQueue, begin: int, end: int,
                on_page: Callable[[list], bool], subscription: str = "*"):
    """Pull the messages of one queue with offsets in [begin, end), 32 at a time, handing each page to
    ``on_page`` (which returns False to stop); stops when the queue is read."""
    offset = begin
    while offset < end:
        code, next_offset, messages = yield api.pull(addr, group, mq.topic, mq.queue_id, offset,
                                                     min(32, end - offset), subscription)
        api.progress.advance(max(0, min(next_offset, end) - offset))  # offsets passed, filtered out or not
        if not on_page([m for m in messages if m.queue_offset < end]):
            break
        if code not in (RC.SUCCESS, RC.PULL_RETRY_IMMEDIATELY) or next_offset <= offset:
            break
        offset = next_offset


@defer.inlineCallbacks
def _read_queue(api: MQAdminAPI, addr: str, group: str, mq: MessageQueue, begin: int, end: int, limit: int,
                subscription: str = "*"):
    """Messages of one queue with offsets in [begin, end), at most ``limit``; stops when the queue is read."""
    out: list = []

    def keep(page: list) -> bool:
        out.extend(page)
        return len(out) < limit

    yield _scan_queue(api, addr, group, mq, begin, end, keep, subscription)
    return out[:limit]


@defer.inlineCallbacks
def _queue_window(api: MQAdminAPI, addr: str, mq: MessageQueue, begin_ts: Optional[int], end_ts: Optional[int]):
    low = yield api.min_offset(addr, mq.topic, mq.queue_id)
    high = yield api.max_offset(addr, mq.topic, mq.queue_id)
    if begin_ts is not None:
        low = yield api.search_offset(addr, mq.topic, mq.queue_id, begin_ts)
    if end_ts is not None:
        high = yield api.search_offset(addr, mq.topic, mq.queue_id, end_ts)
    return low, high


@command(
    "printMsg", "Print Message Detail",
    opt("-t", "--topic", required=True, help="topic name"),
    *READ_OPTIONS,
    opt("-d", "--printBody", type=java_bool, default=True, metavar="true|false", help="print body"),
)
@defer.inlineCallbacks
def print_msg(api: MQAdminAPI, args):
    route, masters = yield topic_brokers(api, args.topic)
    data, blocks = [], []
    windows = []
    for mq, addr in with_topic(queues_of(route, masters), args.topic):
        low, high = yield _queue_window(api, addr, mq, args.beginTimestamp, args.endTimestamp)
        windows.append((mq, addr, low, high))
    api.progress.begin("printMsg: messages read", sum(max(0, high - low) for _, _, low, high in windows))
    for mq, addr, low, high in windows:
        messages = yield _read_queue(api, addr, mixall.TOOLS_CONSUMER_GROUP, mq, low, high, 2**31,
                                     args.subExpression)
        data.append({"queue": mq.to_json(), "minOffset": low, "maxOffset": high,
                     "messages": [message_json(m, mq.broker_name, args.printBody) for m in messages]})
        blocks.append(f"minOffset={low}, maxOffset={high}, {mq}")
        blocks.extend(message_text(m, mq.broker_name, args.printBody, args.charsetName) for m in messages)
        blocks.append("-" * 56)
    return Result(data, "\n".join(blocks))


@defer.inlineCallbacks
def choose_send_queue(api: MQAdminAPI, topic: str, broker: Optional[str] = None, qid: Optional[int] = None):
    """(master address, broker name, queue id) a send to ``topic`` goes to, as a producer picks it: the given
    broker (and queue) or a random writable one; a topic the NameServer does not know goes where TBW102
    (auto-create) lives."""
    auto_create = False
    try:
        route, masters = yield topic_brokers(api, topic)
    except ResponseError as e:
        if e.code != RC.TOPIC_NOT_EXIST:
            raise
        auto_create = True
        route, masters = yield topic_brokers(api, mixall.DEFAULT_TOPIC)
    writable = {q.broker_name: q for q in route.queue_datas
                if q.perm & PERM_WRITE and q.write_queue_nums > 0 and q.broker_name in masters}
    if broker:
        if broker not in masters:
            raise AdminError(f"broker '{broker}' is not in the route of topic '{topic}'")
        name = broker
    elif writable:
        name = random.choice(sorted(writable))
    else:
        raise AdminError(f"topic '{topic}' has no writable queue")
    qd = writable.get(name)
    queue_count = qd.write_queue_nums if qd is not None else 1
    if auto_create:
        queue_count = min(queue_count, 4)  # the broker creates the topic with the producer's default, 4 queues
    return masters[name], name, qid if qid is not None else random.randrange(queue_count)


@command(
    "sendMessage", "Send a message",
    opt("-t", "--topic", required=True, help="topic name"),
    opt("-p", "--body", required=True, help="UTF-8 string format of the message body"),
    opt("-k", "--key", help="message keys"),
    opt("-c", "--tags", help="message tags"),
    opt("-b", "--broker", help="send message to target broker (broker name)"),
    opt("-i", "--qid", type=non_negative_int, help="send message to target queue"),
)
@defer.inlineCallbacks
def send_message(api: MQAdminAPI, args):
    if args.qid is not None and not args.broker:
        raise UsageError("-i/--qid needs -b/--broker")
    addr, name, queue_id = yield choose_send_queue(api, args.topic, args.broker, args.qid)
    result = yield api.send_message(addr, name, args.topic, queue_id, args.body.encode("utf-8"),
                                    tags=args.tags, keys=args.key, group=TOOLS_PRODUCER_GROUP)
    rows = [[result["brokerName"], result["queueId"], result["sendStatus"], result["msgId"],
             result["offsetMsgId"]]]
    return Result(result, table(["Broker Name", "QID", "Send Result", "MsgId", "OffsetMsgId"], rows))


@command(
    "consumeMessage", "Consume message",
    opt("-t", "--topic", required=True, help="topic name"),
    opt("-b", "--brokerName", help="broker name"),
    opt("-i", "--queueId", type=non_negative_int, help="queue id (needs -b)"),
    opt("-o", "--offset", type=non_negative_int, help="queue offset (needs -i)"),
    opt("-g", "--consumerGroup", default=mixall.TOOLS_CONSUMER_GROUP, help="consumer group name"),
    opt("-s", "--beginTimestamp", type=timestamp_arg, metavar="TIME",
        help="begin timestamp [now|currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]"),
    opt("-e", "--endTimestamp", type=timestamp_arg, metavar="TIME",
        help="end timestamp [now|currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]"),
    opt("-c", "--MessageNumber", type=positive_int, default=128, help="number of messages to consume (default 128)"),
)
@defer.inlineCallbacks
def consume_message(api: MQAdminAPI, args):
    if args.queueId is not None and not args.brokerName:
        raise UsageError("-i/--queueId needs -b/--brokerName")
    if args.offset is not None and args.queueId is None:
        raise UsageError("-o/--offset needs -i/--queueId")
    if args.beginTimestamp is not None and args.endTimestamp is not None and args.beginTimestamp > args.endTimestamp:
        raise UsageError("the begin timestamp is after the end timestamp")
    route, masters = yield topic_brokers(api, args.topic)
    queues = with_topic(queues_of(route, masters), args.topic)
    if args.brokerName:
        if args.brokerName not in masters:
            raise AdminError(f"broker '{args.brokerName}' is not in the route of topic '{args.topic}'")
        queues = [(mq, a) for mq, a in queues if mq.broker_name == args.brokerName]
    if args.queueId is not None:
        queues = [(mq, a) for mq, a in queues if mq.queue_id == args.queueId]
        if not queues:
            raise AdminError(f"queue {args.queueId} of broker '{args.brokerName}' is not readable in topic "
                             f"'{args.topic}'")
    remaining = args.MessageNumber
    data, blocks = [], []
    for mq, addr in queues:
        if remaining <= 0:
            break
        low, high = yield _queue_window(api, addr, mq, args.beginTimestamp, args.endTimestamp)
        if args.offset is not None:
            low = max(low, args.offset)
        messages = yield _read_queue(api, addr, args.consumerGroup, mq, low, high, remaining)
        remaining -= len(messages)
        for m in messages:
            data.append(message_json(m, mq.broker_name))
            blocks.append(message_text(m, mq.broker_name))
    blocks.append(f"Consumed {len(data)} message(s).")
    return Result(data, "\n\n".join(blocks))


@command(
    "printMsgByQueue", "Print Message Detail",
    opt("-t", "--topic", required=True, help="topic name"),
    opt("-a", "--brokerName", required=True, help="broker name"),
    opt("-i", "--queueId", required=True, type=non_negative_int, help="queue id"),
    *READ_OPTIONS,
    opt("-p", "--printMsg", type=java_bool, default=False, metavar="true|false",
        help="print msg. eg: true | false(default)"),
    opt("-d", "--printBody", type=java_bool, default=False, metavar="true|false",
        help="print body. eg: true | false(default)"),
    opt("-f", "--calculate", type=java_bool, default=False, metavar="true|false",
        help="calculate by tag. eg: true | false(default)"),
)
@defer.inlineCallbacks
def print_msg_by_queue(api: MQAdminAPI, args):
    """One queue read from its first offset (or the begin time) to its last (or the end time): the messages
    with ``-p true``, the count of each tag with ``-f true``. Only what is printed is kept in memory."""
    _, addr = yield broker_of(api, args.topic, args.brokerName)
    mq = MessageQueue(args.topic, args.brokerName, args.queueId)
    low, high = yield _queue_window(api, addr, mq, args.beginTimestamp, args.endTimestamp)
    api.progress.begin("printMsgByQueue: messages read", max(0, high - low))
    messages: list = []
    tags: Dict[str, int] = {}
    read = [0]

    def page(found: list) -> bool:
        read[0] += len(found)
        for m in found:
            if args.calculate and m.tags:
                tags[m.tags] = tags.get(m.tags, 0) + 1
        if args.printMsg:
            messages.extend(found)
        return True

    yield _scan_queue(api, addr, mixall.TOOLS_CONSUMER_GROUP, mq, low, high, page, args.subExpression)
    counts = sorted(tags.items(), key=lambda kv: (-kv[1], kv[0]))
    data: Dict[str, Any] = {"queue": mq.to_json(), "minOffset": low, "maxOffset": high, "messagesRead": read[0]}
    blocks = [f"minOffset={low}, maxOffset={high}, {mq}, {read[0]} message(s) read"]
    if args.printMsg:
        data["messages"] = [message_json(m, mq.broker_name, args.printBody) for m in messages]
        blocks.extend(message_text(m, mq.broker_name, args.printBody, args.charsetName) for m in messages)
    if args.calculate:
        data["tagCounts"] = dict(counts)
        blocks.append(table(["Tag", "Count"], counts))
    return Result(data, "\n\n".join(blocks))


@command(
    "checkMsgSendRT", "check message send response time",
    opt("-t", "--topic", required=True, help="topic name"),
    opt("-a", "--amount", type=bounded_int(1, MAX_PROBES), default=100, help="message amount | default 100"),
    opt("-s", "--size", type=bounded_int(1, MAX_PROBE_SIZE), default=128, help="message size | default 128 Byte"),
)
@defer.inlineCallbacks
def check_msg_send_rt(api: MQAdminAPI, args):
    """Sends ``amount`` messages of ``size`` bytes, the i-th to the (i mod n)-th writable queue, and prints
    each send's outcome and time; the average leaves out the first send (connection set-up), as the original."""
    route, masters = yield topic_brokers(api, args.topic)
    queues = queues_of(route, masters, readable=False)
    if not queues:
        raise AdminError(f"topic '{args.topic}' has no writable queue")
    body = filler(args.size)
    rows, data, times = [], [], []
    for i in range(args.amount):
        mq, addr = queues[i % len(queues)]
        result, error, rt = yield timed_send(api, addr, mq.broker_name, args.topic, mq.queue_id, body)
        times.append(rt)
        rows.append([mq.broker_name, mq.queue_id, error is None, f"{rt:.0f}"])
        data.append({"brokerName": mq.broker_name, "queueId": mq.queue_id, "sendOk": error is None, "rtMs": rt,
                     "error": error})
    avg = average_after_first(tuple(times))
    text = table(["Broker Name", "QID", "Send Result", "RT"], rows) + f"\nAvg RT: {avg:.2f}"
    return Result({"sends": data, "avgRtMs": avg}, text)
