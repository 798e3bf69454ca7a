"""The console's HTTP side without a browser or a cluster: requests written to the real site over a
``StringTransport``, answered from an admin API stand-in that records what it was asked."""

from __future__ import annotations

import json
from typing import Dict, List, Optional, Tuple

import pytest
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from mq.admin.api import UnreachableError
from mq.admin.values import ClusterInfo
from mq.common.route import BrokerData, QueueData, TopicRouteData
from mq.console.config import ConsoleConfig
from mq.console.forms import Context
from mq.console.web import host_allowed, make_site

BROKER = "10.0.0.5:10911"
TOKEN = "t" * 43


class FakeAdmin:
    """The ``MQAdminAPI`` calls the routes under test make, on a one-broker cluster; ``calls`` records them."""

    namesrv_addrs = ["127.0.0.1:9876"]

    def __init__(self) -> None:
        self.calls: List[Tuple] = []
        self.topics = ["TBW102", "Orders", "%RETRY%g1", "%DLQ%g1", "DefaultCluster"]
        self.hold: Optional[defer.Deferred] = None
        self.fail_with: Optional[Exception] = None

    def cluster_info(self):
        if self.fail_with is not None:
            return defer.fail(self.fail_with)
        data = BrokerData("DefaultCluster", "broker-a", {0: BROKER})
        return defer.succeed(ClusterInfo({"broker-a": data}, {"DefaultCluster": ["broker-a"]}))

    def all_topics(self):
        if self.hold is not None:
            return self.hold
        return defer.succeed(sorted(self.topics))

    def create_topic(self, addr, tc):
        self.calls.append(("create_topic", addr, tc.topic_name, tc.read_queue_nums, tc.write_queue_nums, tc.perm))
        return defer.succeed(None)

    def topic_route(self, topic):
        self.calls.append(("topic_route", topic))
        return defer.succeed(TopicRouteData([QueueData("broker-a", 4, 4, 6)],
                                            [BrokerData("DefaultCluster", "broker-a", {0: BROKER})]))

    def view_message(self, addr, offset):
        self.calls.append(("view_message", addr, offset))
        return defer.fail(AssertionError("not expected"))

    def broker_runtime_info(self, addr):
        self.calls.append(("broker_runtime_info", addr))
        return defer.succeed({"brokerVersionDesc": "V4_9_8"})

    def broker_config(self, addr):
        return defer.succeed({"brokerName": "broker-a"})

    def broker_table(self, addr, code, what, key):
        self.calls.append(("broker_table", addr, code, key))
        if key == "subscriptionGroupTable":
            return defer.succeed({"g1": {"groupName": "g1", "consumeEnable": True, "retryQueueNums": 1}})
        return defer.succeed({"Orders": {"topicName": "Orders", "readQueueNums": 4, "writeQueueNums": 4, "perm": 6,
                                         "order": False, "topicFilterType": "SINGLE_TAG", "topicSysFlag": 0}})

    def delete_topic_in_broker(self, addr, topic):
        self.calls.append(("delete_topic_in_broker", addr, topic))
        return defer.succeed(None)


def make(config: Optional[ConsoleConfig] = None):
    api = FakeAdmin()
    site = make_site(Context(api, config or ConsoleConfig(), None, TOKEN))
    return api, site


def http(site, method: str, path: str, body: Optional[bytes] = None, headers: Optional[Dict[str, str]] = None,
         host: str = "127.0.0.1:8080") -> Tuple[int, Dict[str, str], bytes]:
    """One HTTP/1.1 request through the real site; (status, headers, body) once it is answered."""
    proto = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = StringTransport()
    proto.makeConnection(transport)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    proto.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
    raw = transport.value()
    head, _, content = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    found = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    proto.connectionLost(None)
    return int(status_line.split()[1]), found, content


def post(site, path: str, data, token: str = TOKEN, ctype: str = "application/json"):
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return http(site, "POST", path, raw, {"X-CSRF-Token": token, "Content-Type": ctype})


