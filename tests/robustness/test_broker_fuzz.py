"""Every request code of the broker, with adversarial headers and bodies, through the real protocol.

Properties: nothing raises out of ``dataReceived``; each request that is not oneway gets exactly one answer
with its opaque; an error answer says what was wrong; nothing is logged as a failure; the connection still
answers a valid request afterwards; messages stored before the fuzz read back intact, so does every message a
fuzzed send stored, and a refused send (oneway or not: what its processor answered tells) stores nothing.

The same properties hold on the VIP port (``listenPort - 2``, every code but PULL_MESSAGE), for a SYNC_FLUSH
store whose disk is slower than the sends (puts pile up behind an fsync, or time out waiting; a stop with puts
waiting logs no failure, and everything stored reads back after a restart), and for a slave (brokerRole=SLAVE,
brokerId 1: every send refused with a response code and remark, nothing ever stored, offsets committed only by
its master). Sends built to be refused for each reason the broker has (oneway half of the time) are refused and
store nothing.
"""

from __future__ import annotations

import copy
import itertools
import struct
from collections import defaultdict
from typing import Callable, Dict, List, NamedTuple, Optional

import pytest
from hypothesis import strategies as st
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock

from mq.broker.service import BrokerService
from mq.common.message import decode_offset_msg_id
from mq.common.message_batch import BatchError, decode_batch, encode_batch
from mq.common.message_record import decode_messages
from mq.common.topic import NOT_ALLOWED_SEND_TOPICS
from mq.remoting.codes import RequestCode, ResponseCode, SerializeType
from mq.remoting.command import RemotingCommand
from mq.store.store import MessageStore
from tests.broker.conftest import broker_config
from tests.robustness.harness import (
    HEARTBEAT,
    LogCapture,
    Peer,
    check_answer,
    ext_fields,
    frame,
    fuzz,
    near_valid_ext_fields,
    requests,
)

T0 = 1_700_000_000.0
KNOWN = "KnownTopic_fixture"
REFUSING = "RefusingTopic_fixture"  # 2 queues
READ_ONLY = "ReadOnlyTopic_fixture"  # perm 4: no writes
MAX_SIZE = 1024
#: The config of a broker that sends built to be refused go to.
REFUSING_CONFIG = {"maxMessageSize": MAX_SIZE, "rejectTransactionMessage": "true"}
SEND_CODES = {RequestCode.SEND_MESSAGE, RequestCode.SEND_MESSAGE_V2, RequestCode.SEND_BATCH_MESSAGE}
#: Everything that asks the broker to store a message (a slave refuses all of them).
STORING_CODES = SEND_CODES | {RequestCode.SEND_REPLY_MESSAGE, RequestCode.SEND_REPLY_MESSAGE_V2,
                              RequestCode.CONSUMER_SEND_MSG_BACK, RequestCode.END_TRANSACTION}
SLAVE_REFUSAL = {RequestCode.END_TRANSACTION: ResponseCode.SLAVE_NOT_AVAILABLE}
STORED_ANYWAY = {ResponseCode.FLUSH_DISK_TIMEOUT, ResponseCode.FLUSH_SLAVE_TIMEOUT, ResponseCode.SLAVE_NOT_AVAILABLE}
STORED = STORED_ANYWAY | {ResponseCode.SUCCESS}


class SlowDisk:
    """The store's ``run_blocking``: fsync jobs wait until the test runs them (a disk slower than the sends)."""

    def __init__(self) -> None:
        self.jobs: List[tuple] = []
        self.immediate = False

    def __call__(self, fn: Callable[[], object]) -> defer.Deferred:
        if self.immediate:
            return defer.maybeDeferred(fn)
        d: defer.Deferred = defer.Deferred()
        self.jobs.append((fn, d))
        return d

    def run(self) -> None:
        while self.jobs:
            fn, d = self.jobs.pop(0)
            d.callback(fn())  # an fsync that raises is the store's bug: let the fuzz see it


def in_memory_broker(tmp_path, run_blocking=defer.maybeDeferred, **props) -> BrokerService:
    clock = MemoryReactorClock()
    clock.advance(T0)
    config = broker_config(tmp_path, mappedFileSizeCommitLog=64 * 1024, messageIndexEnable="true",
                           autoCreateTopicEnable="true",
                           # the fuzz moves the clock on; it should not expire its own connection
                           channelExpiredTimeout=str(10**12), **props)
    store = MessageStore(config.store_config(), clock, store_host=config.store_host,
                         run_blocking=run_blocking, disk_usage=lambda path: 0.1)
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
    create_topic(peer, broker, "TopicTest", 4, 6)
    create_topic(peer, broker, REFUSING, 2, 6)
    create_topic(peer, broker, READ_ONLY, 2, 4)
    [resp] = answer(peer, broker, frame(RequestCode.HEART_BEAT, None, HEARTBEAT, SerializeType.JSON, False,
                                        next(_opaques)))
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


