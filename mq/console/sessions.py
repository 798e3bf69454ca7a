"""Logins: with ``login`` on, each person using the console gives an ACL account, and the console acts as
that account for them.

A login is checked by asking a master broker for its runtime info signed with the account (with ACL on, a
broker refuses a request whose signature does not match a known account). The session then has its own
``MQAdminAPI`` signing with that account, so each person has exactly the permissions the cluster gives their
account; the console's own account only samples the dashboard. Sessions are bounded in number (the oldest is
dropped) and end after ``session_idle`` seconds unused; a dropped session's connections are closed.
"""

from __future__ import annotations

import collections
import secrets
from typing import Callable, Optional

import attr
from twisted.internet import defer
from twisted.logger import Logger

from mq.acl.signing import Credentials
from mq.admin.api import AdminError, MQAdminAPI

log = Logger()

COOKIE = b"mq_console_session"


class LoginFailed(AdminError):
    """The account was refused (or no broker could check it): HTTP 403 with the reason."""


@attr.s(slots=True)
class Session:
    id: str = attr.ib()
    user: str = attr.ib()
    api: MQAdminAPI = attr.ib()
    last_used: float = attr.ib()


class SessionStore:
    def __init__(self, make_api: Callable[[Credentials], MQAdminAPI], clock, max_sessions: int,
                 idle_seconds: float) -> None:
        self.make_api = make_api
        self.clock = clock
        self.max_sessions = max_sessions
        self.idle_seconds = idle_seconds
        self.sessions: "collections.OrderedDict[str, Session]" = collections.OrderedDict()

    @defer.inlineCallbacks
    def login(self, access_key: str, secret_key: str):
        """A new Session for the account once a master broker accepted a request it signed."""
        api = self.make_api(Credentials(access_key, secret_key))
        try:
            info = yield api.cluster_info()
            masters = [addr for cluster in sorted(info.cluster_addr_table) for _, addr in info.master_addrs(cluster)]
            if not masters:
                raise LoginFailed("no master broker to check the account with")
            yield api.broker_runtime_info(masters[0])
        except AdminError as e:
            yield api.close()
            if isinstance(e, LoginFailed):
                raise
            raise LoginFailed(f"the cluster refused account '{access_key}': {e}") from None
        except BaseException:
            yield api.close()
            raise
        session = Session(secrets.token_urlsafe(32), access_key, api, self.clock.seconds())
        self.sessions[session.id] = session
        while len(self.sessions) > self.max_sessions:
            _, oldest = self.sessions.popitem(last=False)
            oldest.api.close()
        log.info("console: {user} logged in", user=access_key)
        return session

    def get(self, session_id: Optional[str]) -> Optional[Session]:
        """The live session of this id (its idle time restarts), or None."""
        session = self.sessions.get(session_id or "")
        if session is None:
            return None
        now = self.clock.seconds()
        if now - session.last_used > self.idle_seconds:
            self.logout(session.id)
            return None
        session.last_used = now
        self.sessions.move_to_end(session.id)
        return session

    def logout(self, session_id: Optional[str]) -> None:
        session = self.sessions.pop(session_id or "", None)
        if session is not None:
            session.api.close()

    def close(self) -> None:
        for session_id in list(self.sessions):
            self.logout(session_id)
