"""SEND_REPLY_MESSAGE (324) and SEND_REPLY_MESSAGE_V2 (325): a responder's reply, pushed to the requester.

RocketMQ 4.6+ request-reply. The requester sent an ordinary message carrying ``CORRELATION_ID``,
``REPLY_TO_CLIENT`` (its client id) and ``TTL``; the responder answers with a reply message (``MSG_TYPE=reply``,
topic ``<cluster>_REPLY_TOPIC``) sent with one of these codes. The broker checks it like a send, finds the
requester's connection among the producer connections by the ``REPLY_TO_CLIENT`` client id, and forwards the
reply to it as PUSH_REPLY_MESSAGE_TO_CLIENT (326) with a ``ReplyMessageRequestHeader`` (properties gain
``PUSH_REPLY_TIME``). With ``storeReplyMessageEnable`` (default true) the reply is also stored in its topic.

The answer to the responder is shaped like a send's. As in RocketMQ 4.9.8: its code says whether the push
worked (SYSTEM_ERROR with ``push reply message fail, channel of <id> not found.`` when the requester is not
connected; the reply is still stored), and ``msgId``/``queueOffset`` are the stored record's, or ``"0"`` when
the reply was not stored. Differences, on purpose: the push and the store run side by side instead of one
after the other; the push waits 3 s for the requester (RocketMQ 10 s, longer than a client's send timeout);
the stored record keeps the header's ``sysFlag`` (RocketMQ stores 0, losing the compressed bit of a large
reply); the pushed header's ``queueId`` is the queue actually used, not the −1 of a "broker picks" request.
The stored properties are the received ones, without ``CLUSTER`` (RocketMQ's reply path adds none).

A requester that does not read what the broker already sent it (its connection's unsent output is over the
transport's buffer size) gets no push: the responder is answered SYSTEM_BUSY naming the requester, and the reply
is still stored. RocketMQ pushes anyway (Netty buffers it, without a bound) and answers a failed push
SYSTEM_ERROR, which a Java responder retries, storing the reply again and pushing it again to the same client.
"""

from __future__ import annotations

import time
from typing import Optional, Tuple

from twisted.internet import defer
from twisted.logger import Logger

from mq.broker.client.broker2client import not_reading
from mq.broker.processor.send import PUT_STATUS, SendMessageProcessor, born_host
from mq.common.broker_headers import ReplyMessageRequestHeader, SendMessageRequestHeader
from mq.common.message import MessageConst, MessageExtBrokerInner, properties_to_string, string_to_properties
from mq.common.route import TopicConfig
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand

log = Logger()

RC = ResponseCode
_REPLY_TO = MessageConst.PROPERTY_MESSAGE_REPLY_TO_CLIENT
_PUSH_TIME = MessageConst.PROPERTY_PUSH_REPLY_TIME

#: Seconds the broker waits for the requester to take a pushed reply.
PUSH_TIMEOUT = 3.0


def host_text(host: Tuple[str, int]) -> str:
    """``ip:port``, as ``bornHost``/``storeHost`` travel in the reply header."""
    return f"{host[0]}:{host[1]}"


def reply_push_header(h: SendMessageRequestHeader, properties: str, queue_id: int, born: Tuple[str, int],
                      store: Tuple[str, int], store_timestamp: int) -> ReplyMessageRequestHeader:
    """The PUSH_REPLY_MESSAGE_TO_CLIENT header of a reply sent with header ``h``."""
    return ReplyMessageRequestHeader(
        producer_group=h.producer_group, topic=h.topic, default_topic=h.default_topic,
        default_topic_queue_nums=h.default_topic_queue_nums, queue_id=queue_id, sys_flag=h.sys_flag,
        born_timestamp=h.born_timestamp, flag=h.flag, properties=properties, reconsume_times=h.reconsume_times,
        unit_mode=h.unit_mode, born_host=host_text(born), store_host=host_text(store),
        store_timestamp=store_timestamp)


