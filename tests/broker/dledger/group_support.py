"""A NameServer and a DLedger group of ``twistd broker`` processes, each node restartable on its ports and store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from mq.client.simple import parse_route, route_request
from tests.broker.cluster import start_namesrv
from tests.broker.dledger.proxy import Proxy
from tests.broker.wire import call
from tests.support.processes import free_port, wait_until

GROUP_CONF = ("brokerClusterName=DlCluster\nbrokerName=dl-a\nmappedFileSizeCommitLog=1048576\n"
              "mappedFileSizeConsumeQueue=20000\nregisterNameServerPeriod=10000\nslaveSyncInterval=500\n"
              "enableDLegerCommitLog=true\ndLegerGroup=dl-a\n")


class DLedgerCluster:
    def __init__(self, twistd, tmp: Path, nodes: int = 3, extra_conf: str = "", proxied: bool = False,
                 metrics: bool = False) -> None:
        self.twistd = twistd
        self.tmp = tmp
        self.namesrv = start_namesrv(twistd, tmp, "--broker-expiry", "15", "--scan-interval", "1")
        self.ids = [f"n{i}" for i in range(nodes)]
        self.ports: Dict[str, int] = {}
        used: List[int] = []
        for node in self.ids:
            port = free_port()
            while any(abs(port - u) < 4 for u in used):
                port = free_port()
            used.append(port)
            self.ports[node] = port
        self.raft_ports = {node: free_port() for node in self.ids}
        #: ``proxied``: node a reaches node b through ``proxies[a, b]`` (cut to partition a node off).
        self.proxies: Dict[Tuple[str, str], Proxy] = {}
        if proxied:
            self.proxies = {(a, b): Proxy(self.raft_ports[b]) for a in self.ids for b in self.ids if a != b}
        self.extra_conf = extra_conf
        self.metrics_ports = {node: free_port() for node in self.ids} if metrics else {}
        self.procs: Dict[str, object] = {}

    def store(self, node: str) -> Path:
        return self.tmp / f"store-{node}"

    def addr(self, node: str) -> str:
        return f"127.0.0.1:{self.ports[node]}"

    def start(self, node: str):
        # the node listens on its own Raft port and reaches the others directly or through its proxies
        peers = ";".join(f"{n}-127.0.0.1:{self.port_to(node, n)}" for n in self.ids)
        conf = self.tmp / f"{node}.conf"
        metrics = f"metricsPort={self.metrics_ports[node]}\n" if node in self.metrics_ports else ""
        conf.write_text(GROUP_CONF + f"dLegerPeers={peers}\ndLegerSelfId={node}\n" + metrics + self.extra_conf)
        proc = self.twistd("broker", "--port", str(self.ports[node]), "--namesrv", self.namesrv.addr,
                           "--store", str(self.store(node)), "--ip", "127.0.0.1", "--config", str(conf),
                           workdir=self.tmp / f"{node}-{time.monotonic_ns()}")
        proc.wait_port(self.ports[node])
        proc.addr = self.addr(node)
        self.procs[node] = proc
        return proc

    def port_to(self, src: str, dst: str) -> int:
        proxy = self.proxies.get((src, dst))
        return proxy.port if proxy is not None else self.raft_ports[dst]

    def isolate(self, node: str, cut: bool = True) -> None:
        """Cut (or heal) every Raft connection to and from ``node``."""
        for (a, b), proxy in self.proxies.items():
            if node in (a, b):
                proxy.cut() if cut else proxy.heal()

    def close_proxies(self) -> None:
        for proxy in self.proxies.values():
            proxy.close()

    def start_all(self) -> "DLedgerCluster":
        for node in self.ids:
            self.start(node)
        return self

    def master(self) -> Optional[str]:
        """The address the NameServer routes brokerId 0 of the group to, if any."""
        try:
            r = call(self.namesrv.addr, route_request("TBW102"))
        except OSError:
            return None
        route = parse_route(r)
        if route is None:
            return None
        for bd in route.broker_datas:
            if bd.broker_name == "dl-a":
                return bd.broker_addrs.get(0)
        return None

    def node_of(self, addr: str) -> str:
        return next(n for n in self.ids if self.addr(n) == addr)

    def wait_master(self, timeout: float = 30.0, other_than: Optional[str] = None) -> str:
        found = {}

        def check():
            m = self.master()
            if m is not None and m != other_than and self.procs[self.node_of(m)].running:
                found["m"] = m
                return True
            return False

        wait_until(check, timeout, 0.02, what="a routed master of dl-a")
        return found["m"]

    def commitlog(self, node: str) -> bytes:
        files = sorted((self.store(node) / "commitlog").iterdir())
        return b"".join(f.read_bytes() for f in files)
