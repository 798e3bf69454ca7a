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

from mq.common.config import camel, convert_value, format_value, key_aliases
from mq.common.configfile import write_atomically
from mq.common.mixall import DEFAULT_BROKER_PORT, DEFAULT_CLUSTER, DEFAULT_REGION
from mq.common.properties import format_properties, parse_properties
from mq.common.route import PERM_READ, PERM_WRITE
from mq.store.config import ALIASES as STORE_ALIASES
from mq.store.config import BrokerRole, FlushDiskType, MessageStoreConfig


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


@attrs.define
class BrokerConfig:
    broker_cluster_name: str = DEFAULT_CLUSTER
    broker_name: str = attrs.field(factory=lambda: socket.gethostname().split(".")[0] or "broker-a")
    broker_id: int = 0
    listen_port: int = DEFAULT_BROKER_PORT
    #: ``host:port;host:port`` of the NameServers (also read from the NAMESRV_ADDR environment variable).
    namesrv_addr: str = attrs.field(factory=lambda: os.environ.get("NAMESRV_ADDR", ""))
    broker_ip1: str = attrs.field(factory=local_ip)
    broker_ip2: str = ""
    #: Address the broker binds its ports to ("" = every interface).
    bind_address: str = ""
    #: Also serve on the VIP port (listenPort - 2) that old Java clients use for sends.
    fast_listen_enable: bool = True
    broker_role: BrokerRole = BrokerRole.ASYNC_MASTER
    flush_disk_type: FlushDiskType = FlushDiskType.ASYNC_FLUSH
    store_path_root_dir: str = attrs.field(factory=_default_store)
    broker_permission: int = PERM_READ | PERM_WRITE
    region_id: str = DEFAULT_REGION
    trace_on: bool = True
    auto_create_topic_enable: bool = True
    auto_create_subscription_group: bool = True
    cluster_topic_enable: bool = True
    broker_topic_enable: bool = True
    default_topic_queue_nums: int = 8
    #: ms between registrations with the NameServers (clamped to 10 s .. 60 s, as RocketMQ does).
    register_name_server_period: int = 30_000
    register_broker_timeout_mills: int = 6_000
    flush_consumer_offset_interval: int = 5_000
    long_polling_enable: bool = True
    short_polling_time_mills: int = 1_000
    slave_read_enable: bool = False
    channel_expired_timeout: int = 120_000
    max_message_size: int = 4 * 1024 * 1024
    reject_transaction_message: bool = False
    #: Also store reply messages (SEND_REPLY_MESSAGE) in ``<cluster>_REPLY_TOPIC``, besides pushing them.
    store_reply_message_enable: bool = True
    notify_consumer_ids_changed_enable: bool = True
    #: HTTP port of the Prometheus endpoint (0 = off).
    metrics_port: int = 0
    #: Transactions (ms): how often half messages are checked, how old one must be before its first check,
    #: and how many checks a half message gets before it is discarded.
    transaction_check_interval: int = 60_000
    transaction_time_out: int = 6_000
    transaction_check_max: int = 15
    #: Serve SQL92 property filters (RocketMQ's default: off).
    enable_property_filter: bool = False
    #: ms an ordered-consumption queue lock lives without renewal (RocketMQ's
    #: ``rocketmq.broker.rebalance.lockMaxLiveTime``).
    rebalance_lock_max_live_time: int = 60_000
    #: ms between two looks at the delay-level queues (RocketMQ's per-level timers run every 100 ms).
    schedule_tick_millis: int = 100
    #: Client connections (see mq.remoting.limits): the largest frame (Java's frameMaxLength), what all
    #: connections may hold in partial frames, how long one frame may take to arrive, and seconds without
    #: traffic before a connection is closed (NettyServerConfig's serverChannelMaxIdleTimeSeconds).
    max_frame_length: int = 16 * 1024 * 1024
    partial_frames_max_bytes: int = 128 * 1024 * 1024
    partial_frame_timeout_seconds: float = 60.0
    server_channel_max_idle_time_seconds: float = 120.0
    #: Heartbeats (mq.broker.processor_client): the most subscription groups heartbeats and pulls may
    #: auto-create (the admin may create more), the most consumer and producer groups online together, and
    #: the most client connections registered by heartbeats. Past one, a heartbeat is refused whole.
    max_subscription_group_nums: int = 10_000
    max_client_group_nums: int = 10_000
    max_client_channel_nums: int = 20_000
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

    @property
    def store_host(self) -> tuple[str, int]:
        return self.broker_ip1, self.listen_port

    @property
    def namesrv_list(self) -> list:
        return [a.strip() for a in self.namesrv_addr.replace(",", ";").split(";") if a.strip()]

    @property
    def register_period_seconds(self) -> float:
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

    # -- properties ---------------------------------------------------------------------------------

    @classmethod
    def from_properties(cls, props: Mapping[str, Any], base: BrokerConfig | None = None) -> BrokerConfig:
        """A config from ``broker.conf`` keys (or field names), on top of ``base`` or the defaults."""
        config = attrs.evolve(base, extra=dict(base.extra)) if base is not None else cls()
        config.update(props)
        return config

    def update(self, props: Mapping[str, Any]) -> dict[str, str]:
        """Apply keys (``broker.conf`` names or field names); returns what changed, as ``key -> new value``.

        Raises ValueError naming the key when a value does not parse; nothing is changed then.
        """
        fields = attrs.fields_dict(type(self))
        parsed: dict[str, Any] = {}
        extra: dict[str, str] = {}
        for key, raw in props.items():
            name = ALIASES.get(key, key)
            if name not in fields or name == "extra":
                extra[key] = str(raw)
                continue
            parsed[name] = convert_value(fields[name], raw, key)
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
        """Every key broker.conf may hold: the broker's own and the store's."""
        return KNOWN_KEYS

    def to_properties(self) -> dict[str, str]:
        out = {
            camel(f.name, KEY_OVERRIDES): format_value(getattr(self, f.name))
            for f in attrs.fields(type(self))
            if f.name != "extra"
        }
        out.update(self.extra)
        return out


