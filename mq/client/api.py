"""``ClientAPI``: the client's requests to NameServers and brokers, typed both ways (Java ``MQClientAPIImpl``).

Every method returns a Deferred. Error answers become ``MQBrokerError`` with the response code; transport
failures stay ``RemotingError`` (timeouts, closed connections), which the producer treats as retriable.
"""

from __future__ import annotations

import zlib
from typing import Iterable, List, Optional, Sequence

from twisted.internet import defer

from mq.client.headers import ConsumerSendMsgBackRequestHeader, EndTransactionRequestHeader
from mq.client.model import (
    MessageQueue,
    MQBrokerError,
    MQClientError,
    PullResult,
    PullStatus,
    SendResult,
    SendStatus,
)
from mq.client.simple import max_offset_request, query_offset_request, route_request, update_offset_request
from mq.common import fastjson
from mq.common.broker_headers import (
    ConsumerGroupRequestHeader,
    OffsetResponseHeader,
    PullMessageRequestHeader,
    PullMessageResponseHeader,
    QueueRequestHeader,
    SearchOffsetRequestHeader,
    SendMessageRequestHeader,
    UnregisterClientRequestHeader,
)
from mq.common.compression import MAX_INFLATED_BODY, inflate
from mq.common.heartbeat import HeartbeatData, SubscriptionData
from mq.common.message import MessageConst, MessageExt, MessageSysFlag
from mq.common.message_record import decode_messages
from mq.common.route import TopicRouteData
from mq.remoting.client import RemotingClient
from mq.remoting.codes import RequestCode, ResponseCode, SerializeType
from mq.remoting.command import RemotingCommand

RC = ResponseCode

_SEND_STATUS = {
    RC.SUCCESS: SendStatus.SEND_OK,
    RC.FLUSH_DISK_TIMEOUT: SendStatus.FLUSH_DISK_TIMEOUT,
    RC.FLUSH_SLAVE_TIMEOUT: SendStatus.FLUSH_SLAVE_TIMEOUT,
    RC.SLAVE_NOT_AVAILABLE: SendStatus.SLAVE_NOT_AVAILABLE,
}
_PULL_STATUS = {
    RC.SUCCESS: PullStatus.FOUND,
    RC.PULL_NOT_FOUND: PullStatus.NO_NEW_MSG,
    RC.PULL_RETRY_IMMEDIATELY: PullStatus.NO_MATCHED_MSG,
    RC.PULL_OFFSET_MOVED: PullStatus.OFFSET_ILLEGAL,
}
_MIN_OFFSET = MessageConst.PROPERTY_MIN_OFFSET
_MAX_OFFSET = MessageConst.PROPERTY_MAX_OFFSET


def _send_code(reply: bool) -> int:
    return RequestCode.SEND_REPLY_MESSAGE_V2 if reply else RequestCode.SEND_MESSAGE_V2


def broker_error(what: str, response: RemotingCommand) -> MQBrokerError:
    try:
        name = RC(response.code).name
    except ValueError:
        name = str(response.code)
    return MQBrokerError(f"{what}: {name} ({response.code}) {response.remark or ''}".rstrip(), response.code,
                         response.remark)


def _expect_success(what: str):
    def check(response: RemotingCommand) -> RemotingCommand:
        if response.code != RC.SUCCESS:
            raise broker_error(what, response)
        return response

    return check


def send_result(response: RemotingCommand, mq: MessageQueue, uniq_id: str) -> SendResult:
    """A SendResult from a send response; raises ``MQBrokerError`` if the message was not stored."""
    status = _SEND_STATUS.get(response.code)
    if status is None:
        raise broker_error(f"send to {mq.broker_name}", response)
    ext = response.ext_fields or {}
    queue_id = int(ext.get("queueId", mq.queue_id))
    return SendResult(status, uniq_id, ext.get("msgId", ""), MessageQueue(mq.topic, mq.broker_name, queue_id),
                      int(ext.get("queueOffset", -1)), ext.get("transactionId"), ext.get("MSG_REGION"),
                      ext.get("TRACE_ON", "true") != "false")


def unpack_messages(body: bytes, subscription: Optional[SubscriptionData], min_offset: int,
                    max_offset: int) -> List[MessageExt]:
    """Decode a pull body: inflate compressed bodies, drop messages whose exact tag is not subscribed (the
    broker filters on the tag hash only), and mark each with MIN_OFFSET/MAX_OFFSET as Java does."""
    messages = decode_messages(body)
    tags = subscription.tags_set if subscription is not None and subscription.expression_type == "TAG" else None
    out = []
    lo, hi = str(min_offset), str(max_offset)
    for msg in messages:
        if tags and msg.properties.get(MessageConst.PROPERTY_TAGS) not in tags:
            continue
        if msg.sys_flag & MessageSysFlag.COMPRESSED_FLAG:
            try:
                msg.body = inflate(msg.body, MAX_INFLATED_BODY)
            except (zlib.error, ValueError):
                pass  # leave it as stored (or past the bound); the consumer sees the raw bytes
        props = msg.properties
        props[_MIN_OFFSET] = lo
        props[_MAX_OFFSET] = hi
        out.append(msg)
    return out


