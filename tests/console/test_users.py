"""Console users (rocketmq-dashboard's users.properties), what a user who may only look is refused, and the
bound on failed logins per client address."""

from __future__ import annotations

import json

import pytest
from twisted.internet import task

from mq.console.config import ConsoleConfig
from mq.console.forms import Context
from mq.console.sessions import LoginFailed, SessionStore
from mq.console.users import LoginLimiter, TooManyLogins, UsersFile, parse_users
from mq.console.web import make_site
from tests.console.test_web import TOKEN, FakeAdmin, error_of, http, post

USERS = """# Define Admin
# username=password[,N] #N is optional, 0 (Normal User); 1 (Admin)
admin=adminPass,1
viewer=viewPass
"""


def test_users_properties_as_the_dashboard_writes_it():
    users = parse_users(USERS + "  spaced = word , 0  \n")
    assert (users["admin"].admin, users["viewer"].admin, users["spaced"].password) == (True, False, "word")


@pytest.mark.parametrize("line, message", [
    ("nobody", "line 1: not name=password"), ("a b=c", "line 1: not name=password"),
    ("x=", "has no password"), ("x=y,2", "role '2' of x is neither"),
])
def test_a_bad_users_line_is_refused_with_its_number(line, message):
    with pytest.raises(ValueError, match=message):
        parse_users(line)


def test_the_users_file_is_read_again_when_it_changes(tmp_path):
    path = tmp_path / "users.properties"
    path.write_text(USERS)
    users = UsersFile(str(path))
    assert users.check("viewer", "viewPass").name == "viewer"
    assert users.check("viewer", "nope") is None and users.check("ghost", "viewPass") is None
    path.write_text(USERS + "late=latePass,1\n")
    assert users.check("late", "latePass").admin
    path.write_text("broken line\n")
    assert users.check("late", "latePass").admin  # a bad edit keeps the users read before
    assert users.check("late", "latePass").admin and users._refused is not None  # and is not read again
    path.write_text("fixed=fixedPass\n")
    assert users.check("fixed", "fixedPass") and users.check("late", "latePass") is None
    path.write_text("")  # an editor between its truncate and its write: nobody is locked out meanwhile
    assert users.check("fixed", "fixedPass")
    path.write_text("after=afterPassword\n")  # (a size of its own: the stamp is mtime and size)
    assert users.check("after", "afterPassword") and users.check("fixed", "fixedPass") is None


def test_failed_logins_per_address_are_bounded_for_a_window():
    clock = task.Clock()
    limiter = LoginLimiter(clock, max_failures=3, window=60, max_addresses=2)
    for _ in range(3):
        limiter.check("10.0.0.1")
        limiter.failed("10.0.0.1")
    with pytest.raises(TooManyLogins, match="try again in 60 s"):
        limiter.check("10.0.0.1")
    limiter.check("10.0.0.2")  # others are not held back
    clock.advance(30)
    with pytest.raises(TooManyLogins, match="try again in 30 s"):
        limiter.check("10.0.0.1")
    clock.advance(31)
    limiter.check("10.0.0.1")  # the window passed
    limiter.failed("10.0.0.2")
    limiter.failed("10.0.0.3")
    limiter.failed("10.0.0.4")
    assert list(limiter.failures) == ["10.0.0.3", "10.0.0.4"]  # the table is bounded, oldest out first
    limiter.succeeded("10.0.0.4")
    assert list(limiter.failures) == ["10.0.0.3"]


def users_site(tmp_path, max_failures=5):
    path = tmp_path / "users.properties"
    path.write_text(USERS)
    api = FakeAdmin()
    sessions = SessionStore(None, task.Clock(), 8, 600, users=UsersFile(str(path)), shared_api=api,
                            limiter=LoginLimiter(task.Clock(), max_failures, 60))
    return make_site(Context(api, ConsoleConfig(), None, TOKEN, sessions=sessions)), api


def cookie_of(headers) -> dict:
    return {"Cookie": headers["set-cookie"].split(";")[0]}


def test_a_user_who_may_only_look_is_refused_every_change(tmp_path):
    site, api = users_site(tmp_path)
    session = json.loads(http(site, "GET", "/api/session")[2])
    assert session["loginKind"] == "users" and session["loginRequired"]
    status, headers, body = post(site, "/api/login", {"username": "viewer", "password": "viewPass"})
    assert status == 200 and json.loads(body) == {"user": "viewer", "readOnly": True}
    viewer = cookie_of(headers)
    assert http(site, "GET", "/api/topics", headers=viewer)[0] == 200
    status, _, body = http(site, "POST", "/api/topic/create", json.dumps({"topic": "Nope"}).encode(),
                           dict(viewer, **{"X-CSRF-Token": TOKEN, "Content-Type": "application/json"}))
    assert status == 403 and "user viewer may only look" in error_of(body)
    assert not [c for c in api.calls if c[0] == "create_topic"]
    status, headers, body = post(site, "/api/login", {"username": "admin", "password": "adminPass"})
    assert json.loads(body) == {"user": "admin", "readOnly": False}
    status, _, body = http(site, "POST", "/api/topic/create", json.dumps({"topic": "Yes"}).encode(),
                           dict(cookie_of(headers), **{"X-CSRF-Token": TOKEN, "Content-Type": "application/json"}))
    assert status == 200 and [c[2] for c in api.calls if c[0] == "create_topic"] == ["Yes"]


def test_guessing_passwords_is_held_back_after_a_few_failures(tmp_path):
    site, _ = users_site(tmp_path, max_failures=3)
    for _ in range(3):
        status, _, body = post(site, "/api/login", {"username": "admin", "password": "guess"})
        assert status == 403 and "unknown user or wrong password" in error_of(body)
    status, _, body = post(site, "/api/login", {"username": "admin", "password": "adminPass"})
    assert status == 429 and "too many failed logins from " in error_of(body)


def test_a_login_refused_for_its_account_counts_as_a_failure():
    from tests.console.test_sessions import store

    sessions, _ = store()
    sessions.limiter = LoginLimiter(task.Clock(), 1, 60)
    failed = []
    sessions.login("someone1", "wrong-secret", "10.0.0.9").addErrback(failed.append)
    sessions.login("someone1", "right-secret", "10.0.0.9").addErrback(failed.append)
    assert failed[0].check(LoginFailed) and failed[1].check(TooManyLogins)
