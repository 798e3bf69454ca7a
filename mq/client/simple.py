"""``SimpleClient``: one request per call, against an explicit broker or NameServer address."""

from __future__ import annotations

import itertools
import os
import socket
import struct
import time
from typing import Dict, Iterable, Optional, Sequence

from twisted.internet import defer

from mq.acl.signing import Credentials
from mq.common import fastjson
from mq.common.broker_headers import (
    ConsumerSendMsgBackRequestHeader,
    CreateTopicRequestHeader,
    EndTransactionRequestHeader,
    PullMessageRequestHeader,
    QueryConsumerOffsetRequestHeader,
    QueryMessageRequestHeader,
    QueueRequestHeader,
    SendMessageRequestHeader,
    UpdateConsumerOffsetRequestHeader,
    ViewMessageRequestHeader,
)
from mq.common.heartbeat import ConsumerData, HeartbeatData, SubscriptionData
from mq.common.message import MessageConst, PullSysFlag, decode_offset_msg_id, properties_to_string
from mq.common.message_batch import encode_batch
from mq.common.mixall import DEFAULT_TOPIC
from mq.common.route import TopicRouteData
from mq.remoting.client import RemotingClient
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand

_counter = itertools.count()
_prefix = (socket.inet_aton("127.0.0.1") + struct.pack(">hi", os.getpid() & 0x7FFF, id(_counter) & 0x7FFFFFFF)).hex()


def new_unique_key() -> str:
    """A client message id (UNIQ_KEY) in the Java layout: ip, pid, hash, time, counter (32 hex chars)."""
    return (_prefix + struct.pack(">ih", int(time.time()) & 0x7FFFFFFF, next(_counter) & 0x7FFF).hex()).upper()


def message_properties(tags: Optional[str] = None, keys: Optional[str] = None,
                       properties: Optional[Dict[str, str]] = None, unique: bool = True) -> Dict[str, str]:
    props: Dict[str, str] = dict(properties or {})
    if tags:
        props[MessageConst.PROPERTY_TAGS] = tags
    if keys:
        props[MessageConst.PROPERTY_KEYS] = keys
    if unique:
        props.setdefault(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX, new_unique_key())
    props.setdefault(MessageConst.PROPERTY_WAIT_STORE_MSG_OK, "true")
    return props


def create_topic_request(topic: str, queues: int = 4, perm: int = 6, order: bool = False) -> RemotingCommand:
    ext = CreateTopicRequestHeader(topic=topic, default_topic=DEFAULT_TOPIC, read_queue_nums=queues,
                                   write_queue_nums=queues, perm=perm, topic_filter_type="SINGLE_TAG",
                                   topic_sys_flag=0, order=order).encode()
    return RemotingCommand.request(RequestCode.UPDATE_AND_CREATE_TOPIC, ext)


def send_header(topic: str, queue_id: int, props: dict[str, str], group: str = "mq_simple_producer",
                batch: bool = False) -> SendMessageRequestHeader:
    return SendMessageRequestHeader(
        producer_group=group, topic=topic, default_topic=DEFAULT_TOPIC, default_topic_queue_nums=4,
        queue_id=queue_id, sys_flag=0, born_timestamp=int(time.time() * 1000), flag=0,
        properties=properties_to_string(props), reconsume_times=0, unit_mode=False, batch=batch,
    )


def send_request(topic: str, body: bytes, tags: str | None = None, keys: str | None = None,
                 properties: dict[str, str] | None = None, queue_id: int = -1, group: str = "mq_simple_producer",
                 code: int = RequestCode.SEND_MESSAGE_V2, oneway: bool = False) -> RemotingCommand:
    header = send_header(topic, queue_id, message_properties(tags, keys, properties), group)
    ext = header.encode() if code == RequestCode.SEND_MESSAGE else header.encode_short()
    return RemotingCommand.request(code, ext, body, oneway=oneway)


def send_batch_request(topic: str, messages: Sequence[tuple[bytes, str | None]], queue_id: int = -1,
                       group: str = "mq_simple_producer") -> RemotingCommand:
    """(body, tags) pairs as one SEND_BATCH_MESSAGE."""
    body = encode_batch((0, b, properties_to_string(message_properties(t))) for b, t in messages)
    header = send_header(topic, queue_id, {MessageConst.PROPERTY_WAIT_STORE_MSG_OK: "true"}, group, True)
    return RemotingCommand.request(RequestCode.SEND_BATCH_MESSAGE, header.encode_short(), body)


