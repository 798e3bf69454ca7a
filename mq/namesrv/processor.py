"""The NameServer's request processors: one method per request code, registered on a dispatcher."""

from __future__ import annotations

import zlib
from typing import Any, Callable, Dict, Optional, Tuple

from twisted.logger import Logger

from mq.common import fastjson
from mq.common.namesrv_headers import (
    AddWritePermResponseHeader,
    BrokerNameRequestHeader,
    DeleteTopicFromNamesrvRequestHeader,
    GetKVConfigResponseHeader,
    GetRouteInfoRequestHeader,
    GetTopicsByClusterRequestHeader,
    KVConfigRequestHeader,
    NamespaceRequestHeader,
    QueryDataVersionRequestHeader,
    QueryDataVersionResponseHeader,
    RegisterBrokerRequestHeader,
    RegisterBrokerResponseHeader,
    UnregisterBrokerRequestHeader,
    WipeWritePermResponseHeader,
)
from mq.common.properties import format_properties, parse_properties
from mq.common.register_body import RegisterBodyError, RegisterBrokerBody
from mq.common.route import DataVersion
from mq.namesrv.kvconfig import KVConfigError, KVConfigManager
from mq.namesrv.routeinfo import RouteInfoManager
from mq.remoting.codes import VERSION_REGISTER_BODY, VERSION_STANDARD_JSON_ROUTE, RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand
from mq.remoting.protocol import RequestDispatcher

log = Logger()

ORDER_TOPIC_CONFIG_NAMESPACE = "ORDER_TOPIC_CONFIG"
FAQ_NO_ROUTE = "See http://rocketmq.apache.org/docs/faq/ for further details."


def _topic_list(topics, broker_addr: Optional[str] = None) -> bytes:
    body: Dict[str, object] = {"topicList": list(topics)}
    if broker_addr is not None:
        body["brokerAddr"] = broker_addr
    return fastjson.dumps_bytes(body)