def error_of(body: bytes) -> str:
    return json.loads(body)["error"]


def test_session_gives_the_token_and_pages_carry_the_security_headers():
    _, site = make()
    status, headers, body = http(site, "GET", "/api/session")
    assert status == 200 and json.loads(body)["csrf"] == TOKEN
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"


@pytest.mark.parametrize("host, allowed", [
    ("127.0.0.1:8080", True), ("localhost:8080", True), ("[::1]:8080", True), ("10.1.2.3", True),
    ("evil.example:8080", False), ("127.0.0.1.nip.io:8080", False), ("", False),
])
def test_only_ip_and_localhost_hosts_are_served(host, allowed):
    """DNS rebinding needs a name: a page of another site resolved to 127.0.0.1 gets 421, not the token."""
    assert host_allowed(host.encode()) is allowed
    _, site = make()
    status, _, body = http(site, "GET", "/api/session", host=host)
    assert (status == 200) is allowed
    if not allowed:
        assert status == 421 and TOKEN.encode() not in body


def test_topic_create_needs_the_token_and_json_then_creates_on_every_master():
    api, site = make()
    fields = {"topic": "Orders2", "readQueueNums": 4, "writeQueueNums": "4", "perm": "6"}
    status, _, body = post(site, "/api/topic/create", fields, token="")
    assert status == 403 and "X-CSRF-Token" in error_of(body)
    status, _, _ = post(site, "/api/topic/create", fields, token="x" * 43)
    assert status == 403
    # A cross-site HTML form can only send form encodings: refused even with a token.
    status, _, body = post(site, "/api/topic/create", b"topic=Orders2", ctype="application/x-www-form-urlencoded")
    assert status == 415
    assert api.calls == []
    status, _, body = post(site, "/api/topic/create", fields)
    assert status == 200, body
    assert api.calls == [("create_topic", BROKER, "Orders2", 4, 4, 6)]
    assert json.loads(body)["brokers"] == [BROKER]


@pytest.mark.parametrize("fields, message", [
    ({"topic": "../etc"}, "topic: the topic '../etc' contains characters outside"),
    ({"topic": "T" * 128}, "topic: the topic is longer than 127 characters"),
    ({"topic": ""}, "topic: missing"),
    ({"topic": "A", "readQueueNums": 0}, "readQueueNums: 0 is outside 1..1024"),
    ({"topic": "A", "writeQueueNums": "99999999999999999999999"}, "is not an integer"),
    ({"topic": "A", "perm": "7"}, "perm: '7' is not one of 2, 4, 6"),
    ({"topic": "A", "order": "yes"}, "order: expected true or false"),
    ({"topic": "A", "cluster": "Other"}, "cluster: 'Other' is not a cluster the NameServer knows"),
    ({"topic": "A", "extra": 1}, "unknown field 'extra'"),
    ({"topic": ["A"]}, "topic: expected text, got list"),
])
def test_bad_fields_are_refused_by_name_and_change_nothing(fields, message):
    api, site = make()
    status, _, body = post(site, "/api/topic/create", fields)
    assert status == 400 and message in error_of(body)
    assert [c for c in api.calls if c[0] == "create_topic"] == []


def test_bodies_that_are_not_one_json_object_are_refused():
    _, site = make()
    for raw in (b"[1, 2]", b"{not json", b"\xff\xfe"):
        status, _, _ = post(site, "/api/topic/create", raw)
        assert status == 400


def test_a_body_past_the_limit_is_dropped_unread_and_answered_413():
    config = ConsoleConfig()
    config.set_option("max_body_bytes", 1024)
    api, site = make(config)
    status, _, body = post(site, "/api/topic/send", {"topic": "Orders", "body": "x" * 5000})
    assert status == 413 and "larger than 1024 bytes" in error_of(body)
    assert api.calls == []


