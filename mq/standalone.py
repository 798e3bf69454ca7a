"""``twistd mq``: a NameServer and a broker in one process, on an embedded default store.

The quick start: one command gives clients a complete cluster of one at ``127.0.0.1:9876``. Both services
are the same classes ``twistd namesrv`` and ``twistd broker`` run; only their wiring is here.
"""

from __future__ import annotations

import os

from twisted.application import service
from twisted.internet import defer

from mq.acl.accounts import AclConfigError
from mq.acl.store import AclStore
from mq.broker.config import layered_config
from mq.broker.service import broker_credentials, check_acl_settings, make_broker_service
from mq.broker.state_file import StateFileError
from mq.common.cli import ServiceOptions, bind_option, check_ports_free, config_option, metrics_port_option
from mq.common.gc_tuning import GcTuning
from mq.console.config import ConsoleConfig
from mq.console.service import ConsoleService
from mq.console.users import users_file_error
from mq.namesrv.config import NamesrvConfig
from mq.namesrv.kvconfig import KVConfigError
from mq.namesrv.service import NamesrvService
from mq.remoting.limits import open_file_limit


class OneAfterAnother(service.MultiService):
    """Stops its services one at a time, last started first: MultiService starts every stop at once, so the
    NameServer closed its port while the broker was still flushing and the broker's unregistration failed."""

    @defer.inlineCallbacks
    def stopService(self):
        service.Service.stopService(self)
        for child in reversed(list(self)):
            yield defer.maybeDeferred(child.stopService)


