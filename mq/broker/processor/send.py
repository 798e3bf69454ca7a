"""SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320): validate, store, answer.

The header is decoded once; the properties string is parsed once (the broker needs TAGS, WAIT, TRAN_MSG)
and re-encoded once for the stored record (``CLUSTER`` added, ``WAIT`` left out, as RocketMQ 4.9.2+ does);
the store encodes the record once. Every refusal has its RocketMQ response code and a remark that says
what was wrong.

Batches: RocketMQ 4.9 takes the batch path only when the header's ``batch``/``m`` parses true with Java's
``Boolean.parseBoolean``, so a C++ batch (``batch="1"``) is stored by a Java broker as ONE message whose
body is the batch blob (apache/rocketmq-client-cpp#363). This broker reads ``"1"`` as true and stores a C++
batch as the separate messages it contains, which is what the C++ application asked for.

Retry/DLQ redirection, delay levels and transaction half messages hook in through
``BrokerService.prepare_inner``; reply messages (SEND_REPLY_MESSAGE) are ``processor_reply``'s.
"""

from __future__ import annotations

import random
import time
from typing import Dict, Optional, Tuple

from twisted.internet import defer

from mq.broker.processor.batch_shape import Shape, derive_shape
from mq.broker.processor.batch_shape import split as split_batch
from mq.broker.topic.send_rules import topic_for_send, write_refusal
from mq.common import mixall
from mq.common.broker_headers import SendMessageRequestHeader
from mq.common.message import (
    MessageConst,
    MessageExtBrokerInner,
    MessageSysFlag,
    normalize_host,
    properties_to_string,
    string_to_properties,
)
from mq.common.message_batch import BatchError, decode_batch
from mq.common.message_record import MAX_PROPERTIES_LENGTH
from mq.common.route import PERM_WRITE, TopicConfig
from mq.common.topic import SCHEDULE_TOPIC, TIMER_TOPIC
from mq.remoting.client import split_address
from mq.remoting.codes import CURRENT_VERSION, FLAG_RESPONSE, RequestCode, ResponseCode, SerializeType
from mq.remoting.command import RemotingCommand
from mq.remoting.serialization import ResponseTemplate
from mq.store.results import PutMessageResult, PutMessageStatus

RC = ResponseCode
# Bound once: an Enum member read through its class costs a metaclass lookup on every send.
_JSON = SerializeType.JSON
_SUCCESS = RC.SUCCESS
_WAIT = MessageConst.PROPERTY_WAIT_STORE_MSG_OK
_WAIT_ITEM = _WAIT + "\x01"
_CLUSTER = MessageConst.PROPERTY_CLUSTER
_TRAN = MessageConst.PROPERTY_TRANSACTION_PREPARED
_DELAY = MessageConst.PROPERTY_DELAY_TIME_LEVEL

#: Store status → (response code, remark or None for success-like answers).
PUT_STATUS = {
    PutMessageStatus.PUT_OK: (RC.SUCCESS, None),
    PutMessageStatus.FLUSH_DISK_TIMEOUT: (RC.FLUSH_DISK_TIMEOUT, None),
    PutMessageStatus.FLUSH_SLAVE_TIMEOUT: (RC.FLUSH_SLAVE_TIMEOUT, None),
    PutMessageStatus.SLAVE_NOT_AVAILABLE: (RC.SLAVE_NOT_AVAILABLE, None),
    PutMessageStatus.CREATE_MAPEDFILE_FAILED: (RC.SYSTEM_ERROR, "create mapped file failed, server is busy or broken."),
    PutMessageStatus.MESSAGE_ILLEGAL: (
        RC.MESSAGE_ILLEGAL, "the message is illegal, maybe msg body or properties length not matched."),
    PutMessageStatus.PROPERTIES_SIZE_EXCEEDED: (RC.MESSAGE_ILLEGAL, "the message properties are longer than 32767 bytes."),
    PutMessageStatus.SERVICE_NOT_AVAILABLE: (
        RC.SERVICE_NOT_AVAILABLE,
        "service not available now. It may be caused by one of the following reasons: the broker's disk is full, "
        "messages are put to the slave, message store has been shut down, etc."),
    PutMessageStatus.OS_PAGECACHE_BUSY: (RC.SYSTEM_ERROR, "[PC_SYNCHRONIZED]broker busy, start flow control for a while"),
    PutMessageStatus.UNKNOWN_ERROR: (RC.SYSTEM_ERROR, "UNKNOWN_ERROR"),
}


