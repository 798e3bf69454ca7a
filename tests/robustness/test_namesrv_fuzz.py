"""Every request code of the NameServer, with adversarial headers and bodies, through the real protocol.

Properties: nothing raises out of ``dataReceived``; each registered code that is not oneway gets exactly one
answer with its opaque (unknown codes too, unless the dispatcher is told to stay silent as Java's); an error answer
says what was wrong; nothing is logged as a failure; the connection still answers a route lookup afterwards,
and the route registered before the fuzz is still there.
"""

from __future__ import annotations

import itertools
import json
import zlib

from twisted.internet.testing import MemoryReactorClock

from mq.common.register_body import RegisterBrokerBody
from mq.common.route import DataVersion, TopicConfig
from mq.namesrv.config import NamesrvConfig
from mq.namesrv.service import NamesrvService
from mq.remoting.codes import RequestCode, ResponseCode, SerializeType
from tests.robustness.harness import Peer, check_answer, frame, fuzz

_opaques = itertools.count(1000)
KNOWN_TOPIC = "KnownTopic_fixture"


def call(peer: Peer, code, ext, body=b"", serialize_type=SerializeType.JSON, oneway=False):
    opaque = next(_opaques)
    peer.feed(frame(code, ext, body, serialize_type, oneway, opaque))
    return opaque, peer.responses()


def register_known(peer: Peer) -> bytes:
    body = RegisterBrokerBody(DataVersion(1, 1), {KNOWN_TOPIC: TopicConfig(KNOWN_TOPIC, 4, 4, 6)}).encode()
    ext = {"brokerName": "broker-known", "brokerAddr": "10.9.9.9:10911", "clusterName": "KnownCluster",
           "haServerAddr": "10.9.9.9:10912", "brokerId": "0", "compressed": "false",
           "bodyCrc32": str(zlib.crc32(body) & 0x7FFFFFFF)}
    _, [resp] = call(peer, RequestCode.REGISTER_BROKER, ext, body)
    assert resp.code == ResponseCode.SUCCESS, resp.remark
    return route(peer)


def route(peer: Peer) -> bytes:
    opaque, [resp] = call(peer, RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": KNOWN_TOPIC})
    assert (resp.opaque, resp.code) == (opaque, ResponseCode.SUCCESS), resp.remark
    return resp.body


def test_no_request_crashes_or_corrupts_the_namesrv(tmp_path):
    clock = MemoryReactorClock()
    svc = NamesrvService(NamesrvConfig(listen_port=0, kv_config_path=str(tmp_path / "kv.json")), clock)
    svc.startService()
    peer = Peer(svc.factory)
    known_route = register_known(peer)
    registered = set(svc.dispatcher.processors)
    answers_unknown = svc.dispatcher.answer_unknown  # docs/namesrv.md: unlike Java, it answers them
    codes = sorted(registered) + [RequestCode.HEART_BEAT, RequestCode.SEND_MESSAGE, 9999, -1]

    def one(code, ext, body, serialize_type, oneway):
        opaque, out = call(peer, code, ext, body, serialize_type, oneway)
        assert not peer.closed
        check_answer(out, opaque, serialize_type, answered=not oneway and (code in registered or answers_unknown))
        route(peer)

    try:
        fuzz(codes, one)
        # the broker registered before the fuzz is untouched (the fuzz never names it)
        assert json.loads(route(peer)) == json.loads(known_route)
    finally:
        svc.stopService()