def heartbeat_request(client_id: str, producer_groups: Iterable[str] = (),
                      consumers: Iterable[tuple[str, Sequence[str], str]] = ()) -> RemotingCommand:
    """HEART_BEAT with producer groups and (group, topics, message model) consumers subscribed to ``*``."""
    now = int(time.time() * 1000)
    data = HeartbeatData(client_id, list(producer_groups), [
        ConsumerData(group, "CONSUME_ACTIVELY", model, "CONSUME_FROM_FIRST_OFFSET",
                     [SubscriptionData.build(t, "*", now) for t in topics])
        for group, topics, model in consumers
    ])
    return RemotingCommand.request(RequestCode.HEART_BEAT, None, fastjson.dumps_bytes(data))


def pull_request(group: str, topic: str, queue_id: int, offset: int, max_nums: int = 32, subscription: str = "*",
                 suspend_ms: int = 0, commit_offset: int | None = None, expression_type: str = "TAG") -> RemotingCommand:
    """PULL_MESSAGE with the subscription in the header; ``suspend_ms`` > 0 allows long polling."""
    sys_flag = PullSysFlag.build(commit_offset is not None, suspend_ms > 0, True, False)
    ext = PullMessageRequestHeader(
        consumer_group=group, topic=topic, queue_id=queue_id, queue_offset=offset, max_msg_nums=max_nums,
        sys_flag=sys_flag, commit_offset=commit_offset or 0, suspend_timeout_millis=suspend_ms,
        subscription=subscription, sub_version=0, expression_type=expression_type,
    ).encode()
    return RemotingCommand.request(RequestCode.PULL_MESSAGE, ext)


def query_offset_request(group: str, topic: str, queue_id: int) -> RemotingCommand:
    ext = QueryConsumerOffsetRequestHeader(consumer_group=group, topic=topic, queue_id=queue_id).encode()
    return RemotingCommand.request(RequestCode.QUERY_CONSUMER_OFFSET, ext)


def update_offset_request(group: str, topic: str, queue_id: int, offset: int) -> RemotingCommand:
    ext = UpdateConsumerOffsetRequestHeader(consumer_group=group, topic=topic, queue_id=queue_id,
                                            commit_offset=offset).encode()
    return RemotingCommand.request(RequestCode.UPDATE_CONSUMER_OFFSET, ext)


def max_offset_request(topic: str, queue_id: int) -> RemotingCommand:
    return RemotingCommand.request(RequestCode.GET_MAX_OFFSET, QueueRequestHeader(topic=topic, queue_id=queue_id).encode())


def send_back_request(group: str, commit_log_offset: int, delay_level: int = 0, origin_topic: str | None = None,
                      max_reconsume_times: int | None = None) -> RemotingCommand:
    """CONSUMER_SEND_MSG_BACK: the consumed message at ``commit_log_offset`` failed in ``group``."""
    ext = ConsumerSendMsgBackRequestHeader(offset=commit_log_offset, group=group, delay_level=delay_level,
                                           origin_topic=origin_topic, max_reconsume_times=max_reconsume_times).encode()
    return RemotingCommand.request(RequestCode.CONSUMER_SEND_MSG_BACK, ext)


def query_message_request(topic: str, key: str, max_num: int = 32, begin: int = 0, end: int = 1 << 62,
                          unique_key: bool = False) -> RemotingCommand:
    """QUERY_MESSAGE by user key (or, with ``unique_key``, by UNIQ_KEY) through the broker's index."""
    ext = QueryMessageRequestHeader(topic=topic, key=key, max_num=max_num, begin_timestamp=begin,
                                    end_timestamp=end).encode()
    if unique_key:
        ext["_UNIQUE_KEY_QUERY"] = "true"
    return RemotingCommand.request(RequestCode.QUERY_MESSAGE, ext)


def view_message_request(commit_log_offset: int) -> RemotingCommand:
    return RemotingCommand.request(RequestCode.VIEW_MESSAGE_BY_ID, ViewMessageRequestHeader(offset=commit_log_offset).encode())


def lock_batch_request(group: str, client_id: str, broker_name: str, topic: str, queue_ids: Iterable[int],
                       unlock: bool = False) -> RemotingCommand:
    """LOCK_BATCH_MQ (or UNLOCK_BATCH_MQ) of some queues of one topic on one broker."""
    body = {"clientId": client_id, "consumerGroup": group,
            "mqSet": [{"brokerName": broker_name, "queueId": q, "topic": topic} for q in queue_ids]}
    code = RequestCode.UNLOCK_BATCH_MQ if unlock else RequestCode.LOCK_BATCH_MQ
    return RemotingCommand.request(code, None, fastjson.dumps_bytes(body))


