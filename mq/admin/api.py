"""``MQAdminAPI``: the admin requests to NameServers and brokers, one method each, over ``RemotingClient``.

Every method returns a Deferred. Failures are ``AdminError``s with a one-line message a person can act on:
``UnreachableError`` when no connection could be made or no answer came in time, ``ResponseError`` when the
server answered with an error code (its remark is kept). Bodies are decoded into plain Python values
(``mq.admin.values``).
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Sequence

from twisted.internet import defer

from mq.acl.signing import Credentials
from mq.admin import progress
from mq.admin.values import ClusterInfo, MessageQueue, queue_map
from mq.client.simple import end_transaction_request, pull_request, send_request
from mq.common import fastjson, jsonkeys, mixall
from mq.common.broker_headers import (
    ConsumeMessageDirectlyResultRequestHeader,
    ConsumerGroupRequestHeader,
    CreateTopicRequestHeader,
    DeleteSubscriptionGroupRequestHeader,
    GetConsumerRunningInfoRequestHeader,
    GetConsumerStatusRequestHeader,
    GetConsumeStatsRequestHeader,
    ProducerGroupRequestHeader,
    QueryConsumerOffsetRequestHeader,
    QueryMessageRequestHeader,
    QueueRequestHeader,
    ResetOffsetRequestHeader,
    SearchOffsetRequestHeader,
    SendMessageRequestHeader,
    TopicRequestHeader,
    UpdateConsumerOffsetRequestHeader,
    ViewMessageRequestHeader,
)
from mq.common.consume_directly import ConsumeMessageDirectlyResult
from mq.common.consumer_status import GetConsumerStatusBody
from mq.common.message import MessageConst, MessageExt, MessageSysFlag, string_to_properties
from mq.common.message_record import decode_messages
from mq.common.namesrv_headers import (
    BrokerNameRequestHeader,
    DeleteTopicFromNamesrvRequestHeader,
    GetTopicsByClusterRequestHeader,
    KVConfigRequestHeader,
    NamespaceRequestHeader,
)
from mq.common.properties import format_properties, parse_properties
from mq.common.route import TopicConfig, TopicRouteData
from mq.remoting.client import RemotingClient
from mq.remoting.codes import LanguageCode, RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand
from mq.remoting.header import CommandHeader
from mq.remoting.protocol import RemotingError, RemotingTimeoutError

RC = ResponseCode
#: Exit statuses of ``mqadmin`` (docs/admin.md).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

ORDER_TOPIC_CONFIG = "ORDER_TOPIC_CONFIG"
QUERY_MAX_TIMESTAMP = 2**63 - 1


class AdminError(Exception):
    """A failed admin command: ``str()`` is the one-line message, ``exit_code`` the process status."""

    exit_code = EXIT_FAILED


class UnreachableError(AdminError):
    """No connection to ``addr``, or no answer from it in time (``timed_out``)."""

    exit_code = EXIT_UNREACHABLE

    def __init__(self, kind: str, addr: str, reason: str, timed_out: bool = False,
                 message: Optional[str] = None) -> None:
        self.kind, self.addr, self.reason, self.timed_out = kind, addr, reason, timed_out
        if message:
            super().__init__(message)
        elif timed_out:
            super().__init__(f"no answer from {kind} {addr}: {reason}")
        else:
            super().__init__(f"cannot reach {kind} {addr}: {reason}")


class UsageError(AdminError):
    """The command line asks for something impossible (caught before or after parsing)."""

    exit_code = EXIT_USAGE


class ResponseError(AdminError):
    def __init__(self, message: str, code: int, remark: Optional[str]) -> None:
        super().__init__(message)
        self.code = code
        self.remark = remark


def code_name(code: int) -> str:
    try:
        return ResponseCode(code).name
    except ValueError:
        return f"code {code}"


def check(response: RemotingCommand, what: str, ok: Iterable[int] = (RC.SUCCESS,)) -> RemotingCommand:
    """``response`` if its code is in ``ok``; otherwise a ``ResponseError`` naming ``what`` failed and why."""
    if response.code in tuple(ok):
        return response
    remark = (response.remark or "").strip()
    message = f"{what}: {code_name(response.code)}"
    if remark:
        message += f": {remark}"
    raise ResponseError(message, response.code, response.remark)


# --------------------------------------------------------------------------------------------- the API


def vip_addr(addr: str) -> str:
    """A broker's VIP address: its port minus 2 (MixAll.brokerVIPChannel); unchanged when that is no port."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or int(port) <= 2:
        return addr
    return f"{host}:{int(port) - 2}"


