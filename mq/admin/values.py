"""The plain values admin answers decode into (``MessageQueue``, ``ClusterInfo``, queue maps), and the helpers
the admin commands and the console share to read routes and timestamps.

Kept apart from ``mq.admin.api`` so that code which only handles these values need not know the requests.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

import attr

from mq.common import jsonkeys
from mq.common.route import BrokerData, TopicRouteData


@attr.s(frozen=True, slots=True, order=True)
class MessageQueue:
    """Sorted as Java sorts them: topic, broker name, queue id."""

    topic: str = attr.ib()
    broker_name: str = attr.ib()
    queue_id: int = attr.ib()

    @classmethod
    def from_json(cls, data: dict) -> "MessageQueue":
        return cls(str(data.get("topic", "")), str(data.get("brokerName", "")), int(data.get("queueId", 0)))

    def to_json(self) -> dict:
        return {"brokerName": self.broker_name, "queueId": self.queue_id, "topic": self.topic}

    def __str__(self) -> str:
        return f"MessageQueue [topic={self.topic}, brokerName={self.broker_name}, queueId={self.queue_id}]"


def queue_map(value: Any) -> Dict[MessageQueue, Any]:
    """A fastjson ``Map<MessageQueue, V>`` (an ``ObjectKeyMap``, or ``{}`` when empty) as a dict."""
    if isinstance(value, jsonkeys.ObjectKeyMap):
        return {MessageQueue.from_json(k): v for k, v in value}
    if isinstance(value, list):  # [{"brokerName":..,"offset":..}] as ResetOffsetBodyForC writes it
        return {MessageQueue.from_json(item): item.get("offset") for item in value if isinstance(item, dict)}
    return {}


@attr.s(slots=True)
class ClusterInfo:
    broker_addr_table: Dict[str, BrokerData] = attr.ib(factory=dict)
    cluster_addr_table: Dict[str, List[str]] = attr.ib(factory=dict)

    @classmethod
    def from_json(cls, data: dict) -> "ClusterInfo":
        brokers = {name: BrokerData.from_json(b) for name, b in (data.get("brokerAddrTable") or {}).items()}
        clusters = {name: sorted(names) for name, names in (data.get("clusterAddrTable") or {}).items()}
        return cls(brokers, clusters)

    def to_json(self) -> dict:
        return {
            "brokerAddrTable": {n: b.to_json() for n, b in sorted(self.broker_addr_table.items())},
            "clusterAddrTable": dict(sorted(self.cluster_addr_table.items())),
        }

    def master_addrs(self, cluster: str) -> List[Tuple[str, str]]:
        """(broker name, master address) of every broker of ``cluster`` that has a master."""
        out = []
        for name in self.cluster_addr_table.get(cluster, []):
            data = self.broker_addr_table.get(name)
            if data is not None and data.master_addr():
                out.append((name, data.master_addr()))
        return out

    def all_addrs(self, cluster: str) -> List[Tuple[str, str]]:
        """(broker name, address) of every broker of ``cluster``, masters and slaves, by name then id."""
        out = []
        for name in self.cluster_addr_table.get(cluster, []):
            data = self.broker_addr_table.get(name)
            if data is not None:
                out.extend((name, addr) for _, addr in sorted(data.broker_addrs.items()))
        return out

    def cluster_of(self, broker_name: str) -> Optional[str]:
        for cluster, names in self.cluster_addr_table.items():
            if broker_name in names:
                return cluster
        return None


def route_masters(route: TopicRouteData) -> Dict[str, str]:
    """Broker name → master address, for the brokers of a route that have a live master."""
    return {b.broker_name: b.master_addr() for b in route.broker_datas if b.master_addr()}


def parse_timestamp(text: str, now_ms: Optional[int] = None) -> int:
    """``now``, milliseconds since the epoch, or ``yyyy-MM-dd#HH:mm:ss:SSS`` (local time), as the original."""
    value = text.strip()
    if value.lower() == "now":
        return now_ms if now_ms is not None else int(time.time() * 1000)
    if value.lstrip("-").isdigit():
        return int(value)
    try:
        date, _, clock = value.partition("#")
        millis = 0
        parts = clock.split(":")
        if len(parts) == 4:
            millis = int(parts[3])
            clock = ":".join(parts[:3])
        struct = time.strptime(f"{date} {clock}", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise ValueError(f"not a timestamp: {text!r} (give now, milliseconds, or yyyy-MM-dd#HH:mm:ss:SSS)") from None
    return int(time.mktime(struct)) * 1000 + millis