class ClientAPI:
    """Typed requests over one ``RemotingClient``."""

    def __init__(self, remoting: RemotingClient, timeout: float = 3.0) -> None:
        self.remoting = remoting
        self.timeout = timeout
        #: How sends' headers are written: JSON (every client's default), or RocketMQ's binary layout (the
        #: trace producer's: a trace message's KEYS run to 28,000 characters, which JSON escapes at ~100 µs a
        #: message and the binary layout copies in ~9; brokers read both, as Java's RemotingCommand does).
        self.send_serialize_type = SerializeType.JSON

    def invoke(self, addr: str, request: RemotingCommand, timeout: Optional[float] = None) -> defer.Deferred:
        return self.remoting.invoke(addr, request, timeout or self.timeout)

    def oneway(self, addr: str, request: RemotingCommand) -> defer.Deferred:
        return self.remoting.invoke_oneway(addr, request)

    # -- NameServer -------------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def get_route(self, namesrv_addrs: Sequence[str], topic: str, timeout: Optional[float] = None):
        """The topic's TopicRouteData from the first NameServer that answers, None if it does not know the topic."""
        last: Optional[Exception] = None
        for addr in namesrv_addrs:
            try:
                response = yield self.invoke(addr, route_request(topic), timeout)
            except Exception as e:  # a NameServer down: ask the next one
                last = e
                continue
            if response.code == RC.TOPIC_NOT_EXIST:
                return None
            if response.code != RC.SUCCESS:
                last = broker_error(f"route of {topic}", response)
                continue
            return TopicRouteData.from_json(fastjson.loads(response.body))
        raise MQClientError(f"no NameServer answered the route of {topic}: {last}") from last

    # -- sends ------------------------------------------------------------------------------------------

    def send(self, addr: str, header: SendMessageRequestHeader, body: bytes, mq: MessageQueue, uniq_id: str,
             timeout: Optional[float] = None, batch: bool = False, reply: bool = False) -> defer.Deferred:
        """SEND_MESSAGE_V2, or SEND_BATCH_MESSAGE (``batch``), or SEND_REPLY_MESSAGE_V2 (``reply``)."""
        code = RequestCode.SEND_BATCH_MESSAGE if batch else _send_code(reply)
        request = RemotingCommand.request(code, header.encode_short(), body, serialize_type=self.send_serialize_type)
        return self.invoke(addr, request, timeout).addCallback(send_result, mq, uniq_id)

    def send_oneway(self, addr: str, header: SendMessageRequestHeader, body: bytes,
                    reply: bool = False) -> defer.Deferred:
        return self.oneway(addr, RemotingCommand.request(_send_code(reply), header.encode_short(), body))

    # -- pulls and offsets ------------------------------------------------------------------------------

    def pull(self, addr: str, header: PullMessageRequestHeader, subscription: Optional[SubscriptionData],
             timeout: float) -> defer.Deferred:
        """A PullResult; messages decoded and filtered (see ``unpack_messages``)."""

        def done(response: RemotingCommand) -> PullResult:
            status = _PULL_STATUS.get(response.code)
            if status is None:
                raise broker_error(f"pull {header.topic}:{header.queue_id} from {addr}", response)
            h = PullMessageResponseHeader.decode(response.ext_fields)
            messages = []
            if status is PullStatus.FOUND and response.body:
                messages = unpack_messages(response.body, subscription, h.min_offset, h.max_offset)
            return PullResult(status, h.next_begin_offset, h.min_offset, h.max_offset, messages,
                              h.suggest_which_broker_id)

        request = RemotingCommand.request(RequestCode.PULL_MESSAGE, header.encode())
        return self.invoke(addr, request, timeout).addCallback(done)

    def query_consumer_offset(self, addr: str, group: str, mq: MessageQueue) -> defer.Deferred:
        """The committed offset, or -1 when the broker has none (QUERY_NOT_FOUND)."""

        def done(response: RemotingCommand) -> int:
            if response.code == RC.QUERY_NOT_FOUND:
                return -1
            if response.code != RC.SUCCESS:
                raise broker_error(f"query offset of {mq} for {group}", response)
            return OffsetResponseHeader.decode(response.ext_fields).offset

        return self.invoke(addr, query_offset_request(group, mq.topic, mq.queue_id)).addCallback(done)

    def update_consumer_offset(self, addr: str, group: str, mq: MessageQueue, offset: int,
                               oneway: bool = False) -> defer.Deferred:
        request = update_offset_request(group, mq.topic, mq.queue_id, offset)
        if oneway:
            return self.oneway(addr, request)
        return self.invoke(addr, request).addCallback(_expect_success(f"update offset of {mq} for {group}"))

    def _offset(self, addr: str, request: RemotingCommand, what: str) -> defer.Deferred:
        return self.invoke(addr, request).addCallback(_expect_success(what)).addCallback(
            lambda r: OffsetResponseHeader.decode(r.ext_fields).offset)

    def max_offset(self, addr: str, mq: MessageQueue) -> defer.Deferred:
        return self._offset(addr, max_offset_request(mq.topic, mq.queue_id), f"max offset of {mq}")

    def min_offset(self, addr: str, mq: MessageQueue) -> defer.Deferred:
        ext = QueueRequestHeader(topic=mq.topic, queue_id=mq.queue_id).encode()
        return self._offset(addr, RemotingCommand.request(RequestCode.GET_MIN_OFFSET, ext), f"min offset of {mq}")

    def search_offset(self, addr: str, mq: MessageQueue, timestamp_ms: int) -> defer.Deferred:
        ext = SearchOffsetRequestHeader(topic=mq.topic, queue_id=mq.queue_id, timestamp=timestamp_ms).encode()
        request = RemotingCommand.request(RequestCode.SEARCH_OFFSET_BY_TIMESTAMP, ext)
        return self._offset(addr, request, f"offset of {mq} at {timestamp_ms}")

    # -- membership -------------------------------------------------------------------------------------

    def heartbeat(self, addr: str, data: HeartbeatData) -> defer.Deferred:
        request = RemotingCommand.request(RequestCode.HEART_BEAT, None, fastjson.dumps_bytes(data))
        return self.invoke(addr, request).addCallback(_expect_success(f"heartbeat to {addr}"))

    def unregister_client(self, addr: str, client_id: str, producer_group: Optional[str] = None,
                          consumer_group: Optional[str] = None) -> defer.Deferred:
        ext = UnregisterClientRequestHeader(client_id=client_id, producer_group=producer_group,
                                            consumer_group=consumer_group).encode()
        request = RemotingCommand.request(RequestCode.UNREGISTER_CLIENT, ext)
        return self.invoke(addr, request).addCallback(_expect_success(f"unregister from {addr}"))

    def consumer_ids(self, addr: str, group: str) -> defer.Deferred:
        """The client ids of a consumer group, as the broker knows them (empty when it knows none)."""

        def done(response: RemotingCommand) -> List[str]:
            if response.code != RC.SUCCESS:
                return []  # the broker answers SYSTEM_ERROR for a group without members
            return [str(c) for c in fastjson.loads(response.body).get("consumerIdList") or []]

        ext = ConsumerGroupRequestHeader(consumer_group=group).encode()
        return self.invoke(addr, RemotingCommand.request(RequestCode.GET_CONSUMER_LIST_BY_GROUP, ext)).addCallback(done)

    # -- retries, transactions, locks -------------------------------------------------------------------

    def send_back(self, addr: str, msg: MessageExt, group: str, delay_level: int,
                  max_reconsume_times: int) -> defer.Deferred:
        origin = msg.properties.get(MessageConst.PROPERTY_ORIGIN_MESSAGE_ID) or msg.msg_id
        ext = ConsumerSendMsgBackRequestHeader(
            offset=msg.commit_log_offset, group=group, delay_level=delay_level, origin_msg_id=origin,
            origin_topic=msg.topic, unit_mode=False, max_reconsume_times=max_reconsume_times).encode()
        request = RemotingCommand.request(RequestCode.CONSUMER_SEND_MSG_BACK, ext)
        return self.invoke(addr, request).addCallback(_expect_success(f"send back {msg.msg_id}"))

    def end_transaction(self, addr: str, header: EndTransactionRequestHeader, remark: Optional[str] = None):
        request = RemotingCommand.request(RequestCode.END_TRANSACTION, header.encode())
        request.remark = remark
        return self.oneway(addr, request)

    def lock_batch(self, addr: str, group: str, client_id: str, mqs: Iterable[MessageQueue]) -> defer.Deferred:
        """The subset of ``mqs`` the broker locked for this client."""
        body = fastjson.dumps_bytes({"clientId": client_id, "consumerGroup": group,
                                     "mqSet": [mq.to_json() for mq in mqs]})

        def done(response: RemotingCommand):
            if response.code != RC.SUCCESS:
                raise broker_error(f"lock queues of {group} on {addr}", response)
            data = fastjson.loads(response.body) if response.body else {}
            return {MessageQueue.from_json(m) for m in data.get("lockOKMQSet") or []}

        return self.invoke(addr, RemotingCommand.request(RequestCode.LOCK_BATCH_MQ, None, body)).addCallback(done)

    def unlock_batch(self, addr: str, group: str, client_id: str, mqs: Iterable[MessageQueue],
                     oneway: bool = False) -> defer.Deferred:
        body = fastjson.dumps_bytes({"clientId": client_id, "consumerGroup": group,
                                     "mqSet": [mq.to_json() for mq in mqs]})
        request = RemotingCommand.request(RequestCode.UNLOCK_BATCH_MQ, None, body)
        if oneway:
            return self.oneway(addr, request)
        return self.invoke(addr, request).addCallback(_expect_success(f"unlock queues of {group}"))