class NamesrvProcessor:
    """Answers every request a NameServer handles, over a ``RouteInfoManager`` and a ``KVConfigManager``."""

    def __init__(self, routes: RouteInfoManager, kv: KVConfigManager, config) -> None:
        self.routes = routes
        self.kv = kv
        self.config = config
        #: Called with the changed settings after UPDATE_NAMESRV_CONFIG, so they reach where they are used.
        self.on_config_changed: Callable[[Dict[str, Any]], None] = lambda changed: None
        self._route_cache: Dict[Tuple[str, bool], bytes] = {}
        self._route_cache_state: object = None

    def route_state(self) -> Tuple[int, int, bool]:
        """What a route answer is computed from: route tables, KV config (order topics) and the order switch.
        Answers cached under one value stay right until it changes."""
        return self.routes.version, self.kv.version, bool(getattr(self.config, "order_message_enable", False))

    def register(self, dispatcher: RequestDispatcher, wrap: Callable = lambda code, fn: fn) -> None:
        """Put every handler in ``dispatcher`` (``wrap`` may add timing or counting around each)."""
        table = {
            RequestCode.REGISTER_BROKER: self.register_broker,
            RequestCode.UNREGISTER_BROKER: self.unregister_broker,
            RequestCode.QUERY_DATA_VERSION: self.query_data_version,
            RequestCode.GET_ROUTEINFO_BY_TOPIC: self.get_route_info,
            RequestCode.GET_BROKER_CLUSTER_INFO: self.get_broker_cluster_info,
            RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER: self.get_all_topic_list,
            RequestCode.GET_TOPICS_BY_CLUSTER: self.get_topics_by_cluster,
            RequestCode.DELETE_TOPIC_IN_NAMESRV: self.delete_topic,
            RequestCode.WIPE_WRITE_PERM_OF_BROKER: self.wipe_write_perm,
            RequestCode.ADD_WRITE_PERM_OF_BROKER: self.add_write_perm,
            RequestCode.PUT_KV_CONFIG: self.put_kv_config,
            RequestCode.GET_KV_CONFIG: self.get_kv_config,
            RequestCode.DELETE_KV_CONFIG: self.delete_kv_config,
            RequestCode.GET_KVLIST_BY_NAMESPACE: self.get_kv_list,
            RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_NS: self.get_system_topic_list,
            RequestCode.GET_UNIT_TOPIC_LIST: self.get_unit_topics,
            RequestCode.GET_HAS_UNIT_SUB_TOPIC_LIST: self.get_unit_sub_topics,
            RequestCode.GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST: self.get_unit_sub_ununit_topics,
            RequestCode.GET_NAMESRV_CONFIG: self.get_namesrv_config,
            RequestCode.UPDATE_NAMESRV_CONFIG: self.update_namesrv_config,
        }
        for code, handler in table.items():
            dispatcher.register(code, wrap(code, handler))

    # -- brokers -------------------------------------------------------------------------------------

    def register_broker(self, request: RemotingCommand, channel) -> RemotingCommand:
        header = RegisterBrokerRequestHeader.decode(request.ext_fields)
        if header.body_crc32 and request.body:
            crc = zlib.crc32(request.body) & 0x7FFFFFFF
            if crc != header.body_crc32:
                return request.response(
                    ResponseCode.SYSTEM_ERROR,
                    f"crc32 not match: header says {header.body_crc32}, body has {crc}",
                )
        try:
            body = RegisterBrokerBody.decode(
                request.body,
                compressed=bool(header.compressed),
                with_filter_servers=request.version >= VERSION_REGISTER_BODY,
            )
        except RegisterBodyError as e:
            return request.response(ResponseCode.SYSTEM_ERROR, str(e))
        result = self.routes.register_broker(
            header.cluster_name,
            header.broker_addr,
            header.broker_name,
            header.broker_id,
            header.ha_server_addr,
            body.data_version,
            body.topic_config_table,
            body.filter_server_list,
            channel,
        )
        ext = RegisterBrokerResponseHeader(result.ha_server_addr, result.master_addr).encode()
        order_conf = self.kv.namespace(ORDER_TOPIC_CONFIG_NAMESPACE)
        response_body = fastjson.dumps_bytes({"table": order_conf}) if order_conf else b""
        return request.response(ResponseCode.SUCCESS, None, ext, response_body)

    def unregister_broker(self, request: RemotingCommand, channel) -> RemotingCommand:
        h = UnregisterBrokerRequestHeader.decode(request.ext_fields)
        self.routes.unregister_broker(h.cluster_name, h.broker_addr, h.broker_name, h.broker_id)
        return request.response(ResponseCode.SUCCESS, None, {})

    def query_data_version(self, request: RemotingCommand, channel) -> RemotingCommand:
        h = QueryDataVersionRequestHeader.decode(request.ext_fields)
        try:
            version = DataVersion.from_json(fastjson.loads(request.body) if request.body else None)
        except (ValueError, TypeError) as e:
            return request.response(ResponseCode.SYSTEM_ERROR, f"data version body does not parse: {e}")
        changed, stored = self.routes.query_data_version(h.broker_addr, version)
        body = fastjson.dumps_bytes(stored) if stored is not None else b""
        return request.response(ResponseCode.SUCCESS, None, QueryDataVersionResponseHeader(changed).encode(), body)

    def wipe_write_perm(self, request: RemotingCommand, channel) -> RemotingCommand:
        h = BrokerNameRequestHeader.decode(request.ext_fields)
        count = self.routes.wipe_write_perm(h.broker_name)
        log.info("wiped write permission of broker {broker}: {n} topics", broker=h.broker_name, n=count)
        return request.response(ResponseCode.SUCCESS, None, WipeWritePermResponseHeader(count).encode())

    def add_write_perm(self, request: RemotingCommand, channel) -> RemotingCommand:
        h = BrokerNameRequestHeader.decode(request.ext_fields)
        count = self.routes.add_write_perm(h.broker_name)
        log.info("added write permission of broker {broker}: {n} topics", broker=h.broker_name, n=count)
        return request.response(ResponseCode.SUCCESS, None, AddWritePermResponseHeader(count).encode())

    # -- routes and topics ---------------------------------------------------------------------------

    def get_route_info(self, request: RemotingCommand, channel) -> RemotingCommand:
        h = GetRouteInfoRequestHeader.decode(request.ext_fields)
        standard = bool(h.accept_standard_json_only) or request.version >= VERSION_STANDARD_JSON_ROUTE
        state = self.route_state()
        if self._route_cache_state != state:
            self._route_cache.clear()
            self._route_cache_state = state
        key = (h.topic, standard)
        body = self._route_cache.get(key)
        if body is None:
            route = self.routes.pickup_topic_route_data(h.topic)
            if route is None:
                return request.response(
                    ResponseCode.TOPIC_NOT_EXIST,
                    f"No topic route info in name server for the topic: {h.topic}\n{FAQ_NO_ROUTE}",
                )
            if getattr(self.config, "order_message_enable", False):
                route.order_topic_conf = self.kv.get(ORDER_TOPIC_CONFIG_NAMESPACE, h.topic)
            body = fastjson.dumps_bytes(route, standard)
            if len(self._route_cache) < 100_000:
                self._route_cache[key] = body
        return request.response(ResponseCode.SUCCESS, None, None, body)

    def get_broker_cluster_info(self, request: RemotingCommand, channel) -> RemotingCommand:
        return request.response(ResponseCode.SUCCESS, None, None, fastjson.dumps_bytes(self.routes.cluster_info()))

    def get_all_topic_list(self, request: RemotingCommand, channel) -> RemotingCommand:
        return request.response(ResponseCode.SUCCESS, None, None, _topic_list(self.routes.all_topics()))

    def get_topics_by_cluster(self, request: RemotingCommand, channel) -> RemotingCommand:
        h = GetTopicsByClusterRequestHeader.decode(request.ext_fields)
        return request.response(ResponseCode.SUCCESS, None, None, _topic_list(self.routes.topics_by_cluster(h.cluster)))

    def delete_topic(self, request: RemotingCommand, channel) -> RemotingCommand:
        h = DeleteTopicFromNamesrvRequestHeader.decode(request.ext_fields)
        self.routes.delete_topic(h.topic, h.cluster_name)
        log.info("deleted topic {topic} (cluster {cluster})", topic=h.topic, cluster=h.cluster_name or "all")
        return request.response(ResponseCode.SUCCESS)

    def get_system_topic_list(self, request: RemotingCommand, channel) -> RemotingCommand:
        topics, broker_addr = self.routes.system_topics()
        return request.response(ResponseCode.SUCCESS, None, None, _topic_list(topics, broker_addr))

    def get_unit_topics(self, request: RemotingCommand, channel) -> RemotingCommand:
        return request.response(ResponseCode.SUCCESS, None, None, _topic_list(self.routes.unit_topics(True, None)))

    def get_unit_sub_topics(self, request: RemotingCommand, channel) -> RemotingCommand:
        return request.response(ResponseCode.SUCCESS, None, None, _topic_list(self.routes.unit_topics(None, True)))

    def get_unit_sub_ununit_topics(self, request: RemotingCommand, channel) -> RemotingCommand:
        return request.response(ResponseCode.SUCCESS, None, None, _topic_list(self.routes.unit_topics(False, True)))

    # -- KV config -----------------------------------------------------------------------------------

    def put_kv_config(self, request: RemotingCommand, channel) -> RemotingCommand:
        h = KVConfigRequestHeader.decode(request.ext_fields)
        if h.value is None:
            return request.response(ResponseCode.SYSTEM_ERROR, "KVConfigRequestHeader: header field 'value' is missing")
        try:
            self.kv.put(h.namespace, h.key, h.value)
        except KVConfigError as e:  # RocketMQ has no such bound, hence no code of its own for it
            log.warn("PUT_KV_CONFIG from {peer} refused: {error}", peer=getattr(channel, "peer", channel), error=e)
            return request.response(ResponseCode.SYSTEM_ERROR, f"KV config not changed: {e}")
        return request.response(ResponseCode.SUCCESS)

    def get_kv_config(self, request: RemotingCommand, channel) -> RemotingCommand:
        h = KVConfigRequestHeader.decode(request.ext_fields)
        value = self.kv.get(h.namespace, h.key)
        if value is None:
            return request.response(ResponseCode.QUERY_NOT_FOUND, f"No config item, Namespace: {h.namespace} Key: {h.key}")
        return request.response(ResponseCode.SUCCESS, None, GetKVConfigResponseHeader(value).encode())

    def delete_kv_config(self, request: RemotingCommand, channel) -> RemotingCommand:
        h = KVConfigRequestHeader.decode(request.ext_fields)
        self.kv.delete(h.namespace, h.key)
        return request.response(ResponseCode.SUCCESS)

    def get_kv_list(self, request: RemotingCommand, channel) -> RemotingCommand:
        h = NamespaceRequestHeader.decode(request.ext_fields)
        table = self.kv.namespace(h.namespace)
        if table is None:
            return request.response(ResponseCode.QUERY_NOT_FOUND, f"No config item, Namespace: {h.namespace}")
        return request.response(ResponseCode.SUCCESS, None, None, fastjson.dumps_bytes({"table": table}))

    # -- own configuration ---------------------------------------------------------------------------

    def get_namesrv_config(self, request: RemotingCommand, channel) -> RemotingCommand:
        text = format_properties(self.config.as_properties())
        return request.response(ResponseCode.SUCCESS, None, None, text.encode("utf-8"))

    def update_namesrv_config(self, request: RemotingCommand, channel) -> RemotingCommand:
        try:
            updates = parse_properties((request.body or b"").decode("utf-8"))
            changed = self.config.update_from_properties(updates, runtime=True)
        except ValueError as e:  # UnicodeDecodeError too; a value out of its range is named with the range
            log.warn("NameServer config update from {peer} refused: {error}",
                     peer=getattr(channel, "peer", channel), error=e)
            return request.response(ResponseCode.SYSTEM_ERROR, f"config update refused: {e}")
        log.info("NameServer config updated: {changed}", changed=changed)
        self.on_config_changed(changed)
        return request.response(ResponseCode.SUCCESS)

