"""The access check: RocketMQ's validation order, each outcome and its message, the resources each code needs,
and the signature shapes of every official client."""

from __future__ import annotations

import json

import pytest

from mq.acl.permission import ANY, DENY, PUB, SUB, check_permission, parse_perm, perm_word
from mq.acl.resources import needed_resources
from mq.acl.signing import Credentials, sign, signing_content
from mq.acl.store import AclStore
from mq.acl.validator import ACL_EXCEPTION, AccessDenied, AccessValidator
from mq.remoting.codes import DLEDGER_LEADERSHIP_TRANSFER, FLAG_ONEWAY, RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand
from mq.remoting.protocol import RequestDispatcher

ACL = """\
globalWhiteRemoteAddresses: ["10.10.*.*"]
accounts:
  - accessKey: userKey01
    secretKey: userSecret1
    defaultTopicPerm: SUB
    defaultGroupPerm: SUB
    topicPerms: [pubTopic=PUB, denyTopic=DENY, bothTopic=PUB|SUB]
    groupPerms: [denyGroup=DENY]
  - accessKey: whiteKey01
    secretKey: whiteSecret1
    whiteRemoteAddress: 192.168.1.*
  - accessKey: adminKey01
    secretKey: adminSecret1
    admin: true
  - accessKey: adminKey02
    secretKey: adminSecret2
    admin: true
    topicPerms: [onlyTopic=PUB]
"""

USER = Credentials("userKey01", "userSecret1")
ADMIN = Credentials("adminKey01", "adminSecret1")
HERE = "127.0.0.1:5555"


@pytest.fixture
def validator(tmp_path):
    path = tmp_path / "plain_acl.yml"
    path.write_text(ACL)
    store = AclStore(str(path))
    store.load()
    return AccessValidator(store)


def send_v2(topic: str, group: str = "pg") -> RemotingCommand:
    return RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, {"a": group, "b": topic, "c": "TBW102"}, body=b"m")


def denied(validator, request, remote=HERE):
    with pytest.raises(AccessDenied) as e:
        validator.validate(request, remote)
    return str(e.value)


def test_perm_words_bits_and_rule():
    assert (DENY, ANY, PUB, SUB) == (1, 2, 4, 8)
    assert parse_perm(" pub|sub ") == PUB | SUB == parse_perm("SUB|PUB")
    assert perm_word(PUB | SUB) == "PUB|SUB" and perm_word(DENY | PUB) == "DENY" and perm_word(0) == "DENY"
    assert not check_permission(PUB, PUB | DENY)
    assert check_permission(ANY, SUB) and check_permission(ANY, PUB) and not check_permission(ANY, DENY)
    assert check_permission(SUB, PUB | SUB) and not check_permission(SUB, PUB)


def test_order_global_white_list_first(validator):
    validator.validate(RemotingCommand.request(RequestCode.UPDATE_BROKER_CONFIG), "10.10.3.4:999")
    assert denied(validator, RemotingCommand.request(RequestCode.SEND_MESSAGE_V2)) == "No accessKey is configured"
    assert denied(validator, send_v2("t")) == "No accessKey is configured"


def test_unknown_account_and_bad_signature(validator):
    request = Credentials("strangerKey", "whatever1").sign_request(send_v2("t"))
    assert denied(validator, request) == "No acl config for strangerKey"
    request = Credentials("userKey01", "wrongSecret").sign_request(send_v2("bothTopic"))
    assert denied(validator, request) == "Check signature failed for accessKey=userKey01"
    unsigned = send_v2("bothTopic")
    unsigned.ext_fields["AccessKey"] = "userKey01"
    assert denied(validator, unsigned) == "Check signature failed for accessKey=userKey01"
    # A field changed after signing, or the body: refused.
    signed = USER.sign_request(send_v2("bothTopic"))
    signed.ext_fields["b"] = "pubTopic"
    assert denied(validator, signed).startswith("Check signature failed")
    signed = USER.sign_request(send_v2("bothTopic"))
    signed.body = b"other"
    assert denied(validator, signed).startswith("Check signature failed")


