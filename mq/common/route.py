"""Routing data shared by the NameServer, brokers and clients: topic configs, data versions and routes.

Each class knows its fastjson shape (``to_json`` / ``from_json``) with RocketMQ's field names.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import attr

# Permission bits of a topic or broker (PermName).
PERM_PRIORITY = 0x8
PERM_READ = 0x4
PERM_WRITE = 0x2
PERM_INHERIT = 0x1


def perm_to_string(perm: int) -> str:
    return ("R" if perm & PERM_READ else "-") + ("W" if perm & PERM_WRITE else "-") + (
        "X" if perm & PERM_INHERIT else "-"
    )


@attr.s(slots=True, eq=True)
class DataVersion:
    """A broker's topic-config version: bumped on every change, compared by the NameServer."""

    timestamp: int = attr.ib(default=0)
    counter: int = attr.ib(default=0)

    def next_version(self, now_ms: int) -> None:
        self.timestamp = now_ms
        self.counter += 1

    def to_json(self) -> dict:
        return {"counter": self.counter, "timestamp": self.timestamp}

    @classmethod
    def from_json(cls, data: Optional[dict]) -> "DataVersion":
        """Raises ValueError or TypeError, naming what is wrong, for anything but a data version object."""
        data = data or {}
        if not isinstance(data, dict):
            raise TypeError(f"a data version is a JSON object, not {type(data).__name__}")
        counter = data.get("counter", 0)
        if isinstance(counter, dict):  # fastjson may write an AtomicLong as {"value": n}... be lenient
            counter = counter.get("value", 0)
        try:
            return cls(int(data.get("timestamp", 0)), int(counter))
        except OverflowError:  # Infinity
            raise ValueError("a data version's counter and timestamp are integers") from None


@attr.s(slots=True, eq=True)
class TopicConfig:
    topic_name: str = attr.ib()
    read_queue_nums: int = attr.ib(default=16)
    write_queue_nums: int = attr.ib(default=16)
    perm: int = attr.ib(default=PERM_READ | PERM_WRITE)
    topic_filter_type: str = attr.ib(default="SINGLE_TAG")
    topic_sys_flag: int = attr.ib(default=0)
    order: bool = attr.ib(default=False)

    def to_json(self) -> dict:
        return {
            "order": self.order,
            "perm": self.perm,
            "readQueueNums": self.read_queue_nums,
            "topicFilterType": self.topic_filter_type,
            "topicName": self.topic_name,
            "topicSysFlag": self.topic_sys_flag,
            "writeQueueNums": self.write_queue_nums,
        }

    @classmethod
    def from_json(cls, data: dict) -> "TopicConfig":
        return cls(
            str(data["topicName"]),
            int(data.get("readQueueNums", 16)),
            int(data.get("writeQueueNums", 16)),
            int(data.get("perm", PERM_READ | PERM_WRITE)),
            str(data.get("topicFilterType", "SINGLE_TAG")),
            int(data.get("topicSysFlag", 0)),
            bool(data.get("order", False)),
        )


@attr.s(slots=True, eq=True)
class QueueData:
    broker_name: str = attr.ib()
    read_queue_nums: int = attr.ib()
    write_queue_nums: int = attr.ib()
    perm: int = attr.ib()
    topic_sys_flag: int = attr.ib(default=0)

    def to_json(self) -> dict:
        return {
            "brokerName": self.broker_name,
            "perm": self.perm,
            "readQueueNums": self.read_queue_nums,
            "topicSysFlag": self.topic_sys_flag,
            "writeQueueNums": self.write_queue_nums,
        }

    @classmethod
    def from_json(cls, data: dict) -> "QueueData":
        return cls(
            str(data["brokerName"]),
            int(data.get("readQueueNums", 0)),
            int(data.get("writeQueueNums", 0)),
            int(data.get("perm", 0)),
            int(data.get("topicSysFlag", data.get("topicSynFlag", 0))),
        )


@attr.s(slots=True, eq=True)
class BrokerData:
    cluster: str = attr.ib()
    broker_name: str = attr.ib()
    #: broker id (0 = master) → "ip:port"
    broker_addrs: Dict[int, str] = attr.ib(factory=dict)

    def master_addr(self) -> Optional[str]:
        return self.broker_addrs.get(0)

    def to_json(self) -> dict:
        return {
            "brokerAddrs": dict(self.broker_addrs),
            "brokerName": self.broker_name,
            "cluster": self.cluster,
        }

    @classmethod
    def from_json(cls, data: dict) -> "BrokerData":
        addrs = {int(k): str(v) for k, v in (data.get("brokerAddrs") or {}).items()}
        return cls(str(data.get("cluster", "")), str(data["brokerName"]), addrs)


@attr.s(slots=True, eq=True)
class TopicRouteData:
    queue_datas: List[QueueData] = attr.ib(factory=list)
    broker_datas: List[BrokerData] = attr.ib(factory=list)
    filter_server_table: Dict[str, List[str]] = attr.ib(factory=dict)
    order_topic_conf: Optional[str] = attr.ib(default=None)

    def to_json(self) -> dict:
        out = {
            "brokerDatas": [b.to_json() for b in self.broker_datas],
            "filterServerTable": dict(self.filter_server_table),
        }
        if self.order_topic_conf is not None:
            out["orderTopicConf"] = self.order_topic_conf
        out["queueDatas"] = [q.to_json() for q in self.queue_datas]
        return out

    @classmethod
    def from_json(cls, data: dict) -> "TopicRouteData":
        return cls(
            [QueueData.from_json(q) for q in data.get("queueDatas") or []],
            [BrokerData.from_json(b) for b in data.get("brokerDatas") or []],
            dict(data.get("filterServerTable") or {}),
            data.get("orderTopicConf"),
        )
