"""What the connections of one server may hold, and for how long (``ConnectionLimits``).

A peer that announces a large frame and sends it slowly, or never, makes the server keep what it sent so far;
a peer that sends nothing keeps a socket; a peer that never reads makes its responses pile up. Each has a
bound here, enforced by ``RemotingProtocol`` (framing) and ``RemotingServerFactory`` (a scan every
``scan_interval``), and an offender is closed with a log line naming the setting it crossed.

Unsent output is bounded by Twisted's transport buffer size (64 KiB, Netty's default write-buffer high-water
mark): above it the connection stops being read until its output has drained, so a peer that never reads
stops being served, goes idle, and is closed after the idle timeout.
"""

from __future__ import annotations

from typing import Any

try:
    import resource
except ImportError:  # not on Linux or macOS
    resource = None  # type: ignore[assignment]

import attrs

from mq.common.config import camel
from mq.remoting.serialization import DEFAULT_MAX_FRAME_LENGTH


@attrs.define
class ConnectionLimits:
    #: Largest frame, length prefix included (Java: ``com.rocketmq.remoting.frameMaxLength``, 16 MiB): what one
    #: connection may hold of a partial frame.
    max_frame_length: int = DEFAULT_MAX_FRAME_LENGTH
    #: Bytes all connections together may hold in partial frames; the connection that asks for more is closed.
    partial_frames_max_bytes: int = 128 * 1024 * 1024
    #: Seconds one frame may take to arrive once it has begun (slow senders, byte-at-a-time tricklers).
    partial_frame_timeout_seconds: float = 60.0
    #: Seconds without reading or writing anything after which a connection is closed (Java's
    #: ``serverChannelMaxIdleTimeSeconds``, an ALL_IDLE ``IdleStateHandler``). 0 = never.
    server_channel_max_idle_time_seconds: float = 120.0
    #: Connections one server (its ports together) keeps at once; one more is closed as it is accepted, with a
    #: log line. 0: ``default_share`` of the process's open-file limit (``ulimit -n``).
    server_max_connections: int = 0
    #: Connections one client address may keep at once on the server (its ports together): one more from it is
    #: closed at accept. 0: no bound of its own (clients behind one NAT address share it; set it where they
    #: do not), so one address can take all of ``server_max_connections``.
    server_max_connections_per_address: int = 0
    #: The broker keeps half of its file descriptors for the store (past the limit a new CommitLog or
    #: ConsumeQueue file could not be opened); a NameServer of its own needs few.
    default_share: float = 0.5
    #: Seconds between two looks at every connection's timers.
    scan_interval: float = 1.0

    def max_connections(self) -> int:
        """``server_max_connections``, or its default from the open-file limit."""
        if self.server_max_connections:
            return self.server_max_connections
        return max(64, int(open_file_limit() * self.default_share))

    @classmethod
    def from_config(cls, config: Any, **more: Any) -> "ConnectionLimits":
        """The limits from a service config with fields of the same names (``broker.conf`` keys
        ``maxFrameLength``, ``partialFramesMaxBytes``, ``partialFrameTimeoutSeconds``,
        ``serverChannelMaxIdleTimeSeconds``, ``serverMaxConnections``, ``serverMaxConnectionsPerAddress``)."""
        return cls(**{f.name: getattr(config, f.name) for f in attrs.fields(cls) if hasattr(config, f.name)}, **more)

    def setting(self, name: str) -> str:
        """``key=value`` of a setting, for log lines."""
        value = getattr(self, name)
        return f"{camel(name)}={value:g}" if isinstance(value, float) else f"{camel(name)}={value}"


def open_file_limit() -> int:
    """The process's soft limit on open files (1,024 when unknown or unlimited past a million)."""
    if resource is None:
        return 1024
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1024 if soft == resource.RLIM_INFINITY or soft <= 0 else min(soft, 1 << 20)
