"""A NameServer and named brokers as real ``twistd`` processes for the client tests."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Dict, List, Optional

from mq.client.simple import create_topic_request, parse_route, route_request
from mq.remoting.codes import ResponseCode
from tests.broker.wire import call
from tests.support.processes import TwistdProcess, free_port, wait_until

BROKER_CONF = ("brokerClusterName=ClientCluster\nmappedFileSizeCommitLog=8388608\n"
               "mappedFileSizeConsumeQueue=120000\nregisterNameServerPeriod=10000\nenablePropertyFilter=true\n")
_names = itertools.count()


class Cluster:
    """``twistd namesrv`` plus brokers ``broker-a``, ``broker-b``... on loopback."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.procs: List[TwistdProcess] = []
        self.brokers: Dict[str, TwistdProcess] = {}
        self.ports: Dict[str, int] = {}
        port = free_port()
        self.namesrv = self._start("namesrv", ["--port", str(port), "--kv-config", str(self.root / "kv.json")],
                                   "namesrv")
        self.namesrv.wait_port(port)
        self.namesrv_addr = f"127.0.0.1:{port}"
        (self.root / "broker.conf").write_text(BROKER_CONF)

    def _start(self, plugin: str, args: List[str], name: str) -> TwistdProcess:
        proc = TwistdProcess(plugin, args, self.root / f"{name}-{next(_names)}")
        self.procs.append(proc)
        return proc.start()

    def start_broker(self, name: str) -> TwistdProcess:
        """Start (or restart, same port and store) the broker ``name`` and wait until its route is visible."""
        port = self.ports.setdefault(name, free_port())
        proc = self._start("broker", ["--port", str(port), "--namesrv", self.namesrv_addr, "--store",
                                      str(self.root / f"store-{name}"), "--ip", "127.0.0.1", "--broker-name", name,
                                      "--config", str(self.root / "broker.conf")], name)
        proc.wait_port(port)
        proc.addr = f"127.0.0.1:{port}"
        self.brokers[name] = proc
        wait_until(lambda: self._broker_in_route(name), 20, what=f"{name} registered")
        return proc

    def _broker_in_route(self, name: str) -> bool:
        route = parse_route(call(self.namesrv_addr, route_request("TBW102")))
        return route is not None and any(b.broker_name == name for b in route.broker_datas)

    def addr(self, name: str) -> str:
        return self.brokers[name].addr

    def create_topic(self, topic: str, queues: int = 4, brokers: Optional[List[str]] = None) -> None:
        """Create ``topic`` on the brokers (default all running) and wait for its route to list them."""
        names = brokers or [n for n, p in self.brokers.items() if p.running]
        for name in names:
            response = call(self.addr(name), create_topic_request(topic, queues))
            assert response.code == ResponseCode.SUCCESS, response.remark

        def listed() -> bool:
            route = parse_route(call(self.namesrv_addr, route_request(topic)))
            return route is not None and {q.broker_name for q in route.queue_datas} >= set(names)

        wait_until(listed, 20, what=f"route of {topic}")

    def stop_broker(self, name: str) -> None:
        self.brokers[name].stop(timeout=20)

    def kill_broker(self, name: str) -> None:
        self.brokers[name].kill()

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(timeout=15)
