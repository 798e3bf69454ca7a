"""The one-pass batch path (mq/broker/processor/batch_shape.py) stores and answers exactly what the general path
does: the same batches, random and edge-case member properties included, through two in-process brokers (one
with the path turned off) leave byte-identical CommitLogs, ConsumeQueues and IndexFiles, the same answers and
the same arrival events; and the path is taken for the batches it is meant for."""

from __future__ import annotations

import os
import random

import pytest_twisted
from twisted.internet.testing import MemoryReactorClock

from mq.broker.processor.batch_shape import derive_shape, split
from mq.broker.processor.send import stored_properties
from mq.broker.service import BrokerService
from mq.client.simple import send_header
from mq.common.message import properties_to_string
from mq.common.message_batch import encode_batch
from mq.remoting.codes import RequestCode
from mq.remoting.command import RemotingCommand
from tests.broker.conftest import broker_config

NOW = 1_800_000_000_000
UNIQ = "UNIQ_KEY"


class _Channel:
    peer = "127.0.0.1:50000"

    def __init__(self):
        self.attributes = {}


def _uniq(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.8:
        return "7F0000010A2B18B4AAC2%08X%04X" % (rng.randrange(1 << 32), rng.randrange(1 << 16))
    return rng.choice(["k", "é-ü", "a\x01b", "x y", "7F00", "\x03", "-", "UNIQ_KEY"])


def _props_text(rng: random.Random, uniq: str) -> str:
    """A member's properties: mostly what clients send (UNIQ_KEY, WAIT, TAGS), sometimes odd."""
    if rng.random() < 0.5:
        items = [("TAGS", "tag")] if rng.random() < 0.5 else []
        items += [(UNIQ, uniq), ("WAIT", "true")]
        return "".join(f"{k}\x01{v}\x02" for k, v in items)
    items = []
    keys = ["WAIT", "TAGS", "a", "NOWAIT", "XUNIQ_KEY", "KEYS", "DELAY", "TRAN_MSG", "CLUSTER"]
    for k in rng.sample(keys, rng.choice((0, 1, 1, 2, 2, 3))):
        items.append((k, rng.choice(["true", "false", "", "0", "3", "tag", "v\x01w", "é", "WAIT\x01x"])))
    if rng.random() < 0.9:
        items.insert(rng.randrange(len(items) + 1), (UNIQ, uniq))
    if rng.random() < 0.05:
        items.append((UNIQ, "second"))
    text = "".join(f"{k}\x01{v}\x02" for k, v in items)
    if rng.random() < 0.2:
        text = text[:-1]
    if rng.random() < 0.03:
        text = "\x02" + text
    return text


def _batch(rng: random.Random):
    """(header properties, batch body): members that share a shape but for their UNIQ_KEY, often one odd one."""
    n = rng.choice((1, 2, 5, 32))
    seed = rng.randrange(1 << 30)
    odd = rng.randrange(n) if rng.random() < 0.3 else -1
    members = []
    for i in range(n):
        r = rng if i == odd else random.Random(seed)  # the same choices for every member but an odd one
        text = _props_text(r, _uniq(rng))
        size = rng.choice((0, 1, 16, 128, 1024, 1025)) if i == odd else rng.choice((0, 1, 16, 128, 128, 1024))
        body = bytes(rng.randrange(256) for _ in range(size))
        members.append((rng.choice((0, 0, 7)), body, text))
    body = encode_batch(members)
    if rng.random() < 0.03:
        body = body[:-1]  # malformed
    if rng.random() < 0.02:
        body = body.replace("é".encode(), b"\xff")  # not UTF-8 (where there is an é)
    header_props = rng.choice(["WAIT\x01true\x02", "", "WAIT\x01false", "TAGS\x01bt\x02WAIT\x01true",
                               "UNIQ_KEY\x01batch", "KEYS\x01k1 k2", "DELAY\x013"])
    return header_props, body


def _broker(tmp_path, name):
    config = broker_config(tmp_path / name, listenPort=10911, messageIndexEnable="true", maxMessageSize=1024,
                           mappedFileSizeCommitLog=str(1 << 20))
    b = BrokerService(config, MemoryReactorClock())
    b.startService()
    b.store.now_ms = lambda: NOW
    arrivals = []
    b.store.message_arriving_listener = lambda *a: arrivals.append(a)
    return b, arrivals


def _files(root):
    out = {}
    for sub in ("commitlog", "consumequeue", "index"):
        top = os.path.join(root, sub)
        for dirpath, _dirs, names in os.walk(top):
            for i, name in enumerate(sorted(names)):  # IndexFiles are named by the wall clock: by order instead
                key = (sub, os.path.relpath(dirpath, top), i if sub == "index" else name)
                with open(os.path.join(dirpath, name), "rb") as f:
                    out[key] = f.read()
    return out


def test_the_one_pass_path_is_the_general_path(tmp_path):
    fast, fast_arrivals = _broker(tmp_path, "fast")
    general, general_arrivals = _broker(tmp_path, "general")
    general_processor = general.dispatcher.processors[RequestCode.SEND_BATCH_MESSAGE].__self__
    general_processor.uniform_batches = False
    taken = []
    put = fast.store.put_uniform_batch_now
    fast.store.put_uniform_batch_now = lambda *a: taken.append(1) or put(*a)
    rng = random.Random(5)
    try:
        for i in range(600):
            header_props, body = _batch(rng)
            header = send_header("Shape", i % 4, {}, batch=True)
            ext = header.encode_short()
            ext["i"] = header_props
            answers = []
            for b in (fast, general):
                request = RemotingCommand.request(RequestCode.SEND_BATCH_MESSAGE, dict(ext), body)
                request.opaque = i
                r = b.dispatcher.processors[RequestCode.SEND_BATCH_MESSAGE](request, _Channel())
                answers.append((r.code, r.remark, r.ext_fields, r.body))
            assert answers[0] == answers[1], (i, header_props, body)
        assert fast_arrivals == general_arrivals
        assert len(taken) > 200, len(taken)  # the path is taken for most of these batches
        assert _files(fast.config.store_path_root_dir) == _files(general.config.store_path_root_dir)
    finally:
        fast.stopService()
        general.stopService()


def test_java_client_batches_take_the_path():
    """Members as the Java client writes them (UNIQ_KEY then WAIT): one shape; each member's stored properties
    are its own UNIQ_KEY, then the batch's properties and CLUSTER, without WAIT."""
    suffix = properties_to_string({"CLUSTER": "c"})
    texts = [f"UNIQ_KEY\x017F000001{i:024X}\x02WAIT\x01true\x02" for i in range(3)]
    body = encode_batch([(0, b"m%d" % i, t) for i, t in enumerate(texts)])
    shape = derive_shape(texts[0], {"CLUSTER": "c"}, suffix, stored_properties)
    assert shape is not None and shape.properties == {"WAIT": "true", "CLUSTER": "c"}
    batch = split(body, shape, 1000)
    uniq, records = batch.uniq_keys, batch.records
    assert uniq == [t[9:41] for t in texts] and batch.largest_body == 2 and batch.properties is shape.properties
    assert [r[2] for r in records] == [f"UNIQ_KEY\x01{u}\x02CLUSTER\x01c".encode() for u in uniq]
    assert [(r[0], r[1]) for r in records] == [(0, b"m0"), (0, b"m1"), (0, b"m2")]
    assert split(body, shape, 1) is None  # a body over the limit: the general path refuses it
    odd = encode_batch([(0, b"m", texts[0]), (0, b"m", "TAGS\x01x\x02" + texts[1])])
    assert split(odd, shape, 1000) is None


def test_shapes_it_does_not_take():
    suffix = "CLUSTER\x01c"
    for text in ("WAIT\x01true\x02", "UNIQ_KEY\x01\x02WAIT\x01true", "XUNIQ_KEY\x01a\x02", "UNIQ_KEY\x01a\x01b\x02",
                 "UNIQ_KEY\x01a\x02UNIQ_KEY\x01b\x02", "UNIQ_KEY\x01a\x02KEYS\x01k\x02", "UNIQ_KEY\x01a\x02DELAY\x012",
                 "TRAN_MSG\x01TRUE\x02UNIQ_KEY\x01a"):
        assert derive_shape(text, {"CLUSTER": "c"}, suffix, stored_properties) is None, text
    assert derive_shape("UNIQ_KEY\x01a", {"KEYS": "k", "CLUSTER": "c"}, suffix, stored_properties) is None
    assert derive_shape("UNIQ_KEY\x01a", {"UNIQ_KEY": "b", "CLUSTER": "c"}, suffix, stored_properties) is None


@pytest_twisted.inlineCallbacks
def test_sync_flush_waits_for_a_one_pass_batch(make_broker, tmp_path):
    """Under SYNC_FLUSH a batch on this path is answered only after its flush (a Deferred), as on the general one;
    with the batch's WAIT=false at once."""
    from twisted.internet import defer

    b = make_broker(flushDiskType="SYNC_FLUSH")
    processor = b.dispatcher.processors[RequestCode.SEND_BATCH_MESSAGE]
    taken = []
    put = b.store.put_uniform_batch_now
    b.store.put_uniform_batch_now = lambda *a: taken.append(1) or put(*a)
    texts = [f"UNIQ_KEY\x017F000001{i:024X}\x02WAIT\x01true\x02" for i in range(4)]
    body = encode_batch([(0, b"m%d" % i, t) for i, t in enumerate(texts)])
    for wait, offset in (("true", "0"), ("false", "4")):
        ext = send_header("SyncShape", 0, {}, batch=True).encode_short()
        ext["i"] = f"WAIT\x01{wait}\x02"
        r = processor(RemotingCommand.request(RequestCode.SEND_BATCH_MESSAGE, ext, body), _Channel())
        assert isinstance(r, defer.Deferred) == (wait == "true")
        r = yield defer.maybeDeferred(lambda r=r: r)
        assert r.code == 0 and r.ext_fields["queueOffset"] == offset and len(r.ext_fields["msgId"].split(",")) == 4
    assert len(taken) == 2
