"""INVOKE_BROKER_TO_GET_CONSUMER_STATUS (223) on an in-process broker, with hand-made clients that answer
GET_CONSUMER_STATUS_FROM_CLIENT (221); and the GetConsumerStatusBody encoding."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from mq.broker.client.broker2client import MAX_STATUS_REPLY
from mq.broker.processor.admin import MessageQueue
from mq.client.simple import heartbeat_request
from mq.common.consumer_status import GetConsumerStatusBody
from mq.remoting.client import RemotingClient
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.protocol import RequestDispatcher

Q0 = MessageQueue("T", "b", 0)
Q1 = MessageQueue("T", "b", 1)
Q0_JSON = '{"brokerName":"b","queueId":0,"topic":"T"}'
Q1_JSON = '{"brokerName":"b","queueId":1,"topic":"T"}'


# --------------------------------------------------------------------------------------------- the body


def test_body_is_written_as_fastjson_writes_it():
    client = GetConsumerStatusBody(message_queue_table={Q1: 7, Q0: 12})
    assert client.encode() == f'{{"consumerTable":{{}},"messageQueueTable":{{{Q0_JSON}:12,{Q1_JSON}:7}}}}'.encode()
    broker = GetConsumerStatusBody(consumer_table={"c2": {}, "c1": {Q0: 3}})
    assert broker.encode() == f'{{"consumerTable":{{"c1":{{{Q0_JSON}:3}},"c2":{{}}}},"messageQueueTable":{{}}}}'.encode()


def test_body_reads_back_both_directions():
    for body in (GetConsumerStatusBody(message_queue_table={Q0: 12, Q1: -1}),
                 GetConsumerStatusBody(consumer_table={"127.0.0.1@1": {Q0: 3, Q1: 4}, "127.0.0.1@2": {}})):
        assert GetConsumerStatusBody.decode(body.encode(), MessageQueue) == body


def test_body_as_java_writes_it_with_spaces_and_other_key_order():
    text = '{ "messageQueueTable" : { {"topic":"T","queueId":1,"brokerName":"b"} : 9 } }'
    assert GetConsumerStatusBody.decode(text.encode(), MessageQueue).message_queue_table == {Q1: 9}
    assert GetConsumerStatusBody.decode(b"{}", MessageQueue) == GetConsumerStatusBody()


@pytest.mark.parametrize("body", [b"[]", b"nope", b'{"messageQueueTable":{"a":1}}', b'{"consumerTable":[1]}',
                                  b'{"messageQueueTable":{{"topic":"T"}:1}}',
                                  f'{{"messageQueueTable":{{{Q0_JSON}:"x"}}}}'.encode()])
def test_body_that_is_not_one_is_a_value_error(body):
    with pytest.raises(ValueError):
        GetConsumerStatusBody.decode(body, MessageQueue)


# --------------------------------------------------------------------------------------------- the broker


class FakeConsumer:
    """A client connection in consumer group ``group`` that answers 221 with ``table`` (or as ``answer`` says)."""

    def __init__(self, client_id: str, table=None, answer=None, version=None) -> None:
        self.client_id = client_id
        self.table = table or {}
        self.answer = answer
        self.version = version
        self.asked = []
        dispatcher = RequestDispatcher()
        dispatcher.register(RequestCode.GET_CONSUMER_STATUS_FROM_CLIENT, self._on_status)
        self.remoting = RemotingClient(reactor, dispatcher)

    def _on_status(self, request, channel):
        self.asked.append(dict(request.ext_fields))
        if self.answer is not None:
            return self.answer(request)
        return request.response(RC.SUCCESS, None, None,
                                GetConsumerStatusBody(message_queue_table=self.table).encode())

    @defer.inlineCallbacks
    def join(self, addr: str, group: str = "G", topic: str = "T"):
        request = heartbeat_request(self.client_id, [], [(group, [topic], "CLUSTERING")])
        if self.version is not None:
            request.version = self.version
        r = yield self.remoting.invoke(addr, request)
        assert r.code == RC.SUCCESS, r.remark
        return self


def ask(client, addr, topic="T", group="G", client_addr=None):
    ext = {"topic": topic, "group": group}
    if client_addr is not None:
        ext["clientAddr"] = client_addr
    return client.invoke(addr, RequestCode.INVOKE_BROKER_TO_GET_CONSUMER_STATUS, ext, timeout=10)


@pytest.fixture
def fakes():
    made = []
    yield made
    for fake in made:
        pytest_twisted.blockon(fake.remoting.close())


def fake(fakes, *args, **kwargs) -> FakeConsumer:
    made = FakeConsumer(*args, **kwargs)
    fakes.append(made)
    return made


@pytest_twisted.inlineCallbacks
def test_every_client_is_asked_and_answers_keyed_by_client_id(client, addr, fakes):
    a = yield fake(fakes, "127.0.0.1@a", {Q0: 5, Q1: 6}).join(addr)
    b = yield fake(fakes, "127.0.0.1@b", {}).join(addr)
    r = yield ask(client, addr)
    assert r.code == RC.SUCCESS, r.remark
    assert r.body == (f'{{"consumerTable":{{"127.0.0.1@a":{{{Q0_JSON}:5,{Q1_JSON}:6}},"127.0.0.1@b":{{}}}},'
                      f'"messageQueueTable":{{}}}}').encode()
    # the broker forwards topic and group, not the filter
    assert a.asked == b.asked == [{"topic": "T", "group": "G"}]


@pytest_twisted.inlineCallbacks
def test_client_addr_picks_one_client_by_id_or_address(client, addr, broker, fakes):
    yield fake(fakes, "127.0.0.1@a", {Q0: 5}).join(addr)
    b = yield fake(fakes, "127.0.0.1@b", {Q1: 6}).join(addr)
    r = yield ask(client, addr, client_addr="127.0.0.1@b")
    assert GetConsumerStatusBody.decode(r.body, MessageQueue).consumer_table == {"127.0.0.1@b": {Q1: 6}}
    peer = broker.consumer_manager.get("G").find_channel("127.0.0.1@a").client_addr
    r = yield ask(client, addr, client_addr=peer)
    assert GetConsumerStatusBody.decode(r.body, MessageQueue).consumer_table == {"127.0.0.1@a": {Q0: 5}}
    r = yield ask(client, addr, client_addr="127.0.0.1@nobody")  # as RocketMQ: success, nobody in the table
    assert r.code == RC.SUCCESS and GetConsumerStatusBody.decode(r.body, MessageQueue) == GetConsumerStatusBody()
    assert len(b.asked) == 1


@pytest_twisted.inlineCallbacks
def test_no_consumer_online_is_a_system_error(client, addr, fakes):
    r = yield ask(client, addr, group="Nobody")
    assert (r.code, r.remark) == (RC.SYSTEM_ERROR, "No Any Consumer online in the consumer group: [Nobody]")
    r = yield client.invoke(addr, RequestCode.INVOKE_BROKER_TO_GET_CONSUMER_STATUS, {"topic": "T"})
    assert r.code == RC.SYSTEM_ERROR and "group" in r.remark  # the header's required field


@pytest_twisted.inlineCallbacks
def test_a_client_older_than_v3_0_7_refuses_the_whole_query(client, addr, fakes):
    yield fake(fakes, "127.0.0.1@new", {Q0: 1}).join(addr)
    old = yield fake(fakes, "127.0.0.1@old", version=27).join(addr)
    r = yield ask(client, addr)
    assert (r.code, r.remark) == (RC.SYSTEM_ERROR, "the client does not support this feature. version=27")
    assert old.asked == []
    r = yield ask(client, addr, client_addr="127.0.0.1@new")  # the old one is not asked, so not in the way
    assert GetConsumerStatusBody.decode(r.body, MessageQueue).consumer_table == {"127.0.0.1@new": {Q0: 1}}


@pytest_twisted.inlineCallbacks
def test_clients_that_refuse_or_answer_garbage_are_left_out(client, addr, fakes):
    yield fake(fakes, "127.0.0.1@ok", {Q0: 2}).join(addr)
    yield fake(fakes, "127.0.0.1@err", answer=lambda req: req.response(RC.SYSTEM_ERROR, "no")).join(addr)
    yield fake(fakes, "127.0.0.1@junk", answer=lambda req: req.response(RC.SUCCESS, None, None, b"[1,2")).join(addr)
    # past MAX_STATUS_REPLY, and read by the Python reader, this would have held the broker for seconds
    huge = b'{"messageQueueTable":{' + b",".join(
        b'{"brokerName":"b","queueId":%d,"topic":"T"}:%d' % (i, i) for i in range(6000)) + b"}}"
    assert len(huge) > MAX_STATUS_REPLY
    yield fake(fakes, "127.0.0.1@huge", answer=lambda req: req.response(RC.SUCCESS, None, None, huge)).join(addr)
    r = yield ask(client, addr)
    assert r.code == RC.SUCCESS
    assert GetConsumerStatusBody.decode(r.body, MessageQueue).consumer_table == {"127.0.0.1@ok": {Q0: 2}}


@pytest_twisted.inlineCallbacks
def test_a_client_that_does_not_answer_in_time_is_left_out(addr, broker, fakes):
    yield fake(fakes, "127.0.0.1@ok", {Q0: 2}).join(addr)
    silent = yield fake(fakes, "127.0.0.1@silent", answer=lambda req: defer.Deferred()).join(addr)
    clients = list(broker.consumer_manager.get("G").channels.values())
    table = yield broker.broker2client.consumer_status("T", "G", clients, MessageQueue, timeout=0.3)
    assert table == {"127.0.0.1@ok": {Q0: 2}} and len(silent.asked) == 1
