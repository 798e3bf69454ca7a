"""``ConsoleConfig``: every console setting, its range next to it (``twistd console`` and ``twistd mq``)."""

from __future__ import annotations

import attr

from mq.common.config import PORT_OR_OFF, ServiceConfig, tunable, within

LOOPBACK = "127.0.0.1"


def check_addresses(text: str) -> None:
    """NameServer addresses: ``host:port;host:port`` (at most 32); raises ValueError saying what is wrong."""
    parts = [p.strip() for p in text.split(";") if p.strip()]
    if len(parts) > 32:
        raise ValueError(f"{len(parts)} addresses is more than 32")
    for part in parts:
        host, sep, port = part.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{part!r} is not host:port")


@attr.s(slots=True)
class ConsoleConfig(ServiceConfig):
    """Where the console listens, which cluster it shows, and the bounds of what one request may cost."""

    #: 0 turns the console off (``twistd mq --console-port 0``).
    port: int = tunable(8080, PORT_OR_OFF)
    #: The console can create and delete topics: loopback only unless the operator says otherwise.
    bind: str = tunable(LOOPBACK)
    namesrv_addr: str = tunable("127.0.0.1:9876", check=check_addresses)
    #: Seconds to wait for each admin answer from a NameServer or broker.
    admin_timeout: float = tunable(5.0, within(0.5, 60, "s"))
    #: The dashboard's TPS sampling: every ``sample_interval`` seconds, ``history_points`` samples kept.
    sample_interval: float = tunable(5.0, within(1, 300, "s"))
    history_points: int = tunable(360, within(2, 10_000, "samples"))
    #: The dashboard's per-day history: kept in ``data_dir`` (empty: today's in memory only, lost at a restart),
    #: ``history_days`` days of it, a point per line every ``history_step`` seconds (mq.console.history).
    data_dir: str = tunable("")
    history_days: int = tunable(7, within(1, 366, "days"))
    history_step: float = tunable(60.0, within(1, 3600, "s"))
    #: Topics whose TPS the dashboard follows (the busiest are shown; the rest are not sampled).
    sampled_topics: int = tunable(50, within(1, 1000, "topics"))
    #: Largest POST body read; bigger requests are refused before the body is parsed.
    max_body_bytes: int = tunable(256 * 1024, within(1024, 16 * 1024 * 1024, "bytes"))
    #: Most messages one query returns (by topic and time, by key).
    max_messages: int = tunable(200, within(1, 10_000, "messages"))
    #: API requests served at once; more are answered 503 at once rather than queued without bound.
    max_concurrent_requests: int = tunable(16, within(1, 1000, "requests"))
    access_key: str = tunable("")
    secret_key: str = tunable("")
    #: Ask each user for an ACL account and act as that account for them (mq.console.sessions).
    login: bool = tunable(False)
    #: rocketmq-dashboard's users.properties (``name=password[,role]``): log in as a console user (implies login).
    users_file: str = tunable("")
    #: Failed logins one client address may make within ``login_window`` seconds before it must wait.
    login_max_failures: int = tunable(5, within(1, 1000, "logins"))
    login_window: float = tunable(60.0, within(1, 86_400, "s"))
    max_sessions: int = tunable(64, within(1, 10_000, "sessions"))
    session_idle: float = tunable(1800.0, within(60, 7 * 86_400, "s"))
