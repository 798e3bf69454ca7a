"""``NamesrvConfig``: every NameServer setting, with the original property names."""

from __future__ import annotations

import os
from typing import List, Tuple

import attr

from mq.common.config import PORT, PORT_OR_OFF, ServiceConfig, setting, within


def default_kv_config_path() -> str:
    return os.path.join(os.path.expanduser("~"), "namesrv", "kvConfig.json")


@attr.s(slots=True)
class NamesrvConfig(ServiceConfig):
    listen_port: int = setting("listenPort", 9876, "TCP port for brokers and clients", range=PORT)
    interface: str = setting("listenInterface", "", "address to listen on (all when empty)")
    scan_interval: float = setting(
        "scanNotActiveBrokerInterval", 10.0, "seconds between scans for silent brokers", runtime=True,
        range=within(1, 60, "s"),
    )
    #: Short expiries are for test clusters started so; a live change may not go below what a broker
    #: registering every 60 s (the longest registerNameServerPeriod) survives.
    broker_expiry: float = setting(
        "brokerChannelExpiredTime", 120.0, "seconds of silence after which a broker is dropped",
        runtime=within(90, 86400, "s"), range=within(1, 86400, "s"),
    )
    kv_config_path: str = setting("kvConfigPath", attr.Factory(default_kv_config_path), "KV config JSON file")
    metrics_port: int = setting("metricsPort", 0, "Prometheus metrics HTTP port (0 = off)", range=PORT_OR_OFF)
    order_message_enable: bool = setting(
        "orderMessageEnable", False, "add ORDER_TOPIC_CONFIG KV entries to routes", runtime=True
    )
    max_frame_length: int = setting(
        "maxFrameLength", 16 * 1024 * 1024, "largest frame accepted, bytes", range=within(65536, 1 << 30, "bytes")
    )
    acl_enable: bool = setting("aclEnable", False, "writes (register, KV, config, perms) need an admin signature")
    rocketmq_home: str = setting("rocketmqHome", attr.Factory(lambda: os.environ.get("ROCKETMQ_HOME", "")),
                                 "where conf/plain_acl.yml is (default: $ROCKETMQ_HOME)")
    acl_file: str = setting("aclFile", "", "the ACL file, absolute or under rocketmqHome (default conf/plain_acl.yml)")
    partial_frames_max_bytes: int = setting(
        "partialFramesMaxBytes", 128 * 1024 * 1024, "bytes all connections together may hold in partial frames",
        range=within(1 << 20, 1 << 40, "bytes")
    )
    partial_frame_timeout_seconds: float = setting(
        "partialFrameTimeoutSeconds", 60.0, "seconds one frame may take to arrive once begun", range=within(1, 3600, "s")
    )
    server_channel_max_idle_time_seconds: float = setting(
        "serverChannelMaxIdleTimeSeconds", 120.0, "seconds without traffic before a connection is closed (0 = never)",
        range=within(0, 86_400, "s")
    )
    server_max_connections: int = setting(
        "serverMaxConnections", 0,
        "connections kept at once; one more is closed at accept (0: 90% of ulimit -n, a quarter in twistd mq)",
        range=within(0, 10_000_000)
    )
    server_max_connections_per_address: int = setting(
        "serverMaxConnectionsPerAddress", 0, "connections one client address may keep (0 = no bound of its own)",
        range=within(0, 10_000_000)
    )

    def listens(self) -> List[Tuple[int, str, str]]:
        """The ports this NameServer listens on: (port, interface, the setting that chose it)."""
        out = [(self.listen_port, self.interface, "listenPort")]
        if self.metrics_port:
            out.append((self.metrics_port, self.interface, "metricsPort"))
        return out