class MQAdminAPI:
    """Admin calls against the NameServers ``namesrv_addrs`` and the brokers they (or the caller) name."""

    def __init__(self, reactor, namesrv_addrs: Sequence[str] = (), timeout: float = 5.0,
                 remoting: Optional[RemotingClient] = None, credentials: Optional[Credentials] = None) -> None:
        self.reactor = reactor
        self.namesrv_addrs = [a.strip() for a in namesrv_addrs if a.strip()]
        self.timeout = timeout
        #: ACL: every request (to NameServers and brokers alike) is signed with this account when given.
        signer = credentials.sign_request if credentials is not None else None
        self.remoting = remoting or RemotingClient(reactor, connect_timeout=min(timeout, 3.0), signer=signer)
        #: Where long commands count their work; ``mqadmin`` draws it on a terminal, other callers see nothing.
        self.progress = progress.silent()
        #: Send to each broker's VIP port (its port - 2) but pulls, as a Java client with vipChannelEnabled does
        #: (rocketmq-dashboard's isVIPChannel switch).
        self.vip_channel = False

    def close(self) -> defer.Deferred:
        return self.remoting.close()

    # -- transport ---------------------------------------------------------------------------------

    def _need_namesrv(self) -> List[str]:
        if not self.namesrv_addrs:
            raise UsageError("no NameServer address: give -n host:port[;host:port] or set NAMESRV_ADDR")
        return self.namesrv_addrs

    def _invoke(self, kind: str, addr: str, code: int, ext: Optional[Dict[str, str]] = None, body: bytes = b"",
                timeout: Optional[float] = None):
        return self._send(kind, addr, RemotingCommand.request(code, ext, body), timeout)

    def remoting_call(self, addr: str, request: RemotingCommand, timeout: Optional[float] = None):
        """Send a ready-made request to a broker."""
        return self._send("broker", addr, request, timeout)

    @defer.inlineCallbacks
    def _send(self, kind: str, addr: str, request: RemotingCommand, timeout: Optional[float] = None):
        if self.vip_channel and kind == "broker" and request.code != RequestCode.PULL_MESSAGE:
            addr = vip_addr(addr)
        try:
            response = yield self.remoting.invoke(addr, request, timeout or self.timeout)
        except RemotingError as e:
            raise UnreachableError(kind, addr, _reason(e), isinstance(e, RemotingTimeoutError)) from None
        return response

    def namesrv_call(self, code: int, ext: Optional[Dict[str, str]] = None, body: bytes = b""):
        """Ask the first NameServer that answers; ``UnreachableError`` naming them all if none does."""
        addrs = self._need_namesrv()
        failures: List[UnreachableError] = []

        def attempt(i: int):
            d = self._invoke("NameServer", addrs[i], code, ext, body)

            def failed(f):
                f.trap(UnreachableError)
                failures.append(f.value)
                if i + 1 < len(addrs):
                    return attempt(i + 1)
                if len(failures) == 1:
                    raise failures[0]
                reasons = "; ".join(f"{e.addr}: {e.reason}" for e in failures)
                raise UnreachableError("NameServer", ";".join(addrs), reasons, all(e.timed_out for e in failures),
                                       f"cannot reach any NameServer of {';'.join(addrs)}: {reasons}")

            return d.addErrback(failed)

        return attempt(0)

    @defer.inlineCallbacks
    def namesrv_call_all(self, code: int, ext: Optional[Dict[str, str]], what: str, body: bytes = b""):
        """Send to every NameServer (writes), in order; [(addr, response)] when all of them succeed."""
        out = []
        for addr in self._need_namesrv():
            response = yield self._invoke("NameServer", addr, code, ext, body)
            out.append((addr, check(response, f"{what} on NameServer {addr}")))
        return out

    def broker_call(self, addr: str, code: int, ext: Optional[Dict[str, str]] = None, body: bytes = b"",
                    timeout: Optional[float] = None):
        return self._invoke("broker", addr, code, ext, body, timeout)

    @defer.inlineCallbacks
    def broker_ok(self, addr: str, code: int, what: str, ext=None, body: bytes = b""):
        """The broker's answer; ``ResponseError`` (``what`` on broker addr: ...) unless it is SUCCESS."""
        response = yield self.broker_call(addr, code, ext, body)
        return check(response, f"{what} on broker {addr}")


    # -- NameServer --------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def topic_route(self, topic: str):
        response = yield self.namesrv_call(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic})
        if response.code == RC.TOPIC_NOT_EXIST:
            raise ResponseError(f"topic route not found: no route for topic '{topic}' on the NameServer",
                                response.code, response.remark)
        check(response, f"topic route of '{topic}'")
        return TopicRouteData.from_json(fastjson.loads(response.body))

    @defer.inlineCallbacks
    def cluster_info(self):
        response = yield self.namesrv_call(RequestCode.GET_BROKER_CLUSTER_INFO)
        check(response, "cluster info")
        return ClusterInfo.from_json(fastjson.loads(response.body) if response.body else {})

    @defer.inlineCallbacks
    def all_topics(self):
        response = yield self.namesrv_call(RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER)
        check(response, "topic list")
        return sorted(fastjson.loads(response.body).get("topicList") or []) if response.body else []

    @defer.inlineCallbacks
    def topics_by_cluster(self, cluster: str):
        ext = GetTopicsByClusterRequestHeader(cluster=cluster).encode()
        response = yield self.namesrv_call(RequestCode.GET_TOPICS_BY_CLUSTER, ext)
        check(response, f"topics of cluster '{cluster}'")
        return sorted(fastjson.loads(response.body).get("topicList") or []) if response.body else []

    def put_kv_config(self, namespace: str, key: str, value: str):
        ext = KVConfigRequestHeader(namespace=namespace, key=key, value=value).encode()
        return self.namesrv_call_all(RequestCode.PUT_KV_CONFIG, ext, "put KV config")

    def delete_kv_config(self, namespace: str, key: str):
        ext = KVConfigRequestHeader(namespace=namespace, key=key).encode()
        return self.namesrv_call_all(RequestCode.DELETE_KV_CONFIG, ext, "delete KV config")

    @defer.inlineCallbacks
    def get_kv_config(self, namespace: str, key: str):
        """The value, or None when the NameServer has no such key (QUERY_NOT_FOUND)."""
        ext = KVConfigRequestHeader(namespace=namespace, key=key).encode()
        response = yield self.namesrv_call(RequestCode.GET_KV_CONFIG, ext)
        if response.code == RC.QUERY_NOT_FOUND:
            return None
        return check(response, f"KV config {namespace}/{key}").field("value")

    @defer.inlineCallbacks
    def namesrv_configs(self):
        """[(addr, {key: value})]: the settings of every NameServer of the list (GET_NAMESRV_CONFIG)."""
        out = []
        for addr in self._need_namesrv():
            response = yield self._invoke("NameServer", addr, RequestCode.GET_NAMESRV_CONFIG)
            check(response, f"config of NameServer {addr}")
            out.append((addr, parse_properties((response.body or b"").decode("utf-8"))))
        return out

    def update_namesrv_config(self, values: Dict[str, str]):
        body = format_properties(values).encode("utf-8")
        return self.namesrv_call_all(RequestCode.UPDATE_NAMESRV_CONFIG, None, "update NameServer config", body)

    @defer.inlineCallbacks
    def kv_list(self, namespace: str):
        """The namespace's table; {} when the NameServer has none."""
        ext = NamespaceRequestHeader(namespace=namespace).encode()
        response = yield self.namesrv_call(RequestCode.GET_KVLIST_BY_NAMESPACE, ext)
        if response.code == RC.QUERY_NOT_FOUND:
            return {}
        check(response, f"KV list of namespace '{namespace}'")
        return dict(fastjson.loads(response.body).get("table") or {})

    @defer.inlineCallbacks
    def wipe_write_perm(self, broker_name: str):
        """[(namesrv addr, number of topics changed)]."""
        ext = BrokerNameRequestHeader(broker_name=broker_name).encode()
        done = yield self.namesrv_call_all(RequestCode.WIPE_WRITE_PERM_OF_BROKER, ext, "wipe write perm")
        return [(addr, int(r.field("wipeTopicCount", "0"))) for addr, r in done]

    @defer.inlineCallbacks
    def add_write_perm(self, broker_name: str):
        ext = BrokerNameRequestHeader(broker_name=broker_name).encode()
        done = yield self.namesrv_call_all(RequestCode.ADD_WRITE_PERM_OF_BROKER, ext, "add write perm")
        return [(addr, int(r.field("addTopicCount", "0"))) for addr, r in done]

    def delete_topic_in_namesrv(self, topic: str, cluster: Optional[str] = None):
        ext = DeleteTopicFromNamesrvRequestHeader(topic=topic, cluster_name=cluster).encode()
        return self.namesrv_call_all(RequestCode.DELETE_TOPIC_IN_NAMESRV, ext, f"delete topic '{topic}'")

    # -- broker: topics and config -----------------------------------------------------------------

    def create_topic(self, addr: str, tc: TopicConfig):
        ext = CreateTopicRequestHeader(
            topic=tc.topic_name, default_topic=mixall.DEFAULT_TOPIC, read_queue_nums=tc.read_queue_nums,
            write_queue_nums=tc.write_queue_nums, perm=tc.perm, topic_filter_type=tc.topic_filter_type,
            topic_sys_flag=tc.topic_sys_flag, order=tc.order,
        ).encode()
        return self.broker_ok(addr, RequestCode.UPDATE_AND_CREATE_TOPIC, f"create topic '{tc.topic_name}'", ext)

    def delete_topic_in_broker(self, addr: str, topic: str):
        return self.broker_ok(addr, RequestCode.DELETE_TOPIC_IN_BROKER, f"delete topic '{topic}'",
                               TopicRequestHeader(topic=topic).encode())

    @defer.inlineCallbacks
    def topic_stats(self, addr: str, topic: str):
        """{MessageQueue: {"minOffset", "maxOffset", "lastUpdateTimestamp"}} of one broker."""
        response = yield self.broker_ok(addr, RequestCode.GET_TOPIC_STATS_INFO, f"topic stats of '{topic}'",
                                         TopicRequestHeader(topic=topic).encode())
        return queue_map(jsonkeys.loads(response.body).get("offsetTable"))

    @defer.inlineCallbacks
    def broker_table(self, addr: str, code: int, what: str, key: str) -> defer.Deferred:
        """``body[key]`` of a broker's JSON answer (GET_ALL_TOPIC_CONFIG: topicConfigTable, ...), {} if absent."""
        response = yield self.broker_ok(addr, code, what)
        return (fastjson.loads(response.body).get(key) or {}) if response.body else {}

    @defer.inlineCallbacks
    def topic_consumed_by(self, addr: str, topic: str):
        response = yield self.broker_ok(addr, RequestCode.QUERY_TOPIC_CONSUME_BY_WHO, f"groups of '{topic}'",
                                         TopicRequestHeader(topic=topic).encode())
        return sorted(fastjson.loads(response.body).get("groupList") or [])

    @defer.inlineCallbacks
    def broker_runtime_info(self, addr: str):
        response = yield self.broker_ok(addr, RequestCode.GET_BROKER_RUNTIME_INFO, "broker status")
        return {k: str(v) for k, v in (fastjson.loads(response.body).get("table") or {}).items()}

    @defer.inlineCallbacks
    def broker_config(self, addr: str):
        response = yield self.broker_ok(addr, RequestCode.GET_BROKER_CONFIG, "broker config")
        return parse_properties((response.body or b"").decode("utf-8"))

    def update_broker_config(self, addr: str, values: Dict[str, str]):
        body = format_properties(values).encode("utf-8")
        return self.broker_ok(addr, RequestCode.UPDATE_BROKER_CONFIG, "update broker config", None, body)

    # -- broker: groups and clients ----------------------------------------------------------------

    def create_subscription_group(self, addr: str, config: Dict[str, Any]):
        body = fastjson.dumps_bytes(dict(sorted(config.items())))
        return self.broker_ok(addr, RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
                               f"update subscription group '{config['groupName']}'", None, body)

    def delete_subscription_group(self, addr: str, group: str, remove_offset: bool = False):
        ext = DeleteSubscriptionGroupRequestHeader(group_name=group, remove_offset=remove_offset).encode()
        return self.broker_ok(addr, RequestCode.DELETE_SUBSCRIPTIONGROUP,
                               f"delete subscription group '{group}'", ext)

    @defer.inlineCallbacks
    def consume_stats(self, addr: str, group: str, topic: Optional[str] = None):
        """(consumeTps, {MessageQueue: {"brokerOffset", "consumerOffset", "lastTimestamp"}}) of one broker."""
        ext = GetConsumeStatsRequestHeader(consumer_group=group, topic=topic).encode()
        response = yield self.broker_ok(addr, RequestCode.GET_CONSUME_STATS, f"consume stats of '{group}'", ext)
        data = jsonkeys.loads(response.body)
        return float(data.get("consumeTps") or 0.0), queue_map(data.get("offsetTable"))

    @defer.inlineCallbacks
    def consumer_connection(self, addr: str, group: str):
        ext = ConsumerGroupRequestHeader(consumer_group=group).encode()
        response = yield self.broker_ok(addr, RequestCode.GET_CONSUMER_CONNECTION_LIST,
                                         f"connections of consumer group '{group}'", ext)
        return fastjson.loads(response.body)

    @defer.inlineCallbacks
    def producer_connection(self, addr: str, group: str):
        ext = ProducerGroupRequestHeader(producer_group=group).encode()
        response = yield self.broker_ok(addr, RequestCode.GET_PRODUCER_CONNECTION_LIST,
                                         f"connections of producer group '{group}'", ext)
        return fastjson.loads(response.body)

    @defer.inlineCallbacks
    def all_producer_info(self, addr: str):
        """GET_ALL_PRODUCER_INFO: ``{"data": {group: [producer info...]}}``."""
        response = yield self.broker_ok(addr, RequestCode.GET_ALL_PRODUCER_INFO, "producer info")
        return fastjson.loads(response.body) if response.body else {"data": {}}

    @defer.inlineCallbacks
    def consumer_running_info(self, addr: str, group: str, client_id: str, jstack: bool = False):
        ext = GetConsumerRunningInfoRequestHeader(consumer_group=group, client_id=client_id,
                                                  jstack_enable=jstack).encode()
        # The broker relays this to the client and waits up to 5 s for it: wait longer, to get its answer.
        response = yield self.broker_call(addr, RequestCode.GET_CONSUMER_RUNNING_INFO, ext, timeout=self.timeout + 5)
        check(response, f"running info of consumer '{client_id}' via broker {addr}")
        return jsonkeys.loads(response.body) if response.body else {}

    @defer.inlineCallbacks
    def consume_message_directly(self, addr: str, group: str, client_id: str, msg_id: str):
        """CONSUME_MESSAGE_DIRECTLY through the broker that stores the message (``addr``): one online client of
        the group runs its listener on it; its ConsumeMessageDirectlyResult."""
        ext = ConsumeMessageDirectlyResultRequestHeader(consumer_group=group, client_id=client_id,
                                                        msg_id=msg_id).encode()
        # The broker waits 10 s for the client's listener: wait longer, to get its answer.
        response = yield self.broker_call(addr, RequestCode.CONSUME_MESSAGE_DIRECTLY, ext, timeout=self.timeout + 10)
        check(response, f"consume message {msg_id} directly on consumer '{client_id}' via broker {addr}")
        try:
            return ConsumeMessageDirectlyResult.decode(response.body)
        except ValueError as e:
            raise AdminError(f"consumer '{client_id}' answered an unreadable result: {e}") from None

    @defer.inlineCallbacks
    def consumer_status(self, addr: str, topic: str, group: str, client_addr: Optional[str] = None):
        """INVOKE_BROKER_TO_GET_CONSUMER_STATUS: {client id: {MessageQueue: offset}}, the offsets the group's
        online clients (or the one whose id or address is ``client_addr``) hold for ``topic``."""
        ext = GetConsumerStatusRequestHeader(topic=topic, group=group, client_addr=client_addr or None).encode()
        # The broker asks every client and waits up to 5 s for each: wait longer, to get its answer.
        response = yield self.broker_call(addr, RequestCode.INVOKE_BROKER_TO_GET_CONSUMER_STATUS, ext,
                                          timeout=self.timeout + 5)
        check(response, f"consumer status of group '{group}' on topic '{topic}' via broker {addr}")
        return GetConsumerStatusBody.decode(response.body, MessageQueue).consumer_table

    # -- broker: offsets ---------------------------------------------------------------------------

    @defer.inlineCallbacks
    def _offset(self, addr: str, code: int, header: CommandHeader, what: str, field: str = "offset"):
        response = yield self.broker_ok(addr, code, what, header.encode())
        return int(response.field(field, "0"))

    def min_offset(self, addr: str, topic: str, queue_id: int):
        return self._offset(addr, RequestCode.GET_MIN_OFFSET, QueueRequestHeader(topic=topic, queue_id=queue_id),
                            "min offset")

    def max_offset(self, addr: str, topic: str, queue_id: int):
        return self._offset(addr, RequestCode.GET_MAX_OFFSET, QueueRequestHeader(topic=topic, queue_id=queue_id),
                            "max offset")

    def search_offset(self, addr: str, topic: str, queue_id: int, timestamp: int):
        header = SearchOffsetRequestHeader(topic=topic, queue_id=queue_id, timestamp=timestamp)
        return self._offset(addr, RequestCode.SEARCH_OFFSET_BY_TIMESTAMP, header, "search offset by time")

    @defer.inlineCallbacks
    def consumer_offset(self, addr: str, group: str, topic: str, queue_id: int):
        """The committed offset, or None when the broker has none."""
        ext = QueryConsumerOffsetRequestHeader(consumer_group=group, topic=topic, queue_id=queue_id).encode()
        response = yield self.broker_call(addr, RequestCode.QUERY_CONSUMER_OFFSET, ext)
        if response.code == RC.QUERY_NOT_FOUND:
            return None
        return int(check(response, "query consumer offset").field("offset", "0"))

    def update_consumer_offset(self, addr: str, group: str, topic: str, queue_id: int, offset: int):
        ext = UpdateConsumerOffsetRequestHeader(consumer_group=group, topic=topic, queue_id=queue_id,
                                                commit_offset=offset).encode()
        return self.broker_ok(addr, RequestCode.UPDATE_CONSUMER_OFFSET, "update consumer offset", ext)

    @defer.inlineCallbacks
    def reset_offset_in_broker(self, addr: str, topic: str, group: str, timestamp: int, force: bool,
                               cplus: bool = False):
        """INVOKE_BROKER_TO_RESET_OFFSET: (code, remark, {MessageQueue: offset}); not-success is the caller's.

        ``cplus`` sends the request as a C++ client, which makes a RocketMQ broker tell every consumer in the
        C++ body form (mq's broker uses that form for C++ consumers in any case)."""
        ext = ResetOffsetRequestHeader(topic=topic, group=group, timestamp=timestamp, is_force=force).encode()
        request = RemotingCommand.request(RequestCode.INVOKE_BROKER_TO_RESET_OFFSET, dict(ext))
        if cplus:
            request.language = LanguageCode.CPP
        response = yield self.remoting_call(addr, request)
        table = {}
        if response.code == RC.SUCCESS and response.body:
            table = queue_map(jsonkeys.loads(response.body).get("offsetTable"))
        return response.code, response.remark, table

    # -- broker: messages --------------------------------------------------------------------------

    @defer.inlineCallbacks
    def send_message(self, addr: str, broker_name: str, topic: str, queue_id: int, body: bytes,
                     tags: Optional[str] = None, keys: Optional[str] = None,
                     group: str = "TOOLS_PRODUCER", properties: Optional[Dict[str, str]] = None):
        """Send one message; a dict with the send status, the ids and the queue it went to. ``properties``:
        more message properties (a ``UNIQ_KEY`` among them keeps that message id)."""
        request = send_request(topic, body, tags=tags, keys=keys, properties=properties, queue_id=queue_id,
                               group=group)
        sent = string_to_properties(SendMessageRequestHeader.decode_short(request.ext_fields).properties)
        response = yield self.remoting_call(addr, request)
        statuses = {RC.SUCCESS: "SEND_OK", RC.FLUSH_DISK_TIMEOUT: "FLUSH_DISK_TIMEOUT",
                    RC.FLUSH_SLAVE_TIMEOUT: "FLUSH_SLAVE_TIMEOUT", RC.SLAVE_NOT_AVAILABLE: "SLAVE_NOT_AVAILABLE"}
        check(response, f"send to topic '{topic}' on broker {addr}", statuses)
        return {
            "brokerName": broker_name,
            "msgId": sent.get(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX, ""),
            "offsetMsgId": response.field("msgId", ""),
            "queueId": int(response.field("queueId", str(queue_id))),
            "queueOffset": int(response.field("queueOffset", "-1")),
            "sendStatus": statuses[response.code],
        }

    @defer.inlineCallbacks
    def send_committed_transaction(self, addr: str, broker_name: str, topic: str, queue_id: int, body: bytes,
                                   tags: Optional[str], keys: Optional[str], group: str):
        """One transactional message as a TransactionMQProducer whose local transaction commits sends it: a
        half message, then END_TRANSACTION commit; ``send_message``'s dict with ``transaction``."""
        props = {MessageConst.PROPERTY_TRANSACTION_PREPARED: "true", MessageConst.PROPERTY_PRODUCER_GROUP: group}
        request = send_request(topic, body, tags=tags, keys=keys, properties=props, queue_id=queue_id, group=group)
        sent = string_to_properties(SendMessageRequestHeader.decode_short(request.ext_fields).properties)
        response = yield self.remoting_call(addr, request)
        check(response, f"send a half message to topic '{topic}' on broker {addr}")
        end = yield self.remoting_call(addr, end_transaction_request(group, response, MessageSysFlag.TRANSACTION_COMMIT_TYPE))
        check(end, f"commit the half message {response.field('msgId', '')} on broker {addr}")
        return {"brokerName": broker_name, "msgId": sent.get(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX, ""),
                "offsetMsgId": response.field("msgId", ""), "queueId": queue_id,
                "queueOffset": int(response.field("queueOffset", "-1")), "sendStatus": "SEND_OK",
                "transaction": "COMMIT_MESSAGE"}

    @defer.inlineCallbacks
    def pull(self, addr: str, group: str, topic: str, queue_id: int, offset: int, max_nums: int = 32,
             subscription: str = "*"):
        """One pull, no long polling: (code, next begin offset, [MessageExt])."""
        response = yield self.remoting_call(addr, pull_request(group, topic, queue_id, offset, max_nums, subscription))
        check(response, f"pull {topic}:{queue_id}@{offset} from broker {addr}",
              (RC.SUCCESS, RC.PULL_NOT_FOUND, RC.PULL_RETRY_IMMEDIATELY, RC.PULL_OFFSET_MOVED))
        next_offset = int(response.field("nextBeginOffset", str(offset)))
        messages = decode_messages(response.body) if response.code == RC.SUCCESS and response.body else []
        if subscription.strip() not in ("", "*"):
            tags = {t.strip() for t in subscription.split("||")}
            messages = [m for m in messages if m.tags in tags]
        return response.code, next_offset, messages

    @defer.inlineCallbacks
    def view_message(self, addr: str, commit_log_offset: int):
        ext = ViewMessageRequestHeader(offset=commit_log_offset).encode()
        response = yield self.broker_ok(addr, RequestCode.VIEW_MESSAGE_BY_ID, "view message by id", ext)
        messages = decode_messages(response.body)
        if not messages:
            raise AdminError(f"broker {addr} returned no message at commit log offset {commit_log_offset}")
        return messages[0]

    @defer.inlineCallbacks
    def query_message(self, addr: str, topic: str, key: str, max_num: int = 64, begin: int = 0,
                      end: int = QUERY_MAX_TIMESTAMP, unique: bool = False):
        """Messages of one broker whose key (or UNIQ_KEY when ``unique``) is ``key``; [] when none."""
        ext = QueryMessageRequestHeader(topic=topic, key=key, max_num=max_num, begin_timestamp=begin,
                                        end_timestamp=end).encode()
        if unique:
            ext["_UNIQUE_KEY_QUERY"] = "true"
        response = yield self.broker_call(addr, RequestCode.QUERY_MESSAGE, ext, timeout=self.timeout * 3)
        if response.code == RC.QUERY_NOT_FOUND:
            return []
        check(response, f"query message by key '{key}' on broker {addr}")
        found: List[MessageExt] = []
        for m in decode_messages(response.body):
            if m.topic != topic:
                continue
            if unique:
                if m.unique_key == key:
                    found.append(m)
            elif key in m.keys:
                found.append(m)
        return found


def _reason(error: Exception) -> str:
    """The transport's message without the address it repeats (the error names the address itself)."""
    text = str(error) or type(error).__name__
    if text.startswith("cannot connect to ") and ": " in text:
        return text.split(": ", 1)[1]
    return text
