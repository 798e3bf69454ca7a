"""Logins: with ``login`` on, each person using the console gives an ACL account, and the console acts as
that account for them; with a users file (``--users``, rocketmq-dashboard's ``users.properties``) each gives
a console user name and password instead, and the console acts with its own account, an admin (role 1) may
change the cluster and any other user may only look. Failed logins are bounded per client address
(mq.console.users.LoginLimiter).

A login is checked by asking every master broker for its runtime info signed with the account (with ACL on, a
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
from mq.console.users import LoginLimiter, UsersFile
from mq.remoting.codes import RequestCode, ResponseCode

log = Logger()

COOKIE = b"mq_console_session"
#: A login asks every master broker: a bound on that fan-out.
MAX_CHECKED_MASTERS = 64


class LoginFailed(AdminError):
    """The account was refused (or no broker could check it): HTTP 403 with the reason."""


@attr.s(slots=True)
class Session:
    id: str = attr.ib()
    user: str = attr.ib()
    api: MQAdminAPI = attr.ib()
    last_used: float = attr.ib()
    #: False: a user of the users file without role 1, who may only look
    admin: bool = attr.ib(default=True)
    #: the session's own API (an ACL account's), closed with it; a users-file session shares the console's
    owns_api: bool = attr.ib(default=True)
    #: may change what the console does for every user (mq.console.views.CONSOLE_WIDE_ROUTES): a users-file
    #: admin, or an ACL account the brokers take as an admin
    console_admin: bool = attr.ib(default=True)


class SessionStore:
    def __init__(self, make_api: Callable[[Credentials], MQAdminAPI], clock, max_sessions: int,
                 idle_seconds: float, users: Optional[UsersFile] = None, shared_api: Optional[MQAdminAPI] = None,
                 limiter: Optional[LoginLimiter] = None) -> None:
        self.make_api = make_api
        self.clock = clock
        self.max_sessions = max_sessions
        self.idle_seconds = idle_seconds
        self.users = users
        self.shared_api = shared_api
        self.limiter = limiter or LoginLimiter(clock)
        self.sessions: "collections.OrderedDict[str, Session]" = collections.OrderedDict()

    @property
    def kind(self) -> str:
        """What a login asks for: ``users`` (a console user) or ``acl`` (an ACL account)."""
        return "users" if self.users is not None else "acl"

    @defer.inlineCallbacks
    def login(self, name: str, secret: str, source: str = ""):
        """A new Session, unless ``source`` (the client's address) failed too often lately."""
        self.limiter.check(source)
        try:
            if self.users is not None:
                user = self.users.check(name, secret)
                if user is None:
                    raise LoginFailed("unknown user or wrong password")
                session = Session(secrets.token_urlsafe(32), name, self.shared_api, self.clock.seconds(),
                                  admin=user.admin, owns_api=False, console_admin=user.admin)
            else:
                session = yield self._account_session(name, secret)
        except LoginFailed:
            self.limiter.failed(source)
            log.info("console: login as {user} from {source} refused", user=name, source=source)
            raise
        self.limiter.succeeded(source)
        self.sessions[session.id] = session
        while len(self.sessions) > self.max_sessions:
            _, oldest = self.sessions.popitem(last=False)
            self._end(oldest)
        log.info("console: {user} logged in", user=name)
        return session

    @defer.inlineCallbacks
    def _account_session(self, access_key: str, secret_key: str):
        """A Session for the ACL account once every master broker accepted a request it signed.

        Every one, not the first: anyone who can register a broker with the NameServer (an open one) could
        otherwise put first a broker of their own that accepts any account. The session may change what the
        console does for everyone (its NameServers, VIP channel, monitoring) only if the brokers take the
        account as an admin: an ACL admin code (GET_BROKER_CLUSTER_ACL_CONFIG) signed with it is answered."""
        api = self.make_api(Credentials(access_key, secret_key))
        try:
            info = yield api.cluster_info()
            masters = sorted({addr for cluster in info.cluster_addr_table for _, addr in info.master_addrs(cluster)})
            if not masters:
                raise LoginFailed("no master broker to check the account with")
            if len(masters) > MAX_CHECKED_MASTERS:
                raise LoginFailed(f"more than {MAX_CHECKED_MASTERS} master brokers to check the account with")
            yield defer.gatherResults([api.broker_runtime_info(addr) for addr in masters], consumeErrors=True)
            answers = yield defer.DeferredList(
                [api.broker_call(addr, RequestCode.GET_BROKER_CLUSTER_ACL_CONFIG) for addr in masters],
                consumeErrors=True)
        except defer.FirstError as e:
            yield api.close()
            raise LoginFailed(f"the cluster refused account '{access_key}': {e.subFailure.getErrorMessage()}") \
                from None
        except AdminError as e:
            yield api.close()
            if isinstance(e, LoginFailed):
                raise
            raise LoginFailed(f"the cluster refused account '{access_key}': {e}") from None
        except BaseException:
            yield api.close()
            raise
        admin = all(ok and response.code == ResponseCode.SUCCESS for ok, response in answers)
        return Session(secrets.token_urlsafe(32), access_key, api, self.clock.seconds(), console_admin=admin)

    @staticmethod
    def _end(session: Session) -> None:
        if session.owns_api:
            session.api.close()

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
            self._end(session)

    def close(self) -> None:
        for session_id in list(self.sessions):
            self.logout(session_id)
