"""Sending a dead-letter message back: only a dead-letter message of the named group, to its retry topic."""

from __future__ import annotations

import json

import pytest
from twisted.internet import defer

from mq.common.consume_directly import ConsumeMessageDirectlyResult
from mq.common.message import MessageExt, create_offset_msg_id
from mq.console.track import track_type
from tests.console.test_web import BROKER, FakeAdmin, error_of, make, post


class DlqAdmin(FakeAdmin):
    def __init__(self, topic: str, properties: dict) -> None:
        super().__init__()
        self.message = MessageExt(topic=topic, body=b"gave up", properties=dict(properties))

    def view_message(self, addr, offset):
        self.calls.append(("view_message", addr, offset))
        return defer.succeed(self.message)

    def send_message(self, addr, broker_name, topic, queue_id, body, tags=None, keys=None, group="", properties=None):
        self.calls.append(("send_message", addr, topic, queue_id, body, tags, keys, properties))
        return defer.succeed({"sendStatus": "SEND_OK", "msgId": properties.get("UNIQ_KEY")})


def resend(admin, group="G1", msg_id=None):
    _, site = make()
    site.resource.api.ctx.api = admin
    host, port = BROKER.split(":")
    msg_id = msg_id or create_offset_msg_id((host, int(port)), 4096)
    return post(site, "/api/dlq/resend", {"group": group, "offsetMsgId": msg_id})


def test_a_dead_letter_message_goes_to_the_retry_topic_as_its_original_topic():
    props = {"RETRY_TOPIC": "Orders", "UNIQ_KEY": "AB" * 16, "TAGS": "TagA", "KEYS": "k1 k2", "MIN_OFFSET": "0",
             "REAL_TOPIC": "x", "custom": "kept"}
    admin = DlqAdmin("%DLQ%G1", props)
    status, _, body = resend(admin)
    assert status == 200, body
    assert json.loads(body)["topic"] == "%RETRY%G1" and json.loads(body)["originTopic"] == "Orders"
    (sent,) = [c for c in admin.calls if c[0] == "send_message"]
    _, addr, topic, queue_id, payload, tags, keys, properties = sent
    assert (addr, topic, queue_id, payload, tags, keys) == (BROKER, "%RETRY%G1", 0, b"gave up", "TagA", "k1 k2")
    assert properties == {"RETRY_TOPIC": "Orders", "UNIQ_KEY": "AB" * 16, "custom": "kept"}


@pytest.mark.parametrize("topic, props, group, message", [
    ("Orders", {"RETRY_TOPIC": "Orders"}, "G1", "not a dead-letter message of group 'G1'"),
    ("%DLQ%G2", {"RETRY_TOPIC": "Orders"}, "G1", "not a dead-letter message of group 'G1'"),
    ("%DLQ%G1", {}, "G1", "no RETRY_TOPIC"),
])
def test_anything_else_is_refused_and_nothing_is_sent(topic, props, group, message):
    admin = DlqAdmin(topic, props)
    status, _, body = resend(admin, group)
    assert status == 400 and message in error_of(body)
    assert not [c for c in admin.calls if c[0] == "send_message"]


def test_an_id_naming_another_host_is_not_followed():
    admin = DlqAdmin("%DLQ%G1", {"RETRY_TOPIC": "Orders"})
    status, _, body = resend(admin, msg_id=create_offset_msg_id(("169.254.169.254", 80), 0))
    assert status == 400 and "not a broker the NameServer lists" in error_of(body)
    assert admin.calls == []


def site_with(admin):
    _, site = make()
    site.resource.api.ctx.api = admin
    return site


def msg_id_at(offset: int, host: str = "") -> str:
    h, port = (host or BROKER).split(":")
    return create_offset_msg_id((h, int(port)), offset)


def test_a_batch_is_sent_back_one_by_one_each_with_its_own_result():
    admin = DlqAdmin("%DLQ%G1", {"RETRY_TOPIC": "Orders"})
    good, other_host = msg_id_at(4096), msg_id_at(0, "169.254.169.254:80")
    status, _, body = post(site_with(admin), "/api/dlq/batch-resend",
                           {"group": "G1", "offsetMsgIds": [good, other_host, good]})
    assert status == 200, body
    data = json.loads(body)
    assert data["sent"] == 1 and [r["offsetMsgId"] for r in data["results"]] == [good, other_host]  # repeats once
    assert data["results"][0]["topic"] == "%RETRY%G1" and "not a broker the NameServer lists" in data["results"][1][
        "error"]
    assert len([c for c in admin.calls if c[0] == "send_message"]) == 1


