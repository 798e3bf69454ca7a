"""The client library signs with the credentials it is given: one account per client instance."""

from __future__ import annotations

import pytest
from twisted.internet import task

from mq.acl.signing import Credentials
from mq.client import ClientConfig, LitePullConsumer, Producer, PushConsumer, SimpleClient
from mq.client.instance import get_instance
from mq.remoting.command import RemotingCommand

USER = Credentials("userAccount", "userSecret1")


def test_producers_and_consumers_carry_their_credentials_to_the_instance():
    clock = task.Clock()
    for make in (Producer, PushConsumer, LitePullConsumer):
        client = make("G", "127.0.0.1:9876", instance_name=f"cred-{make.__name__}", credentials=USER, reactor=clock)
        assert client.config.credentials == USER
        instance = get_instance(client.config, clock)
        assert instance.remoting.signer == USER.sign_request
        request = RemotingCommand.request(10, {"topic": "T"})
        instance.remoting.signer(request)
        assert request.ext_fields["AccessKey"] == "userAccount" and "Signature" in request.ext_fields
    config = ClientConfig(namesrv_addr="127.0.0.1:9876", instance_name="cred-config")
    assert Producer("G", config=config, credentials=USER, reactor=clock).config.credentials == USER


def test_one_client_id_cannot_sign_with_two_accounts():
    clock = task.Clock()
    first = ClientConfig(namesrv_addr="127.0.0.1:9876", instance_name="cred-clash", credentials=USER)
    get_instance(first, clock)
    other = ClientConfig(namesrv_addr="127.0.0.1:9876", instance_name="cred-clash",
                         credentials=Credentials("otherAccount", "otherSecret"))
    with pytest.raises(ValueError, match="another instance_name"):
        get_instance(other, clock)
    assert get_instance(ClientConfig(namesrv_addr="127.0.0.1:9876", instance_name="cred-clash",
                                     credentials=USER), clock) is get_instance(first, clock)


def test_simple_client_signs():
    assert SimpleClient(task.Clock(), credentials=USER).remoting.signer == USER.sign_request
    assert SimpleClient(task.Clock()).remoting.signer is None
