"""Consumption failures: CONSUMER_SEND_MSG_BACK (36), retry topics and dead letters.

A consumer that fails a message sends it back by its CommitLog offset. The broker loads it and stores a copy
in ``%RETRY%<group>`` (created on demand; the group's consumers subscribe to it) with the delay level of
its next attempt (``3 + reconsumeTimes`` unless the consumer asked for one), ``RETRY_TOPIC`` = the original
topic, ``ORIGIN_MESSAGE_ID`` = the first offset id and the reconsume count raised by one. The copy waits
in SCHEDULE_TOPIC_XXXX like any delayed message (``mq.broker.schedule.delay_level``). Once the count reached the
group's ``retryMaxTimes`` (16 by default; a request header's ``maxReconsumeTimes`` wins, as for RocketMQ
clients from V3_4_9 on), or when the consumer asks with a negative delay level, the copy goes to
``%DLQ%<group>`` (1 queue, readable and writable) instead, with no delay.

Sends to a retry topic (the Java client's own fallback when the send-back fails) get the same treatment:
``reconsumeTimes`` at the maximum moves the message to the DLQ (``redirect_to_dlq``).
"""

from __future__ import annotations

import random
from typing import Optional

from mq.broker.schedule.delay_level import stored_properties_string
from mq.common import mixall
from mq.common.broker_headers import ConsumerSendMsgBackRequestHeader
from mq.common.hashing import tag_hash_code
from mq.common.message import MessageConst, MessageExtBrokerInner
from mq.common.message_record import decode_message_ext
from mq.common.names import retry_group_error
from mq.common.route import PERM_READ, PERM_WRITE
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand

RC = ResponseCode
PERM_RW = PERM_READ | PERM_WRITE
DLQ_NUMS_PER_GROUP = 1
_RETRY_TOPIC = MessageConst.PROPERTY_RETRY_TOPIC
_ORIGIN_ID = MessageConst.PROPERTY_ORIGIN_MESSAGE_ID
_DELAY = MessageConst.PROPERTY_DELAY_TIME_LEVEL
_WAIT = MessageConst.PROPERTY_WAIT_STORE_MSG_OK


def redirect_to_dlq(broker, inner: MessageExtBrokerInner, max_reconsume_times: Optional[int]
                    ) -> MessageExtBrokerInner:
    """A send to ``%RETRY%<group>`` whose reconsume count reached the maximum goes to ``%DLQ%<group>``
    (an unknown group's retry topic is stored into as sent)."""
    topic = inner.topic
    if not mixall.is_retry_topic(topic):
        return inner
    group = topic[len(mixall.RETRY_GROUP_TOPIC_PREFIX):]
    sgc = broker.subscription_group_manager.find(group)
    if sgc is None:
        return inner
    limit = max_reconsume_times if max_reconsume_times is not None and max_reconsume_times >= 0 \
        else sgc.retry_max_times
    if inner.reconsume_times < limit:
        return inner
    return dead_letter(broker, inner, group)


def dead_letter(broker, inner: MessageExtBrokerInner, group: str) -> MessageExtBrokerInner:
    """``inner`` readdressed to ``%DLQ%<group>`` (created on demand), without delay."""
    dlq = broker.topic_config_manager.create_system(mixall.dlq_topic(group), DLQ_NUMS_PER_GROUP, PERM_RW)
    inner.topic = dlq.topic_name
    inner.queue_id = 0
    inner.properties.pop(_DELAY, None)
    inner.properties_string = stored_properties_string(inner.properties)
    inner.tags_code = None
    return inner


class ConsumerSendBackProcessor:
    def __init__(self, broker) -> None:
        self.broker = broker
        self._random = random.Random()

    def register(self, dispatcher) -> None:
        dispatcher.register(RequestCode.CONSUMER_SEND_MSG_BACK, self.process)

    def process(self, request: RemotingCommand, channel):
        b = self.broker
        config = b.config
        h = ConsumerSendMsgBackRequestHeader.decode(request.ext_fields)
        if config.is_slave:
            return request.response(RC.SERVICE_NOT_AVAILABLE,
                                    f"the broker[{config.broker_name}] is a slave: send messages back to its master")
        why = retry_group_error(h.group)
        if why is not None:  # its retry topic could never be stored, nor delivered from a delay level
            return request.response(RC.SYSTEM_ERROR, f"the message cannot be sent back for group "
                                                     f"{h.group[:300]!r}: {why}")
        sgc = b.subscription_group_manager.find(h.group)
        if sgc is None:
            return request.response(RC.SUBSCRIPTION_GROUP_NOT_EXIST,
                                    f"subscription group not exist, {h.group} {mixall.FAQ_URL}")
        if not config.broker_permission & PERM_WRITE:
            return request.response(RC.NO_PERMISSION, f"the broker[{config.broker_ip1}] sending message is forbidden")
        if sgc.retry_queue_nums <= 0:
            return request.response(RC.SUCCESS)  # the group wants no retries: the message is dropped
        topics = b.topic_config_manager
        tc = topics.create_system(mixall.retry_topic(h.group), sgc.retry_queue_nums, PERM_RW,
                                  1 if h.unit_mode else 0)
        if not tc.perm & PERM_WRITE:
            return request.response(RC.NO_PERMISSION, f"the topic[{tc.topic_name}] sending message is forbidden")
        raw = b.store.look_message_by_offset(h.offset, requested=True) if h.offset >= 0 else None
        if raw is None:
            return request.response(RC.SYSTEM_ERROR, f"look message by offset failed, {h.offset}")
        msg = decode_message_ext(raw)
        props = dict(msg.properties)
        props.setdefault(_RETRY_TOPIC, h.origin_topic or msg.topic)
        limit = sgc.retry_max_times
        if h.max_reconsume_times is not None and h.max_reconsume_times >= 0 and request.version >= 121:
            limit = h.max_reconsume_times
        delay_level = h.delay_level
        if msg.reconsume_times >= limit or delay_level < 0:
            tc = topics.create_system(mixall.dlq_topic(h.group), DLQ_NUMS_PER_GROUP, PERM_RW)
            queue_id = 0
            props.pop(_DELAY, None)
        else:
            if delay_level == 0:
                delay_level = 3 + msg.reconsume_times
            props[_DELAY] = str(delay_level)
            queue_id = self._random.randrange(tc.write_queue_nums or 1)
        if not props.get(_ORIGIN_ID):
            props[_ORIGIN_ID] = msg.msg_id  # the offset id of the first failure (clients send their UNIQ_KEY)
        text = stored_properties_string(props)
        props[_WAIT] = "false"
        inner = MessageExtBrokerInner(
            topic=tc.topic_name, body=msg.body, flag=msg.flag, properties=props, queue_id=queue_id,
            sys_flag=msg.sys_flag, born_timestamp=msg.born_timestamp, born_host=msg.born_host,
            store_host=msg.store_host, reconsume_times=msg.reconsume_times + 1, body_crc=msg.body_crc,
            properties_string=text, tags_code=tag_hash_code(props.get(MessageConst.PROPERTY_TAGS)),
        )
        inner = b.schedule_service.park(inner)
        topic = tc.topic_name

        def done(result) -> RemotingCommand:
            if result.is_stored():
                b.stats.message_in(topic, 1, result.append_result.wrote_bytes)
                b.stats.send_back(h.group, props[_RETRY_TOPIC])
                return request.response(RC.SUCCESS)
            return request.response(RC.SYSTEM_ERROR, result.status.name)

        return b.store.put_message(inner).addCallback(done)