class Options(ServiceOptions):
    service = "mq"
    synopsis = "[options]"
    longdesc = (
        "Run a NameServer and a broker in one process, ready for RocketMQ clients "
        "(NAMESRV_ADDR=127.0.0.1:9876). For separate processes use 'twistd namesrv' and 'twistd broker'."
    )
    optParameters = [
        ["namesrv-port", None, 9876, "NameServer port.", int],
        ["port", "p", None, "Broker port (port - 2 is its VIP port, port + 1 its HA port) [default: 10911].", int],
        ["store", "s", None, "Broker store root directory [default: ~/store]."],
        ["kv-config", None, "~/namesrv/kvConfig.json", "NameServer KV config file."],
        ["broker-name", None, None, "Broker name [default: broker-a]."],
        ["cluster", None, None, "Cluster name [default: DefaultCluster]; not -c, which is --config as for mqbroker."],
        ["flush", None, None, "Disk flush: ASYNC_FLUSH or SYNC_FLUSH [default: ASYNC_FLUSH]."],
        ["ip", None, None, "Address the broker announces to clients (default: this host's primary address)."],
        metrics_port_option(" for the broker, and on PORT + 1 for the NameServer"),
        config_option("broker settings: a broker.conf"),
        bind_option(" for both"),
        ["acl-file", None, None, "The broker's ACL file (aclFile; default $ROCKETMQ_HOME/conf/plain_acl.yml)."],
        ["console-port", None, "8080", "Web console HTTP port (0 = off; see docs/console.md)."],
        ["console-bind", None, "127.0.0.1", "Address the web console listens on."],
        ["console-users", None, None, "rocketmq-dashboard's users.properties: the console asks for a user name and "
                                      "password; only admins (role 1) may change the cluster."],
    ]
    optFlags = [
        ["acl", None, "The broker checks every request against the ACL files (aclEnable; see docs/acl.md)."],
    ]

    #: Broker settings of this quick start where neither the file nor an option says otherwise.
    DEFAULTS = {"listenPort": "10911", "brokerName": "broker-a", "storePathRootDir": "~/store"}

    def postOptions(self) -> None:
        ns = NamesrvConfig(kv_config_path=os.path.abspath(os.path.expanduser(self["kv-config"])))
        try:
            ns.set_option("listen_port", self["namesrv-port"])
            metrics = ns.set_option("metrics_port", self["metrics-port"] or 0)
            ns.set_option("metrics_port", metrics + 1 if metrics else 0)
            if self["bind"]:
                ns.set_option("interface", self["bind"])
        except ValueError as e:
            self.refuse(e)
        file_props = {**self.DEFAULTS, **self.read_config_file()}
        props = {"namesrvAddr": f"127.0.0.1:{self['namesrv-port']}", "metricsPort": str(self["metrics-port"] or 0)}
        for option, key in (("port", "listenPort"), ("broker-name", "brokerName"), ("cluster", "brokerClusterName"),
                            ("flush", "flushDiskType"), ("store", "storePathRootDir"), ("ip", "brokerIP1"),
                            ("acl-file", "aclFile"), ("bind", "bindAddress")):
            if self[option] is not None:
                props[key] = str(self[option])
        if self["acl"]:
            props["aclEnable"] = "true"
        root = props.get("storePathRootDir", file_props.get("storePathRootDir", "~/store"))
        props["storePathRootDir"] = os.path.abspath(os.path.expanduser(root))
        try:
            broker, _ = layered_config(file_props, props, f"--config {self['config']}")
            acl = check_acl_settings(broker)
            if acl is not None:
                self._namesrv_acl(ns, broker, acl)
        except AclConfigError as e:
            self.refuse(f"ACL: {e}")
        except ValueError as e:
            self.refuse(e)
        except OSError as e:
            self.refuse(f"cannot read the saved runtime settings: {e}")
        # One process, one open-file limit: the broker's default half, the NameServer's a quarter, the rest
        # for the store's files.
        ns.server_max_connections = ns.server_max_connections or max(64, open_file_limit() // 4)
        self.namesrv_config = ns
        self.broker_config = broker
        self.console_config = self._console(broker)

    @staticmethod
    def _namesrv_acl(ns: NamesrvConfig, broker, acl: AclStore) -> None:
        """Under ACL the NameServer checks writes too (docs/acl.md): left open, anyone could register a broker
        that takes over every route, or unregister this one. The broker signs its registrations with its own
        account, which must be an admin account of the same file (``acl``: those files, loaded)."""
        credentials = broker_credentials(broker)
        account = None if credentials is None else acl.account(credentials.access_key)
        if account is None or not account.admin or account.secret_key != credentials.secret_key:
            raise ValueError("--acl checks the NameServer's writes too, and the broker signs its registrations "
                             "with its own account: set accessKey and secretKey (an admin account of the ACL "
                             "file) in --config")
        ns.acl_enable = True
        ns.rocketmq_home = broker.rocketmq_home
        ns.acl_file = broker.acl_file

    def _console(self, broker) -> ConsoleConfig:
        """The console's settings: this process's NameServer; under ACL it samples with the broker's account
        and asks each user to log in with theirs."""
        console = ConsoleConfig(namesrv_addr=f"127.0.0.1:{self['namesrv-port']}",
                                access_key=broker.access_key, secret_key=broker.secret_key,
                                login=broker.acl_enable,
                                data_dir=os.path.join(broker.store_path_root_dir, "console", "dashboard"))
        try:
            console.set_option("port", self["console-port"])
            console.set_option("bind", self["console-bind"])
        except ValueError as e:
            self.refuse(e)
        if self["console-users"]:
            why = users_file_error(self["console-users"])
            if why is not None:
                self.refuse(f"--console-users {why}")
            console.users_file = self["console-users"]
        return console


def makeService(options: Options) -> OneAfterAnother:
    try:
        check_ports_free(options.namesrv_config.listens() + options.broker_config.listens())
    except ValueError as e:
        options.refuse(e)
    try:
        gc_tuning = GcTuning()
    except ValueError as e:
        options.refuse(e)
    top = OneAfterAnother()
    # The NameServer starts first, so the broker's first registration finds it listening, and stops last, so
    # the broker's unregistration still finds it.
    try:
        NamesrvService(options.namesrv_config).setServiceParent(top)
    except KVConfigError as e:
        options.refuse(f"KV config: {e}")
    try:
        make_broker_service(options.broker_config).setServiceParent(top)
    except StateFileError as e:
        options.refuse(e)
    if options.console_config.port:
        ConsoleService(options.console_config, required=False).setServiceParent(top)
    gc_tuning.setServiceParent(top)  # last: once the store is loaded
    return top
