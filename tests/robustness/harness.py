"""Drive in-process services through their real ``RemotingProtocol`` with adversarial requests.

Requests are framed here by hand, so a JSON header can carry ``extFields`` values of any JSON type (numbers,
booleans, lists, objects, null), as the C++ and Node clients send some of them; the ROCKETMQ serialization only
carries strings. Responses are read back from an in-memory transport.
"""

from __future__ import annotations

import importlib
import json
import struct
from typing import Callable, Dict, List, Optional

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher

from mq.common.message_batch import encode_batch
from mq.remoting.codes import FLAG_ONEWAY, FLAG_RESPONSE, SerializeType
from mq.remoting.command import RemotingCommand
from mq.remoting.header import CommandHeader
from mq.remoting.serialization import decode_command, encode_command

for _module in ("mq.common.broker_headers", "mq.common.namesrv_headers"):
    importlib.import_module(_module)


def _all_header_classes(cls=CommandHeader) -> List[type]:
    out = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_header_classes(sub))
    return out


def _plausible(wire: str, kind: type) -> str:
    if kind is int:
        return "0"
    if kind is bool:
        return "false"
    low = wire.lower()
    for part, value in (("defaulttopic", "TBW102"), ("topic", "TopicTest"), ("group", "G"), ("addr", "127.0.0.1:10911"),
                        ("host", "127.0.0.1:10911"), ("client", "c1"), ("properties", "TAGS\x01a\x02"),
                        ("brokername", "broker-t"), ("cluster", "DefaultCluster"), ("key", "k"),
                        ("msgid", "7F00000100002A9F0000000000000000"), ("subscription", "*"),
                        ("expressiontype", "TAG")):
        if part in low:
            return value
    return "x"


def plausible_ext() -> Dict[str, str]:
    """One ``extFields`` holding every key (long and short) any typed header declares, each with a value
    that parses, so that every processor's header decodes and the fuzz gets past the header checks."""
    ext: Dict[str, str] = {}
    for cls in _all_header_classes():
        for a in getattr(cls, "__attrs_attrs__", ()):
            meta = a.metadata
            value = _plausible(meta["wire"], meta["kind"])
            for key in (meta["wire"], meta.get("short")):
                if key and (key not in ext or meta["kind"] is int):
                    ext[key] = value
    return ext


PLAUSIBLE = plausible_ext()


# Names the fuzz should hit often enough to reach past the "unknown topic/group" checks.
NAMES = ["TopicTest", "TBW102", "%RETRY%G", "%DLQ%G", "G", "SCHEDULE_TOPIC_XXXX", "RMQ_SYS_TRANS_HALF_TOPIC",
         "DefaultCluster", "broker-t", "broker-a", "127.0.0.1:10911", "10.0.0.1:10911", "*", "a || b", "a > 1",
         "TAG", "SQL92", "TAG", "ORDER_TOPIC_CONFIG", "CLUSTER", "0A000001000027AF0000000000000000",
         "UNIQ_KEY\x01k\x02TAGS\x01t\x02", "DELAY\x013\x02", "TRAN_MSG\x01true\x02PGROUP\x01P\x02",
         "REPLY_TO_CLIENT\x01c\x02CORRELATION_ID\x01x\x02", "WAIT\x01false\x02TAGS\x01w\x02"]

