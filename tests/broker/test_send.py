"""Sends: the answer's header, batches, and every refusal with its response code and remark."""

from __future__ import annotations

import pytest_twisted

from mq.client.simple import send_header
from mq.common.message_batch import encode_batch
from mq.common.message_record import decode_messages
from mq.common.route import PERM_READ
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.command import RemotingCommand
from tests.support.processes import free_port


@pytest_twisted.inlineCallbacks
def test_send_answers_offset_id_queue_and_offset(client, addr, broker):
    r = yield client.send(addr, "SendT", b"hello", tags="a", keys="k1 k2", properties={"p": "v"}, queue_id=1)
    assert r.code == RC.SUCCESS
    ext = r.ext_fields
    assert set(ext) == {"msgId", "queueId", "queueOffset", "MSG_REGION", "TRACE_ON"}
    assert (ext["queueId"], ext["queueOffset"], ext["MSG_REGION"], ext["TRACE_ON"]) == ("1", "0", "DefaultRegion", "true")
    assert ext["msgId"].startswith("7F000001") and len(ext["msgId"]) == 32
    # auto-created from TBW102 with min(4, 8) queues, perm RW
    tc = broker.topic_config_manager.table["SendT"]
    assert (tc.read_queue_nums, tc.write_queue_nums, tc.perm) == (4, 4, 6)
    r = yield client.pull(addr, "g", "SendT", 1, 0)
    (msg,) = decode_messages(r.body)
    assert (msg.body, msg.tags, msg.keys, msg.properties["p"], msg.properties["CLUSTER"]) == (
        b"hello", "a", ["k1", "k2"], "v", "DefaultCluster")
    assert "WAIT" not in msg.properties
    assert msg.born_host[0] == "127.0.0.1" and msg.store_host == ("127.0.0.1", broker.config.listen_port)


@pytest_twisted.inlineCallbacks
def test_send_v1_and_random_queue(client, addr):
    r = yield client.send(addr, "SendV1", b"x", code=RequestCode.SEND_MESSAGE)
    assert r.code == RC.SUCCESS and 0 <= int(r.ext_fields["queueId"]) < 4


@pytest_twisted.inlineCallbacks
def test_batch_stores_each_message(client, addr):
    r = yield client.send_batch(addr, "SendB", [(b"m%d" % i, "t%d" % i) for i in range(5)], queue_id=2)
    assert r.code == RC.SUCCESS
    assert len(r.ext_fields["msgId"].split(",")) == 5 and r.ext_fields["queueOffset"] == "0"
    r = yield client.pull(addr, "g", "SendB", 2, 0)
    msgs = decode_messages(r.body)
    assert [(m.body, m.tags, m.queue_offset) for m in msgs] == [(b"m%d" % i, "t%d" % i, i) for i in range(5)]


@pytest_twisted.inlineCallbacks
def test_cpp_style_batch_flag_one_is_a_batch(client, addr):
    """C++ sends SEND_MESSAGE (10) with batch="1": stored as the separate messages (documented choice)."""
    header = send_header("SendCpp", 0, {}, batch=True).encode()
    header["batch"] = "1"
    body = encode_batch([(0, b"a", "TAGS\x01x\x02"), (0, b"b", "TAGS\x01y\x02")])
    r = yield client.remoting.invoke(addr, RemotingCommand.request(RequestCode.SEND_MESSAGE, header, body))
    assert r.code == RC.SUCCESS
    r = yield client.pull(addr, "g", "SendCpp", 0, 0)
    assert [(m.body, m.tags) for m in decode_messages(r.body)] == [(b"a", "x"), (b"b", "y")]


def _refusal(client, addr, ext_changes=None, body=b"x", code=RequestCode.SEND_MESSAGE_V2, props=None):
    header = send_header("SendR", 0, props or {})
    ext = header.encode_short() if code != RequestCode.SEND_MESSAGE else header.encode()
    ext.update(ext_changes or {})
    for k in [k for k, v in ext.items() if v is None]:
        del ext[k]
    return client.remoting.invoke(addr, RemotingCommand.request(code, ext, body))


