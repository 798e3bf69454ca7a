"""MQAdminAPI's VIP channel: broker requests but pulls go to the broker's port - 2; NameServers never."""

from __future__ import annotations

from twisted.internet import defer

from mq.admin.api import MQAdminAPI, vip_addr
from mq.remoting.codes import RequestCode


class Recorder:
    def __init__(self) -> None:
        self.sent = []

    def invoke(self, addr, request, timeout):
        self.sent.append((addr, request.code))
        return defer.succeed(request)


def test_vip_addresses():
    assert vip_addr("10.0.0.5:10911") == "10.0.0.5:10909"
    assert vip_addr("[::1]:10911") == "[::1]:10909"
    assert vip_addr("h:2") == "h:2" and vip_addr("no-port") == "no-port"


def test_only_broker_requests_other_than_pulls_take_the_vip_channel():
    remoting = Recorder()
    api = MQAdminAPI(None, ["127.0.0.1:9876"], remoting=remoting)
    api.broker_call("10.0.0.5:10911", RequestCode.GET_BROKER_RUNTIME_INFO)
    api.vip_channel = True
    api.broker_call("10.0.0.5:10911", RequestCode.GET_BROKER_RUNTIME_INFO)
    api.broker_call("10.0.0.5:10911", RequestCode.PULL_MESSAGE)
    api.namesrv_call(RequestCode.GET_BROKER_CLUSTER_INFO)
    assert remoting.sent == [("10.0.0.5:10911", RequestCode.GET_BROKER_RUNTIME_INFO),
                             ("10.0.0.5:10909", RequestCode.GET_BROKER_RUNTIME_INFO),
                             ("10.0.0.5:10911", RequestCode.PULL_MESSAGE),
                             ("127.0.0.1:9876", RequestCode.GET_BROKER_CLUSTER_INFO)]
