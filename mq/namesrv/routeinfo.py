"""``RouteInfoManager``: the NameServer's five tables and every change made to them.

The reactor is single-threaded, so where Java takes a read-write lock the tables are simply plain dicts.
``version`` counts changes that a route reader could see, so encoded routes can be cached between them.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Set

import attr
from twisted.logger import Logger

from mq.common.route import PERM_READ, PERM_WRITE, BrokerData, DataVersion, QueueData, TopicConfig, TopicRouteData

log = Logger()

#: TopicSysFlag bits.
FLAG_UNIT = 0x1
FLAG_UNIT_SUB = 0x2


@attr.s(slots=True)
class BrokerLiveInfo:
    """When a broker last spoke, with what topic-config version, on which connection."""

    last_update_ms: int = attr.ib()
    data_version: DataVersion = attr.ib()
    channel: object = attr.ib()
    ha_server_addr: str = attr.ib(default="")


@attr.s(slots=True)
class RegisterBrokerResult:
    ha_server_addr: Optional[str] = attr.ib(default=None)
    master_addr: Optional[str] = attr.ib(default=None)


class RouteInfoManager:
    """Holds topicQueueTable, brokerAddrTable, clusterAddrTable, brokerLiveTable and filterServerTable."""

    def __init__(self, now_ms: Callable[[], int], broker_expiry_ms: int = 120_000) -> None:
        self.now_ms = now_ms
        self.broker_expiry_ms = broker_expiry_ms
        #: topic → broker name → QueueData
        self.topic_queue_table: Dict[str, Dict[str, QueueData]] = {}
        #: broker name → BrokerData (cluster, name, id → address)
        self.broker_addr_table: Dict[str, BrokerData] = {}
        #: cluster name → broker names
        self.cluster_addr_table: Dict[str, Set[str]] = {}
        #: broker address → BrokerLiveInfo
        self.broker_live_table: Dict[str, BrokerLiveInfo] = {}
        #: broker address → filter server addresses
        self.filter_server_table: Dict[str, List[str]] = {}
        self.version = 0

    def _changed(self) -> None:
        self.version += 1

    # -- registration --------------------------------------------------------------------------------

    def register_broker(
        self,
        cluster_name: str,
        broker_addr: str,
        broker_name: str,
        broker_id: int,
        ha_server_addr: str,
        data_version: DataVersion,
        topic_configs: Dict[str, TopicConfig],
        filter_server_list: List[str],
        channel: object,
    ) -> RegisterBrokerResult:
        """Record a broker's (re-)registration; topic configs are taken from masters only and merged (a
        registration never removes a topic)."""
        names = self.cluster_addr_table.setdefault(cluster_name, set())
        if broker_name not in names:
            names.add(broker_name)
            self._changed()

        register_first = False
        broker_data = self.broker_addr_table.get(broker_name)
        if broker_data is None:
            register_first = True
            broker_data = BrokerData(cluster_name, broker_name, {})
            self.broker_addr_table[broker_name] = broker_data
            self._changed()
        addrs = broker_data.broker_addrs
        # The same address under another id: a slave that became master (or the reverse).
        for other_id in [i for i, a in addrs.items() if a == broker_addr and i != broker_id]:
            del addrs[other_id]
            self._changed()
        old_addr = addrs.get(broker_id)
        if old_addr != broker_addr:
            addrs[broker_id] = broker_addr
            self._changed()
        register_first = register_first or old_addr is None

        if broker_id == 0:
            if register_first or self.is_topic_config_changed(broker_addr, data_version):
                for topic_config in topic_configs.values():
                    self._upsert_queue_data(broker_name, topic_config)
            else:
                # The same data version may have come first with only some topics (a topic announced alone
                # after a NameServer restart or the broker's expiry): a topic this broker has no queues for
                # is taken anyway, as RocketMQ 5's per-topic check does. A changed topic needs a new version.
                table = self.topic_queue_table
                for name, topic_config in topic_configs.items():
                    if broker_name not in table.get(name, ()):
                        self._upsert_queue_data(broker_name, topic_config)

        previous = self.broker_live_table.get(broker_addr)
        self.broker_live_table[broker_addr] = BrokerLiveInfo(
            self.now_ms(), attr.evolve(data_version), channel, ha_server_addr
        )
        if previous is None:
            log.info(
                "new broker registered: {name} id {id} at {addr} in cluster {cluster} (HA {ha})",
                name=broker_name,
                id=broker_id,
                addr=broker_addr,
                cluster=cluster_name,
                ha=ha_server_addr,
            )

        self._set_filter_servers(broker_addr, list(filter_server_list or ()))

        result = RegisterBrokerResult()
        if broker_id != 0:
            master_addr = addrs.get(0)
            if master_addr is not None:
                master_live = self.broker_live_table.get(master_addr)
                if master_live is not None:
                    result.ha_server_addr = master_live.ha_server_addr
                    result.master_addr = master_addr
        return result

    def _upsert_queue_data(self, broker_name: str, tc: TopicConfig) -> None:
        queue_data = QueueData(broker_name, tc.read_queue_nums, tc.write_queue_nums, tc.perm, tc.topic_sys_flag)
        by_broker = self.topic_queue_table.setdefault(tc.topic_name, {})
        old = by_broker.get(broker_name)
        if old != queue_data:
            if old is None:
                log.info("new topic registered: {topic} on {broker}", topic=tc.topic_name, broker=broker_name)
            by_broker[broker_name] = queue_data
            self._changed()

    def _set_filter_servers(self, broker_addr: str, servers: List[str]) -> None:
        """Routes carry their brokers' filter servers: a change is a route change."""
        if self.filter_server_table.get(broker_addr, []) != servers:
            if servers:
                self.filter_server_table[broker_addr] = servers
            else:
                del self.filter_server_table[broker_addr]
            self._changed()

    def is_topic_config_changed(self, broker_addr: str, data_version: DataVersion) -> bool:
        live = self.broker_live_table.get(broker_addr)
        return live is None or live.data_version != data_version

    def query_data_version(self, broker_addr: str, data_version: DataVersion) -> "tuple[bool, Optional[DataVersion]]":
        """Whether the broker's topic config changed; an unchanged answer counts as a keepalive."""
        live = self.broker_live_table.get(broker_addr)
        changed = live is None or live.data_version != data_version
        if live is not None and not changed:
            live.last_update_ms = self.now_ms()
        return changed, (live.data_version if live is not None else None)

    def unregister_broker(self, cluster_name: str, broker_addr: str, broker_name: str, broker_id: int) -> None:
        """A broker's own goodbye (graceful stop)."""
        if self.broker_live_table.pop(broker_addr, None) is not None:
            log.info("broker unregistered: {name} id {id} at {addr}", name=broker_name, id=broker_id, addr=broker_addr)
        self._set_filter_servers(broker_addr, [])
        broker_data = self.broker_addr_table.get(broker_name)
        if broker_data is not None and broker_data.broker_addrs.get(broker_id) == broker_addr:
            del broker_data.broker_addrs[broker_id]
            self._changed()
        self._forget_if_empty(broker_name)

    def _forget_if_empty(self, broker_name: str) -> None:
        """Drop a broker name with no addresses left from the cluster table and every topic."""
        broker_data = self.broker_addr_table.get(broker_name)
        if broker_data is None or broker_data.broker_addrs:
            return
        del self.broker_addr_table[broker_name]
        for cluster, names in list(self.cluster_addr_table.items()):
            names.discard(broker_name)
            if not names:
                del self.cluster_addr_table[cluster]
        for topic, by_broker in list(self.topic_queue_table.items()):
            if by_broker.pop(broker_name, None) is not None and not by_broker:
                del self.topic_queue_table[topic]
                log.info("topic {topic} removed: its last broker {broker} is gone", topic=topic, broker=broker_name)
        self._changed()

    # -- liveness ------------------------------------------------------------------------------------

    def scan_not_active_brokers(self) -> List[str]:
        """Drop brokers silent for longer than the expiry; returns their addresses."""
        now = self.now_ms()
        expired = [
            addr
            for addr, live in self.broker_live_table.items()
            if live.last_update_ms + self.broker_expiry_ms < now
        ]
        for addr in expired:
            live = self.broker_live_table[addr]
            log.warn(
                "broker {addr} expired: silent for {silent} ms (limit {limit} ms)",
                addr=addr,
                silent=now - live.last_update_ms,
                limit=self.broker_expiry_ms,
            )
            close = getattr(live.channel, "close", None)
            if close is not None:
                close()
            self.on_channel_destroy(addr)
        return expired

    def broker_addr_of_channel(self, channel: object) -> Optional[str]:
        for addr, live in self.broker_live_table.items():
            if live.channel is channel:
                return addr
        return None

    def on_channel_closed(self, channel: object) -> Optional[str]:
        """A connection closed: if a broker registered through it, drop that broker at once."""
        addr = self.broker_addr_of_channel(channel)
        if addr is not None:
            log.info("connection of broker {addr} closed: removing its routes", addr=addr)
            self.on_channel_destroy(addr)
        return addr

    def on_channel_destroy(self, broker_addr: str) -> None:
        """Remove a broker address from every table."""
        self.broker_live_table.pop(broker_addr, None)
        self._set_filter_servers(broker_addr, [])
        for broker_name, broker_data in list(self.broker_addr_table.items()):
            for broker_id in [i for i, a in broker_data.broker_addrs.items() if a == broker_addr]:
                del broker_data.broker_addrs[broker_id]
                self._changed()
            self._forget_if_empty(broker_name)

    # -- reads ---------------------------------------------------------------------------------------

    def pickup_topic_route_data(self, topic: str) -> Optional[TopicRouteData]:
        by_broker = self.topic_queue_table.get(topic)
        if not by_broker:
            return None
        route = TopicRouteData()
        for broker_name, queue_data in sorted(by_broker.items()):
            route.queue_datas.append(attr.evolve(queue_data))
            broker_data = self.broker_addr_table.get(broker_name)
            if broker_data is not None:
                clone = BrokerData(broker_data.cluster, broker_name, dict(sorted(broker_data.broker_addrs.items())))
                route.broker_datas.append(clone)
                for addr in clone.broker_addrs.values():
                    servers = self.filter_server_table.get(addr)
                    if servers:
                        route.filter_server_table[addr] = list(servers)
        if not route.broker_datas:
            return None
        return route

    def cluster_info(self) -> dict:
        """The ClusterInfo body: brokerAddrTable and clusterAddrTable."""
        return {
            "brokerAddrTable": {name: data for name, data in sorted(self.broker_addr_table.items())},
            "clusterAddrTable": {c: sorted(names) for c, names in sorted(self.cluster_addr_table.items())},
        }

    def all_topics(self) -> List[str]:
        return sorted(self.topic_queue_table)

    def topics_by_cluster(self, cluster: str) -> List[str]:
        names = self.cluster_addr_table.get(cluster, set())
        return sorted(t for t, by_broker in self.topic_queue_table.items() if names.intersection(by_broker))

    def system_topics(self) -> "tuple[List[str], Optional[str]]":
        """Cluster and broker names (topics every broker creates), and one broker address to ask."""
        topics: Set[str] = set()
        broker_addr = None
        for cluster, names in self.cluster_addr_table.items():
            topics.add(cluster)
            topics.update(names)
        for broker_data in self.broker_addr_table.values():
            if broker_data.broker_addrs and broker_addr is None:
                broker_addr = broker_data.broker_addrs[min(broker_data.broker_addrs)]
        return sorted(topics), broker_addr

    def unit_topics(self, unit: Optional[bool], unit_sub: Optional[bool]) -> List[str]:
        """Topics whose sysflag has (or lacks) the unit and unit-sub bits; ``None`` means either."""
        out = []
        for topic, by_broker in self.topic_queue_table.items():
            flags = next(iter(by_broker.values())).topic_sys_flag if by_broker else 0
            if unit is not None and bool(flags & FLAG_UNIT) != unit:
                continue
            if unit_sub is not None and bool(flags & FLAG_UNIT_SUB) != unit_sub:
                continue
            out.append(topic)
        return sorted(out)

    # -- admin changes -------------------------------------------------------------------------------

    def delete_topic(self, topic: str, cluster_name: Optional[str] = None) -> bool:
        """Forget a topic, or only its queues on one cluster's brokers."""
        by_broker = self.topic_queue_table.get(topic)
        if by_broker is None:
            return False
        if cluster_name:
            for name in self.cluster_addr_table.get(cluster_name, set()):
                by_broker.pop(name, None)
            if by_broker:
                self._changed()
                return True
        del self.topic_queue_table[topic]
        self._changed()
        return True

    def wipe_write_perm(self, broker_name: str) -> int:
        """Clear the write bit of every queue the broker serves; returns how many topics changed."""
        return self._set_perm(broker_name, lambda perm: perm & ~PERM_WRITE)

    def add_write_perm(self, broker_name: str) -> int:
        return self._set_perm(broker_name, lambda perm: PERM_READ | PERM_WRITE)

    def _set_perm(self, broker_name: str, change: Callable[[int], int]) -> int:
        count = 0
        for by_broker in self.topic_queue_table.values():
            queue_data = by_broker.get(broker_name)
            if queue_data is not None:
                queue_data.perm = change(queue_data.perm)
                count += 1
        if count:
            self._changed()
        return count