@pytest_twisted.inlineCallbacks
def test_refusals_have_their_code_and_remark(client, addr, broker):
    cases = [
        ({"b": "bad topic!"}, b"x", RC.SYSTEM_ERROR, "characters outside"),
        ({"b": "T" * 128}, b"x", RC.SYSTEM_ERROR, "longer than 127"),
        ({"b": ""}, b"x", RC.SYSTEM_ERROR, "topic is empty"),
        ({"b": "SCHEDULE_TOPIC_XXXX"}, b"x", RC.NO_PERMISSION, "is forbidden"),
        ({"e": "99"}, b"x", RC.SYSTEM_ERROR, "queueId[99] is illegal"),
        ({"b": "SendR2", "c": "NO_SUCH_DEFAULT"}, b"x", RC.TOPIC_NOT_EXIST, "not exist"),
        ({}, b"x" * (4 * 1024 * 1024 + 1), RC.MESSAGE_ILLEGAL, "over the maximum of 4194304"),
        ({"i": "k\x01" + "v" * 40000}, b"x", RC.MESSAGE_ILLEGAL, "properties are 40002 bytes"),
        ({"a": None}, b"x", RC.SYSTEM_ERROR, "'a' is missing"),
        ({"e": "zero"}, b"x", RC.SYSTEM_ERROR, "'e' is not an integer"),
        ({"m": "true"}, b"\x00\x00\x00\x05", RC.MESSAGE_ILLEGAL, "batch body is malformed"),
        # numbers the stored record cannot hold: refused as Java's parseInt/parseLong refuse them
        ({"h": str(2**31)}, b"x", RC.SYSTEM_ERROR, "'h' is out of range for an int"),
        ({"f": "-2147483649"}, b"x", RC.SYSTEM_ERROR, "'f' is out of range for an int"),
        ({"j": "9" * 30}, b"x", RC.SYSTEM_ERROR, "'j' is out of range for an int"),
        ({"g": str(2**63)}, b"x", RC.SYSTEM_ERROR, "'g' is out of range for a long"),
    ]
    before = broker.store.commitlog.max_offset
    for changes, body, code, remark in cases:
        r = yield _refusal(client, addr, changes, body)
        assert (r.code, remark in (r.remark or "")) == (code, True), (changes, r.code, r.remark)
    assert broker.store.commitlog.max_offset == before  # nothing refused was stored
    broker.config.reject_transaction_message = True  # rejectTransactionMessage: half messages refused
    r = yield _refusal(client, addr, {"i": "TRAN_MSG\x01true"})
    assert (r.code, "transaction message is forbidden" in r.remark) == (RC.NO_PERMISSION, True)
    yield client.create_topic(addr, "SendRO", perm=PERM_READ)
    r = yield _refusal(client, addr, {"b": "SendRO"})
    assert (r.code, r.remark) == (RC.NO_PERMISSION, "the topic[SendRO] sending message is forbidden")


@pytest_twisted.inlineCallbacks
def test_no_auto_create_and_broker_permission(client, make_broker):
    b = make_broker(autoCreateTopicEnable="false", brokerPermission=4)
    r = yield client.send(b.config.broker_addr, "Whatever", b"x")
    assert r.code == RC.NO_PERMISSION and "sending message is forbidden" in r.remark
    b.config.broker_permission = 6
    r = yield client.send(b.config.broker_addr, "Whatever", b"x")
    assert r.code == RC.TOPIC_NOT_EXIST and "auto-creation from TBW102 is off" in r.remark


@pytest_twisted.inlineCallbacks
def test_slave_refuses_sends(client, make_broker):
    b = make_broker(brokerRole="SLAVE", brokerId=1)
    r = yield client.send(b.config.broker_addr, "T", b"x")
    assert r.code == RC.SERVICE_NOT_AVAILABLE and "slave" in r.remark


def test_stored_properties_drop_wait_and_append():
    from mq.broker.processor.send import stored_properties

    assert stored_properties("TAGS\x01a\x02WAIT\x01true\x02KEYS\x01k", {}, "CLUSTER\x01c") == \
        "TAGS\x01a\x02KEYS\x01k\x02CLUSTER\x01c"
    assert stored_properties("TAGS\x01a\x02WAIT\x01false", {}, "CLUSTER\x01c") == "TAGS\x01a\x02CLUSTER\x01c"
    assert stored_properties("", {}, "CLUSTER\x01c") == "CLUSTER\x01c"
    props = {"NOWAIT": "x", "WAIT": "true"}
    assert stored_properties("NOWAIT\x01x\x02WAIT\x01true", props, "C\x01c") == "NOWAIT\x01x\x02C\x01c"


class _Channel:
    peer = "127.0.0.1:50000"

    def __init__(self):
        self.attributes = {}