def test_a_body_field_past_its_own_bound_is_refused():
    _, site = make()
    status, _, body = post(site, "/api/topic/send", {"topic": "Orders", "body": "b", "tags": "t" * 300})
    assert status == 400 and "tags: longer than 255 characters" in error_of(body)


def test_methods_routes_and_query_fields_are_checked():
    _, site = make()
    status, headers, _ = http(site, "GET", "/api/topic/create")
    assert status == 405 and headers["allow"] == "POST"
    assert http(site, "GET", "/api/nothing")[0] == 404
    status, _, body = http(site, "GET", "/api/topics?kind=normal&kind=dlq")
    assert status == 400 and "given 2 times" in error_of(body)
    status, _, body = http(site, "GET", "/api/topics?kind=evil")
    assert status == 400 and "kind: 'evil' is not one of" in error_of(body)


def test_a_kept_day_is_asked_for_by_its_date_only():
    _, site = make()
    status, _, body = http(site, "GET", "/api/dashboard/day?date=2026-12-06")
    assert status == 200 and json.loads(body)["brokers"] == {}  # no sampler here: nothing kept
    for bad in ("../../etc", "2026-1-6", "2026-12-06x", ""):
        status, _, body = http(site, "GET", f"/api/dashboard/day?date={bad}")
        assert status == 400 and "date" in error_of(body), bad


def test_a_topics_config_per_broker_and_its_deletion_on_one_broker():
    from mq.remoting.codes import RequestCode

    api, site = make()
    status, _, body = http(site, "GET", "/api/topic/config?topic=Orders")
    assert status == 200 and json.loads(body) == [{
        "brokerName": "broker-a", "addr": BROKER, "topicName": "Orders", "readQueueNums": 4, "writeQueueNums": 4,
        "perm": 6, "order": False, "topicFilterType": "SINGLE_TAG", "topicSysFlag": 0}]
    assert ("broker_table", BROKER, RequestCode.GET_ALL_TOPIC_CONFIG, "topicConfigTable") in api.calls
    status, _, body = post(site, "/api/topic/delete-in-broker", {"topic": "Orders", "broker": "broker-b"})
    assert status == 400 and "broker: 'broker-b' is not a broker of 'Orders'" in error_of(body)
    assert not [c for c in api.calls if c[0] == "delete_topic_in_broker"]
    status, _, body = post(site, "/api/topic/delete-in-broker", {"topic": "Orders", "broker": "broker-a"})
    assert status == 200 and ("delete_topic_in_broker", BROKER, "Orders") in api.calls


def test_a_groups_subscription_config_per_master():
    _, site = make()
    status, _, body = http(site, "GET", "/api/consumer/config?group=g1")
    assert status == 200 and json.loads(body) == [{"cluster": "DefaultCluster", "brokerName": "broker-a",
                                                   "addr": BROKER, "groupName": "g1", "consumeEnable": True,
                                                   "retryQueueNums": 1}]
    status, _, body = http(site, "GET", "/api/consumer/config?group=other")
    assert status == 200 and json.loads(body) == []
    status, _, body = http(site, "GET", "/api/consumer/config?group=bad%20name")
    assert status == 400 and "group" in error_of(body)


@pytest.mark.parametrize("query, message", [
    ("topic=Orders", "begin: missing"),
    ("topic=Orders&begin=10&end=5", "begin: after end"),
    ("topic=Orders&begin=0&size=0", "size"),
    ("topic=Orders&begin=0&page=-1", "page"),
])
def test_a_page_of_messages_checks_its_fields(query, message):
    api, site = make()
    status, _, body = http(site, "GET", f"/api/messages/page?{query}")
    assert status == 400 and message in error_of(body)
    assert not [c for c in api.calls if c[0] == "topic_route"]