def test_account_white_address_skips_signature_and_perms(validator):
    request = RemotingCommand.request(RequestCode.UPDATE_BROKER_CONFIG, {"AccessKey": "whiteKey01"})
    validator.validate(request, "192.168.1.77:1234")
    assert denied(validator, request, "192.168.2.77:1234").startswith("Check signature failed")


def test_per_resource_perms_with_defaults_and_retry_groups(validator):
    ok = [send_v2("pubTopic"), send_v2("bothTopic"),
          RemotingCommand.request(RequestCode.PULL_MESSAGE, {"topic": "anyTopic", "consumerGroup": "g1"}),
          RemotingCommand.request(RequestCode.CONSUMER_SEND_MSG_BACK, {"group": "g1", "offset": "1"})]
    for request in ok:
        validator.validate(USER.sign_request(request), HERE)
    assert denied(validator, USER.sign_request(send_v2("otherTopic"))) == "No default permission for topic:otherTopic"
    assert denied(validator, USER.sign_request(send_v2("denyTopic"))) == "No default permission for topic:denyTopic"
    pull = RemotingCommand.request(RequestCode.PULL_MESSAGE, {"topic": "pubTopic", "consumerGroup": "g1"})
    assert denied(validator, USER.sign_request(pull)) == "No default permission for topic:pubTopic"
    pull = RemotingCommand.request(RequestCode.PULL_MESSAGE, {"topic": "anyTopic", "consumerGroup": "denyGroup"})
    assert denied(validator, USER.sign_request(pull)) == "No default permission for group:denyGroup"
    # A send to a retry topic needs SUB on the group, not PUB on the topic.
    validator.validate(USER.sign_request(send_v2("%RETRY%g1", group="g1")), HERE)
    assert denied(validator, USER.sign_request(send_v2("%RETRY%x", group="denyGroup"))).endswith("group:denyGroup")


def test_admin_codes_need_an_admin_account(validator):
    update = RemotingCommand.request(RequestCode.UPDATE_AND_CREATE_TOPIC, {"topic": "t"})
    assert denied(validator, USER.sign_request(update)) == (
        "Need admin permission for request code=17, but accessKey=userKey01 is not")
    validator.validate(ADMIN.sign_request(RemotingCommand.request(RequestCode.UPDATE_AND_CREATE_TOPIC, {"topic": "t"})),
                       HERE)
    # An admin without any topic/group perms skips the resource checks; one with perms does not.
    validator.validate(ADMIN.sign_request(send_v2("anything")), HERE)
    other = Credentials("adminKey02", "adminSecret2")
    validator.validate(other.sign_request(send_v2("onlyTopic")), HERE)
    assert denied(validator, other.sign_request(send_v2("anything"))).endswith("topic:anything")
    # The ACL admin codes are not admin-only in RocketMQ 4.9 (any account could make itself admin); in mq they are.
    assert denied(validator, USER.sign_request(RemotingCommand.request(50, {"accessKey": "someKey12"}))) == (
        "Need admin permission for request code=50, but accessKey=userKey01 is not")
    validator.validate(ADMIN.sign_request(RemotingCommand.request(50, {"accessKey": "someKey12"})), HERE)
    # so are the store cleanings: removing queues, or forcing CommitLog retention outside deleteWhen
    for code in (RequestCode.CLEAN_EXPIRED_CONSUMEQUEUE, RequestCode.CLEAN_UNUSED_TOPIC,
                 RequestCode.DELETE_EXPIRED_COMMITLOG):
        assert denied(validator, USER.sign_request(RemotingCommand.request(code))) == (
            f"Need admin permission for request code={int(code)}, but accessKey=userKey01 is not")
        validator.validate(ADMIN.sign_request(RemotingCommand.request(code)), HERE)