class ReplyMessageProcessor(SendMessageProcessor):
    """Shares a send's checks (topic, permissions, queue, sizes) with ``SendMessageProcessor``."""

    def register(self, dispatcher) -> None:
        dispatcher.register(RequestCode.SEND_REPLY_MESSAGE, self.process_v1)
        dispatcher.register(RequestCode.SEND_REPLY_MESSAGE_V2, self.process_v2)

    def send(self, request: RemotingCommand, channel, h: SendMessageRequestHeader):
        started = time.perf_counter()
        tc = self.check(request, channel, h)
        if not isinstance(tc, TopicConfig):
            return tc
        body = request.body or b""
        refusal = self._check_body(request, body, h.properties)
        if refusal is not None:
            return refusal
        queue_id = h.queue_id if h.queue_id >= 0 else self._random.randrange(tc.write_queue_nums)
        props = string_to_properties(h.properties) if h.properties else {}
        born = born_host(channel)
        pushed = self._push(h, props, body, born, queue_id)
        if self.config.store_reply_message_enable:
            stored = self._store(h, props, body, born, queue_id)
        else:
            stored = defer.succeed(None)
        d = defer.gatherResults([pushed, stored], consumeErrors=True)
        d.addErrback(lambda f: f.value.subFailure)  # the first failure as itself: the dispatcher answers it
        return d.addCallback(self._answer_reply, request, h.topic, queue_id, started)

    def _push(self, h: SendMessageRequestHeader, props: dict, body: bytes, born, queue_id: int) -> defer.Deferred:
        """Push the reply to its requester: a Deferred of None, or of the code and remark saying why it was not."""
        client_id = props.get(_REPLY_TO)
        if not client_id:
            return defer.succeed((RC.SYSTEM_ERROR, f"reply message properties[{_REPLY_TO}] is null"))
        info = self.broker.producer_manager.find_channel(client_id)
        channel = None if info is None else info.channel
        if channel is None or not getattr(channel, "connected", False):
            return defer.succeed((RC.SYSTEM_ERROR, f"push reply message fail, channel of <{client_id}> not found."))
        busy = not_reading(channel, f"the requester <{client_id}>")
        if busy is not None:
            return defer.succeed((RC.SYSTEM_BUSY, f"push reply message fail: {busy}"))
        now = self.broker.now_ms()
        pushed_props = dict(props)
        pushed_props[_PUSH_TIME] = str(now)
        header = reply_push_header(h, properties_to_string(pushed_props), queue_id, born, self.config.store_host, now)
        push = RemotingCommand.request(RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT, header.encode(), body)

        def answered(response: RemotingCommand) -> Optional[Tuple[int, str]]:
            if response.code == RC.SUCCESS:
                return None
            return RC.SYSTEM_ERROR, (f"push reply message to <{client_id}> fail: it answered {response.code} "
                                     f"{response.remark or ''}").rstrip()

        def failed(failure) -> Tuple[int, str]:
            return RC.SYSTEM_ERROR, f"push reply message to <{client_id}> fail: {failure.getErrorMessage()}"

        return channel.send_request(push, PUSH_TIMEOUT).addCallbacks(answered, failed)

    def _store(self, h: SendMessageRequestHeader, props: dict, body: bytes, born, queue_id: int) -> defer.Deferred:
        inner = MessageExtBrokerInner(
            topic=h.topic, body=body, flag=h.flag, properties=props, queue_id=queue_id, sys_flag=h.sys_flag,
            born_timestamp=h.born_timestamp, born_host=born, store_host=self.config.store_host,
            reconsume_times=h.reconsume_times or 0, properties_string=h.properties or None)
        return self.broker.ha.replicated(self.store.put_message(inner), props.get(MessageConst.PROPERTY_WAIT_STORE_MSG_OK))

    def _answer_reply(self, results, request: RemotingCommand, topic: str, queue_id: int,
                      started: float) -> RemotingCommand:
        push_error, put = results
        ext = {"MSG_REGION": self.config.region_id, "TRACE_ON": "true" if self.config.trace_on else "false"}
        if push_error is None:
            ext.update(msgId="0", queueId=str(queue_id), queueOffset="0")
        if put is not None:
            code, remark = PUT_STATUS.get(put.status) or (RC.SYSTEM_ERROR, put.status.name)
            if remark is None:
                ar = put.append_result
                ext.update(msgId=ar.msg_id, queueId=str(queue_id), queueOffset=str(ar.logics_offset))
                self.stats.put_latency.observe(time.perf_counter() - started)
                self.stats.message_in(topic, 1, ar.wrote_bytes)
            else:
                log.warn("reply message to {topic} not stored: {remark}", topic=topic, remark=remark)
        if push_error is not None:
            code, remark = push_error
            log.warn("{error}", error=remark)
            self.stats.send_failed(code)
            return request.response(code, remark, ext)
        return request.response(RC.SUCCESS, None, ext)
