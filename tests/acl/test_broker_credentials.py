"""The broker's own account (``accessKey``/``secretKey``): it signs registrations, and its secret stays hidden."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor

from mq.acl.signing import ACCESS_KEY, SIGNATURE, sign, signing_content
from mq.broker.config import SECRET_MASK, BrokerConfig
from mq.broker.outer_api import BrokerOuterAPI
from mq.broker.service import broker_credentials
from mq.common.register_body import RegisterBrokerBody
from mq.remoting.client import RemotingClient
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.protocol import RequestDispatcher
from mq.remoting.server import RemotingServerFactory


def test_credentials_need_both_halves():
    assert broker_credentials(BrokerConfig()) is None
    config = BrokerConfig.from_properties({"accessKey": "brokerAK1", "secretKey": "brokerSK1"})
    assert broker_credentials(config).access_key == "brokerAK1"
    with pytest.raises(ValueError, match="secret key"):
        broker_credentials(BrokerConfig.from_properties({"accessKey": "brokerAK1"}))


def test_broker_config_answer_masks_the_secret():
    props = BrokerConfig.from_properties({"accessKey": "brokerAK1", "secretKey": "brokerSK1"}).to_properties()
    assert props["accessKey"] == "brokerAK1" and props["secretKey"] == SECRET_MASK
    assert "brokerSK1" not in repr(BrokerConfig.from_properties({"secretKey": "brokerSK1"}))


@pytest_twisted.inlineCallbacks
def test_registrations_are_signed():
    got = []
    dispatcher = RequestDispatcher()
    dispatcher.register(RequestCode.REGISTER_BROKER,
                        lambda req, ch: got.append(req) or req.response(ResponseCode.SUCCESS, None, {}))
    dispatcher.register(RequestCode.UNREGISTER_BROKER,
                        lambda req, ch: got.append(req) or req.response(ResponseCode.SUCCESS, None, {}))
    port = reactor.listenTCP(0, RemotingServerFactory(dispatcher, reactor), interface="127.0.0.1")
    addr = f"127.0.0.1:{port.getHost().port}"
    config = BrokerConfig.from_properties({"accessKey": "brokerAK1", "secretKey": "brokerSK1",
                                           "brokerIP1": "127.0.0.1"})
    api = BrokerOuterAPI(reactor, RemotingClient(reactor, signer=broker_credentials(config).sign_request))
    try:
        yield api.register_broker_all([addr], config, RegisterBrokerBody())
        yield api.unregister_broker_all([addr], config)
    finally:
        yield api.close()
        yield port.stopListening()
    assert [r.code for r in got] == [RequestCode.REGISTER_BROKER, RequestCode.UNREGISTER_BROKER]
    for request in got:
        fields = request.ext_fields
        assert fields[ACCESS_KEY] == "brokerAK1"
        assert fields[SIGNATURE] == sign("brokerSK1", signing_content(fields, request.body))