def test_leadership_transfer_and_a_callers_own_codes_need_an_admin_account(validator):
    transfer = RemotingCommand.request(DLEDGER_LEADERSHIP_TRANSFER, {"transfereeId": "n1"})
    assert denied(validator, USER.sign_request(transfer)) == (
        "Need admin permission for request code=51005, but accessKey=userKey01 is not")
    # a DLedger node's Raft port adds its own codes (mq.broker.dledger.transport.RAFT_PORT_CODES)
    vote = RemotingCommand.request(53001, {"group": "g", "term": "9"}, oneway=True)
    validator.validate(USER.sign_request(vote), HERE)
    raft = AccessValidator(validator.store, frozenset({53001}))
    assert denied(raft, USER.sign_request(vote)) == (
        "Need admin permission for request code=53001, but accessKey=userKey01 is not")
    raft.validate(ADMIN.sign_request(vote), HERE)


def test_trace_topic_sends_pass(validator):
    validator.validate(USER.sign_request(send_v2("RMQ_SYS_TRACE_TOPIC")), HERE)


def test_heartbeat_resources_come_from_the_body(validator):
    body = {"clientID": "c", "producerDataSet": [{"groupName": "pg"}],
            "consumerDataSet": [{"groupName": "g1", "subscriptionDataSet": [{"topic": "pubTopic", "subString": "*"}]}]}
    hb = RemotingCommand.request(RequestCode.HEART_BEAT, body=json.dumps(body).encode())
    assert needed_resources(hb) == {"%RETRY%g1": SUB, "pubTopic": SUB}
    assert denied(validator, USER.sign_request(hb)) == "No default permission for topic:pubTopic"
    body["consumerDataSet"][0]["subscriptionDataSet"][0]["topic"] = "anyTopic"
    validator.validate(USER.sign_request(
        RemotingCommand.request(RequestCode.HEART_BEAT, body=json.dumps(body).encode())), HERE)
    bad = USER.sign_request(RemotingCommand.request(RequestCode.HEART_BEAT, body=b"{not json"))
    assert "heartbeat body" in denied(validator, bad)


