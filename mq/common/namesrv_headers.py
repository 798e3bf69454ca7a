"""Custom headers of the NameServer's requests and responses (RocketMQ ``protocol.header.namesrv``)."""

from __future__ import annotations

import attr

from mq.remoting.header import CommandHeader, hfield


@attr.s(slots=True)
class RegisterBrokerRequestHeader(CommandHeader):
    broker_name: str = hfield("brokerName", required=True)
    broker_addr: str = hfield("brokerAddr", required=True)
    cluster_name: str = hfield("clusterName", required=True)
    ha_server_addr: str = hfield("haServerAddr", required=True)
    broker_id: int = hfield("brokerId", int, required=True)
    compressed: bool = hfield("compressed", bool, default=False)
    body_crc32: int = hfield("bodyCrc32", int, default=0)


@attr.s(slots=True)
class RegisterBrokerResponseHeader(CommandHeader):
    ha_server_addr: str = hfield("haServerAddr")
    master_addr: str = hfield("masterAddr")


@attr.s(slots=True)
class UnregisterBrokerRequestHeader(CommandHeader):
    """Also the header of QUERY_DATA_VERSION: the same four fields identify a broker."""

    broker_name: str = hfield("brokerName", required=True)
    broker_addr: str = hfield("brokerAddr", required=True)
    cluster_name: str = hfield("clusterName", required=True)
    broker_id: int = hfield("brokerId", int, required=True)


QueryDataVersionRequestHeader = UnregisterBrokerRequestHeader


@attr.s(slots=True)
class QueryDataVersionResponseHeader(CommandHeader):
    changed: bool = hfield("changed", bool)


@attr.s(slots=True)
class GetRouteInfoRequestHeader(CommandHeader):
    topic: str = hfield("topic", required=True)
    accept_standard_json_only: bool = hfield("acceptStandardJsonOnly", bool)


@attr.s(slots=True)
class KVConfigRequestHeader(CommandHeader):
    """PUT_KV_CONFIG (with value), GET_KV_CONFIG and DELETE_KV_CONFIG."""

    namespace: str = hfield("namespace", required=True)
    key: str = hfield("key", required=True)
    value: str = hfield("value")


@attr.s(slots=True)
class GetKVConfigResponseHeader(CommandHeader):
    value: str = hfield("value")


@attr.s(slots=True)
class NamespaceRequestHeader(CommandHeader):
    namespace: str = hfield("namespace", required=True)


@attr.s(slots=True)
class BrokerNameRequestHeader(CommandHeader):
    """WIPE_WRITE_PERM_OF_BROKER and ADD_WRITE_PERM_OF_BROKER."""

    broker_name: str = hfield("brokerName", required=True)


@attr.s(slots=True)
class WipeWritePermResponseHeader(CommandHeader):
    wipe_topic_count: int = hfield("wipeTopicCount", int)


@attr.s(slots=True)
class AddWritePermResponseHeader(CommandHeader):
    add_topic_count: int = hfield("addTopicCount", int)


@attr.s(slots=True)
class DeleteTopicFromNamesrvRequestHeader(CommandHeader):
    topic: str = hfield("topic", required=True)
    cluster_name: str = hfield("clusterName")


@attr.s(slots=True)
class GetTopicsByClusterRequestHeader(CommandHeader):
    cluster: str = hfield("cluster", required=True)
