"""Random key/value bodies for UPDATE_BROKER_CONFIG and UPDATE_NAMESRV_CONFIG, through the real protocol.

Properties: every update gets one answer; an accepted one leaves each key it named within its declared range
(and runtime range), and saves nothing a restart would refuse; a refused one changes nothing and saves nothing;
nothing is logged as a failure; the service keeps serving (the broker answers and stores a send, its timers run;
the NameServer keeps a broker that registers every 30 s, whatever was accepted).
"""

from __future__ import annotations

import itertools
import math
import os

import attr
from hypothesis import strategies as st
from twisted.internet.testing import MemoryReactorClock

from mq.broker.config import ALIASES, KNOWN_KEYS, RUNTIME_KEYS, BrokerConfig, layered_config, runtime_config_path
from mq.broker.service import BrokerService
from mq.client.simple import send_request
from mq.common.config import Range
from mq.common.properties import format_properties
from mq.namesrv.config import NamesrvConfig
from mq.namesrv.service import NamesrvService
from mq.remoting.codes import RequestCode, ResponseCode, SerializeType
from mq.remoting.command import RemotingCommand
from mq.remoting.serialization import encode_command
from tests.robustness.harness import Peer, check_answer, frame, fuzz
from tests.robustness.test_broker_fuzz import in_memory_broker
from tests.robustness.test_namesrv_fuzz import register_known, route

_opaques = itertools.count(1000)
FIELDS = {key: attr.fields_dict(BrokerConfig)[name] for key, name in ALIASES.items() if name != "extra"}
NAMESRV_FIELDS = NamesrvConfig.by_key()


def _near(bounds: Range):
    """Values on and around a range's ends, and anywhere in it."""
    ends = [v for v in (bounds.low, bounds.high) if v is not None]
    around = [e + d for e in ends for d in (-1, 0, 1)]
    inside = st.integers(int(bounds.low or 0), int(bounds.high if bounds.high is not None else 10**9))
    return st.one_of(st.sampled_from(around).map(lambda v: str(int(v)) if float(v).is_integer() else str(v)),
                     inside.map(str))


def values_for(field):
    common = st.sampled_from(["", "0", "-1", "1", "true", "FALSE", "nan", "inf", "1e3", "0x10", " 7 ", "1_000",
                              str(2**31), str(2**63), "-" + "9" * 30, "10.5", "ASYNC_MASTER", "a;b"])
    choices = [common, st.integers(-(2**40), 2**40).map(str), st.text(max_size=8)]
    for bounds in (field.metadata.get("range"), field.metadata.get("runtime")):
        if isinstance(bounds, Range):
            choices += [_near(bounds)] * 3
    return st.one_of(choices)


def body(fields, keys):
    """A java.util.Properties text of 1-3 keys (mostly runtime ones), now and then bytes that are not text."""
    entry = st.one_of(st.sampled_from(sorted(keys)), st.sampled_from(sorted(fields)), st.text(max_size=6))
    pairs = st.lists(entry.flatmap(lambda k: st.tuples(st.just(k), values_for(fields[k]) if k in fields
                                                       else st.text(max_size=6))), min_size=1, max_size=3)
    text = pairs.map(lambda kv: format_properties(dict(kv)).encode("utf-8"))
    return st.one_of(text, text, text, st.binary(max_size=20))


def assert_within(field, key: str, value) -> None:
    for bounds in (field.metadata.get("range"), field.metadata.get("runtime")):
        if isinstance(bounds, Range) and isinstance(value, (int, float)) and not isinstance(value, bool):
            assert math.isfinite(value) and (bounds.low is None or value >= bounds.low), (key, value, bounds)
            assert bounds.high is None or value <= bounds.high, (key, value, bounds)


def update(peer: Peer, code: int, data: bytes) -> RemotingCommand:
    opaque = next(_opaques)
    peer.feed(frame(code, None, data, SerializeType.JSON, False, opaque))
    out = peer.responses()
    check_answer(out, opaque, SerializeType.JSON, answered=True)
    return out[0]


def saved_text(broker: BrokerService):
    path = runtime_config_path(broker.config.store_path_root_dir)
    return open(path).read() if os.path.exists(path) else None


def test_broker_config_updates_keep_every_value_in_range(tmp_path):
    broker = in_memory_broker(tmp_path)
    peer = Peer(broker.factory)
    root = broker.config.store_path_root_dir
    client = Peer(broker.factory, port=40001)
    client.feed(encode_command(send_request("FuzzT", b"x", queue_id=0)))  # the topic exists whatever the fuzz sets
    assert [r.code for r in client.responses()] == [ResponseCode.SUCCESS]

    def one(data: bytes) -> None:
        before, saved_before = broker.config.to_properties(), saved_text(broker)
        r = update(peer, RequestCode.UPDATE_BROKER_CONFIG, data)
        if r.code != ResponseCode.SUCCESS:
            assert r.code == ResponseCode.SYSTEM_ERROR and r.remark
            assert broker.config.to_properties() == before and saved_text(broker) == saved_before, r.remark
        else:
            for key in RUNTIME_KEYS:
                assert_within(FIELDS[key], key, getattr(broker.config, FIELDS[key].name))
            assert broker.store.config.max_message_size == broker.config.max_message_size
            # what was saved starts a broker again (a bad saved value would stop every later start)
            restarted, _ = layered_config({}, {"storePathRootDir": root})
            restarted.check()
        # still serving: timers run at their (possibly new) intervals, a send gets an answer, an admin code too
        broker.reactor.advance(1)
        client.feed(encode_command(send_request("FuzzT", b"x" * 100, queue_id=0)))
        [sent] = client.responses()
        assert sent.code in (ResponseCode.SUCCESS, ResponseCode.NO_PERMISSION), sent.remark
        assert update(peer, RequestCode.GET_BROKER_RUNTIME_INFO, b"").code == ResponseCode.SUCCESS

    try:
        fuzz([], one, max_examples=400, request=body(FIELDS, RUNTIME_KEYS).map(lambda b: (b,)))
        assert set(FIELDS) <= KNOWN_KEYS
    finally:
        broker.stopService()


def test_namesrv_config_updates_keep_every_value_in_range_and_brokers_alive(tmp_path):
    clock = MemoryReactorClock()
    svc = NamesrvService(NamesrvConfig(listen_port=0, kv_config_path=str(tmp_path / "kv.json")), clock)
    svc.startService()
    peer = Peer(svc.factory)
    runtime = {k for k, f in NAMESRV_FIELDS.items() if f.metadata.get("runtime")}

    def one(data: bytes) -> None:
        before = svc.config.as_properties()
        r = update(peer, RequestCode.UPDATE_NAMESRV_CONFIG, data)
        if r.code != ResponseCode.SUCCESS:
            assert r.code == ResponseCode.SYSTEM_ERROR and r.remark
            assert svc.config.as_properties() == before, r.remark
        for key, field in NAMESRV_FIELDS.items():
            if key in runtime:
                assert_within(field, key, getattr(svc.config, field.name))
        assert svc._scan.running and svc._scan.interval == svc.config.scan_interval
        # a broker that registers every 30 s stays in the routes whatever was accepted
        for _ in range(3):
            register_known(peer)
            clock.advance(30)
            assert route(peer)

    try:
        fuzz([], one, max_examples=300, request=body(NAMESRV_FIELDS, runtime).map(lambda b: (b,)))
    finally:
        svc.stopService()
