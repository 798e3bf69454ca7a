"""``ConsoleService``: the console's web site and its TPS sampler, started and stopped together."""

from __future__ import annotations

import os
from typing import Optional

from twisted.application import service
from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from mq.acl.signing import Credentials
from mq.admin.api import MQAdminAPI
from mq.console.config import ConsoleConfig
from mq.console.forms import Context
from mq.console.history import DayHistory
from mq.console.monitor import Monitors
from mq.console.sampler import MAX_BROKER_SERIES, TpsSampler
from mq.console.sessions import SessionStore
from mq.console.users import LoginLimiter, UsersFile
from mq.console.web import make_site

log = Logger()


class ConsoleService(service.Service):
    """Serves the console on ``config.bind:config.port``.

    ``required`` (``twistd console``): a port that cannot be bound stops the start. Beside a NameServer and a
    broker (``twistd mq``) it does not: the console is the optional part, so a busy port costs a log line,
    never the message service.
    """

    def __init__(self, config: ConsoleConfig, reactor=None, required: bool = True) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.config = config
        self.reactor = reactor
        self.required = required
        credentials = Credentials.from_options(config.access_key or None, config.secret_key or None, environ={})
        self.api = MQAdminAPI(reactor, config.namesrv_addr.split(";"), timeout=config.admin_timeout,
                              credentials=credentials)
        history = DayHistory(config.data_dir or None, reactor, config.history_step, config.history_days,
                             MAX_BROKER_SERIES, config.sampled_topics)
        self.sampler = TpsSampler(self.api, reactor, config.sample_interval, config.history_points,
                                  config.sampled_topics, history)
        sessions = None
        if config.login or config.users_file:
            sessions = SessionStore(
                self._session_api,
                reactor, config.max_sessions, config.session_idle,
                users=UsersFile(config.users_file) if config.users_file else None, shared_api=self.api,
                limiter=LoginLimiter(reactor, config.login_max_failures, config.login_window))
        monitors = Monitors(os.path.join(os.path.dirname(config.data_dir), "monitor.json") if config.data_dir else None)
        monitors.load()
        self.ctx = Context(self.api, config, self.sampler, sessions=sessions, monitors=monitors)
        self.site = make_site(self.ctx)
        self.port = None

    def _session_api(self, account) -> MQAdminAPI:
        """A logged-in user's admin API: the console's NameServers and VIP channel setting, their account."""
        api = MQAdminAPI(self.reactor, self.config.namesrv_addr.split(";"), timeout=self.config.admin_timeout,
                         credentials=account)
        api.vip_channel = self.api.vip_channel
        return api

    def startService(self) -> None:
        super().startService()
        try:
            self.port = self.reactor.listenTCP(self.config.port, self.site, interface=self.config.bind)
        except CannotListenError as e:
            if self.required:
                raise
            log.error("console not started: cannot listen on {bind}:{port}: {why} (the NameServer and broker run "
                      "on; give --console-port another port, or 0 to turn the console off)",
                      bind=self.config.bind, port=self.config.port, why=e.socketError)
            return
        host = self.port.getHost()
        log.info("console on http://{host}:{port}/ for NameServer {namesrv}", host=host.host, port=host.port,
                 namesrv=self.config.namesrv_addr)
        self.sampler.start()

    def stopService(self):
        super().stopService()
        written = self.sampler.stop()
        port: Optional[object] = self.port
        self.port = None
        if self.ctx.sessions is not None:
            self.ctx.sessions.close()
        closing = defer.gatherResults([self.api.close(), written], consumeErrors=True)
        if port is not None:
            return defer.maybeDeferred(port.stopListening).addBoth(lambda _: closing)
        return closing
