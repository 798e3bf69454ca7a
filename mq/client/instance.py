"""``ClientInstance``: what every producer and consumer of one client id shares (Java ``MQClientInstance``).

One instance per client id (``ip@instanceName``) and reactor: one connection per address, the route cache
(refreshed every 30 s and at once after a failure), heartbeats to every broker in use (every 30 s, and at
once to a broker seen for the first time), the rebalance timer (20 s, and at once on
NOTIFY_CONSUMER_IDS_CHANGED), the offset persist timer (5 s), and the requests brokers send to clients.
The last producer or consumer to leave unregisters from every broker and closes the connections.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Dict, List, Optional, Protocol, Sequence, Tuple, Union

import attr
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure

from mq.acl.signing import Credentials
from mq.client.api import ClientAPI
from mq.client.headers import CheckTransactionStateRequestHeader, ResetOffsetRequestHeader
from mq.client.model import MessageQueue
from mq.client.request_reply import CORRELATION_ID, ReplyWaiters, reply_from_push
from mq.client.stacks import thread_stacks
from mq.common import fastjson
from mq.common.broker_headers import (
    ConsumeMessageDirectlyResultRequestHeader,
    ConsumerGroupRequestHeader,
    GetConsumerStatusRequestHeader,
)
from mq.common.consumer_status import GetConsumerStatusBody
from mq.common.heartbeat import ConsumerData, HeartbeatData
from mq.common.message import MessageConst
from mq.common.message_record import decode_message_ext
from mq.common.mixall import MASTER_ID
from mq.common.route import TopicRouteData
from mq.remoting.client import RemotingClient
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand
from mq.remoting.protocol import RequestDispatcher

log = Logger()


def local_ip() -> str:
    """This host's address as other hosts would see it (loopback when there is nothing better)."""
    try:
        ip = socket.gethostbyname(socket.gethostname())
        if not ip.startswith("127."):
            return ip
    except OSError:
        pass
    return "127.0.0.1"


def parse_namesrv(addr: Union[str, Sequence[str], None]) -> List[str]:
    """NameServer addresses from ``a:9876;b:9876`` (the Java form), a list, or ``$NAMESRV_ADDR``."""
    if addr is None:
        addr = os.environ.get("NAMESRV_ADDR", "")
    if isinstance(addr, str):
        addr = addr.replace(",", ";").split(";")
    out = [a.strip() for a in addr if a and a.strip()]
    if not out:
        raise ValueError("no NameServer address: pass namesrv_addr or set NAMESRV_ADDR")
    return out


@attr.s(slots=True)
class ClientConfig:
    """Settings shared by the clients of one instance (Java ``ClientConfig``); times in seconds."""

    namesrv_addr: Union[str, Sequence[str], None] = attr.ib(default=None)
    instance_name: Optional[str] = attr.ib(default=None)  # default: the process id
    client_ip: Optional[str] = attr.ib(default=None)
    unit_name: Optional[str] = attr.ib(default=None)
    poll_namesrv_interval: float = attr.ib(default=30.0)
    heartbeat_broker_interval: float = attr.ib(default=30.0)
    persist_consumer_offset_interval: float = attr.ib(default=5.0)
    rebalance_interval: float = attr.ib(default=20.0)
    request_timeout: float = attr.ib(default=3.0)
    #: The account every request is signed with (ACL brokers, docs/acl.md); None sends unsigned requests.
    credentials: Optional[Credentials] = attr.ib(default=None)

    def client_id(self) -> str:
        cid = f"{self.client_ip or local_ip()}@{self.instance_name or os.getpid()}"
        return f"{cid}@{self.unit_name}" if self.unit_name else cid


def make_client_config(config: Optional[ClientConfig], namesrv_addr, instance_name: Optional[str],
                       credentials: Optional[Credentials]) -> ClientConfig:
    """A producer's or consumer's settings: ``config`` (updated with the arguments given) or new ones."""
    if config is None:
        return ClientConfig(namesrv_addr=namesrv_addr, instance_name=instance_name, credentials=credentials)
    if credentials is not None:
        config.credentials = credentials
    return config