def _send_request(topic, wait=None, batch=False):
    props = {} if wait is None else {"WAIT": wait}
    header = send_header(topic, 0, props, batch=batch)
    body = encode_batch([(0, b"a", "WAIT\x01true\x02"), (0, b"b", "")]) if batch else b"x"
    code = RequestCode.SEND_BATCH_MESSAGE if batch else RequestCode.SEND_MESSAGE_V2
    return RemotingCommand.request(code, header.encode_short(), body)


@pytest_twisted.inlineCallbacks
def test_an_async_flush_send_is_answered_without_a_deferred(make_broker, tmp_path):
    """ASYNC_FLUSH and ASYNC_MASTER: the result is known when the put returns, so the processor returns the
    response itself (no Deferred per send); SYNC_FLUSH waits through a Deferred unless the message says
    WAIT=false. (The first send into a topic it creates waits for the topic's save.)"""
    from twisted.internet import defer

    from mq.common.route import TopicConfig

    b = make_broker()
    processor = b.dispatcher.processors[RequestCode.SEND_MESSAGE_V2]
    first = yield processor(_send_request("SyncAnswer"), _Channel())  # waits for the new topic's save
    assert first.code == RC.SUCCESS
    for batch in (False, True):
        r = processor(_send_request("SyncAnswer", batch=batch), _Channel())
        assert isinstance(r, RemotingCommand) and r.code == RC.SUCCESS
    r = processor(_send_request("Bad topic!"), _Channel())
    assert isinstance(r, RemotingCommand) and r.code == RC.SYSTEM_ERROR
    s = make_broker(flushDiskType="SYNC_FLUSH", storePathRootDir=tmp_path / "sync", listenPort=free_port())
    s.topic_config_manager.update(TopicConfig("SyncFlush", 4, 4, 6))
    processor = s.dispatcher.processors[RequestCode.SEND_MESSAGE_V2]
    r = processor(_send_request("SyncFlush", wait="false"), _Channel())
    assert isinstance(r, RemotingCommand) and r.code == RC.SUCCESS
    for batch in (False, True):
        d = processor(_send_request("SyncFlush", batch=batch), _Channel())
        assert isinstance(d, defer.Deferred)
        r = yield d
        assert r.code == RC.SUCCESS and r.ext_fields["queueOffset"] == ("1" if not batch else "2")


def test_send_checks_follow_every_topic_table_change(make_broker):
    """The per-topic send checks are remembered only until the topic table changes: an update, a deletion
    or a slave's copy of its master's table is seen by the next send; one entry per topic at most."""
    from mq.common.route import TopicConfig

    b = make_broker()
    topics = b.topic_config_manager
    processor = b.dispatcher.processors[RequestCode.SEND_MESSAGE_V2]

    def send(topic, queue_id=0):
        request = RemotingCommand.request(RequestCode.SEND_MESSAGE_V2,
                                          send_header(topic, queue_id, {}).encode_short(), b"x")
        return processor(request, _Channel())

    topics.update(TopicConfig("Cached", 4, 4, 6))
    assert send("Cached", 3).code == RC.SUCCESS
    topics.update(TopicConfig("Cached", 2, 2, 6))  # fewer queues
    r = send("Cached", 3)
    assert r.code == RC.SYSTEM_ERROR and "queueId[3] is illegal" in r.remark
    topics.update(TopicConfig("Cached", 4, 4, PERM_READ))  # read-only
    assert send("Cached", 1).code == RC.NO_PERMISSION
    b.config.auto_create_topic_enable = False
    topics.delete("Cached")
    assert send("Cached").code == RC.TOPIC_NOT_EXIST
    topics.update(TopicConfig("Cached", 4, 4, 6))
    assert send("Cached").code == RC.SUCCESS
    before = topics.generation
    topics.decode({"topicConfigTable": {"Cached": TopicConfig("Cached", 4, 4, PERM_READ).to_json()}})
    assert topics.generation > before  # a load or a slave's sync replaces configs: checks redone
    assert send("Cached").code == RC.NO_PERMISSION
    for i in range(20):
        send(f"Bad topic {i}!")  # refused by name: never remembered
    assert set(processor.__self__._checked) <= set(topics.table)


