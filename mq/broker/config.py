"""BrokerConfig: the broker's settings, under RocketMQ's ``broker.conf`` key names.

Each setting is an attrs field named in snake case; its camelCase form (``brokerClusterName``,
``listenPort``...) is the key in ``broker.conf`` and in UPDATE_BROKER_CONFIG bodies. Keys the broker does not
know are kept in ``extra`` and handed to the store config (``mappedFileSizeCommitLog``...), so one file
configures both, as in RocketMQ.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

import attrs

from mq.common.config import (
    PORT,
    PORT_OR_OFF,
    camel,
    convert_value,
    file_settings,
    format_value,
    is_runtime,
    key_aliases,
    tunable,
    within,
)
from mq.common.configfile import write_atomically
from mq.common.mixall import DEFAULT_BROKER_PORT, DEFAULT_CLUSTER, DEFAULT_REGION
from mq.common.names import topic_error
from mq.common.properties import format_properties, parse_properties
from mq.common.rocketmq_keys import BROKER_IGNORED
from mq.common.route import PERM_READ, PERM_WRITE
from mq.common.topic import TRACE_TOPIC
from mq.dledger.log import DEFAULT_CACHE_BYTES
from mq.store.config import ALIASES as STORE_ALIASES
from mq.store.config import MESSAGE_SIZE, BrokerRole, FlushDiskType, MessageStoreConfig


def local_ip() -> str:
    """The address other hosts would reach this one at (no packet is sent); loopback if there is none."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def _default_store() -> str:
    return os.path.join(os.path.expanduser("~"), "store")


#: NameServers a broker registers with, at most (each registration is a connection and a body every period).
MAX_NAMESRVS = 32


def _check_namesrv_addr(text: str) -> None:
    """``host:port;host:port`` (``,`` also separates), each port 1..65535, at most MAX_NAMESRVS of them."""
    addrs = [a.strip() for a in text.replace(",", ";").split(";") if a.strip()]
    if len(addrs) > MAX_NAMESRVS:
        raise ValueError(f"{len(addrs)} addresses is more than {MAX_NAMESRVS}")
    for addr in addrs:
        host, _, port = addr.rpartition(":")
        if not host or not (port.isdecimal() and PORT.low <= int(port) <= PORT.high):
            raise ValueError(f"{addr!r} is not host:port with a port in {PORT}")


def _check_topic_name(text: str) -> None:
    why = topic_error(text)
    if why is not None:
        raise ValueError(why)


