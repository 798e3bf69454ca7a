"""What a request needs: the resources and perms per request code (RocketMQ 4.9.8 ``PlainAccessValidator.parse``).

Topics are named as they are; groups as their ``%RETRY%`` topic, so one table answers both. Codes not listed
need no resource (only a valid signature, and the admin flag for the admin-only codes).
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

from mq.acl.permission import PUB, SUB
from mq.common import fastjson
from mq.common.heartbeat import HeartbeatData
from mq.common.topic import RETRY_GROUP_TOPIC_PREFIX, retry_topic
from mq.remoting.codes import DLEDGER_LEADERSHIP_TRANSFER, RequestCode
from mq.remoting.command import RemotingCommand

#: Codes only an ``admin: true`` account may send (RocketMQ's ``Permission.ADMIN_CODE``).
#: The ACL admin codes: RocketMQ 4.9 lets any account with a valid signature send them (so any account could
#: make itself admin); mq requires an admin account.
ACL_ADMIN_CODES = frozenset(int(c) for c in (
    RequestCode.UPDATE_AND_CREATE_ACL_CONFIG, RequestCode.DELETE_ACL_CONFIG, RequestCode.GET_BROKER_CLUSTER_ACL_INFO,
    RequestCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG, RequestCode.GET_BROKER_CLUSTER_ACL_CONFIG,
))
#: What changes a NameServer's state (mq.namesrv.acl; a NameServer with aclEnable checks these only): brokers'
#: registrations and keepalives, write permissions, topic deletion, KV config, settings.
NAMESRV_WRITE_CODES = frozenset(int(c) for c in (
    RequestCode.REGISTER_BROKER, RequestCode.UNREGISTER_BROKER, RequestCode.QUERY_DATA_VERSION,
    RequestCode.WIPE_WRITE_PERM_OF_BROKER, RequestCode.ADD_WRITE_PERM_OF_BROKER, RequestCode.DELETE_TOPIC_IN_NAMESRV,
    RequestCode.PUT_KV_CONFIG, RequestCode.DELETE_KV_CONFIG, RequestCode.UPDATE_NAMESRV_CONFIG,
))
#: The store cleanings (mqadmin cleanExpiredCQ, cleanUnusedTopic, deleteExpiredCommitLog) remove ConsumeQueues
#: or force CommitLog retention at any hour: RocketMQ 4.9 lets any account send them, mq requires an admin account.
STORE_CLEAN_CODES = frozenset({int(RequestCode.CLEAN_EXPIRED_CONSUMEQUEUE), int(RequestCode.CLEAN_UNUSED_TOPIC),
                               int(RequestCode.DELETE_EXPIRED_COMMITLOG)})
ADMIN_CODES = frozenset({
    int(RequestCode.UPDATE_AND_CREATE_TOPIC), int(RequestCode.UPDATE_BROKER_CONFIG),
    int(RequestCode.DELETE_TOPIC_IN_BROKER), int(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP),
    int(RequestCode.DELETE_SUBSCRIPTIONGROUP), DLEDGER_LEADERSHIP_TRANSFER,
}) | ACL_ADMIN_CODES | NAMESRV_WRITE_CODES | STORE_CLEAN_CODES


class ResourceError(ValueError):
    """A request whose resources cannot be read (a heartbeat body that is not JSON)."""


Needs = Dict[str, int]


def _add(needs: Needs, resource: Optional[str], perm: int) -> None:
    if resource is not None:
        needs[resource] = perm


def _group(name: Optional[str]) -> Optional[str]:
    return None if name is None else retry_topic(name)


def _send(request: RemotingCommand, topic_key: str, group_key: str) -> Needs:
    """A send needs PUB on its topic; a send to a retry topic needs SUB on the sending group instead."""
    needs: Needs = {}
    topic = request.field(topic_key)
    if topic is not None and topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
        _add(needs, _group(request.field(group_key)), SUB)
    else:
        _add(needs, topic, PUB)
    return needs


def _heartbeat(request: RemotingCommand) -> Needs:
    try:
        data = HeartbeatData.from_json(fastjson.loads(request.body or b"{}"))
    except Exception as e:  # noqa: BLE001 - any body that does not parse is refused the same way
        raise ResourceError(f"the heartbeat body does not parse: {e}") from None
    needs: Needs = {}
    for consumer in data.consumers:
        _add(needs, retry_topic(consumer.group_name), SUB)
        for sub in consumer.subscription_data_set:
            _add(needs, sub.topic, SUB)
    return needs


def _fields(*pairs) -> Callable[[RemotingCommand], Needs]:
    """Needs read from extFields: (key, perm, is_group) triples."""

    def needs(request: RemotingCommand) -> Needs:
        out: Needs = {}
        for key, perm, is_group in pairs:
            value = request.field(key)
            _add(out, _group(value) if is_group else value, perm)
        return out

    return needs


_PARSERS: Dict[int, Callable[[RemotingCommand], Needs]] = {
    int(RequestCode.SEND_MESSAGE): lambda r: _send(r, "topic", "group"),
    int(RequestCode.SEND_MESSAGE_V2): lambda r: _send(r, "b", "a"),
    int(RequestCode.CONSUMER_SEND_MSG_BACK): _fields(("group", SUB, True)),
    int(RequestCode.PULL_MESSAGE): _fields(("topic", SUB, False), ("consumerGroup", SUB, True)),
    int(RequestCode.QUERY_MESSAGE): _fields(("topic", SUB, False)),
    int(RequestCode.HEART_BEAT): _heartbeat,
    int(RequestCode.UNREGISTER_CLIENT): _fields(("consumerGroup", SUB, True)),
    int(RequestCode.GET_CONSUMER_LIST_BY_GROUP): _fields(("consumerGroup", SUB, True)),
    int(RequestCode.UPDATE_CONSUMER_OFFSET): _fields(("consumerGroup", SUB, True), ("topic", SUB, False)),
}


def needed_resources(request: RemotingCommand) -> Needs:
    """resource → perm the request needs (empty for codes that need none); raises ResourceError."""
    parser = _PARSERS.get(request.code)
    return parser(request) if parser is not None else {}
