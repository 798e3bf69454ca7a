"""Every request code of the broker, with adversarial headers and bodies, through the real protocol.

Properties: nothing raises out of ``dataReceived``; each request that is not oneway gets exactly one answer
with its opaque; an error answer says what was wrong; nothing is logged as a failure; the connection still
answers a valid request afterwards; messages stored before the fuzz read back intact, and a refused send
stores nothing.
"""

from __future__ import annotations

import itertools

import pytest
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock

from mq.broker.service import BrokerService
from mq.common.message import decode_messages
from mq.remoting.codes import RequestCode, ResponseCode, SerializeType
from mq.store.store import MessageStore
from tests.broker.conftest import broker_config
from tests.robustness.harness import HEARTBEAT, Peer, check_answer, frame, fuzz

T0 = 1_700_000_000.0
KNOWN = "KnownTopic_fixture"
SEND_CODES = {RequestCode.SEND_MESSAGE, RequestCode.SEND_MESSAGE_V2, RequestCode.SEND_BATCH_MESSAGE}
STORED_ANYWAY = {ResponseCode.FLUSH_DISK_TIMEOUT, ResponseCode.FLUSH_SLAVE_TIMEOUT, ResponseCode.SLAVE_NOT_AVAILABLE}


def in_memory_broker(tmp_path) -> BrokerService:
    clock = MemoryReactorClock()
    clock.advance(T0)
    config = broker_config(tmp_path, mappedFileSizeCommitLog=64 * 1024, messageIndexEnable="true",
                           autoCreateTopicEnable="true",
                           # the fuzz moves the clock on; it should not expire its own connection
                           channelExpiredTimeout=str(10**12))
    store = MessageStore(config.store_config(), clock, store_host=config.store_host,
                         run_blocking=defer.maybeDeferred, disk_usage=lambda path: 0.1)
    svc = BrokerService(config, clock, store=store)
    svc.startService()
    return svc


@pytest.fixture
def broker(tmp_path):
    svc = in_memory_broker(tmp_path)
    yield svc
    svc.stopService()


_opaques = itertools.count(1000)


def answer(peer: Peer, broker: BrokerService, data: bytes):
    """Feed one request; let timers run (relays, held pulls) until it is answered."""
    peer.feed(data)
    out = peer.responses()
    if not out:
        broker.reactor.advance(31)
        broker.pull_hold_service.release_all()
        out = peer.responses()
    return out


def runtime_info_works(peer: Peer, broker: BrokerService) -> bool:
    opaque = next(_opaques)
    [resp] = answer(peer, broker, frame(RequestCode.GET_BROKER_RUNTIME_INFO, None, b"", SerializeType.JSON,
                                        False, opaque))
    return resp.opaque == opaque and resp.code == ResponseCode.SUCCESS


def store_known(peer: Peer, broker: BrokerService, n: int = 5):
    """Messages that must survive the fuzz; also the topic, group and consumer the fuzz's headers name."""
    for code, ext, body in ((RequestCode.UPDATE_AND_CREATE_TOPIC, {"topic": "TopicTest", "defaultTopic": "TBW102",
                                                                   "readQueueNums": "4", "writeQueueNums": "4",
                                                                   "perm": "6", "topicFilterType": "SINGLE_TAG"}, b""),
                            (RequestCode.HEART_BEAT, None, HEARTBEAT)):
        [resp] = answer(peer, broker, frame(code, ext, body, SerializeType.JSON, False, next(_opaques)))
        assert resp.code == ResponseCode.SUCCESS, resp.remark
    sent = []
    for i in range(n):
        body = f"known-{i}".encode() * (i + 1)
        ext = {"a": "P", "b": KNOWN, "c": "TBW102", "d": "4", "e": str(i % 4), "f": "0", "g": str(int(T0 * 1000)),
               "h": "0", "i": "TAGS\x01k\x02"}
        [resp] = answer(peer, broker, frame(RequestCode.SEND_MESSAGE_V2, ext, body, SerializeType.JSON, False,
                                            next(_opaques)))
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        sent.append((i % 4, int(resp.ext_fields["queueOffset"]), body))
    return sent


def read_back(broker: BrokerService, sent) -> None:
    for queue_id, offset, body in sent:
        got = broker.store.get_message("check", KNOWN, queue_id, offset, 1)
        [msg] = decode_messages(got.body())
        assert (msg.topic, msg.body) == (KNOWN, body)


def test_no_request_crashes_or_corrupts_the_broker(broker):
    peer = Peer(broker.factory)
    sent = store_known(peer, broker)
    codes = sorted(broker.dispatcher.processors) + [RequestCode.INVOKE_BROKER_TO_GET_CONSUMER_STATUS, 9999, -1]

    def one(code, ext, body, serialize_type, oneway):
        opaque = next(_opaques)
        before = broker.store.commitlog.max_offset
        out = answer(peer, broker, frame(code, ext, body, serialize_type, oneway, opaque))
        assert not peer.closed
        check_answer(out, opaque, serialize_type, answered=not oneway)  # unknown codes too
        if out and code in SEND_CODES and out[0].code not in STORED_ANYWAY | {ResponseCode.SUCCESS}:
            assert broker.store.commitlog.max_offset == before, (code, out[0])
        assert runtime_info_works(peer, broker)

    fuzz(codes, one)
    read_back(broker, sent)
