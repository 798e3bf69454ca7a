"""Request-reply (RocketMQ 4.6+): building replies, and the requests of a client instance waiting for theirs.

A requester sends an ordinary message carrying ``CORRELATION_ID`` (a fresh UUID), ``REPLY_TO_CLIENT`` (its
client id) and ``TTL`` (the timeout in ms) with ``Producer.request``. A responder consumes it and sends
``create_reply(request, body)`` (topic ``<cluster>_REPLY_TOPIC`` from the request's ``CLUSTER``,
``MSG_TYPE=reply``) with ``Producer.send_reply``: SEND_REPLY_MESSAGE_V2 (325). The broker pushes the reply to
the requester's connection (PUSH_REPLY_MESSAGE_TO_CLIENT, 326); ``ReplyWaiters`` hands it to the request
with the same correlation id.
"""

from __future__ import annotations

import uuid
import zlib
from typing import Dict, Optional, Union

from twisted.internet import defer
from twisted.python.failure import Failure

from mq.client.model import MQClientError, RequestTimeoutError
from mq.common.broker_headers import ReplyMessageRequestHeader
from mq.common.compression import MAX_INFLATED_BODY, inflate
from mq.common.message import Message, MessageConst, MessageExt, MessageSysFlag, string_to_properties
from mq.common.mixall import reply_topic
from mq.remoting.command import RemotingCommand

CORRELATION_ID = MessageConst.PROPERTY_CORRELATION_ID
REPLY_TO_CLIENT = MessageConst.PROPERTY_MESSAGE_REPLY_TO_CLIENT
TTL = MessageConst.PROPERTY_MESSAGE_TTL
MSG_TYPE = MessageConst.PROPERTY_MESSAGE_TYPE
#: ``MSG_TYPE`` of a reply (Java ``MixAll.REPLY_MESSAGE_FLAG``); such messages are sent with code 325.
REPLY_MESSAGE_FLAG = "reply"


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def is_reply(msg: Message) -> bool:
    return msg.properties.get(MSG_TYPE) == REPLY_MESSAGE_FLAG


def create_reply(request: Message, body: Union[bytes, str]) -> Message:
    """The reply to a consumed request message (Java ``MessageUtil.createReplyMessage``): topic
    ``<cluster>_REPLY_TOPIC`` of the request's ``CLUSTER`` (set by the broker), ``MSG_TYPE=reply``, and the
    request's ``CORRELATION_ID``, ``REPLY_TO_CLIENT`` and ``TTL``."""
    if request is None:
        raise MQClientError("create reply message fail, requestMessage cannot be null.")
    cluster = request.properties.get(MessageConst.PROPERTY_CLUSTER)
    if not cluster:
        raise MQClientError("create reply message fail, requestMessage error, property[CLUSTER] is null.")
    reply = Message(reply_topic(cluster), body.encode("utf-8") if isinstance(body, str) else bytes(body))
    props = reply.properties
    props[MSG_TYPE] = REPLY_MESSAGE_FLAG
    for key in (CORRELATION_ID, REPLY_TO_CLIENT, TTL):
        value = request.properties.get(key)
        if value is not None:
            props[key] = value
    return reply


def _host(text: Optional[str]):
    ip, _, port = (text or "").rpartition(":")
    return (ip, int(port)) if ip and port.isdigit() else ("127.0.0.1", 0)


def reply_from_push(request: RemotingCommand, arrived_ms: int) -> MessageExt:
    """The reply message of a PUSH_REPLY_MESSAGE_TO_CLIENT request (body inflated, ``ARRIVE_TIME`` added)."""
    h = ReplyMessageRequestHeader.decode(request.ext_fields)
    body = request.body or b""
    if h.sys_flag & MessageSysFlag.COMPRESSED_FLAG:
        try:
            body = inflate(body, MAX_INFLATED_BODY)
        except (zlib.error, ValueError):
            pass  # as Java for a corrupt body, and for one past the bound: keep the bytes as they came
    props = string_to_properties(h.properties or "")
    props[MessageConst.PROPERTY_REPLY_MESSAGE_ARRIVE_TIME] = str(arrived_ms)
    return MessageExt(topic=h.topic, body=body, flag=h.flag, properties=props, queue_id=h.queue_id,
                      sys_flag=h.sys_flag, born_timestamp=h.born_timestamp, born_host=_host(h.born_host),
                      store_timestamp=h.store_timestamp, store_host=_host(h.store_host),
                      reconsume_times=h.reconsume_times or 0)


class _Pending:
    __slots__ = ("deferred", "topic", "timeout", "timer", "sent")

    def __init__(self, deferred: defer.Deferred, topic: str, timeout: float) -> None:
        self.deferred = deferred
        self.topic = topic
        self.timeout = timeout
        self.timer = None
        self.sent = False


class ReplyWaiters:
    """The requests of one client instance waiting for their reply, by correlation id."""

    def __init__(self, reactor) -> None:
        self.reactor = reactor
        self.pending: Dict[str, _Pending] = {}

    def expect(self, correlation_id: str, topic: str, timeout: float) -> defer.Deferred:
        """A Deferred of the reply; it fails with ``RequestTimeoutError`` after ``timeout`` seconds.
        Cancelling it forgets the request."""
        d = defer.Deferred(lambda _: self._drop(correlation_id))
        p = self.pending[correlation_id] = _Pending(d, topic, timeout)
        p.timer = self.reactor.callLater(timeout, self._expire, correlation_id)
        return d

    def sent(self, correlation_id: str) -> None:
        p = self.pending.get(correlation_id)
        if p is not None:
            p.sent = True

    def send_failed(self, correlation_id: str, failure: Failure) -> None:
        p = self._drop(correlation_id)
        if p is not None:
            error = MQClientError(f"send request message to <{p.topic}> fail: {failure.getErrorMessage()}",
                                  getattr(failure.value, "code", None), getattr(failure.value, "remark", None))
            error.__cause__ = failure.value
            p.deferred.errback(error)

    def deliver(self, msg: MessageExt) -> bool:
        """Hand a reply to its request; False if no request waits for its correlation id."""
        p = self._drop(msg.properties.get(CORRELATION_ID) or "")
        if p is None:
            return False
        p.deferred.callback(msg)
        return True

    def fail_all(self, why: str) -> None:
        for cid in list(self.pending):
            p = self._drop(cid)
            p.deferred.errback(MQClientError(f"request to <{p.topic}> abandoned: {why}"))

    def _expire(self, correlation_id: str) -> None:
        p = self.pending.pop(correlation_id, None)
        if p is None:
            return
        ms = int(p.timeout * 1000)
        if p.sent:
            text = f"send request message to <{p.topic}> OK, but wait reply message timeout, {ms} ms."
        else:
            text = f"request to <{p.topic}> timed out after {ms} ms before the request was sent"
        p.deferred.errback(RequestTimeoutError(text))

    def _drop(self, correlation_id: str) -> Optional[_Pending]:
        p = self.pending.pop(correlation_id, None)
        if p is not None and p.timer is not None and p.timer.active():
            p.timer.cancel()
        return p