def stored_properties(text: str, props: dict, suffix: str) -> str:
    """The properties string to store: ``text`` without ``WAIT`` (RocketMQ 4.9.2+), then ``suffix``.

    Works on the string as received (one ``find`` in the common case) and re-encodes only when a key merely
    ends in ``WAIT``.
    """
    i = text.find(_WAIT_ITEM)
    if i >= 0:
        if i > 0 and text[i - 1] != "\x02":
            text = properties_to_string({k: v for k, v in props.items() if k != _WAIT})
        else:
            j = text.find("\x02", i)
            text = text[:i] + ("" if j < 0 else text[j + 1:])
    if text and not text.endswith("\x02"):
        text += "\x02"
    return text + suffix


def born_host(channel) -> Tuple[str, int]:
    """The client's address as a stored born host (IPv4-mapped IPv6 folded to IPv4), cached per channel."""
    attrs = channel.attributes
    host = attrs.get("born_host")
    if host is None:
        ip, port = split_address(channel.peer)
        host = attrs["born_host"] = (normalize_host(ip), port)
    return host


class SendMessageProcessor:
    def __init__(self, broker) -> None:
        self.broker = broker
        self.config = broker.config
        self.topics = broker.topic_config_manager
        self.store = broker.store
        self.stats = broker.stats
        self._random = random.Random()
        self._answer_template: Tuple[object, Optional[ResponseTemplate]] = (None, None)
        #: topic → (config, queue count) from ``_topic_config``, for the topic table generation
        self._checked: Dict[str, Tuple[TopicConfig, int]] = {}
        self._checked_generation = -1
        #: the last batch's member shape (batch_shape), and whether batches may take that path at all
        self._shape: Optional[Shape] = None
        self.uniform_batches = True
        self._last_batch_header: Tuple[Optional[str], str, tuple] = (None, "", ())

    def register(self, dispatcher) -> None:
        dispatcher.register(RequestCode.SEND_MESSAGE, self.process_v1)
        dispatcher.register(RequestCode.SEND_MESSAGE_V2, self.process_v2)
        dispatcher.register(RequestCode.SEND_BATCH_MESSAGE, self.process_v2)

    def process_v1(self, request: RemotingCommand, channel):
        return self.send(request, channel, SendMessageRequestHeader.decode(request.ext_fields))

    def process_v2(self, request: RemotingCommand, channel):
        return self.send(request, channel, SendMessageRequestHeader.decode_short(request.ext_fields))

    # -- checks ----------------------------------------------------------------------------------------

    def _refuse(self, request: RemotingCommand, code: int, remark: str) -> RemotingCommand:
        self.stats.send_failed(code)
        return request.response(code, remark)

    def check(self, request: RemotingCommand, channel, h: SendMessageRequestHeader):
        """The topic config to store into, or a refusal (RemotingCommand).

        A topic's config lookup (name check, forbidden topics, creation on demand) is remembered per topic
        until the topic table changes (``TopicConfigManager.generation``), so a send does not redo it; the
        broker's role and permission, the queue id and the topic's write permission are tested on every send.
        At most one entry per topic in the table.
        """
        config = self.config
        if config.is_slave:
            return self._refuse(request, RC.SERVICE_NOT_AVAILABLE,
                                f"the broker[{config.broker_name}] is a slave: send messages to its master")
        if not config.broker_permission & PERM_WRITE:
            return self._refuse(request, RC.NO_PERMISSION,
                                f"the broker[{config.broker_ip1}] sending message is forbidden")
        topic = h.topic
        if self._checked_generation != self.topics.generation:
            self._checked.clear()
            self._checked_generation = self.topics.generation
        entry = self._checked.get(topic)
        if entry is None:
            tc = self._topic_config(request, h)
            if not isinstance(tc, TopicConfig):
                return tc
            if self._checked_generation != self.topics.generation:  # created just now
                self._checked.clear()
                self._checked_generation = self.topics.generation
            entry = self._checked[topic] = (tc, max(tc.read_queue_nums, tc.write_queue_nums))
        tc, queues = entry
        if h.queue_id >= queues:
            return self._refuse(
                request, RC.SYSTEM_ERROR,
                f"request queueId[{h.queue_id}] is illegal, {tc!r} Producer: {channel.peer}")
        if not tc.perm & PERM_WRITE:  # tested inline: this runs for every send
            return self._refuse(request, *write_refusal(tc))
        return tc

    def _topic_config(self, request: RemotingCommand, h: SendMessageRequestHeader):
        """The topic's config, or a refusal (``send_rules.topic_for_send``)."""
        tc = topic_for_send(self.topics, h.topic, h.default_topic, h.default_topic_queue_nums,
                            1 if h.unit_mode else 0)
        return tc if isinstance(tc, TopicConfig) else self._refuse(request, *tc)

    def _check_body(self, request: RemotingCommand, body: bytes, props_text: Optional[str]):
        limit = self.config.max_message_size
        if len(body) > limit:
            return self._refuse(request, RC.MESSAGE_ILLEGAL,
                                f"the message body is {len(body)} bytes, over the maximum of {limit} bytes")
        if props_text and len(props_text) > MAX_PROPERTIES_LENGTH and len(props_text.encode()) > MAX_PROPERTIES_LENGTH:
            return self._refuse(request, RC.MESSAGE_ILLEGAL,
                                f"the message properties are {len(props_text.encode())} bytes, over the maximum "
                                f"of {MAX_PROPERTIES_LENGTH} bytes")
        return None

    # -- the send ------------------------------------------------------------------------------------

    def send(self, request: RemotingCommand, channel, h: SendMessageRequestHeader):
        started = time.perf_counter()
        tc = self.check(request, channel, h)
        if not isinstance(tc, TopicConfig):
            return tc
        response = self._put(request, channel, h, tc, started)
        if self.topics.unsaved:  # a topic a send created is saved in a thread: answer once it is on disk
            saved = self.topics.saved(h.topic)
            if saved is not None:
                return saved.addCallback(lambda _: response)
        return response

    def _put(self, request: RemotingCommand, channel, h: SendMessageRequestHeader, tc: TopicConfig, started: float):
        queue_id = h.queue_id
        if queue_id < 0:
            queue_id = self._random.randrange(tc.write_queue_nums)
        if h.batch:
            return self._send_batch(request, channel, h, tc, queue_id, started)
        body = request.body
        refusal = self._check_body(request, body, h.properties)
        if refusal is not None:
            return refusal
        props = string_to_properties(h.properties) if h.properties else {}
        if props.get(_TRAN, "").lower() == "true" and not self.broker.accepts_transactions():
            return self._refuse(request, RC.NO_PERMISSION,
                                f"the broker[{self.config.broker_name}] sending transaction message is forbidden")
        # Retry topics past maxReconsumeTimes go to %DLQ%<group>, DELAY > 0 parks the message in
        # SCHEDULE_TOPIC_XXXX, TIMER_* park it in rmq_sys_wheel_timer, TRAN_MSG=true stores a half message:
        # BrokerService.prepare_inner, below.
        sys_flag = h.sys_flag
        if tc.topic_filter_type == "MULTI_TAG":
            sys_flag |= MessageSysFlag.MULTI_TAGS_FLAG
        cluster = self.config.broker_cluster_name
        props[_CLUSTER] = cluster
        inner = MessageExtBrokerInner(
            topic=h.topic,
            body=body,
            flag=h.flag,
            properties=props,
            queue_id=queue_id,
            sys_flag=sys_flag,
            born_timestamp=h.born_timestamp,
            born_host=born_host(channel),
            store_host=self.config.store_host,
            reconsume_times=h.reconsume_times or 0,
            properties_string=stored_properties(h.properties or "", props, _CLUSTER + "\x01" + cluster),
        )
        inner = self.broker.prepare_inner(inner, h)
        if not isinstance(inner, MessageExtBrokerInner):  # refused (a timer out of range...)
            return self._refuse(request, inner.code, inner.remark)
        d = self.broker.ha.replicated(self.store.put_message_now(inner), props.get(_WAIT))
        if inner.topic == SCHEDULE_TOPIC:  # counted in the delay-level queue, then in its topic when due (as Java)
            return self._answer(d, request, SCHEDULE_TOPIC, queue_id, 1, started, inner.queue_id)
        if inner.topic == TIMER_TOPIC:  # counted in the timer topic, then in its real topic when it fires (5.x)
            return self._answer(d, request, TIMER_TOPIC, queue_id, 1, started)
        return self._answer(d, request, h.topic, queue_id, 1, started)

    def _send_batch(self, request, channel, h, tc, queue_id, started):
        if mixall.is_retry_topic(h.topic):
            return self._refuse(request, RC.MESSAGE_ILLEGAL, "batch request does not support retry group " + h.topic)
        batch_props, wait, suffix = self._batch_header(h.properties)
        limit = self.config.max_message_size
        body = request.body
        # The one-pass path (batch_shape) when every member has the last batch's shape, or the first member's.
        fast = None
        shape = self._shape
        if shape is not None and shape.suffix == suffix and self.uniform_batches:
            fast = split_batch(body, shape, limit)
        if fast is None:
            try:
                items = decode_batch(body)
            except BatchError as e:
                return self._refuse(request, RC.MESSAGE_ILLEGAL, f"the batch body is malformed: {e}")
            shape = derive_shape(items[0][2], batch_props, suffix, stored_properties) if self.uniform_batches else None
            if shape is not None:
                self._shape = shape
                fast = split_batch(body, shape, limit)
        if fast is not None:
            d = self.store.put_uniform_batch_now(h.topic, queue_id, h.sys_flag, h.born_timestamp, born_host(channel),
                                                 h.reconsume_times or 0, fast, wait)
            return self._answer(self.broker.ha.replicated(d, wait), request, h.topic, queue_id, len(fast.records),
                                started)
        messages = []
        for i, (flag, body, props_text) in enumerate(items):
            if len(body) > limit or len(props_text) > MAX_PROPERTIES_LENGTH:  # _check_body's sizes, tested inline
                refusal = self._check_body(request, body, props_text)
                if refusal is not None:
                    refusal.remark = f"message {i} of the batch: {refusal.remark}"
                    return refusal
            props = string_to_properties(props_text)
            delay = props.get(_DELAY)
            if delay is not None and delay not in ("", "0"):
                return self._refuse(request, RC.MESSAGE_ILLEGAL,
                                    f"message {i} of the batch has a delay level: batches cannot be delayed")
            tran = props.get(_TRAN)
            if tran is not None and tran.lower() == "true":
                return self._refuse(request, RC.MESSAGE_ILLEGAL,
                                    f"message {i} of the batch is a transaction message: batches cannot be")
            stored = stored_properties(props_text, props, suffix)
            props.update(batch_props)
            messages.append((flag, body, stored, props))  # a tuple per member: no message object per member
        d = self.store.put_message_batch_now(h.topic, queue_id, h.sys_flag, h.born_timestamp, born_host(channel),
                                         h.reconsume_times or 0, messages, wait)  # fmt: skip
        d = self.broker.ha.replicated(d, wait)
        return self._answer(d, request, h.topic, queue_id, len(messages), started)

    def _batch_header(self, text: Optional[str]) -> Tuple[Dict[str, str], Optional[str], str]:
        """(the batch's own properties with ``CLUSTER``, its ``WAIT``, their stored form) for the header's
        properties string; the last answer is kept (a producer sends the same one with every batch). The dict
        is shared: read it, do not change it."""
        cluster = self.config.broker_cluster_name
        last = self._last_batch_header
        if last[0] == text and last[1] == cluster:
            return last[2]
        batch_props = string_to_properties(text) if text else {}
        wait = batch_props.pop(_WAIT, None)
        batch_props[_CLUSTER] = cluster
        answer = (batch_props, wait, properties_to_string(batch_props))
        self._last_batch_header = (text, cluster, answer)
        return answer

    def _template(self, region: str, trace: str) -> ResponseTemplate:
        """The success answer's frame template for the current region and trace switch (rebuilt when they change)."""
        key = (region, trace)
        if self._answer_template[0] != key:
            ext = {"msgId": None, "queueId": None, "queueOffset": None, "MSG_REGION": region, "TRACE_ON": trace}
            self._answer_template = (key, ResponseTemplate(RC.SUCCESS, FLAG_RESPONSE, ext, CURRENT_VERSION))
        return self._answer_template[1]

    def _answer(self, d, request, topic, queue_id, count, started, stored_queue=-1):
        """The response to a put: built at once when its result is known (ASYNC_FLUSH, ASYNC_MASTER, a refusal),
        through a Deferred only when the put waits for a SYNC_FLUSH or a SYNC_MASTER slave. ``topic`` and
        ``stored_queue``: where the stats count it."""
        if type(d) is not PutMessageResult and isinstance(d, defer.Deferred):  # type(): no ABCMeta check per send
            return d.addCallback(self._done, request, topic, queue_id, count, started, stored_queue)
        return self._done(d, request, topic, queue_id, count, started, stored_queue)

    def _done(self, result, request, topic, queue_id, count, started, stored_queue):
        """``_answer``'s response to a put's result (a method, not a closure made per send)."""
        status = result.status
        code, remark = PUT_STATUS.get(status) or (RC.SYSTEM_ERROR, status.name)  # .name only when needed
        if remark is not None:
            if result.reason:
                remark = f"{remark} ({result.reason})"
            return self._refuse(request, code, remark)
        self.stats.put_latency.observe(time.perf_counter() - started)
        ar = result.append_result
        self.stats.message_in(topic, count, ar.wrote_bytes, stored_queue)  # record bytes, as Java's TOPIC_PUT_SIZE
        # Stored, but flush or replication fell short: say why beside the usual answer.
        note = (result.reason or status.name) if code != _SUCCESS else None
        msg_id = ar.msg_id
        qid = str(queue_id)
        offset = str(ar.logics_offset)
        region = self.config.region_id
        trace = "true" if self.config.trace_on else "false"
        response = request.response(code, note, {
            "msgId": msg_id, "queueId": qid, "queueOffset": offset, "MSG_REGION": region, "TRACE_ON": trace,
        })
        if note is None and request.serialize_type == _JSON:
            response.frame = self._template(region, trace).frame(request.opaque, msg_id, qid, offset)
        return response
