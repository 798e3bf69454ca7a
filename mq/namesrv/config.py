"""``NamesrvConfig``: every NameServer setting, with the original property names."""

from __future__ import annotations

import os

import attr

from mq.common.config import ServiceConfig, setting


def default_kv_config_path() -> str:
    return os.path.join(os.path.expanduser("~"), "namesrv", "kvConfig.json")


@attr.s(slots=True)
class NamesrvConfig(ServiceConfig):
    listen_port: int = setting("listenPort", 9876, "TCP port for brokers and clients")
    interface: str = setting("listenInterface", "", "address to listen on (all when empty)")
    scan_interval: float = setting(
        "scanNotActiveBrokerInterval", 10.0, "seconds between scans for silent brokers", runtime=True
    )
    broker_expiry: float = setting(
        "brokerChannelExpiredTime", 120.0, "seconds of silence after which a broker is dropped", runtime=True
    )
    kv_config_path: str = setting("kvConfigPath", attr.Factory(default_kv_config_path), "KV config JSON file")
    metrics_port: int = setting("metricsPort", 0, "Prometheus metrics HTTP port (0 = off)")
    order_message_enable: bool = setting(
        "orderMessageEnable", False, "add ORDER_TOPIC_CONFIG KV entries to routes", runtime=True
    )
    max_frame_length: int = setting("maxFrameLength", 16 * 1024 * 1024, "largest frame accepted, bytes")
    partial_frames_max_bytes: int = setting(
        "partialFramesMaxBytes", 128 * 1024 * 1024, "bytes all connections together may hold in partial frames"
    )
    partial_frame_timeout_seconds: float = setting(
        "partialFrameTimeoutSeconds", 60.0, "seconds one frame may take to arrive once begun"
    )
    server_channel_max_idle_time_seconds: float = setting(
        "serverChannelMaxIdleTimeSeconds", 120.0, "seconds without traffic before a connection is closed (0 = never)"
    )
