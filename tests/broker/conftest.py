"""In-process brokers on loopback (the real reactor, driven by pytest-twisted) and a SimpleClient."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from mq.broker.config import BrokerConfig
from mq.broker.service import BrokerService
from mq.client import SimpleClient
from tests.support.processes import free_port


def broker_config(tmp_path, **props) -> BrokerConfig:
    base = {
        "listenPort": free_port(),
        "storePathRootDir": str(tmp_path / "store"),
        "brokerIP1": "127.0.0.1",
        "brokerName": "broker-t",
        "namesrvAddr": "",
        "mappedFileSizeCommitLog": str(4 << 20),
        "mappedFileSizeConsumeQueue": "20000",
        "messageIndexEnable": "false",
    }
    base.update({k: str(v) for k, v in props.items()})
    return BrokerConfig.from_properties(base)


@pytest.fixture
def make_broker(tmp_path):
    started = []

    def make(**props) -> BrokerService:
        svc = BrokerService(broker_config(tmp_path, **props), reactor)
        # A topic a send creates is saved in the calling thread here, so a send into it is answered at once, as
        # these tests call the processors directly (the threaded save: test_send.py and every process test).
        svc.topic_config_manager.run_blocking = defer.maybeDeferred
        svc.startService()
        started.append(svc)
        return svc

    yield make
    for svc in started:
        if svc.running:
            pytest_twisted.blockon(svc.stopService())


@pytest.fixture
def broker(make_broker) -> BrokerService:
    return make_broker()


@pytest.fixture
def addr(broker) -> str:
    return broker.config.broker_addr


@pytest.fixture
def client():
    c = SimpleClient(reactor)
    yield c
    pytest_twisted.blockon(c.close())
