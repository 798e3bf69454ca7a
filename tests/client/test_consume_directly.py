"""CONSUME_MESSAGE_DIRECTLY end to end: a real broker relays a stored message to an in-process push consumer,
whose listener answers; through the admin API and ``mqadmin queryMsgById -g -d``."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor, threads

from mq.admin.api import MQAdminAPI, ResponseError
from mq.client import ConsumeOrderlyStatus, make_message
from mq.common import consume_directly as cd
from tests.admin.conftest import mqadmin
from tests.client.helpers import setup_topic
from tests.client.test_push_consumer import Recorder, consumer
from tests.support.polling import poll


@pytest_twisted.inlineCallbacks
def test_a_consumer_consumes_a_stored_message_again_on_request(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique, ["broker-a"])
    rec = Recorder()
    c = consumer(cluster, group, topic, rec, f"{unique}-1")
    api = MQAdminAPI(reactor, [cluster.namesrv_addr])
    try:
        yield c.start()
        sent = yield producer.send(make_message(topic, b"again", keys="k9"))
        yield poll(lambda: rec.bodies(), lambda b: b == ["again"], 30, what="the message consumed once")
        addr, client_id = cluster.addr("broker-a"), c.instance.client_id
        result = yield api.consume_message_directly(addr, group, client_id, sent.offset_msg_id)
        assert (result.consume_result, result.order, result.auto_commit) == (cd.CR_SUCCESS, False, True)
        assert rec.bodies() == ["again", "again"] and rec.messages[1].topic == topic
        rec.fail_times["again"] = 1
        result = yield api.consume_message_directly(addr, group, client_id, sent.offset_msg_id)
        assert result.consume_result == cd.CR_LATER

        def boom(msgs, context):
            raise RuntimeError("listener broke")

        c.listener = boom
        result = yield api.consume_message_directly(addr, group, client_id, sent.offset_msg_id)
        assert result.consume_result == cd.CR_THROW_EXCEPTION and result.remark == "RuntimeError: listener broke"
        c.listener = rec
        try:
            yield api.consume_message_directly(addr, "OtherGroup", client_id, sent.offset_msg_id)
            raise AssertionError("a group the client is not in was served")
        except ResponseError as e:
            assert "not online" in str(e)
        run = yield threads.deferToThread(mqadmin, "queryMsgById", "-i", sent.offset_msg_id, "-g", group,
                                          "-d", client_id, namesrv=cluster.namesrv_addr)
        assert run.code == 0, run.err
        assert run.out.startswith("ConsumeMessageDirectlyResult [order=false, autoCommit=true, "
                                  "consumeResult=CR_SUCCESS, remark=null, spentTimeMills=")
        assert rec.bodies().count("again") == 4  # twice before, CR_LATER, and the tool's
    finally:
        yield api.close()
        yield c.shutdown()
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_an_orderly_consumer_answers_in_its_own_terms(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique, ["broker-a"])
    got = []

    def orderly(msgs, context):
        got.extend(m.body for m in msgs)
        return ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT if len(got) > 1 else None

    c = consumer(cluster, group, topic, lambda m, c: None, f"{unique}-1")
    c.register_orderly_listener(orderly)
    api = MQAdminAPI(reactor, [cluster.namesrv_addr])
    try:
        yield c.start()
        sent = yield producer.send(make_message(topic, b"o1"))
        yield poll(lambda: got, lambda g: g == [b"o1"], 30, what="the message consumed once")
        result = yield api.consume_message_directly(cluster.addr("broker-a"), group, c.instance.client_id,
                                                    sent.offset_msg_id)
        assert (result.order, result.consume_result) == (True, cd.CR_LATER) and got == [b"o1", b"o1"]
    finally:
        yield api.close()
        yield c.shutdown()
        yield producer.shutdown()