ext_values = st.one_of(
    st.sampled_from(["", "0", "1", "-1", "true", "false", "TRUE", " 1", "1.5", "0x10", "null", "NaN"]),
    st.sampled_from(NAMES),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from([str(2**31), str(2**31 - 1), str(-(2**31)), str(2**63), str(2**63 - 1), str(-(2**63)),
                     "9" * 40]),
    st.text(max_size=20),
    st.text(alphabet="é漢\u0000\x01\x02\ud7ff\U0001f600", max_size=8),
    st.integers(min_value=200, max_value=3000).map(lambda n: "x" * n),
)
# What a JSON header can carry besides strings (normalised by the decoder, but still "wrong types").
json_ext_values = st.one_of(
    ext_values,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _mutate(changes):
    ext = dict(PLAUSIBLE)
    for key, value in changes:
        if value is _DROP:
            ext.pop(key, None)
        else:
            ext[key] = value
    return ext


_DROP = object()


def _mutated(json_types: bool, max_changes: int):
    values = json_ext_values if json_types else ext_values
    changes = st.tuples(st.sampled_from(sorted(PLAUSIBLE)), st.one_of(st.just(_DROP), values))
    return st.lists(changes, max_size=max_changes).map(_mutate)


def ext_fields(json_types: bool):
    """Mostly a header that decodes everywhere with a few keys dropped or given adversarial values; now and
    then no header, or random keys."""
    values = json_ext_values if json_types else ext_values
    keys = sorted(PLAUSIBLE)
    return st.one_of(
        _mutated(json_types, 4),
        st.none(),
        st.dictionaries(st.one_of(st.sampled_from(keys), st.text(max_size=6)), values, max_size=6),
    )


def near_valid_ext_fields(json_types: bool):
    """A header that decodes everywhere, but for at most one key dropped or given an adversarial value: for
    tests that need most requests to get past the header checks (sends that store)."""
    return _mutated(json_types, 1)


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _valid_bodies() -> List[bytes]:
    heartbeat = {
        "clientID": "c1",
        "consumerDataSet": [{"groupName": "G", "consumeType": "CONSUME_PASSIVELY", "messageModel": "CLUSTERING",
                             "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET", "unitMode": False,
                             "subscriptionDataSet": [{"topic": "TopicTest", "subString": "*", "tagsSet": [],
                                                      "codeSet": [], "subVersion": 1, "classFilterMode": False,
                                                      "expressionType": "TAG"}]}],
        "producerDataSet": [{"groupName": "P"}],
    }
    lock = {"consumerGroup": "G", "clientId": "c1",
            "mqSet": [{"topic": "TopicTest", "brokerName": "broker-t", "queueId": 0}]}
    group = {"groupName": "G", "consumeEnable": True, "retryQueueNums": 1, "retryMaxTimes": 16,
             "brokerId": 0, "whichBrokerWhenConsumeSlowly": 1}
    register = {"topicConfigSerializeWrapper": {"dataVersion": {"counter": 1, "timestamp": 1},
                                                "topicConfigTable": {"T": {"topicName": "T", "readQueueNums": 4,
                                                                           "writeQueueNums": 4, "perm": 6}}},
                "filterServerList": []}
    return [json.dumps(x).encode() for x in (heartbeat, lock, group, register)] + [
        encode_batch([(0, b"one", "TAGS\x01a\x02"), (0, b"two", "")]),
        b"brokerPermission=6\nflushDiskType=ASYNC_FLUSH\n",
        b'{"offsetTable":{}}',
    ]


VALID_BODIES = _valid_bodies()
HEARTBEAT, LOCK, GROUP, REGISTER = VALID_BODIES[:4]

bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=64),
    st.sampled_from(VALID_BODIES),
    st.tuples(st.sampled_from(VALID_BODIES), st.integers(min_value=0, max_value=400)).map(lambda t: t[0][: t[1]]),
    st.sampled_from([_nested(5000), b'{"a":' * 3000, b"{}", b"[]", b"null", b"1", b'"s"', b"\xff\xfe",
                     struct.pack(">iiiqi", 1 << 30, 0, 0, 0, 0), struct.pack(">i", -5) + b"x" * 20]),
    st.sampled_from(VALID_BODIES).map(lambda b: b.replace(b'"G"', b"7").replace(b"4", b"-4")),
)


def frame(code: int, ext: Optional[Dict[str, object]], body: bytes, serialize_type: int, oneway: bool,
          opaque: int, version: int = 409, language: str = "JAVA") -> bytes:
    flag = FLAG_ONEWAY if oneway else 0
    if serialize_type == SerializeType.JSON:
        header: Dict[str, object] = {"code": code, "flag": flag, "language": language, "opaque": opaque,
                                     "serializeTypeCurrentRPC": "JSON", "version": version}
        if ext is not None:
            header["extFields"] = ext
        raw = json.dumps(header).encode()
        return struct.pack(">iI", 4 + len(raw) + len(body), len(raw)) + raw + body
    cmd = RemotingCommand(code, opaque, flag, None, None if ext is None else {k: str(v) for k, v in ext.items()},
                          body, 0, version, SerializeType.ROCKETMQ)
    return encode_command(cmd)


