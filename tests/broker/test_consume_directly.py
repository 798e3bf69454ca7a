"""CONSUME_MESSAGE_DIRECTLY (309) relayed to one consumer, and the bound on relays waiting for one client."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import defer, reactor

from mq.common.message_record import decode_message_ext
from mq.remoting.client import RemotingClient
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.protocol import RequestDispatcher
from tests.broker.test_clients import Member
from tests.support.polling import poll


class DirectMember(Member):
    """A consumer whose answers to 309 and 307 wait until the test releases them."""

    def __init__(self):
        super().__init__()
        self.pending = []
        dispatcher = RequestDispatcher()
        dispatcher.register(RequestCode.CONSUME_MESSAGE_DIRECTLY, self._held)
        dispatcher.register(RequestCode.GET_CONSUMER_RUNNING_INFO, self._held)
        self.remoting = RemotingClient(reactor, dispatcher)

    def _held(self, request, channel):
        d = defer.Deferred()
        self.pending.append((request, d))
        return d

    def release(self):
        while self.pending:
            request, d = self.pending.pop(0)
            d.callback(request.response(RC.SUCCESS, None, None, b'{"consumeResult":"CR_SUCCESS"}'))


@pytest_twisted.inlineCallbacks
def test_consume_directly_relays_the_stored_message(addr, broker, client):
    r = yield client.send(addr, "DirT", b"hello", keys="k1")
    msg_id = r.ext_fields["msgId"]
    m = DirectMember()
    try:
        yield m.heartbeat(addr, "C1", "dg", ["DirT"])
        ask = {"consumerGroup": "dg", "clientId": "C1", "msgId": msg_id}
        answer = client.invoke(addr, RequestCode.CONSUME_MESSAGE_DIRECTLY, ask, timeout=15)
        yield _until(lambda: m.pending)
        request, _ = m.pending[0]
        assert request.ext_fields["brokerName"] == broker.config.broker_name
        msg = decode_message_ext(request.body)
        assert (msg.topic, msg.body, msg.msg_id) == ("DirT", b"hello", msg_id)
        m.release()
        r = yield answer
        assert (r.code, r.body) == (RC.SUCCESS, b'{"consumeResult":"CR_SUCCESS"}')
        r = yield client.invoke(addr, RequestCode.CONSUME_MESSAGE_DIRECTLY, dict(ask, clientId="nobody"))
        assert r.code == RC.SYSTEM_ERROR and "not online" in r.remark
        r = yield client.invoke(addr, RequestCode.CONSUME_MESSAGE_DIRECTLY, dict(ask, msgId="zz"))
        assert r.code == RC.SYSTEM_ERROR and "not an offset message id" in r.remark
        far = msg_id[:-16] + "00000000FFFFFFFF"
        r = yield client.invoke(addr, RequestCode.CONSUME_MESSAGE_DIRECTLY, dict(ask, msgId=far))
        assert r.code == RC.SYSTEM_ERROR and "can not find message" in r.remark
    finally:
        yield m.remoting.close()


@pytest_twisted.inlineCallbacks
def test_relays_to_one_client_are_bounded(addr, broker, client):
    broker.config.client_relay_max_in_flight = 2
    r = yield client.send(addr, "DirB", b"x")
    msg_id = r.ext_fields["msgId"]
    m, other = DirectMember(), DirectMember()
    try:
        yield m.heartbeat(addr, "C1", "dg", ["DirB"])
        yield other.heartbeat(addr, "C2", "dg", ["DirB"])
        ask = {"consumerGroup": "dg", "clientId": "C1", "msgId": msg_id}
        waiting = [client.invoke(addr, RequestCode.CONSUME_MESSAGE_DIRECTLY, ask, timeout=15),
                   client.invoke(addr, RequestCode.GET_CONSUMER_RUNNING_INFO, ask, timeout=15)]
        yield _until(lambda: len(m.pending) == 2)
        r = yield client.invoke(addr, RequestCode.CONSUME_MESSAGE_DIRECTLY, ask)
        assert r.code == RC.SYSTEM_BUSY and "clientRelayMaxInFlight 2" in r.remark
        # another client of the group has its own allowance
        elsewhere = client.invoke(addr, RequestCode.CONSUME_MESSAGE_DIRECTLY, dict(ask, clientId="C2"), timeout=15)
        yield _until(lambda: other.pending)
        other.release()
        assert (yield elsewhere).code == RC.SUCCESS
        m.release()
        answers = yield defer.gatherResults(waiting)
        assert [a.code for a in answers] == [RC.SUCCESS, RC.SUCCESS]
        assert broker.broker2client.relaying == {}  # answered relays free their place
        again = client.invoke(addr, RequestCode.CONSUME_MESSAGE_DIRECTLY, ask, timeout=15)
        yield _until(lambda: m.pending)
        m.release()
        assert (yield again).code == RC.SUCCESS
    finally:
        yield m.remoting.close()
        yield other.remoting.close()


def _until(condition):
    return poll(lambda: None, lambda _: condition(), timeout=10, what="the consumer to be asked")