class ProducerLike(Protocol):
    group: str

    def publish_topics(self) -> List[str]: ...

    def on_route(self, topic: str, route: TopicRouteData) -> None: ...


class ConsumerLike(Protocol):
    group: str

    def consumer_data(self) -> ConsumerData: ...

    def subscribed_topics(self) -> List[str]: ...

    def on_route(self, topic: str, route: TopicRouteData) -> None: ...

    def do_rebalance(self) -> defer.Deferred: ...

    def persist_offsets(self) -> defer.Deferred: ...


_instances: Dict[Tuple[int, str], "ClientInstance"] = {}


def get_instance(config: ClientConfig, reactor=None) -> "ClientInstance":
    """The instance of ``config``'s client id on ``reactor``, made on first use."""
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    key = (id(reactor), config.client_id())
    inst = _instances.get(key)
    if inst is None or inst.closed:
        inst = _instances[key] = ClientInstance(config, reactor)
    elif inst.config.credentials != config.credentials:
        # One connection per broker signs for every client of the instance: one account per client id.
        raise ValueError(f"client id {key[1]} already signs with other credentials: give this client "
                         "another instance_name")
    return inst


class ClientInstance:
    """Routes, heartbeats, timers and broker→client requests for the producers and consumers of one client id."""

    def __init__(self, config: ClientConfig, reactor) -> None:
        self.config = config
        self.reactor = reactor
        self.client_id = config.client_id()
        self.namesrv = parse_namesrv(config.namesrv_addr)
        dispatcher = RequestDispatcher()
        dispatcher.register(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, self._on_ids_changed)
        dispatcher.register(RequestCode.CHECK_TRANSACTION_STATE, self._on_check_transaction)
        dispatcher.register(RequestCode.GET_CONSUMER_RUNNING_INFO, self._on_running_info)
        dispatcher.register(RequestCode.CONSUME_MESSAGE_DIRECTLY, self._on_consume_directly)
        dispatcher.register(RequestCode.RESET_CONSUMER_CLIENT_OFFSET, self._on_reset_offset)
        dispatcher.register(RequestCode.GET_CONSUMER_STATUS_FROM_CLIENT, self._on_consumer_status)
        dispatcher.register(RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT, self._on_reply)
        signer = config.credentials.sign_request if config.credentials is not None else None
        self.remoting = RemotingClient(reactor, dispatcher, signer=signer)
        self.api = ClientAPI(self.remoting, config.request_timeout)
        self.producers: Dict[str, ProducerLike] = {}
        self.consumers: Dict[str, ConsumerLike] = {}
        self.routes: Dict[str, TopicRouteData] = {}
        #: broker name → {broker id: address}, as the latest route naming that broker lists them
        self.broker_addrs: Dict[str, Dict[int, str]] = {}
        self._route_updates: Dict[str, List[defer.Deferred]] = {}
        self._loops: List[task.LoopingCall] = []
        self._rebalance_pending = None
        #: requests (``Producer.request``) waiting for their reply, by correlation id
        self.replies = ReplyWaiters(reactor)
        self.started = False
        self.closed = False

    # -- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        c = self.config
        for interval, work in ((c.poll_namesrv_interval, self.update_all_routes),
                               (c.heartbeat_broker_interval, self.send_heartbeats),
                               (c.persist_consumer_offset_interval, self.persist_all_offsets),
                               (c.rebalance_interval, self.rebalance_all)):
            loop = task.LoopingCall(self._guard, work)
            loop.clock = self.reactor
            loop.start(interval, now=False)
            self._loops.append(loop)

    @staticmethod
    def _guard(work):
        d = defer.maybeDeferred(work)
        d.addErrback(lambda f: log.failure("client timer task", f))
        return d

    def register_producer(self, producer: ProducerLike) -> None:
        if producer.group in self.producers:
            raise ValueError(f"producer group {producer.group} is already used by client {self.client_id}")
        self.producers[producer.group] = producer
        self.start()
        if self.broker_addrs:
            # as Java's start(): the brokers learn the new group now, so replies to its requests find it
            self.send_heartbeats()

    def register_consumer(self, consumer: ConsumerLike) -> None:
        if consumer.group in self.consumers:
            raise ValueError(f"consumer group {consumer.group} is already used by client {self.client_id}")
        self.consumers[consumer.group] = consumer
        self.start()

    @defer.inlineCallbacks
    def unregister(self, producer_group: Optional[str] = None, consumer_group: Optional[str] = None):
        """Leave: tell every broker (UNREGISTER_CLIENT); the last one out shuts the instance down."""
        if producer_group is not None:
            self.producers.pop(producer_group, None)
        if consumer_group is not None:
            self.consumers.pop(consumer_group, None)
        calls = [self.api.unregister_client(addr, self.client_id, producer_group, consumer_group)
                 for addr in self.all_broker_addrs()]
        yield defer.DeferredList(calls, consumeErrors=True)
        if not self.producers and not self.consumers:
            yield self.shutdown()

    def shutdown(self) -> defer.Deferred:
        self.closed = True
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops = []
        if self._rebalance_pending is not None and self._rebalance_pending.active():
            self._rebalance_pending.cancel()
        self.replies.fail_all("the client shut down")
        return self.remoting.close()

    # -- routes ---------------------------------------------------------------------------------------

    def update_route(self, topic: str) -> defer.Deferred:
        """Ask the NameServer for ``topic`` (one request in flight per topic); Deferred of the route or None."""
        waiting = self._route_updates.get(topic)
        if waiting is not None:
            d = defer.Deferred()
            waiting.append(d)
            return d
        waiting = self._route_updates[topic] = []

        def finish(result):
            self._route_updates.pop(topic, None)
            if result is not None and not isinstance(result, Failure):
                self._apply_route(topic, result)
            for w in waiting:
                w.callback(result)
            return result

        return self.api.get_route(self.namesrv, topic).addBoth(finish)

    def _apply_route(self, topic: str, route: TopicRouteData) -> None:
        new_brokers = []
        for bd in route.broker_datas:
            known = self.broker_addrs.get(bd.broker_name, {})
            new_brokers += [addr for bid, addr in bd.broker_addrs.items() if known.get(bid) != addr]
            # the route's members replace the old ones (Java's brokerAddrTable.put): a master or slave that
            # left the route is no longer pulled from or sent to
            self.broker_addrs[bd.broker_name] = dict(bd.broker_addrs)
        changed = self.routes.get(topic) != route
        self.routes[topic] = route
        if changed:
            for client in list(self.producers.values()) + list(self.consumers.values()):
                client.on_route(topic, route)
        if new_brokers and not self.closed:
            self.send_heartbeats(new_brokers)

    def update_all_routes(self) -> defer.Deferred:
        topics = set()
        for p in self.producers.values():
            topics.update(p.publish_topics())
        for c in self.consumers.values():
            topics.update(c.subscribed_topics())
        calls = [self.update_route(t) for t in sorted(topics)]
        return defer.DeferredList(calls, consumeErrors=True)

    def master_addr(self, broker_name: str) -> Optional[str]:
        return self.broker_addrs.get(broker_name, {}).get(MASTER_ID)

    def subscribe_addr(self, broker_name: str, broker_id: int = MASTER_ID) -> Optional[str]:
        """The address to pull from: the suggested broker id if known, else the master, else any."""
        addrs = self.broker_addrs.get(broker_name) or {}
        return addrs.get(broker_id) or addrs.get(MASTER_ID) or next(iter(addrs.values()), None)

    def any_broker_of(self, topic: str) -> Optional[str]:
        route = self.routes.get(topic)
        if route is None:
            return None
        for bd in route.broker_datas:
            addr = bd.broker_addrs.get(MASTER_ID) or next(iter(bd.broker_addrs.values()), None)
            if addr:
                return addr
        return None

    def all_broker_addrs(self) -> List[str]:
        return sorted({a for addrs in self.broker_addrs.values() for a in addrs.values()})

    def forget_broker(self, addr: str) -> None:
        """Drop a broker's connection after a failure, so the next request reconnects."""
        self.remoting.close_connection(addr)

    # -- heartbeats -----------------------------------------------------------------------------------

    def heartbeat_data(self) -> HeartbeatData:
        return HeartbeatData(self.client_id, sorted(self.producers),
                             [c.consumer_data() for c in self.consumers.values()])

    def send_heartbeats(self, addrs: Optional[Sequence[str]] = None) -> defer.Deferred:
        """HEART_BEAT to ``addrs`` (default: every broker in use; slaves only when there are consumers)."""
        if self.closed:
            return defer.succeed(None)
        data = self.heartbeat_data()
        if addrs is None:
            addrs = []
            for ids in self.broker_addrs.values():
                for bid, addr in ids.items():
                    if bid == MASTER_ID or data.consumers:
                        addrs.append(addr)
        calls = []
        for addr in addrs:
            d = self.api.heartbeat(addr, data)
            d.addErrback(lambda f, a=addr: log.info("heartbeat to {addr} failed: {e}", addr=a,
                                                    e=f.getErrorMessage()))
            calls.append(d)
        return defer.DeferredList(calls)

    # -- consumers --------------------------------------------------------------------------------------

    def rebalance_all(self) -> defer.Deferred:
        calls = [defer.maybeDeferred(c.do_rebalance) for c in list(self.consumers.values())]
        return defer.DeferredList(calls, consumeErrors=True)

    def rebalance_soon(self, refresh_routes: bool = False) -> None:
        """Rebalance every consumer at the next reactor turn (several notices coalesce into one), after
        refreshing the routes if asked (a group change often comes with a new retry topic)."""
        if self.closed or (self._rebalance_pending is not None and self._rebalance_pending.active()):
            return

        def run():
            if refresh_routes:
                return self.update_all_routes().addBoth(lambda _: self.rebalance_all())
            return self.rebalance_all()

        self._rebalance_pending = self.reactor.callLater(0, self._guard, run)

    def persist_all_offsets(self) -> defer.Deferred:
        calls = [defer.maybeDeferred(c.persist_offsets) for c in list(self.consumers.values())]
        return defer.DeferredList(calls, consumeErrors=True)

    # -- requests from brokers --------------------------------------------------------------------------

    def _on_ids_changed(self, request: RemotingCommand, channel) -> None:
        group = ConsumerGroupRequestHeader.decode(request.ext_fields).consumer_group
        log.debug("consumer ids of {group} changed; rebalancing", group=group)
        self.rebalance_soon(refresh_routes=True)
        return None

    def _on_check_transaction(self, request: RemotingCommand, channel) -> None:
        header = CheckTransactionStateRequestHeader.decode(request.ext_fields)
        msg = decode_message_ext(request.body)
        group = msg.properties.get(MessageConst.PROPERTY_PRODUCER_GROUP)
        producer = self.producers.get(group or "")
        checker = getattr(producer, "check_transaction_state", None)
        if checker is None:
            log.warn("transaction check for unknown producer group {group}", group=group)
            return None
        checker(channel, header, msg)
        return None

    def _on_running_info(self, request: RemotingCommand, channel) -> RemotingCommand:
        group = request.field("consumerGroup", "")
        consumer = self.consumers.get(group)
        if consumer is None:
            return request.response(ResponseCode.SYSTEM_ERROR, f"the consumer group {group} is not in this client")
        data = consumer.consumer_data()
        body = {
            "jstack": thread_stacks() if request.field("jstackEnable", "") == "true" else "",
            "mqTable": {},
            "properties": {"PROP_CLIENT_VERSION": "V4_9_8", "PROP_CONSUME_TYPE": data.consume_type,
                           "PROP_CONSUMEORDERLY": str(bool(getattr(consumer, "orderly", False))).lower(),
                           "PROP_NAMESERVER_ADDR": ";".join(self.namesrv),
                           "PROP_THREADPOOL_CORE_SIZE": "-1", "messageModel": data.message_model,
                           "consumeFromWhere": data.consume_from_where},
            "statusTable": consumer.consume_stats.status_table() if hasattr(consumer, "consume_stats") else {},
            "subscriptionSet": [s.to_json() for s in data.subscription_data_set],
        }
        return request.response(ResponseCode.SUCCESS, None, None, fastjson.dumps_bytes(body))

    def _on_consume_directly(self, request: RemotingCommand, channel):
        """CONSUME_MESSAGE_DIRECTLY: the group's push consumer runs its listener on the message the broker sent
        and answers a ConsumeMessageDirectlyResult (a Deferred of the response)."""
        header = ConsumeMessageDirectlyResultRequestHeader.decode(request.ext_fields)
        direct = getattr(self.consumers.get(header.consumer_group), "consume_message_directly", None)
        if direct is None:
            return request.response(ResponseCode.SYSTEM_ERROR,
                                    f"The Consumer Group <{header.consumer_group}> not exist in this consumer")
        try:
            msg = decode_message_ext(request.body)
        except Exception as e:  # noqa: BLE001 - any undecodable body is the sender's fault
            return request.response(ResponseCode.SYSTEM_ERROR, f"the message could not be decoded: {e}")
        d = direct(msg, header.broker_name or "")
        return d.addCallback(lambda result: request.response(ResponseCode.SUCCESS, None, None, result.encode()))

    _MQ_KEY = re.compile(r'\{"brokerName":"([^"]*)","queueId":(\d+),"topic":"([^"]*)"\}:(-?\d+)')

    def _on_reset_offset(self, request: RemotingCommand, channel) -> Optional[RemotingCommand]:
        header = ResetOffsetRequestHeader.decode(request.ext_fields)
        consumer = self.consumers.get(header.group)
        table: Dict[MessageQueue, int] = {}
        text = request.body.decode("utf-8", "replace") if request.body else ""
        for broker, qid, topic, offset in self._MQ_KEY.findall(text):
            table[MessageQueue(topic, broker, int(qid))] = int(offset)
        if not table and text:
            try:  # ResetOffsetBodyForC: a list of objects
                for item in fastjson.loads(text).get("offsetTable") or []:
                    table[MessageQueue.from_json(item)] = int(item["offset"])
            except (ValueError, KeyError, TypeError, AttributeError):
                pass
        reset = getattr(consumer, "reset_offsets", None)
        if reset is not None and table:
            reset(header.topic, table)
        return request.response(ResponseCode.SUCCESS) if not request.is_oneway else None

    def _on_consumer_status(self, request: RemotingCommand, channel) -> RemotingCommand:
        """GET_CONSUMER_STATUS_FROM_CLIENT: the offsets the group's consumer (push or lite pull) holds in memory
        for the topic's queues (every topic if none is named); an empty table for a group not in this client,
        as Java answers."""
        header = GetConsumerStatusRequestHeader.decode(request.ext_fields)
        offsets = getattr(self.consumers.get(header.group), "offsets", None)
        table = {mq: offset for mq, offset in getattr(offsets, "table", {}).items()
                 if not header.topic or mq.topic == header.topic}
        body = GetConsumerStatusBody(message_queue_table=table).encode()
        return request.response(ResponseCode.SUCCESS, None, None, body)

    def _on_reply(self, request: RemotingCommand, channel) -> RemotingCommand:
        """PUSH_REPLY_MESSAGE_TO_CLIENT: a reply for one of this client's requests (answered SUCCESS even when
        no request waits for it any more, as Java does)."""
        try:
            msg = reply_from_push(request, int(self.reactor.seconds() * 1000))
        except ValueError:  # HeaderFieldError included
            log.failure("reply message from {peer}", peer=channel.peer)
            return request.response(ResponseCode.SYSTEM_ERROR, "process reply message fail")
        if not self.replies.deliver(msg):
            log.warn("reply message matches no request: correlation id {cid}, from {host}",
                     cid=msg.properties.get(CORRELATION_ID), host=msg.born_host)
        return request.response(ResponseCode.SUCCESS)