def end_transaction_request(group: str, send_response: RemotingCommand, commit_or_rollback: int,
                            from_check: bool = False, oneway: bool = False) -> RemotingCommand:
    """END_TRANSACTION for the half message a send answered (8 commit, 12 rollback, 0 unknown)."""
    ext = send_response.ext_fields
    _, phy = decode_offset_msg_id(ext["msgId"])
    header = EndTransactionRequestHeader(
        producer_group=group, tran_state_table_offset=int(ext["queueOffset"]), commit_log_offset=phy,
        commit_or_rollback=commit_or_rollback, from_transaction_check=from_check, msg_id=ext["msgId"],
        transaction_id=ext.get("transactionId"))
    return RemotingCommand.request(RequestCode.END_TRANSACTION, header.encode(), oneway=oneway)


def route_request(topic: str) -> RemotingCommand:
    return RemotingCommand.request(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic})


def parse_route(response: RemotingCommand) -> TopicRouteData | None:
    if response.code != ResponseCode.SUCCESS:
        return None
    return TopicRouteData.from_json(fastjson.loads(response.body))


class SimpleClient:
    """Each call sends one request built by the functions above and returns a Deferred of the response."""

    def __init__(self, reactor=None, client_id: str | None = None, timeout: float = 5.0,
                 credentials: Credentials | None = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self.reactor = reactor
        self.remoting = RemotingClient(reactor, signer=credentials.sign_request if credentials is not None else None)
        self.client_id = client_id or f"127.0.0.1@{os.getpid()}#{id(self)}"
        self.timeout = timeout

    def call(self, addr: str, request: RemotingCommand, timeout: float | None = None) -> defer.Deferred:
        if request.is_oneway:
            return self.remoting.invoke_oneway(addr, request)
        return self.remoting.invoke(addr, request, timeout or self.timeout)

    def invoke(self, addr: str, code: int, ext: dict[str, str] | None = None, body: bytes = b"",
               timeout: float | None = None) -> defer.Deferred:
        return self.call(addr, RemotingCommand.request(code, ext, body), timeout)

    def close(self) -> defer.Deferred:
        return self.remoting.close()

    def route(self, namesrv: str, topic: str) -> defer.Deferred:
        """The topic's TopicRouteData, or None when the NameServer does not know it."""
        return self.call(namesrv, route_request(topic)).addCallback(parse_route)

    def create_topic(self, broker: str, topic: str, queues: int = 4, perm: int = 6, order: bool = False):
        return self.call(broker, create_topic_request(topic, queues, perm, order))

    def send(self, broker: str, topic: str, body: bytes, **kwargs) -> defer.Deferred:
        """Send one message (see ``send_request``); the response's extFields hold msgId, queueId, queueOffset."""
        return self.call(broker, send_request(topic, body, **kwargs))

    def send_batch(self, broker: str, topic: str, messages, queue_id: int = -1, group: str = "mq_simple_producer"):
        return self.call(broker, send_batch_request(topic, messages, queue_id, group))

    def heartbeat(self, broker: str, producer_groups: Iterable[str] = (), consumers=()) -> defer.Deferred:
        return self.call(broker, heartbeat_request(self.client_id, producer_groups, consumers))

    def pull(self, broker: str, group: str, topic: str, queue_id: int, offset: int, max_nums: int = 32,
             subscription: str = "*", suspend_ms: int = 0, commit_offset: int | None = None,
             timeout: float | None = None) -> defer.Deferred:
        request = pull_request(group, topic, queue_id, offset, max_nums, subscription, suspend_ms, commit_offset)
        return self.call(broker, request, timeout or (self.timeout + suspend_ms / 1000.0))

    def query_offset(self, broker: str, group: str, topic: str, queue_id: int) -> defer.Deferred:
        return self.call(broker, query_offset_request(group, topic, queue_id))

    def update_offset(self, broker: str, group: str, topic: str, queue_id: int, offset: int) -> defer.Deferred:
        return self.call(broker, update_offset_request(group, topic, queue_id, offset))

    def max_offset(self, broker: str, topic: str, queue_id: int) -> defer.Deferred:
        return self.call(broker, max_offset_request(topic, queue_id))