@attrs.define
class BrokerConfig:
    """Each number's range and whether a setting may change while running are declared next to it, once:
    ``tunable(default, within(low, high, unit), runtime=...)`` (mq.common.config)."""

    broker_cluster_name: str = DEFAULT_CLUSTER
    broker_name: str = attrs.field(factory=lambda: socket.gethostname().split(".")[0] or "broker-a")
    broker_id: int = tunable(0, within(0, 1024))
    #: The HA port is listenPort + 1 and the VIP port listenPort - 2, so the top port is not allowed.
    listen_port: int = tunable(DEFAULT_BROKER_PORT, within(1, 65534))
    #: ``host:port;host:port`` of the NameServers (also read from the NAMESRV_ADDR environment variable).
    namesrv_addr: str = tunable(attrs.Factory(lambda: os.environ.get("NAMESRV_ADDR", "")), runtime=True,
                                check=_check_namesrv_addr)
    broker_ip1: str = attrs.field(factory=local_ip)
    broker_ip2: str = ""
    #: Address the broker binds its ports to ("" = every interface).
    bind_address: str = ""
    #: Also serve on the VIP port (listenPort - 2) that old Java clients use for sends.
    fast_listen_enable: bool = True
    broker_role: BrokerRole = BrokerRole.ASYNC_MASTER
    flush_disk_type: FlushDiskType = FlushDiskType.ASYNC_FLUSH
    store_path_root_dir: str = attrs.field(factory=_default_store)
    #: PermName bits: 4 read, 2 write, 1 inherit.
    broker_permission: int = tunable(PERM_READ | PERM_WRITE, within(0, 7), runtime=True)
    region_id: str = tunable(DEFAULT_REGION, runtime=True)
    trace_on: bool = tunable(True, runtime=True)
    #: Message trace (docs/trace.md): create ``msgTraceTopicName`` at start (1 queue, read-write) as a system
    #: topic, so traced clients find it without auto-creation.
    trace_topic_enable: bool = False
    msg_trace_topic_name: str = tunable(TRACE_TOPIC, check=_check_topic_name)
    auto_create_topic_enable: bool = tunable(True, runtime=True)
    auto_create_subscription_group: bool = tunable(True, runtime=True)
    cluster_topic_enable: bool = True
    broker_topic_enable: bool = True
    #: Queues of topics created from TBW102 (RocketMQ's own limit on a topic's queues is 1024).
    default_topic_queue_nums: int = tunable(8, within(1, 1024), runtime=True)
    #: ms between registrations with the NameServers (10 s .. 60 s, the span RocketMQ clamps it to).
    register_name_server_period: int = tunable(30_000, within(10_000, 60_000, "ms"), runtime=True)
    register_broker_timeout_mills: int = tunable(6_000, within(1_000, 60_000, "ms"))
    flush_consumer_offset_interval: int = tunable(5_000, within(100, 3_600_000, "ms"), runtime=True)
    long_polling_enable: bool = tunable(True, runtime=True)
    #: ms a pull without messages waits when long polling is off (a client times out a pull after 30 s).
    short_polling_time_mills: int = tunable(1_000, within(10, 30_000, "ms"), runtime=True)
    #: Long polling's bounds (mq's own keys; RocketMQ holds a pull for whatever suspendTimeoutMillis it asks, and
    #: any number of them): the longest a pull is held (push consumers ask 15 s, pull consumers 20 s), and the
    #: most pulls one connection may have held at once (past it SYSTEM_BUSY; a client holds one per queue).
    pull_hold_max_time_mills: int = tunable(60_000, within(1_000, 3_600_000, "ms"), runtime=True)
    pull_hold_max_per_connection: int = tunable(10_000, within(1, 1_000_000), runtime=True)
    slave_read_enable: bool = tunable(False, runtime=True)
    #: ms of silence after which a client is dropped (clients send a heartbeat every 30 s).
    channel_expired_timeout: int = tunable(120_000, within(60_000, None, "ms"), runtime=True)
    max_message_size: int = tunable(4 * 1024 * 1024, MESSAGE_SIZE, runtime=True)
    reject_transaction_message: bool = tunable(False, runtime=True)
    #: Also store reply messages (SEND_REPLY_MESSAGE) in ``<cluster>_REPLY_TOPIC``, besides pushing them.
    store_reply_message_enable: bool = tunable(True, runtime=True)
    notify_consumer_ids_changed_enable: bool = tunable(True, runtime=True)
    #: Admin requests relayed to one client (GET_CONSUMER_RUNNING_INFO, CONSUME_MESSAGE_DIRECTLY) waiting for its
    #: answer at once; past it a relay is refused with SYSTEM_BUSY (mq's own key: RocketMQ does not bound them).
    client_relay_max_in_flight: int = tunable(4, within(1, 1000), runtime=True)
    #: HTTP port of the Prometheus endpoint (0 = off).
    metrics_port: int = tunable(0, PORT_OR_OFF)
    #: Keys per stats name (TOPIC_PUT_NUMS by topic, GROUP_GET_NUMS by topic@group…; docs/metrics.md): past it a
    #: new key is not counted. About 6 KB per key once its day window is full.
    max_stats_keys: int = tunable(2_000, within(16, 1_000_000))
    #: Series per exporter-compatible metric family (rocketmq_consumer_tps by topic and group…) in one scrape:
    #: the rest are left out and counted in mq_broker_metrics_series_dropped.
    metrics_max_series: int = tunable(2_000, within(10, 1_000_000))
    #: Seconds between two rounds of GET_CONSUMER_RUNNING_INFO to the online consumers for the rocketmq_client_*
    #: metrics (rocketmq-exporter asks once a minute).
    client_metrics_interval: float = tunable(60.0, within(1, 3600, "s"))
    #: Transactions (ms): how often half messages are checked, how old one must be before its first check,
    #: and how many checks a half message gets before it is discarded.
    transaction_check_interval: int = tunable(60_000, within(100, 86_400_000, "ms"))
    transaction_time_out: int = tunable(6_000, within(0, 86_400_000, "ms"))
    transaction_check_max: int = tunable(15, within(1, 10_000))
    #: Serve SQL92 property filters (RocketMQ's default: off).
    enable_property_filter: bool = False
    #: ms an ordered-consumption queue lock lives without renewal (RocketMQ's
    #: ``rocketmq.broker.rebalance.lockMaxLiveTime``).
    rebalance_lock_max_live_time: int = tunable(60_000, within(1_000, 3_600_000, "ms"))
    #: ms between two looks at the delay-level queues (RocketMQ's per-level timers run every 100 ms).
    schedule_tick_millis: int = tunable(100, within(10, 10_000, "ms"))
    #: Timer messages (docs/timer.md; RocketMQ 5.x's store keys): on or off (off refuses them), the wheel's
    #: precision (snapped down to 100, 200, 500 or 1000 ms), the longest delay a send may ask for, and how
    #: often the wheel's progress is saved.
    timer_wheel_enable: bool = True
    timer_precision_ms: int = tunable(1_000, within(100, 1_000, "ms"))
    timer_max_delay_sec: int = tunable(259_200, within(1, 30 * 86_400, "s"))
    timer_flush_interval_ms: int = tunable(1_000, within(10, 60_000, "ms"))
    #: ACL 1.0 (docs/acl.md): check every request against plain_acl.yml before it is processed.
    acl_enable: bool = False
    #: RocketMQ's home directory: the ACL files are ``conf/plain_acl.yml`` and ``conf/acl/*.yml`` under it
    #: (default: the ROCKETMQ_HOME environment variable).
    rocketmq_home: str = attrs.field(factory=lambda: os.environ.get("ROCKETMQ_HOME", ""))
    #: The main ACL file, absolute or under rocketmqHome ("" = conf/plain_acl.yml).
    acl_file: str = ""
    #: The account this broker signs its own requests with (a slave's to its master, registrations).
    access_key: str = ""
    secret_key: str = attrs.field(default="", repr=False)
    #: Client connections (see mq.remoting.limits): the largest frame (Java's frameMaxLength), what all
    #: connections may hold in partial frames, how long one frame may take to arrive, and seconds without
    #: traffic before a connection is closed (NettyServerConfig's serverChannelMaxIdleTimeSeconds).
    max_frame_length: int = tunable(16 * 1024 * 1024, within(65536, 1 << 30, "bytes"))
    partial_frames_max_bytes: int = tunable(128 * 1024 * 1024, within(1 << 20, 1 << 40, "bytes"))
    partial_frame_timeout_seconds: float = tunable(60.0, within(1, 3600, "s"))
    server_channel_max_idle_time_seconds: float = tunable(120.0, within(0, 86_400, "s"))
    #: Connections the client ports keep at once (mq's own key; 0 = half of ``ulimit -n``).
    server_max_connections: int = tunable(0, within(0, 10_000_000))
    #: Connections one client address may keep (mq's own key; 0 = no bound of its own: NAT shares addresses).
    server_max_connections_per_address: int = tunable(0, within(0, 10_000_000))
    #: Heartbeats (mq.broker.processor.client_manage): the most subscription groups heartbeats and pulls may
    #: auto-create (the admin may create more), the most consumer and producer groups online together, and
    #: the most client connections registered by heartbeats. Past one, a heartbeat is refused whole.
    max_subscription_group_nums: int = tunable(10_000, within(1, 10_000_000))
    #: Topics (besides the groups' retry and dead-letter topics) past which a send no longer auto-creates one
    #: (mq's own key; the admin may still create): each costs memory, a save of topics.json and a registration.
    max_topic_nums: int = tunable(10_000, within(1, 10_000_000), runtime=True)
    max_client_group_nums: int = tunable(10_000, within(1, 10_000_000))
    max_client_channel_nums: int = tunable(20_000, within(1, 10_000_000))
    #: DLedger mode (docs/replication.md): the group elects its master by Raft over each node's port in
    #: ``dLegerPeers`` (``n0-host:port;n1-host:port;n2-host:port``); brokerId and brokerRole then follow the
    #: election. ``dLegerGroup`` defaults to brokerName; ``preferredLeaderId`` is where leadership moves back to.
    enable_d_leger_commit_log: bool = False
    d_leger_group: str = ""
    d_leger_peers: str = ""
    d_leger_self_id: str = ""
    preferred_leader_id: str = ""
    #: Bytes of Raft entry bodies a DLedger node keeps in memory (mq's own key, mq.dledger.log): older ones are
    #: read back from its log files when a follower needs them. 0 keeps none past the one being replicated.
    d_leger_cache_bytes: int = tunable(DEFAULT_CACHE_BYTES, within(0, 1 << 40, "bytes"))
    #: Keys this class does not know (store settings among them), as given.
    extra: dict[str, str] = attrs.field(factory=dict)

    # -- derived ------------------------------------------------------------------------------------

    @property
    def broker_addr(self) -> str:
        return f"{self.broker_ip1}:{self.listen_port}"

    @property
    def ha_server_addr(self) -> str:
        return f"{self.broker_ip2 or self.broker_ip1}:{self.ha_listen_port}"

    @property
    def ha_listen_port(self) -> int:
        """``haListenPort`` (a store key in RocketMQ's broker.conf), else listenPort + 1."""
        raw = str(self.extra.get("haListenPort", "")).strip()
        return int(raw) if raw.isdigit() and int(raw) > 0 else self.listen_port + 1

    def listens(self) -> list[tuple[int, str, str]]:
        """The ports this broker listens on: (port, interface, the setting that chose it)."""
        out = [(self.listen_port, self.bind_address, "listenPort")]
        if self.fast_listen_enable and self.listen_port > 2:
            out.append((self.listen_port - 2, self.bind_address, "the VIP port, listenPort - 2"))
        if self.enable_d_leger_commit_log:
            from mq.broker.dledger.settings import DLedgerSettings

            out.append((DLedgerSettings.from_broker_config(self).port, self.bind_address,
                        "the Raft port, this node's dLegerPeers entry"))
        elif not self.is_slave:
            out.append((self.ha_listen_port, self.bind_address, "the HA port, haListenPort or listenPort + 1"))
        if self.metrics_port:
            out.append((self.metrics_port, self.bind_address, "metricsPort"))
        return out

    @property
    def store_host(self) -> tuple[str, int]:
        return self.broker_ip1, self.listen_port

    @property
    def namesrv_list(self) -> list:
        return [a.strip() for a in self.namesrv_addr.replace(",", ";").split(";") if a.strip()]

    @property
    def register_period_seconds(self) -> float:
        # Clamped too for configs built in code (the constructor does not check ranges).
        return max(10_000, min(self.register_name_server_period, 60_000)) / 1000.0

    @property
    def is_slave(self) -> bool:
        return self.broker_role is BrokerRole.SLAVE

    @property
    def config_dir(self) -> str:
        return os.path.join(self.store_path_root_dir, "config")

    def store_config(self) -> MessageStoreConfig:
        """The store's settings: the extra keys plus the ones both share."""
        props: dict[str, Any] = dict(self.extra)
        props.update(
            storePathRootDir=self.store_path_root_dir,
            flushDiskType=self.flush_disk_type.value,
            brokerRole=self.broker_role.value,
            maxMessageSize=self.max_message_size,
        )
        return MessageStoreConfig.from_properties(props)

    def check(self, whole: bool = True) -> None:
        """Build the store's and replication's settings from the extra keys, so that a bad value there stops
        the start with ValueError naming it, before any service starts. ``whole``: also the rules between keys
        (the DLedger keys may come from the file and the options together)."""
        from mq.broker.dledger.settings import DLedgerSettings, check_keys
        from mq.broker.ha.master import HAConfig  # replication imports the broker's modules; this one stays light

        self.store_config()
        HAConfig.from_broker_config(self)
        check_keys(self)
        if whole:
            DLedgerSettings.from_broker_config(self)

    # -- properties ---------------------------------------------------------------------------------

    @classmethod
    def from_properties(cls, props: Mapping[str, Any], base: BrokerConfig | None = None) -> BrokerConfig:
        """A config from ``broker.conf`` keys (or field names), on top of ``base`` or the defaults."""
        config = attrs.evolve(base, extra=dict(base.extra)) if base is not None else cls()
        config.update(props)
        return config

    def update(self, props: Mapping[str, Any], live: bool = False) -> dict[str, str]:
        """Apply keys (``broker.conf`` names or field names); returns what changed, as ``key -> new value``.

        Raises ValueError naming the key when a value does not parse or is out of its range (``live``: its
        runtime range); nothing is changed then.
        """
        fields = attrs.fields_dict(type(self))
        parsed: dict[str, Any] = {}
        extra: dict[str, str] = {}
        for key, raw in props.items():
            name = ALIASES.get(key, key)
            if name not in fields or name == "extra":
                extra[key] = str(raw)
                continue
            parsed[name] = convert_value(fields[name], raw, key, live)
        changed = {}
        for name, value in parsed.items():
            if getattr(self, name) != value:
                setattr(self, name, value)
                changed[camel(name, KEY_OVERRIDES)] = format_value(value)
        for key, value in extra.items():
            if self.extra.get(key) != value:
                self.extra[key] = value
                changed[key] = value
        return changed

    @staticmethod
    def known_keys() -> frozenset:
        """Every key broker.conf may hold: the broker's own, the store's and replication's."""
        from mq.broker.ha.master import HAConfig  # replication imports the broker's modules (see check)

        return KNOWN_KEYS | frozenset(HAConfig.KEYS)

    def to_properties(self) -> dict[str, str]:
        out = {
            camel(f.name, KEY_OVERRIDES): format_value(getattr(self, f.name))
            for f in attrs.fields(type(self))
            if f.name != "extra"
        }
        if self.secret_key:
            out["secretKey"] = SECRET_MASK  # GET_BROKER_CONFIG answers anyone who may connect
        out.update(self.extra)
        return out


