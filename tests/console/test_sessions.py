"""Logins: checked against the cluster, bounded in number, ended when idle; and the site's 401 and cookie."""

from __future__ import annotations

import json

from twisted.internet import defer, task

from mq.admin.api import ResponseError
from mq.console.config import ConsoleConfig
from mq.console.forms import Context
from mq.console.sessions import LoginFailed, SessionStore
from mq.console.web import make_site
from tests.console.test_web import TOKEN, FakeAdmin, error_of, http, post


class AccountAdmin(FakeAdmin):
    """An admin API signing as ``account``; the broker accepts only the secret ``right-secret``."""

    def __init__(self, account) -> None:
        super().__init__()
        self.account = account
        self.closed = False

    def broker_runtime_info(self, addr):
        if self.account.secret_key != "right-secret":
            return defer.fail(ResponseError("broker status on broker x: NO_PERMISSION: signature mismatch", 16, ""))
        return super().broker_runtime_info(addr)

    def close(self):
        self.closed = True
        return defer.succeed(None)


def store(clock=None, max_sessions=2, idle=60.0):
    made = []

    def make(account):
        made.append(AccountAdmin(account))
        return made[-1]

    return SessionStore(make, clock or task.Clock(), max_sessions, idle), made


def test_a_refused_account_gets_no_session_and_its_connections_close():
    sessions, made = store()
    failed = []
    sessions.login("someone1", "wrong-secret").addErrback(failed.append)
    (failure,) = failed
    assert failure.check(LoginFailed) and "NO_PERMISSION" in failure.getErrorMessage()
    assert sessions.sessions == {} and made[0].closed


def test_sessions_end_when_idle_and_the_oldest_goes_first():
    clock = task.Clock()
    sessions, made = store(clock, max_sessions=2, idle=60)
    first = sessions.login("user-one", "right-secret").result
    second = sessions.login("user-two", "right-secret").result
    clock.advance(30)
    assert sessions.get(first.id) is first  # used again: now the newest
    third = sessions.login("user-three", "right-secret").result
    assert set(sessions.sessions) == {first.id, third.id} and made[1].closed
    clock.advance(61)
    assert sessions.get(third.id) is None and made[2].closed
    assert sessions.get("made-up") is None and second.api.closed


def login_site():
    config = ConsoleConfig()
    config.login = True
    sessions, made = store()
    site = make_site(Context(FakeAdmin(), config, None, TOKEN, sessions=sessions))
    return site, made


def test_with_login_on_every_route_but_the_login_needs_a_session():
    site, made = login_site()
    status, _, body = http(site, "GET", "/api/topics")
    assert status == 401 and json.loads(body)["loginRequired"] is True
    status, _, body = http(site, "GET", "/api/session")
    assert status == 200 and json.loads(body)["loginRequired"] is True and json.loads(body)["user"] is None
    status, _, body = post(site, "/api/login", {"accessKey": "someone1", "secretKey": "wrong-secret"})
    assert status == 403 and "refused account 'someone1'" in error_of(body)
    status, headers, body = post(site, "/api/login", {"accessKey": "someone1", "secretKey": "right-secret"})
    assert status == 200 and json.loads(body)["user"] == "someone1"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    value = cookie.split(";")[0]
    status, _, body = http(site, "GET", "/api/topics", headers={"Cookie": value})
    assert status == 200
    assert json.loads(http(site, "GET", "/api/session", headers={"Cookie": value})[2])["user"] == "someone1"
    status, headers, _ = http(site, "POST", "/api/logout", b"{}",
                              {"Cookie": value, "X-CSRF-Token": TOKEN, "Content-Type": "application/json"})
    assert status == 200 and "Max-Age=0" in headers["set-cookie"]
    assert http(site, "GET", "/api/topics", headers={"Cookie": value})[0] == 401
    assert made[-1].closed