@pytest.mark.parametrize("code, fields, needs", [
    (RequestCode.SEND_MESSAGE, {"topic": "t"}, {"t": PUB}),
    (RequestCode.SEND_MESSAGE, {"topic": "%RETRY%g"}, {}),  # V1 has no group field: nothing checked
    (RequestCode.QUERY_MESSAGE, {"topic": "t"}, {"t": SUB}),
    (RequestCode.UNREGISTER_CLIENT, {"consumerGroup": "g"}, {"%RETRY%g": SUB}),
    (RequestCode.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": "g"}, {"%RETRY%g": SUB}),
    (RequestCode.UPDATE_CONSUMER_OFFSET, {"consumerGroup": "g", "topic": "t"}, {"%RETRY%g": SUB, "t": SUB}),
    (RequestCode.SEND_BATCH_MESSAGE, {"b": "t"}, {}),
    (RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": "t"}, {}),
])
def test_resources_per_code(code, fields, needs):
    assert needed_resources(RemotingCommand.request(code, fields)) == needs


def query(token=None):
    fields = {"topic": "bothTopic", "key": "k", "maxNum": "32", "beginTimestamp": "0", "endTimestamp": "9",
              "_UNIQUE_KEY_QUERY": "true", "AccessKey": "userKey01"}
    if token:
        fields["SecurityToken"] = token
    return RemotingCommand.request(RequestCode.QUERY_MESSAGE, fields)


@pytest.mark.parametrize("leave_out", [(), ("_UNIQUE_KEY_QUERY",)])
def test_unique_key_query_signed_or_not(validator, leave_out):
    request = query()
    request.ext_fields["Signature"] = sign("userSecret1", signing_content(request.ext_fields, None, leave_out))
    validator.validate(request, HERE)


@pytest.mark.parametrize("leave_out", [(), ("SecurityToken",), ("SecurityToken", "_UNIQUE_KEY_QUERY")])
def test_go_leaves_the_security_token_unsigned(validator, leave_out):
    request = query(token="tok")
    request.ext_fields["Signature"] = sign("userSecret1", signing_content(request.ext_fields, None, leave_out))
    validator.validate(request, HERE)


def test_a_variant_is_only_tried_with_its_field_present_and_never_drops_others(validator):
    request = query()
    request.ext_fields["Signature"] = sign("userSecret1", signing_content(request.ext_fields, None, ("topic",)))
    assert denied(validator, request).startswith("Check signature failed")


def test_cpp_and_node_sign_ons_channel(validator):
    # ClientRPCHook: {AccessKey, OnsChannel, header fields} sorted, values concatenated, + body.
    fields = {"AccessKey": "userKey01", "OnsChannel": "ALIYUN", "a": "pg", "b": "pubTopic", "c": "TBW102"}
    text = "userKey01" + "ALIYUN" + "pg" + "pubTopic" + "TBW102"
    fields["Signature"] = sign("userSecret1", text.encode() + b"m")
    validator.validate(RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, fields, body=b"m"), HERE)


class Channel:
    peer = HERE

    def __init__(self):
        self.sent = []

    def send_response(self, response):
        self.sent.append(response)


def test_dispatcher_answers_system_error_with_the_java_remark_and_drops_oneway(validator):
    dispatcher = RequestDispatcher()
    called = []
    dispatcher.register(RequestCode.SEND_MESSAGE_V2, lambda r, c: called.append(r) or r.response(0))
    dispatcher.access_check = validator
    channel = Channel()
    dispatcher.dispatch(send_v2("pubTopic"), channel)
    (response,) = channel.sent
    assert response.code == ResponseCode.SYSTEM_ERROR == 1
    assert response.remark == f"{ACL_EXCEPTION}: No accessKey is configured"
    oneway = send_v2("pubTopic")
    oneway.flag |= FLAG_ONEWAY
    dispatcher.dispatch(oneway, channel)
    assert len(channel.sent) == 1 and not called
    dispatcher.dispatch(USER.sign_request(send_v2("pubTopic")), channel)
    assert called and channel.sent[-1].code == 0
    # Unknown codes are checked too (RocketMQ's default processor sits behind the same hook).
    dispatcher.dispatch(RemotingCommand.request(9999), channel)
    assert channel.sent[-1].code == 1


def test_a_failing_check_refuses(validator):
    validator.store.table = None  # any bug inside the check
    assert validator(send_v2("t"), Channel()) == f"{ACL_EXCEPTION}: the access check failed"


def test_a_signed_request_cannot_pass_as_another_code(validator):
    """RocketMQ's signature leaves the code out: an admin's signed request without fields would pass as any
    other without fields. mq's signers sign the code too, and a request sent under another code is refused;
    a request signed as the official clients sign it (no code field) passes as before."""
    runtime = ADMIN.sign_request(RemotingCommand.request(RequestCode.GET_BROKER_RUNTIME_INFO))
    validator.validate(runtime, HERE)
    replayed = RemotingCommand.request(RequestCode.DELETE_EXPIRED_COMMITLOG, dict(runtime.ext_fields))
    assert denied(validator, replayed) == ("Check signature failed for accessKey=adminKey01: signed for request "
                                           f"code {int(RequestCode.GET_BROKER_RUNTIME_INFO)}, sent as 329")
    stripped = dict(runtime.ext_fields)
    del stripped["mqRequestCode"]
    assert denied(validator, RemotingCommand.request(329, stripped)) == "Check signature failed for accessKey=adminKey01"
    java_style = {"AccessKey": ADMIN.access_key}
    java_style["Signature"] = sign(ADMIN.secret_key, signing_content(java_style, None))
    validator.validate(RemotingCommand.request(RequestCode.DELETE_EXPIRED_COMMITLOG, java_style), HERE)
