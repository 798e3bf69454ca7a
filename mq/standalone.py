"""``twistd mq``: a NameServer and a broker in one process, on an embedded default store.

The quick start: one command gives clients a complete cluster of one at ``127.0.0.1:9876``. Both services
are the same classes ``twistd namesrv`` and ``twistd broker`` run; only their wiring is here.
"""

from __future__ import annotations

import os

from twisted.application import service
from twisted.python import usage

from mq.broker.config import layered_config
from mq.broker.service import make_broker_service
from mq.namesrv.config import NamesrvConfig
from mq.namesrv.service import NamesrvService


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = (
        "Run a NameServer and a broker in one process, ready for RocketMQ clients "
        "(NAMESRV_ADDR=127.0.0.1:9876). For separate processes use 'twistd namesrv' and 'twistd broker'."
    )
    optParameters = [
        ["namesrv-port", None, 9876, "NameServer port.", int],
        ["port", "p", 10911, "Broker port (port - 2 is its VIP port, port + 1 its HA port).", int],
        ["store", "s", "~/store", "Broker store root directory."],
        ["kv-config", None, "~/namesrv/kvConfig.json", "NameServer KV config file."],
        ["broker-name", None, "broker-a", "Broker name."],
        ["cluster", "c", "DefaultCluster", "Cluster name."],
        ["flush", None, "ASYNC_FLUSH", "Disk flush: ASYNC_FLUSH or SYNC_FLUSH."],
        ["ip", None, None, "Address the broker announces to clients (default: this host's primary address)."],
        ["metrics-port", None, 0, "Broker Prometheus metrics port (0 = off); the NameServer's is this + 1.", int],
    ]

    def postOptions(self) -> None:
        ns = NamesrvConfig(
            listen_port=self["namesrv-port"],
            kv_config_path=os.path.abspath(os.path.expanduser(self["kv-config"])),
            metrics_port=self["metrics-port"] + 1 if self["metrics-port"] else 0,
        )
        props = {
            "listenPort": str(self["port"]),
            "namesrvAddr": f"127.0.0.1:{self['namesrv-port']}",
            "brokerName": self["broker-name"],
            "brokerClusterName": self["cluster"],
            "flushDiskType": self["flush"].upper(),
            "storePathRootDir": os.path.abspath(os.path.expanduser(self["store"])),
            "metricsPort": str(self["metrics-port"]),
        }
        if self["ip"]:
            props["brokerIP1"] = self["ip"]
        try:
            broker, _ = layered_config({}, props)
        except ValueError as e:
            raise usage.UsageError(str(e)) from None
        self.namesrv_config = ns
        self.broker_config = broker


def makeService(options: Options) -> service.MultiService:
    top = service.MultiService()
    # The NameServer starts first, so the broker's first registration finds it listening.
    NamesrvService(options.namesrv_config).setServiceParent(top)
    make_broker_service(options.broker_config).setServiceParent(top)
    return top
