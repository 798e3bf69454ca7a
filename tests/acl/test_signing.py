"""The signature RocketMQ's AclClientRPCHook makes: what it covers, in what order, and its encoding."""

from __future__ import annotations

import base64

import pytest

from mq.acl.signing import Credentials, sign, signing_content
from mq.remoting.command import RemotingCommand


def test_sign_is_hmac_sha1_in_padded_base64():
    # RFC 2202 test case 2 for HMAC-SHA1.
    expected = bytes.fromhex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
    assert sign("Jefe", b"what do ya want for nothing?") == base64.b64encode(expected).decode()


def test_content_is_values_sorted_by_key_then_body():
    fields = {"topic": "T", "AccessKey": "ak", "OnsChannel": "ALIYUN", "b": "x", "Signature": "old"}
    # Byte order: upper-case keys first; Signature is never part of it.
    assert signing_content(fields, b"BODY") == b"akALIYUNxTBODY"
    assert signing_content(fields, b"", leave_out={"b"}) == b"akALIYUNT"
    assert signing_content(None, None) == b""
    assert signing_content({"n": 5, "a": "x"}, None) == b"x5"  # a non-text value as its str()


def test_sign_request_adds_access_key_token_and_signature():
    request = RemotingCommand.request(10, {"topic": "T", "Signature": "stale"}, body=b"hello")
    Credentials("rocketmq2", "12345678", "tok").sign_request(request)
    fields = request.ext_fields
    assert fields["AccessKey"] == "rocketmq2" and fields["SecurityToken"] == "tok" and fields["mqRequestCode"] == "10"
    assert fields["Signature"] == sign("12345678", b"rocketmq2tok10T" + b"hello")


def test_credentials_from_options_and_environment():
    assert Credentials.from_options(environ={}) is None
    env = {"MQ_ACCESS_KEY": "envak123", "MQ_SECRET_KEY": "envsk123"}
    assert Credentials.from_options(environ=env) == Credentials("envak123", "envsk123")
    assert Credentials.from_options("ak123456", "sk123456", environ=env).access_key == "ak123456"
    with pytest.raises(ValueError):
        Credentials.from_options("ak123456", environ={})


def test_unique_key_query_is_left_unsigned_and_announced_as_4_9_3():
    # What both RocketMQ 4.9.x brokers (never check the field) and 5.x brokers (not up to V4_9_3) verify.
    request = RemotingCommand.request(12, {"topic": "T", "key": "K", "_UNIQUE_KEY_QUERY": "true"})
    assert request.version == 409
    Credentials("rocketmq2", "12345678").sign_request(request)
    assert request.version == 399
    assert request.ext_fields["Signature"] == sign("12345678", b"rocketmq2K12T")
    plain = Credentials("rocketmq2", "12345678").sign_request(RemotingCommand.request(12, {"topic": "T"}))
    assert plain.version == 409
