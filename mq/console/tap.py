"""``twistd console``: the web console alone, for a cluster of separate processes (docs/console.md)."""

from __future__ import annotations

import os

from mq.acl.signing import ENV_ACCESS_KEY, ENV_SECRET_KEY
from mq.common.cli import ServiceOptions
from mq.common.config import refuse_start
from mq.console.config import ConsoleConfig
from mq.console.service import ConsoleService
from mq.console.users import users_file_error


class Options(ServiceOptions):
    service = "console"  # --version prints mq's version, as the other services do
    synopsis = "--namesrv host:port [options]"
    longdesc = ("Serve mq's web console for any RocketMQ 4.x cluster: pages and a JSON API over the admin "
                "protocol. It listens on 127.0.0.1 unless --bind says otherwise; see docs/console.md.")
    optParameters = [
        ["namesrv", "n", None, "NameServer addresses, host:port;host:port [default: $NAMESRV_ADDR]."],
        ["port", "p", "8080", "HTTP port."],
        ["bind", "b", "127.0.0.1", "Address to listen on (anything but loopback lets others create and delete "
                                   "topics)."],
        ["sample-interval", None, None, "Seconds between the dashboard's TPS samples [default: 5]."],
        ["history-points", None, None, "TPS samples kept per broker and topic [default: 360]."],
        ["data-dir", None, "~/mq-console", "Where the dashboard's per-day history is kept ('' keeps only "
                                           "today's, in memory)."],
        ["history-days", None, None, "Days of dashboard history kept [default: 7]."],
        ["history-step", None, None, "Seconds between two kept points of a day's line [default: 60]."],
        ["timeout", None, None, "Seconds to wait for each admin answer [default: 5]."],
        ["access-key", None, None, f"ACL account the console signs with [default: ${ENV_ACCESS_KEY}]."],
        ["secret-key", None, None, f"Secret key of that account [default: ${ENV_SECRET_KEY}]."],
        ["users", None, None, "rocketmq-dashboard's users.properties (name=password[,1 for admin]): each user "
                              "logs in with a name and password; only admins may change the cluster."],
    ]
    optFlags = [
        ["login", None, "Ask each user for an ACL account and act as that account for them (docs/console.md)."],
    ]
    _fields = {"namesrv": "namesrv_addr", "port": "port", "bind": "bind", "sample-interval": "sample_interval",
               "history-points": "history_points", "timeout": "admin_timeout", "access-key": "access_key",
               "secret-key": "secret_key", "users": "users_file", "history-days": "history_days",
               "history-step": "history_step"}

    def postOptions(self) -> None:
        if self["namesrv"] is None:
            self["namesrv"] = os.environ.get("NAMESRV_ADDR")
        if not self["namesrv"]:
            refuse_start("console", "give --namesrv host:port (or set NAMESRV_ADDR)")
        for option, env in (("access-key", ENV_ACCESS_KEY), ("secret-key", ENV_SECRET_KEY)):
            if self[option] is None:
                self[option] = os.environ.get(env)
        if bool(self["access-key"]) != bool(self["secret-key"]):
            refuse_start("console", "give both --access-key and --secret-key, or neither")
        config = ConsoleConfig()
        try:
            for option, field in self._fields.items():
                if self[option] is not None:
                    config.set_option(field, self[option])
        except ValueError as e:
            refuse_start("console", e)
        config.login = bool(self["login"])
        if self["data-dir"]:
            config.data_dir = os.path.abspath(os.path.join(os.path.expanduser(self["data-dir"]), "dashboard"))
        why = users_file_error(config.users_file) if config.users_file else None
        if why is not None:
            refuse_start("console", f"--users {why}")
        if config.port == 0:
            refuse_start("console", "--port 0 would serve nothing: give an HTTP port")
        self.config = config


def makeService(options: Options) -> ConsoleService:
    return ConsoleService(options.config)
