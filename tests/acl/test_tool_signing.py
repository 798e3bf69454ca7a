"""``mqadmin`` signs every request with ``--access-key``/``--secret-key`` or the environment's account.

An in-process server records what reaches the wire; the signature is checked as a broker checks it.
"""

from __future__ import annotations

import io

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from mq.acl.signing import ACCESS_KEY, SIGNATURE, sign, signing_content
from mq.admin import cli
from mq.admin.api import EXIT_USAGE
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.protocol import RequestDispatcher
from mq.remoting.server import RemotingServerFactory


class Recorder:
    """A server answering GET_BROKER_CONFIG and keeping every request it got."""

    def __init__(self):
        self.requests = []
        dispatcher = RequestDispatcher()
        dispatcher.register(RequestCode.GET_BROKER_CONFIG, self._config)
        self.port = reactor.listenTCP(0, RemotingServerFactory(dispatcher, reactor), interface="127.0.0.1")
        self.addr = f"127.0.0.1:{self.port.getHost().port}"

    def _config(self, request, channel):
        self.requests.append(request)
        return request.response(ResponseCode.SUCCESS, None, None, b"brokerName=b1\n")


@pytest.fixture
def server():
    srv = Recorder()
    yield srv
    srv.port.stopListening()


@defer.inlineCallbacks
def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    args = cli.build_parser().parse_args(list(argv))
    status = yield cli.run_command(reactor, args, out, err)
    return status, out.getvalue(), err.getvalue()


def assert_signed_by(request, access_key, secret_key):
    fields = request.ext_fields
    assert fields[ACCESS_KEY] == access_key
    assert fields[SIGNATURE] == sign(secret_key, signing_content(fields, request.body))


@pytest_twisted.inlineCallbacks
def test_options_sign_the_request(server, monkeypatch):
    monkeypatch.delenv("MQ_ACCESS_KEY", raising=False)
    monkeypatch.delenv("MQ_SECRET_KEY", raising=False)
    status, out, err = yield run("getBrokerConfig", "-b", server.addr, "--access-key", "toolsAK1", "--secret-key",
                           "toolsSK12")
    assert status == 0, err
    assert "brokerName = b1" in out
    assert_signed_by(server.requests[-1], "toolsAK1", "toolsSK12")


@pytest_twisted.inlineCallbacks
def test_environment_signs_when_no_option_names_an_account(server, monkeypatch):
    monkeypatch.setenv("MQ_ACCESS_KEY", "envAK123")
    monkeypatch.setenv("MQ_SECRET_KEY", "envSK123")
    status, _, err = yield run("getBrokerConfig", "-b", server.addr)
    assert status == 0, err
    assert_signed_by(server.requests[-1], "envAK123", "envSK123")
    # An option beats the environment.
    status, _, err = yield run("getBrokerConfig", "-b", server.addr, "--access-key", "optAK123", "--secret-key", "optSK123")
    assert_signed_by(server.requests[-1], "optAK123", "optSK123")


@pytest_twisted.inlineCallbacks
def test_no_account_sends_no_signature(server, monkeypatch):
    monkeypatch.delenv("MQ_ACCESS_KEY", raising=False)
    monkeypatch.delenv("MQ_SECRET_KEY", raising=False)
    status, _, err = yield run("getBrokerConfig", "-b", server.addr)
    assert status == 0, err
    fields = server.requests[-1].ext_fields or {}
    assert ACCESS_KEY not in fields and SIGNATURE not in fields


@pytest_twisted.inlineCallbacks
def test_half_an_account_is_a_usage_error(server, monkeypatch):
    monkeypatch.delenv("MQ_ACCESS_KEY", raising=False)
    monkeypatch.delenv("MQ_SECRET_KEY", raising=False)
    status, _, err = yield run("getBrokerConfig", "-b", server.addr, "--access-key", "onlyAK12")
    assert status == EXIT_USAGE
    assert "secret key" in err
    assert server.requests == []
