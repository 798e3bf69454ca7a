"""``twistd namesrv``: command-line options and the service maker."""

from __future__ import annotations

from mq.acl.accounts import AclConfigError
from mq.acl.store import AclStore, acl_paths
from mq.common.cli import ServiceOptions, bind_option, check_ports_free, config_option, metrics_port_option
from mq.common.config import file_settings
from mq.common.rocketmq_keys import NAMESRV_IGNORED
from mq.namesrv.config import NamesrvConfig
from mq.namesrv.kvconfig import KVConfigError
from mq.namesrv.service import NamesrvService


class Options(ServiceOptions):
    service = "namesrv"
    synopsis = "[options]"
    longdesc = (
        "Run a RocketMQ-compatible NameServer. Brokers register with every NameServer; clients read topic "
        "routes from any. Settings come from defaults, then --config, then the options given here."
    )
    optParameters = [
        config_option("NameServer settings (listenPort, kvConfigPath, ...)"),
        ["port", "p", None, "TCP port to listen on [default: 9876]."],
        bind_option(" (listenInterface)"),
        ["scan-interval", None, None, "Seconds between scans for silent brokers [default: 10]."],
        ["broker-expiry", None, None, "Seconds of silence after which a broker is dropped [default: 120]."],
        ["kv-config", None, None, "KV config JSON file [default: ~/namesrv/kvConfig.json]."],
        metrics_port_option(),
        ["max-frame-length", None, None, "Largest request frame accepted, bytes [default: 16777216]."],
        ["acl-file", None, None, "The ACL file (with --acl) [default: $ROCKETMQ_HOME/conf/plain_acl.yml]."],
    ]
    optFlags = [
        ["order-message-enable", None, "Add ORDER_TOPIC_CONFIG KV entries to routes."],
        ["acl", None, "Require an admin account's signature for every write (aclEnable=true)."],
    ]

    _option_fields = {
        "port": "listen_port",
        "bind": "interface",
        "scan-interval": "scan_interval",
        "broker-expiry": "broker_expiry",
        "kv-config": "kv_config_path",
        "metrics-port": "metrics_port",
        "max-frame-length": "max_frame_length",
        "acl-file": "acl_file",
    }

    def opt_interface(self, address: str) -> None:
        """The same as --bind (its older name)."""
        self["bind"] = address

    opt_i = opt_interface

    def postOptions(self) -> None:
        config = NamesrvConfig()
        try:
            config.update_from_properties(file_settings(self.read_config_file(), NamesrvConfig.by_key().keys(),
                                                        NAMESRV_IGNORED, f"--config {self['config']}"))
            for option, field in self._option_fields.items():
                if self[option] is not None:
                    config.set_option(field, self[option])
        except ValueError as e:
            self.refuse(e)
        if self["order-message-enable"]:
            config.order_message_enable = True
        if self["acl"]:
            config.acl_enable = True
        if config.acl_enable:
            try:  # a NameServer asked to check signatures does not start without its accounts
                AclStore(*acl_paths(config.rocketmq_home, config.acl_file)).load()
            except AclConfigError as e:
                self.refuse(f"ACL: {e}")
        self.config = config


def makeService(options: Options) -> NamesrvService:
    try:
        check_ports_free(options.config.listens())
    except ValueError as e:
        options.refuse(e)
    try:
        return NamesrvService(options.config)
    except KVConfigError as e:
        options.refuse(f"KV config: {e}")