#: What GET_BROKER_CONFIG shows instead of the broker's own secret key.
SECRET_MASK = "******"

#: Keys whose RocketMQ spelling is not the plain camel case of the field name.
KEY_OVERRIDES = {"broker_ip1": "brokerIP1", "broker_ip2": "brokerIP2"}
ALIASES: dict[str, str] = key_aliases(BrokerConfig, KEY_OVERRIDES)
KNOWN_KEYS = (frozenset(ALIASES) | frozenset(STORE_ALIASES)) - {"extra"}


#: Broker settings UPDATE_BROKER_CONFIG may change while running (the rest need a restart): the fields
#: declared with ``runtime``.
RUNTIME_KEYS = frozenset(camel(f.name, KEY_OVERRIDES) for f in attrs.fields(BrokerConfig) if is_runtime(f))

#: Where UPDATE_BROKER_CONFIG's changes are kept, under ``storePathRootDir`` (RocketMQ's default path of the
#: file it persists its settings to).
RUNTIME_CONFIG_FILE = os.path.join("config", "broker.properties")


def runtime_config_path(store_root: str) -> str:
    return os.path.join(store_root, RUNTIME_CONFIG_FILE)


def read_runtime_changes(store_root: str) -> dict[str, str]:
    """The settings saved by UPDATE_BROKER_CONFIG (runtime keys only; anything else in the file is ignored)."""
    try:
        with open(runtime_config_path(store_root), encoding="utf-8") as f:
            props = parse_properties(f.read())
    except FileNotFoundError:
        return {}
    return {k: v for k, v in props.items() if k in RUNTIME_KEYS}