def record_outcomes(processors: dict) -> Dict[int, RemotingCommand]:
    """Wrap every processor in ``processors`` (in place, so the VIP port's view sees it too) to note the
    response it gives each request by opaque: oneway requests get one as well, they are just not sent. A
    request whose processor raised (a header that does not decode) has none."""
    outcomes: Dict[int, RemotingCommand] = {}

    def note(opaque: int, response):
        if isinstance(response, RemotingCommand):
            outcomes[opaque] = response
        return response

    def wrap(processor):
        def run(request, channel):
            result = processor(request, channel)
            if isinstance(result, defer.Deferred):
                return result.addCallback(lambda r: note(request.opaque, r))
            return note(request.opaque, result)

        return run

    for code, processor in list(processors.items()):
        processors[code] = wrap(processor)
    return outcomes


def stored_bodies(broker: BrokerService, response: RemotingCommand) -> List[bytes]:
    """The bodies of the messages a send's answer says it stored (by the offsets in its msgId)."""
    out = []
    for msg_id in response.ext_fields["msgId"].split(","):
        msg = broker.store.look_message_ext_by_offset(decode_offset_msg_id(msg_id)[1])
        assert msg is not None, msg_id
        out.append(msg.body)
    return out


def sent_bodies(body: bytes) -> List[List[bytes]]:
    """What a send of ``body`` may have stored: itself, or the members of the batch it is."""
    try:
        return [[body], [item[1] for item in decode_batch(body)]]
    except BatchError:
        return [[body]]


class Sent(NamedTuple):
    opaque: int
    code: int
    body: bytes
    serialize_type: int
    oneway: bool
    before: int  # the CommitLog's end before the request was fed
    after: int  # ... and after
    why: Optional[str]  # why the request must be refused, if it was built to be