def test_sends_auto_create_topics_only_up_to_max_topic_nums(make_broker):
    """Each auto-created topic costs memory, a save of topics.json and a registration: a producer sending to
    made-up names must not grow the table without end. Retry and dead-letter topics are not counted (the groups
    have their own bound); the admin may still create."""
    from mq.common.route import TopicConfig

    b = make_broker(maxTopicNums="30")
    topics = b.topic_config_manager
    topics.run_blocking = None  # saved on the spot: every answer at once
    processor = b.dispatcher.processors[RequestCode.SEND_MESSAGE_V2]

    def send(topic):
        request = RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, send_header(topic, 0, {}).encode_short(), b"x")
        return processor(request, _Channel())

    for i in range(5):
        topics.create_system(f"%RETRY%g{i}", 1, save=False)
        topics.create_system(f"%DLQ%g{i}", 1, save=False)
    room = 30 - topics.plain_topics()
    assert room > 0
    for i in range(room):
        assert send(f"Made{i}").code == RC.SUCCESS
    r = send("OneTooMany")
    assert r.code == RC.TOPIC_NOT_EXIST and "the broker holds 30 topics (maxTopicNums=30)" in r.remark
    assert "OneTooMany" not in topics.table and topics.refused_auto_creations == 1
    topics.update(TopicConfig("ByTheAdmin", 4, 4, 6))  # the admin is not bound by it
    assert send("ByTheAdmin").code == RC.SUCCESS
    topics.delete("Made0")
    topics.delete("Made1")
    assert send("OneTooMany").code == RC.SUCCESS  # room again


def test_a_send_creates_a_retry_topic_only_for_a_subscription_group(make_broker):
    """A consumer's send-back fallback sends to %RETRY%<group> (created then, as RocketMQ does); made-up groups
    would create retry and dead-letter topics without end, outside maxTopicNums and the groups' bound."""
    from mq.broker.subscription.group import SubscriptionGroupConfig

    b = make_broker()
    processor = b.dispatcher.processors[RequestCode.SEND_MESSAGE_V2]

    def send(topic):
        request = RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, send_header(topic, 0, {}).encode_short(), b"x")
        return processor(request, _Channel())

    for made_up in ("%RETRY%madeUp", "%DLQ%madeUp"):
        r = send(made_up)
        assert r.code == RC.TOPIC_NOT_EXIST and "no subscription group madeUp for its retry or dead" in r.remark
        assert made_up not in b.topic_config_manager.table
    b.subscription_group_manager.table["realGroup"] = SubscriptionGroupConfig("realGroup")
    for real in ("%RETRY%realGroup", "%DLQ%realGroup"):
        assert send(real).code == RC.SUCCESS
        tc = b.topic_config_manager.table[real]
        assert (tc.write_queue_nums, tc.perm) == (1, 6)


def test_a_topic_a_send_creates_is_saved_off_the_reactor_and_the_answer_waits_for_it(make_broker):
    """The reactor no longer encodes and fsyncs topics.json per created topic; the send into it is answered
    once the topic is on disk (so a topic a producer was told it wrote into survives a crash), and one write
    takes every topic created meanwhile."""
    from twisted.internet import defer

    b = make_broker()
    topics = b.topic_config_manager
    processor = b.dispatcher.processors[RequestCode.SEND_MESSAGE_V2]
    writes = []

    def run_blocking(write):
        d = defer.Deferred()
        writes.append((write, d))
        return d

    topics.run_blocking = run_blocking

    def send(topic):
        request = RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, send_header(topic, 0, {}).encode_short(), b"x")
        return processor(request, _Channel())

    first = send("Fresh1")
    assert isinstance(first, defer.Deferred) and not first.called and len(writes) == 1
    again, second = send("Fresh1"), send("Fresh2")  # into the unsaved topic; another one meanwhile
    assert not again.called and not second.called and len(writes) == 1  # one write at a time
    write, d = writes[0]
    write()
    d.callback(None)
    assert first.called and again.called and not second.called  # Fresh1 is on disk; Fresh2 waits for the next
    assert first.result.code == RC.SUCCESS and again.result.code == RC.SUCCESS
    assert "Fresh1" in open(topics.path).read() and "Fresh2" not in open(topics.path).read()
    write, d = writes[1]
    write()
    d.callback(None)
    assert second.result.code == RC.SUCCESS and "Fresh2" in open(topics.path).read()
    assert send("Fresh1").code == RC.SUCCESS  # saved: answered at once
    # a failed write: the sends are answered (their messages are stored), the table saved again later
    third = send("Fresh3")
    writes[2][1].errback(OSError(28, "No space left on device"))
    assert third.result.code == RC.SUCCESS and topics.dirty and not topics.unsaved