@pytest.mark.parametrize("ids, message", [
    ([msg_id_at(i) for i in range(101)], "101 ids, more than 100"),
    ("one", "a list of offset message ids"),
    ([], "a list of offset message ids"),
    ([1, 2], "a list of offset message ids"),
])
def test_a_batch_is_bounded_and_must_be_a_list_of_ids(ids, message):
    admin = DlqAdmin("%DLQ%G1", {"RETRY_TOPIC": "Orders"})
    status, _, body = post(site_with(admin), "/api/dlq/batch-resend", {"group": "G1", "offsetMsgIds": ids})
    assert status == 400 and message in error_of(body)
    assert admin.calls == []


class DirectAdmin(DlqAdmin):
    def consume_message_directly(self, addr, group, client_id, msg_id):
        self.calls.append(("consume_message_directly", addr, group, client_id, msg_id))
        return defer.succeed(ConsumeMessageDirectlyResult(consume_result="CR_SUCCESS", spent_time_mills=3))


def test_a_message_is_handed_to_the_chosen_consumer_through_its_broker():
    admin = DirectAdmin("Orders", {})
    msg_id = msg_id_at(4096)
    status, _, body = post(site_with(admin), "/api/message/consume-directly",
                           {"group": "G1", "clientId": "10.0.0.9@4242", "offsetMsgId": msg_id})
    assert status == 200, body
    assert json.loads(body) == {"order": False, "autoCommit": True, "consumeResult": "CR_SUCCESS",
                                "spentTimeMills": 3, "offsetMsgId": msg_id, "clientId": "10.0.0.9@4242"}
    assert admin.calls == [("consume_message_directly", BROKER, "G1", "10.0.0.9@4242", msg_id)]


@pytest.mark.parametrize("fields, message", [
    ({"clientId": "a b<script>"}, "is not a client id"),
    ({"offsetMsgId": "zz"}, "not an offset message id"),
    ({"offsetMsgId": msg_id_at(0, "169.254.169.254:80")}, "not a broker the NameServer lists"),
    ({"group": "bad group"}, "group:"),
])
def test_consume_directly_checks_every_field(fields, message):
    admin = DirectAdmin("Orders", {})
    form = dict({"group": "G1", "clientId": "10.0.0.9@4242", "offsetMsgId": msg_id_at(4096)}, **fields)
    status, _, body = post(site_with(admin), "/api/message/consume-directly", form)
    assert status == 400 and message in error_of(body)
    assert admin.calls == []


@pytest.mark.parametrize("connection, consumed, tags, expected", [
    ({"consumeType": "CONSUME_ACTIVELY"}, True, "A", "PULL"),
    ({"consumeType": "CONSUME_PASSIVELY"}, False, "A", "NOT_CONSUME_YET"),
    ({"consumeType": "CONSUME_PASSIVELY", "subscriptionTable": {"T": {"tagsSet": ["A", "B"]}}}, True, "A", "CONSUMED"),
    ({"consumeType": "CONSUME_PASSIVELY", "subscriptionTable": {"T": {"tagsSet": ["B"]}}}, True, "A",
     "CONSUMED_BUT_FILTERED"),
    ({"consumeType": "CONSUME_PASSIVELY", "subscriptionTable": {"T": {"tagsSet": ["*"]}}}, True, None, "CONSUMED"),
    ({"consumeType": "CONSUME_PASSIVELY", "subscriptionTable": {"T": {"tagsSet": []}}}, True, "A", "CONSUMED"),
    ({"consumeType": "CONSUME_PASSIVELY", "subscriptionTable": {"Other": {"tagsSet": ["B"]}}}, True, "A", "CONSUMED"),
])
def test_a_groups_track_of_a_message_as_java_decides_it(connection, consumed, tags, expected):
    assert track_type(connection, consumed, "T", tags) == expected