class Peer:
    """One connection to a server factory over a StringTransport."""

    def __init__(self, factory, port: int = 40000) -> None:
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
        self.proto = factory.buildProtocol(self.transport.getPeer())
        self.proto.makeConnection(self.transport)

    def feed(self, data: bytes) -> None:
        self.proto.dataReceived(data)

    def take(self) -> List[RemotingCommand]:
        """Everything written to the peer since the last call, decoded."""
        data = self.transport.value()
        self.transport.clear()
        out, pos = [], 0
        while pos < len(data):
            (length,) = struct.unpack_from(">i", data, pos)
            out.append(decode_command(data[pos : pos + 4 + length]))
            pos += 4 + length
        return out

    def responses(self) -> List[RemotingCommand]:
        return [c for c in self.take() if c.flag & FLAG_RESPONSE]

    @property
    def closed(self) -> bool:
        return self.transport.disconnecting or getattr(self.transport, "disconnected", False)

    def close(self) -> None:
        self.proto.connectionLost(None)


class LogCapture:
    """Failures (tracebacks) and critical events logged while it is active."""

    def __init__(self) -> None:
        self.failures: List[dict] = []

    def __call__(self, event: dict) -> None:
        if "log_failure" in event:
            self.failures.append(event)

    def __enter__(self) -> "LogCapture":
        globalLogPublisher.addObserver(self)
        return self

    def __exit__(self, *exc) -> None:
        globalLogPublisher.removeObserver(self)

    def describe(self) -> str:
        return "\n".join(
            f"{e.get('log_format')} {e.get('code')}: {e['log_failure'].getTraceback()}" for e in self.failures
        )


@st.composite
def requests(draw, codes, headers=ext_fields):
    """(code, extFields, body, serialization, oneway) for one of ``codes``, extFields from ``headers``."""
    serialize_type = draw(st.sampled_from([SerializeType.JSON, SerializeType.ROCKETMQ]))
    return (
        draw(st.sampled_from(codes)),
        draw(headers(serialize_type == SerializeType.JSON)),
        draw(bodies),
        serialize_type,
        draw(st.booleans()),
    )


def check_answer(out: List[RemotingCommand], opaque: int, serialize_type: int, answered: bool) -> None:
    """The properties of one request's answer: exactly one, its opaque and serialization, a remark on errors."""
    if not answered:
        assert out == []
        return
    assert [r.opaque for r in out] == [opaque], out
    [resp] = out
    assert resp.serialize_type == serialize_type
    if resp.code != 0:
        assert resp.remark, resp
        # the remark says what was wrong, not which Python exception a processor hit
        assert "Error: " not in resp.remark and "Exception: " not in resp.remark, resp.remark


def fuzz(codes, one: Callable[..., None], max_examples: int = 1500, pace=None,
         after: Optional[Callable[[], None]] = None, headers=ext_fields, request=None) -> None:
    """Run ``one(code, ext, body, serialize_type, oneway)`` over short random sequences of requests for
    ``codes`` (deterministic, for CI), asserting that nothing was logged as a failure meanwhile.

    With ``pace`` (a strategy), a value drawn from it beside each request is passed to ``one`` as a last
    argument (how far the test lets time or the disk move on after that request); ``after()`` runs at the end
    of each sequence, inside the log capture. ``headers(json_types)`` gives the extFields strategy; ``request``,
    if given, replaces the whole request strategy (its tuples are ``one``'s arguments)."""
    if request is None:
        request = requests(codes, headers)
    if pace is not None:
        request = st.tuples(request, pace).map(lambda t: (*t[0], t[1]))

    @settings(max_examples=max_examples, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(request, min_size=1, max_size=4))
    def run(batch):
        with LogCapture() as logs:
            for args in batch:
                one(*args)
            if after is not None:
                after()
        assert not logs.failures, logs.describe()

    run()
