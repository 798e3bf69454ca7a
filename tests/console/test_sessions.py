"""Logins: checked against the cluster, bounded in number, ended when idle; and the site's 401 and cookie."""

from __future__ import annotations

import json

from twisted.internet import defer, task

from mq.admin.api import ResponseError
from mq.admin.values import ClusterInfo
from mq.common.route import BrokerData
from mq.console.config import ConsoleConfig
from mq.console.forms import Context
from mq.console.sessions import LoginFailed, SessionStore
from mq.console.web import make_site
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand
from tests.console.test_web import BROKER, TOKEN, FakeAdmin, error_of, http, post


class AccountAdmin(FakeAdmin):
    """An admin API signing as ``account``; the broker accepts only the secret ``right-secret``."""

    def __init__(self, account) -> None:
        super().__init__()
        self.account = account
        self.closed = False

    #: master brokers that take any account (an ACL-less one someone registered with an open NameServer)
    open_masters: tuple = ()

    def cluster_info(self):
        masters = {"broker-a": BrokerData("DefaultCluster", "broker-a", {0: BROKER})}
        for n, addr in enumerate(self.open_masters):
            masters[f"evil-{n}"] = BrokerData("0evil", f"evil-{n}", {0: addr})
        clusters = {"DefaultCluster": ["broker-a"], **({"0evil": [f"evil-{n}" for n in range(len(self.open_masters))]}
                                                       if self.open_masters else {})}
        return defer.succeed(ClusterInfo(masters, clusters))

    def broker_runtime_info(self, addr):
        self.calls.append(("broker_runtime_info", addr))
        if addr not in self.open_masters and self.account.secret_key != "right-secret":
            return defer.fail(ResponseError("broker status on broker x: NO_PERMISSION: signature mismatch", 16, ""))
        return defer.succeed({"brokerVersionDesc": "V4_9_8"})

    def broker_call(self, addr, code, ext=None, body=b"", timeout=None):
        """GET_BROKER_CLUSTER_ACL_CONFIG is answered for admin accounts (named admin-...) only."""
        assert code == RequestCode.GET_BROKER_CLUSTER_ACL_CONFIG
        admin = addr in self.open_masters or self.account.access_key.startswith("admin-")
        return defer.succeed(RemotingCommand.request(code).response(ResponseCode.SUCCESS if admin else 16))

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


def test_a_login_is_checked_with_every_master_not_the_first():
    """A broker that takes any account, registered by someone with an open NameServer under a cluster name
    that sorts first, must not let a wrong secret in."""
    sessions, made = store()
    AccountAdmin.open_masters = ("10.6.6.6:10911",)
    try:
        failed = []
        sessions.login("someone1", "wrong-secret").addErrback(failed.append)
        assert failed and failed[0].check(LoginFailed) and sessions.sessions == {} and made[0].closed
        assert {c[1] for c in made[0].calls if c[0] == "broker_runtime_info"} == {"10.6.6.6:10911", BROKER}
        assert sessions.login("someone1", "right-secret").result.user == "someone1"
    finally:
        AccountAdmin.open_masters = ()


def test_changes_to_the_console_for_everyone_need_an_admin_account():
    site, made = login_site()
    cookies = {}
    for user in ("someone1", "admin-one"):
        status, headers, _ = post(site, "/api/login", {"accessKey": user, "secretKey": "right-secret"})
        assert status == 200
        cookies[user] = headers["set-cookie"].split(";")[0]
    plain = {"Cookie": cookies["someone1"], "X-CSRF-Token": TOKEN, "Content-Type": "application/json"}
    admin = dict(plain, Cookie=cookies["admin-one"])
    for path, body in (("/api/ops/vip", {"enabled": True}), ("/api/ops/namesrv", {"namesrvAddr": "10.6.6.6:9876"}),
                       ("/api/monitor/set", {"group": "g1", "minCount": 1, "maxDiffTotal": 10}),
                       ("/api/monitor/delete", {"group": "g1"})):
        status, _, answer = http(site, "POST", path, json.dumps(body).encode(), plain)
        assert status == 403 and "needs an admin account, and someone1 is not one" in error_of(answer), path
    assert all(not getattr(api, "vip_channel", False) for api in made)
    session = json.loads(http(site, "GET", "/api/session", headers={"Cookie": cookies["someone1"]})[2])
    assert session["consoleAdmin"] is False
    status, _, answer = http(site, "POST", "/api/ops/vip", json.dumps({"enabled": True}).encode(), admin)
    assert status == 200 and json.loads(answer)["vipChannel"] is True
    # what the brokers check for each account (a topic page, say) stays open to both
    assert http(site, "GET", "/api/topics", headers={"Cookie": cookies["someone1"]})[0] == 200