def test_topic_list_filters_by_kind_and_name():
    _, site = make()
    status, _, body = http(site, "GET", "/api/topics?kind=normal")
    assert status == 200 and [t["topic"] for t in json.loads(body)["topics"]] == ["Orders"]
    kinds = {t["topic"]: t["kind"] for t in json.loads(http(site, "GET", "/api/topics")[2])["topics"]}
    assert kinds == {"%DLQ%g1": "dlq", "%RETRY%g1": "retry", "DefaultCluster": "system", "Orders": "normal",
                     "TBW102": "system"}
    assert [t["topic"] for t in json.loads(http(site, "GET", "/api/topics?filter=ORD")[2])["topics"]] == ["Orders"]


def test_the_console_connects_only_to_brokers_the_nameserver_lists():
    """A message id names a host and port; one that is not a listed broker is never dialled."""
    api, site = make()
    status, _, body = http(site, "GET", "/api/broker?addr=169.254.169.254:80")
    assert status == 400 and "not a broker the NameServer lists" in error_of(body)
    foreign_id = "A9FEA9FE00000050" + "0" * 16  # 169.254.169.254:80, offset 0
    status, _, body = http(site, "GET", f"/api/messages/by-id?id={foreign_id}")
    assert status == 400 and "topic: needed" in error_of(body)
    assert [c for c in api.calls if c[0] in ("view_message", "broker_runtime_info")] == []
    status, _, body = http(site, "GET", f"/api/broker?addr={BROKER}")
    assert status == 200 and json.loads(body)["runtime"] == {"brokerVersionDesc": "V4_9_8"}


def test_admin_failures_map_to_http_statuses_with_the_reason():
    api, site = make()
    api.fail_with = UnreachableError("NameServer", "127.0.0.1:9876", "connection refused")
    status, _, body = http(site, "GET", "/api/cluster")
    assert status == 502 and "cannot reach NameServer 127.0.0.1:9876" in error_of(body)