def save_runtime_changes(store_root: str, changed: Mapping[str, str]) -> str:
    """Add ``changed`` to the saved runtime settings (written atomically); returns the file's path."""
    props = read_runtime_changes(store_root)
    props.update({k: str(v) for k, v in changed.items() if k in RUNTIME_KEYS})
    path = runtime_config_path(store_root)
    write_atomically(path, "# Settings changed at run time (UPDATE_BROKER_CONFIG); they override --config.\n"
                           + format_properties(props, escaped=True))
    return path


def layered_config(file_props: Mapping[str, Any], option_props: Mapping[str, Any],
                   file_name: str = "the --config file") -> tuple[BrokerConfig, dict]:
    """The broker's settings: defaults, then the ``--config`` file, then the runtime changes saved in
    ``<storePathRootDir>/config/broker.properties``, then the command-line options, which win.

    Returns the config, checked (``BrokerConfig.check``), and the saved runtime changes that took effect.
    Raises ValueError naming a bad key and where it was given: an unknown key too (with the nearest known
    one); RocketMQ's keys for Java's own machinery (thread pools...) are dropped with a warning.
    """
    file_props = file_settings(file_props, BrokerConfig.known_keys(), BROKER_IGNORED, file_name)
    _check_source(file_props, file_name)
    _check_source(option_props, "the command-line options")
    first = BrokerConfig.from_properties({**file_props, **option_props})
    store_root = os.path.abspath(os.path.expanduser(first.store_path_root_dir))
    given = {ALIASES.get(k, k) for k in option_props}
    saved = {k: v for k, v in read_runtime_changes(store_root).items() if ALIASES.get(k, k) not in given}
    _check_source(saved, runtime_config_path(store_root))
    config = BrokerConfig.from_properties({**file_props, **saved, **option_props}) if saved else first
    config.check()
    return config, saved


def _check_source(props: Mapping[str, Any], name: str) -> None:
    try:
        BrokerConfig.from_properties(props).check(whole=False)
    except ValueError as e:
        raise ValueError(f"{e} (in {name})") from None