class Session:
    """One connection to ``factory`` (the broker's main or VIP listener) and what each request did: its answers,
    the response its processor gave (oneway requests too) and the CommitLog's end before and after it."""

    def __init__(self, broker: BrokerService, factory, disk: Optional[SlowDisk] = None, slave: bool = False) -> None:
        self.broker = broker
        self.clock = broker.reactor
        self.peer = Peer(factory)
        self.disk = disk
        self.slave = slave
        self.outcomes = record_outcomes(broker.dispatcher.processors)
        self.pending: List[Sent] = []
        self.answers: Dict[int, List[RemotingCommand]] = defaultdict(list)
        #: (bodies, the answer saying where they went) for every message a fuzzed send stored
        self.stored: List[tuple] = []
        self.refused_oneway_sends = 0

    @property
    def end(self) -> int:
        return self.broker.store.commitlog.max_offset

    def send(self, code, ext, body, serialize_type, oneway, why: Optional[str] = None) -> None:
        opaque = next(_opaques)
        before = self.end
        offsets = copy.deepcopy(self.broker.consumer_offset_manager.table) if self.slave else None
        self.peer.feed(frame(code, ext, body, serialize_type, oneway, opaque))
        self.pending.append(Sent(opaque, code, body, serialize_type, oneway, before, self.end, why))
        assert not self.peer.closed
        if self.slave:
            assert self.end == before, (code, "a slave stored a message")
            if code == RequestCode.UPDATE_CONSUMER_OFFSET:
                assert self.broker.consumer_offset_manager.table == offsets, "a slave committed an offset"
        self._collect()

    def _collect(self) -> None:
        for resp in self.peer.responses():
            self.answers[resp.opaque].append(resp)

    def _run_disk(self) -> None:
        self.clock.advance(0)  # the flush service kicks at the end of the reactor turn
        while self.disk is not None and self.disk.jobs:
            self.disk.run()  # a job that ends may leave waiters it did not cover: they get the next one
            self.clock.advance(0)
        self._collect()

    def settle(self) -> None:
        """Let the disk and then the timers run (relays, held pulls, flush timeouts) until every request that
        is not oneway is answered, then check what each request did."""
        self._run_disk()
        if any(not sent.oneway and sent.opaque not in self.answers for sent in self.pending):
            self.clock.advance(31)
            self.broker.pull_hold_service.release_all()
            self._run_disk()
        # taken before checking: a failed check leaves nothing behind for the next example
        pending, self.pending = self.pending, []
        answers, self.answers = self.answers, defaultdict(list)
        outcomes = dict(self.outcomes)
        self.outcomes.clear()
        for sent in pending:
            check_answer(answers.pop(sent.opaque, []), sent.opaque, sent.serialize_type, answered=not sent.oneway)
            self._check_outcome(sent, outcomes.get(sent.opaque))
        assert not answers, ("answers nobody asked for", dict(answers))
        assert runtime_info_works(self.peer, self.broker)
        self.outcomes.clear()

    def _check_outcome(self, sent: Sent, outcome: Optional[RemotingCommand]) -> None:
        """What the processor answered (None: the header did not decode) against what the store holds."""
        code = sent.code
        if code in STORING_CODES and self.slave and outcome is not None:
            # as Java's slave: SERVICE_NOT_AVAILABLE for sends and send-backs, SLAVE_NOT_AVAILABLE for END_TRANSACTION
            assert outcome.code == SLAVE_REFUSAL.get(code, ResponseCode.SERVICE_NOT_AVAILABLE), (code, outcome)
            assert "slave" in outcome.remark, outcome
        if outcome is not None and outcome.code != ResponseCode.SUCCESS:
            assert outcome.remark, outcome  # oneway requests too: the remark is what gets logged or counted
        if code not in SEND_CODES:
            return
        if outcome is None or outcome.code not in STORED:
            assert sent.after == sent.before, (code, outcome, "a refused send stored something")
            self.refused_oneway_sends += sent.oneway
            return
        assert sent.why is None, (code, outcome, f"stored a send that should be refused: {sent.why}")
        bodies = stored_bodies(self.broker, outcome)
        assert bodies in sent_bodies(sent.body), (code, outcome)
        self.stored.append((bodies, outcome))

    def one(self, code, ext, body, serialize_type, oneway, why: Optional[str] = None, pace: str = "settle") -> None:
        """A fuzz step: send, then per ``pace`` let everything run ("settle"), let the disk run but keep the
        request pending ("disk"), keep it pending ("wait"), or let SYNC_FLUSH waits time out first ("late")."""
        self.send(code, ext, body, serialize_type, oneway, why)
        if pace == "settle":
            self.settle()
        elif pace == "disk":
            self._run_disk()
        elif pace == "late":
            self.clock.advance(self.broker.store.config.sync_flush_timeout / 1000.0 + 1)
            self._collect()

    def read_back(self, broker: Optional[BrokerService] = None) -> None:
        for bodies, outcome in self.stored:
            assert stored_bodies(broker or self.broker, outcome) == bodies, outcome


_SEND_KEYS = {"group": ("producerGroup", "a"), "topic": ("topic", "b"), "default": ("defaultTopic", "c"),
              "default_queues": ("defaultTopicQueueNums", "d"), "queue": ("queueId", "e"), "sys_flag": ("sysFlag", "f"),
              "born": ("bornTimestamp", "g"), "flag": ("flag", "h"), "properties": ("properties", "i"),
              "reconsume": ("reconsumeTimes", "j"), "unit": ("unitMode", "k"), "max_reconsume": ("maxReconsumeTimes", "l"),
              "batch": ("batch", "m")}


def send_ext(code: int, **fields) -> Dict[str, str]:
    """A send header that stores in ``REFUSING`` but for ``fields`` (long keys for SEND_MESSAGE, short for V2)."""
    values = {"group": "P", "topic": REFUSING, "default": "TBW102", "default_queues": "4", "queue": "0",
              "sys_flag": "0", "born": str(int(T0 * 1000)), "flag": "0", "properties": "TAGS\x01a\x02",
              "reconsume": "0", "unit": "false", "max_reconsume": "16", "batch": "false"}
    values.update({k: str(v) for k, v in fields.items()})
    short = code != RequestCode.SEND_MESSAGE
    return {_SEND_KEYS[k][short]: v for k, v in values.items()}


def _batch(*members) -> bytes:
    return encode_batch([(0, body, props) for body, props in members])