def test_requests_in_flight_are_capped():
    config = ConsoleConfig()
    config.set_option("max_concurrent_requests", 1)
    api, site = make(config)
    api.hold = defer.Deferred()
    proto = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40001))
    held = StringTransport()
    proto.makeConnection(held)
    proto.dataReceived(b"GET /api/topics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert held.value() == b""  # waiting on the admin answer
    status, _, body = http(site, "GET", "/api/topics")
    assert status == 503 and "too many requests" in error_of(body)
    api.hold.callback(["Orders"])
    assert b" 200 " in held.value().split(b"\r\n")[0] + b" "
    api.hold = None
    assert http(site, "GET", "/api/topics")[0] == 200


def test_static_files_by_exact_name_only():
    _, site = make()
    status, headers, body = http(site, "GET", "/")
    assert status == 200 and b"/static/app.js" in body and headers["content-type"].startswith("text/html")
    status, headers, _ = http(site, "GET", "/static/app.js")
    assert status == 200 and "javascript" in headers["content-type"]
    for path in ("/static/", "/static/../web.py", "/static/%2e%2e/web.py", "/web.py"):
        status, _, body = http(site, "GET", path)
        assert status == 404 and b"import" not in body, path


def test_the_front_end_fetches_nothing_from_elsewhere():
    """No CDN: every script, style and image the page loads is the console's own."""
    import os
    import re

    from mq.console.web import STATIC_DIR

    for name in os.listdir(STATIC_DIR):
        text = open(os.path.join(STATIC_DIR, name), encoding="utf-8").read()
        assert not re.search(r"(src|href)=[\"']?(https?:)?//", text), name
        assert "innerHTML" not in text, name  # server values go in as text only


@pytest.mark.parametrize("path, fields, message", [
    ("/api/consumer/create", {"group": "G" * 125}, "too long for its retry topic"),
    ("/api/consumer/create", {"group": "G", "retryMaxTimes": 65}, "retryMaxTimes: 65 is outside 0..64"),
    ("/api/consumer/delete", {"group": "G", "removeOffset": "maybe"}, "removeOffset: expected true or false"),
    ("/api/consumer/reset-offset", {"group": "G", "topic": "T", "timestamp": "yesterday"}, "timestamp: not a timestamp"),
    ("/api/topic/delete", {"topic": "%DLQ%/x"}, "contains characters outside"),
])
def test_group_and_offset_forms_are_checked(path, fields, message):
    api, site = make()
    status, _, body = post(site, path, fields)
    assert status == 400 and message in error_of(body)
    assert api.calls == []


def test_a_client_id_is_checked_before_it_is_relayed():
    _, site = make()
    status, _, body = http(site, "GET", "/api/consumer/running-info?group=G&clientId=a%20b%3Cscript%3E")
    assert status == 400 and "is not a client id" in error_of(body)


@pytest.mark.parametrize("fields, message", [
    ({"accessKey": "abc", "secretKey": "secret12"}, "accessKey: give 7 to 128 characters"),
    ({"accessKey": "user 1234", "secretKey": "secret12"}, "accessKey: give 7 to 128 characters"),
    ({"accessKey": "user1234", "secretKey": "secret12", "defaultTopicPerm": "ALL"}, "defaultTopicPerm: 'ALL' is not one of"),
    ({"accessKey": "user1234", "secretKey": "secret12", "topicPerms": "A=PUB\nB=SUB"}, "topicPerms: one line"),
])
def test_acl_account_fields_are_checked(fields, message):
    api, site = make()
    status, _, body = post(site, "/api/acl/account", fields)
    assert status == 400 and message in error_of(body)


@pytest.mark.parametrize("fields, message", [
    ({"addr": BROKER, "key": "a=b", "value": "1"}, "key: 'a=b' is not a setting name"),
    ({"addr": BROKER, "key": "brokerPermission", "value": "6\nlistenPort=1"}, "value: one line"),
    ({"addr": "10.9.9.9:10911", "key": "brokerPermission", "value": "6"}, "not a broker the NameServer lists"),
])
def test_broker_config_changes_are_checked(fields, message):
    _, site = make()
    status, _, body = post(site, "/api/broker/config", fields)
    assert status == 400 and message in error_of(body)


def test_other_sites_pages_get_no_api_answer():
    """A GET needs no CSRF token: any page the operator opens could otherwise make their browser fire heavy
    reads at the console. What the browser says of the request's origin decides; tools that say nothing pass."""
    api = FakeAdmin()
    site = make_site(Context(api, ConsoleConfig(), None, TOKEN))
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                    {"Origin": "http://evil.example"}, {"Origin": "http://127.0.0.1:9999"}, {"Origin": "null"}):
        status, _, body = http(site, "GET", "/api/topics", headers=headers)
        assert status == 403 and b"other site" in body.replace(b"sites'", b"site"), headers
    assert api.calls == []
    for headers in ({}, {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"},
                    {"Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "same-origin"}):
        assert http(site, "GET", "/api/topics", headers=headers)[0] == 200, headers
    # the page itself is served whatever links to it
    assert http(site, "GET", "/", headers={"Sec-Fetch-Site": "cross-site"})[0] == 200


def test_deeply_nested_bodies_are_refused_400_without_a_traceback():
    # The review: 200,000 "[" to /api/login was a 500 "Processing Failed" and a RecursionError logged each time.
    from twisted.logger import globalLogPublisher

    failures: List[dict] = []

    def observer(event: dict) -> None:
        if "log_failure" in event:
            failures.append(event)

    globalLogPublisher.addObserver(observer)
    try:
        _, site = make()
        for path in ("/api/login", "/api/topic/create"):
            for raw in (b"[" * 200_000, b'{"a":' * 50_000, b"[" * 100_000 + b"]" * 100_000):
                status, _, body = post(site, path, raw)
                assert (status, error_of(body)) == (400, "the body is not JSON (nested too deeply)")
    finally:
        globalLogPublisher.removeObserver(observer)
    assert failures == []
