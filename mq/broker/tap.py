"""``twistd broker``: the options and ``makeService`` behind the dropin in ``twisted_plugins``.

Settings come from the defaults, then ``--config broker.conf`` (RocketMQ's key names), then the changes made
at run time (UPDATE_BROKER_CONFIG, saved in ``<storePathRootDir>/config/broker.properties``), then the
options given on the command line, which win.
"""

from __future__ import annotations

import os

from twisted.logger import Logger

from mq.acl.accounts import AclConfigError
from mq.broker.config import layered_config, runtime_config_path
from mq.broker.service import check_acl_settings, make_broker_service
from mq.broker.state_file import StateFileError
from mq.common.cli import ServiceOptions, bind_option, check_ports_free, config_option, metrics_port_option
from mq.common.gc_tuning import GcTuning
from mq.store.config import BrokerRole, FlushDiskType

log = Logger()

ROLES = [r.value for r in BrokerRole]
FLUSHES = [f.value for f in FlushDiskType]


def _choice(values):
    def check(text: str) -> str:
        value = text.strip().upper()
        if value not in values:
            raise ValueError(f"{text!r} is not one of {', '.join(values)}")
        return value

    check.coerceDoc = f"One of {', '.join(values)}."
    return check


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise ValueError(f"{text} is not a TCP port")
    return value


_port.coerceDoc = "A TCP port number."


class Options(ServiceOptions):
    service = "broker"
    synopsis = "[options]"
    longdesc = ("Run an mq broker: RocketMQ 4.x wire-compatible storage and delivery of messages. "
                "As with mqbroker, -c is the config file and -n the NameServers; the cluster name is --cluster. "
                "Options override the settings of --config.")
    optParameters = [
        ["port", "p", None, "Port for clients and admin tools (listenPort, default 10911); "
                            "port - 2 is the VIP port, port + 1 the HA port.", _port],
        ["namesrv", "n", None, "NameServer addresses, host:port;host:port (namesrvAddr; also NAMESRV_ADDR)."],
        ["broker-name", None, None, "Broker name (brokerName, default: the host name)."],
        ["cluster", None, None, "Cluster name (brokerClusterName, default DefaultCluster); not -c, which is "
                                "--config as for mqbroker."],
        ["broker-id", None, None, "0 for a master, 1 or more for a slave (brokerId, default 0).", int],
        ["role", None, None, "Broker role (brokerRole, default ASYNC_MASTER)", _choice(ROLES)],
        ["flush", None, None, "Disk flush (flushDiskType, default ASYNC_FLUSH)", _choice(FLUSHES)],
        ["store", "s", None, "Store root directory (storePathRootDir, default ~/store)."],
        metrics_port_option(),
        config_option("broker and store settings (brokerClusterName, listenPort, namesrvAddr, flushDiskType, "
                      "storePathRootDir...): a broker.conf"),
        ["ip", None, None, "Address announced to NameServers and stored as the store host (brokerIP1; "
                           "default: this host's primary address)."],
        bind_option(),
        ["acl-file", None, None, "The ACL file, absolute or under rocketmqHome (aclFile; default "
                                 "$ROCKETMQ_HOME/conf/plain_acl.yml)."],
        ["dledger-group", None, None, "DLedger: the Raft group (dLegerGroup, default: the broker name)."],
        ["dledger-peers", None, None, "DLedger: every member with its Raft port, n0-host:port;n1-host:port;"
                                      "n2-host:port (dLegerPeers)."],
        ["dledger-self-id", None, None, "DLedger: this node's id in --dledger-peers, as n0 (dLegerSelfId); a "
                                        "follower registers as slave id + 1."],
        ["preferred-leader", None, None, "DLedger: the id leadership moves back to (preferredLeaderId)."],
        ["dledger-cache-bytes", None, None, "DLedger: bytes of Raft entry bodies kept in memory, 0 to 1 TiB "
                                            "(dLegerCacheBytes, default 64 MiB); older ones are read from disk."],
    ]
    optFlags = [
        ["acl", None, "Check every request against the ACL files (aclEnable; see docs/acl.md)."],
        ["dledger", None, "DLedger mode: the group elects its master by Raft (enableDLegerCommitLog; "
                          "--broker-id and --role then follow the election; see docs/replication.md)."],
    ]

    def postOptions(self) -> None:
        file_props, props = self.read_config_file(), {}
        for option, key in (
            ("port", "listenPort"), ("namesrv", "namesrvAddr"), ("broker-name", "brokerName"),
            ("cluster", "brokerClusterName"), ("broker-id", "brokerId"), ("role", "brokerRole"),
            ("flush", "flushDiskType"), ("store", "storePathRootDir"), ("metrics-port", "metricsPort"),
            ("ip", "brokerIP1"), ("bind", "bindAddress"), ("acl-file", "aclFile"),
            ("dledger-group", "dLegerGroup"), ("dledger-peers", "dLegerPeers"), ("dledger-self-id", "dLegerSelfId"),
            ("preferred-leader", "preferredLeaderId"), ("dledger-cache-bytes", "dLegerCacheBytes"),
        ):
            if self[option] is not None:
                props[key] = self[option]
        if self["acl"]:
            props["aclEnable"] = "true"
        if self["dledger"]:
            props["enableDLegerCommitLog"] = "true"
        try:  # the store's and replication's keys are checked now too, not when the service starts
            config, saved = layered_config(file_props, props, f"--config {self['config']}")
            check_acl_settings(config)  # and the ACL files: a bad one stops the start with one line
        except AclConfigError as e:
            self.refuse(f"ACL: {e}")
        except ValueError as e:
            self.refuse(e)
        except OSError as e:
            self.refuse(f"cannot read the saved runtime settings: {e}")
        if saved:
            log.info("settings changed at run time, kept in {path}: {saved}",
                     path=runtime_config_path(config.store_path_root_dir), saved=saved)
        config.store_path_root_dir = os.path.abspath(os.path.expanduser(config.store_path_root_dir))
        if config.enable_d_leger_commit_log:  # the election decides brokerId and brokerRole (RocketMQ ignores both)
            self.config = config
            return
        if config.broker_id == 0 and config.is_slave:
            self.refuse("a SLAVE needs --broker-id 1 or more")
        if config.broker_id != 0 and not config.is_slave:
            self.refuse(f"broker id {config.broker_id} is a slave id: give --role SLAVE")
        self.config = config


def makeService(options: Options):
    try:  # before the store opens, and while a daemon's parent still prints to the terminal
        check_ports_free(options.config.listens())
    except ValueError as e:
        options.refuse(e)
    try:
        gc_tuning = GcTuning()
    except ValueError as e:
        options.refuse(e)
    try:
        broker = make_broker_service(options.config)
    except StateFileError as e:
        options.refuse(e)
    gc_tuning.setServiceParent(broker)  # last: once the store is loaded
    return broker