#: Why a send must be refused → a strategy of (header fields, body) that make it so.
REFUSALS = {
    "invalid topic": st.tuples(st.sampled_from(["bad topic", "a/b", "t" * 128, "é", "a\x00b", ""]).map(
        lambda t: {"topic": t}), st.just(b"x")),
    "forbidden topic": st.tuples(st.sampled_from(sorted(NOT_ALLOWED_SEND_TOPICS)).map(lambda t: {"topic": t}),
                                 st.just(b"x")),
    "no topic and no default to create it from": st.just(({"topic": "NoSuchTopic", "default": "NoSuchDefault"}, b"x")),
    "queue out of range": st.tuples(st.integers(2, 2**31 - 1).map(lambda q: {"queue": q}), st.binary(max_size=8)),
    "read-only topic": st.just(({"topic": READ_ONLY}, b"x")),
    "body over maxMessageSize": st.tuples(st.just({}), st.integers(MAX_SIZE + 1, MAX_SIZE + 64).map(lambda n: b"b" * n)),
    "properties over 32767 bytes": st.just(({"properties": "k\x01" + "x" * 32800}, b"x")),
    "transactions rejected": st.just(({"properties": "TRAN_MSG\x01true\x02PGROUP\x01P\x02"}, b"x")),
    "batch body does not parse": st.tuples(st.just({"batch": "true"}), st.sampled_from(
        [b"\x00\x00\x00\x05", struct.pack(">iiiii", 1000, 0, 0, 0, 5) + b"x", struct.pack(">iiiii", 20, 0, 0, 0, -1)])),
    "batch member delayed": st.just(({"batch": "true"}, _batch((b"a", ""), (b"b", "DELAY\x013\x02")))),
    "batch member transactional": st.just(({"batch": "true"}, _batch((b"a", "TRAN_MSG\x01true\x02")))),
    "batch member over maxMessageSize": st.just(({"batch": "true"}, _batch((b"a", ""), (b"b" * (MAX_SIZE + 1), "")))),
    "batch to a retry topic": st.just(({"batch": "true", "topic": "%RETRY%G"}, _batch((b"a", "")))),
}


@st.composite
def refused_sends(draw):
    """(code, ext, body, serialization, oneway, why) of a send built to be refused, for one reason."""
    why = draw(st.sampled_from(sorted(REFUSALS)))
    fields, body = draw(REFUSALS[why])
    code = draw(st.sampled_from(sorted(SEND_CODES)))
    serialize_type = draw(st.sampled_from([SerializeType.JSON, SerializeType.ROCKETMQ]))
    return code, send_ext(code, **fields), body, serialize_type, draw(st.booleans()), why


def with_refused_sends(codes, headers=ext_fields):
    """Requests for ``codes`` (why None) and, about as often, sends built to be refused."""
    return st.one_of(requests(codes, headers).map(lambda r: (*r, None)), refused_sends())


def create_topic(peer: Peer, broker: BrokerService, topic: str, queues: int, perm: int) -> None:
    ext = {"topic": topic, "defaultTopic": "TBW102", "readQueueNums": str(queues), "writeQueueNums": str(queues),
           "perm": str(perm), "topicFilterType": "SINGLE_TAG"}
    [resp] = answer(peer, broker, frame(RequestCode.UPDATE_AND_CREATE_TOPIC, ext, b"", SerializeType.JSON, False,
                                        next(_opaques)))
    assert resp.code == ResponseCode.SUCCESS, resp.remark


def fuzz_broker(broker: BrokerService, session: Session, sent, max_examples: int, codes=None, **kw) -> None:
    if codes is None:
        codes = sorted(broker.dispatcher.processors) + [RequestCode.INVOKE_BROKER_TO_GET_CONSUMER_STATUS, 9999, -1]
    fuzz(codes, session.one, max_examples, after=session.settle, **kw)
    read_back(broker, sent)
    session.read_back()


def test_no_request_crashes_or_corrupts_the_broker(broker):
    session = Session(broker, broker.factory)
    sent = store_known(session.peer, broker)
    fuzz_broker(broker, session, sent, 1500)
    # the fuzz exercised both sides of the send properties
    assert session.stored and session.refused_oneway_sends