#: Keys whose RocketMQ spelling is not the plain camel case of the field name.
KEY_OVERRIDES = {"broker_ip1": "brokerIP1", "broker_ip2": "brokerIP2"}
ALIASES: dict[str, str] = key_aliases(BrokerConfig, KEY_OVERRIDES)
KNOWN_KEYS = frozenset(ALIASES) | frozenset(STORE_ALIASES)


#: Broker settings UPDATE_BROKER_CONFIG may change while running (the rest need a restart).
RUNTIME_KEYS = frozenset({
    "brokerPermission", "autoCreateTopicEnable", "autoCreateSubscriptionGroup", "defaultTopicQueueNums",
    "longPollingEnable", "shortPollingTimeMills", "slaveReadEnable", "rejectTransactionMessage",
    "notifyConsumerIdsChangedEnable", "traceOn", "regionId", "registerNameServerPeriod", "namesrvAddr",
    "channelExpiredTimeout", "flushConsumerOffsetInterval", "maxMessageSize", "storeReplyMessageEnable",
})

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
                           + format_properties(props))
    return path


def layered_config(file_props: Mapping[str, Any], option_props: Mapping[str, Any]) -> tuple[BrokerConfig, dict]:
    """The broker's settings: defaults, then the ``--config`` file, then the runtime changes saved in
    ``<storePathRootDir>/config/broker.properties``, then the command-line options, which win.

    Returns the config and the saved runtime changes that took effect. Raises ValueError naming a bad key.
    """
    first = BrokerConfig.from_properties({**file_props, **option_props})
    store_root = os.path.abspath(os.path.expanduser(first.store_path_root_dir))
    given = {ALIASES.get(k, k) for k in option_props}
    saved = {k: v for k, v in read_runtime_changes(store_root).items() if ALIASES.get(k, k) not in given}
    if not saved:
        return first, {}
    return BrokerConfig.from_properties({**file_props, **saved, **option_props}), saved