def test_the_vip_port_holds_the_same_properties(broker):
    main, vip = broker.factories
    session = Session(broker, vip)
    sent = store_known(session.peer, broker)
    fuzz_broker(broker, session, sent, 400)
    assert session.stored and session.refused_oneway_sends
    # pulls are the one code the VIP port does not serve, as in RocketMQ
    ext = {"consumerGroup": "G", "topic": KNOWN, "queueId": "0", "queueOffset": "0", "maxMsgNums": "1",
           "sysFlag": "0", "commitOffset": "0", "suspendTimeoutMillis": "0", "subVersion": "0"}
    [resp] = answer(session.peer, broker, frame(RequestCode.PULL_MESSAGE, ext, b"", SerializeType.JSON, False, 7))
    assert (resp.opaque, resp.code) == (7, ResponseCode.REQUEST_CODE_NOT_SUPPORTED), resp
    # the main port serves it (whatever it answers: the fuzz may have unregistered the consumer)
    [resp] = answer(Peer(main), broker, frame(RequestCode.PULL_MESSAGE, ext, b"", SerializeType.JSON, False, 8))
    assert resp.opaque == 8 and resp.code != ResponseCode.REQUEST_CODE_NOT_SUPPORTED, resp


def test_refused_sends_store_nothing_oneway_or_not(tmp_path):
    broker = in_memory_broker(tmp_path, **REFUSING_CONFIG)
    try:
        session = Session(broker, broker.factory)
        sent = store_known(session.peer, broker)
        fuzz_broker(broker, session, sent, 300, request=with_refused_sends(sorted(broker.dispatcher.processors)))
        assert session.refused_oneway_sends > 50
    finally:
        broker.stopService()


def test_sync_flush_sends_get_one_answer_each_whatever_the_disk_does(tmp_path):
    disk = SlowDisk()
    disk.immediate = True  # the known messages: stored the ordinary way
    broker = in_memory_broker(tmp_path, run_blocking=disk, flushDiskType="SYNC_FLUSH", **REFUSING_CONFIG)
    try:
        session = Session(broker, broker.factory, disk)
        sent = store_known(session.peer, broker)
        disk.immediate = False
        send_codes = sorted(SEND_CODES) * 4  # mostly sends, so that several wait on one fsync
        codes = send_codes + sorted(broker.dispatcher.processors)
        fuzz_broker(broker, session, sent, 400, pace=st.sampled_from(["wait", "wait", "disk", "late", "settle"]),
                    request=with_refused_sends(codes, near_valid_ext_fields))
        assert session.stored and session.refused_oneway_sends

        # Stopping with sends still waiting for their fsync: no failure logged, no request answered twice.
        v2 = RequestCode.SEND_MESSAGE_V2
        for i in range(4):
            session.send(v2, send_ext(v2, topic="TopicTest", queue=i), b"waiting-%d" % i, SerializeType.JSON, i == 1)
        with LogCapture() as logs:
            stopped = broker.stopService()
            session._run_disk()  # the stop's own flush runs on the slow disk too
        assert stopped.called and not logs.failures, logs.describe()
        answered = [opaque for opaque, out in session.answers.items() for _ in out]
        assert len(answered) == len(set(answered)) <= 3
    finally:
        disk.immediate = True
        disk.run()
        if broker.running:
            broker.stopService()
    # Everything a send was told is stored reads back after a restart.
    again = in_memory_broker(tmp_path, run_blocking=disk, flushDiskType="SYNC_FLUSH")
    try:
        read_back(again, sent)
        session.read_back(again)
    finally:
        again.stopService()


def test_a_slave_refuses_every_send_and_stores_nothing(tmp_path):
    master = in_memory_broker(tmp_path)
    sent = store_known(Peer(master.factory), master)
    master.stopService()
    # the same store and config files, now serving as the slave of some master
    broker = in_memory_broker(tmp_path, brokerRole="SLAVE", brokerId="1")
    try:
        assert broker.config.is_slave and broker.config.broker_id == 1
        session = Session(broker, broker.factory, slave=True)
        end = session.end
        codes = sorted(STORING_CODES) + sorted(broker.dispatcher.processors)
        fuzz_broker(broker, session, sent, 400, codes)
        assert session.end == end and not session.stored
        # and it still serves what it holds: a pull (subscription in the request, commit bit set) reads a message
        ext = {"consumerGroup": "G", "topic": KNOWN, "queueId": "0", "queueOffset": "0", "maxMsgNums": "1",
               "sysFlag": "5", "commitOffset": "1", "suspendTimeoutMillis": "0", "subscription": "*",
               "subVersion": "0", "expressionType": "TAG"}
        [resp] = answer(session.peer, broker, frame(RequestCode.PULL_MESSAGE, ext, b"", SerializeType.JSON, False, 9))
        assert resp.code == ResponseCode.SUCCESS, resp
        assert [m.body for m in decode_messages(resp.body)] == [sent[0][2]]
    finally:
        broker.stopService()
