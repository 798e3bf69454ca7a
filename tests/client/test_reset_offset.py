"""INVOKE_BROKER_TO_RESET_OFFSET against real processes: an online PushConsumer moves to the new offsets."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor

from mq.client import SimpleClient
from mq.remoting.codes import RequestCode, ResponseCode
from tests.client.helpers import setup_topic
from tests.client.test_push_consumer import Recorder, consumer, send_all
from tests.support.polling import poll


@pytest_twisted.inlineCallbacks
def test_online_push_consumer_consumes_again_from_the_reset_offsets(cluster, unique):
    topic, group, producer = setup_topic(cluster, unique, ["broker-a"], queues=2)
    rec = Recorder()
    c = consumer(cluster, group, topic, rec, f"{unique}-1")
    admin = SimpleClient(reactor)
    try:
        yield c.start()
        bodies = [f"m{i}" for i in range(10)]
        yield send_all(producer, topic, bodies)
        yield poll(lambda: sorted(rec.bodies()), lambda got: got == sorted(bodies), 30, what="10 messages consumed")

        header = {"topic": topic, "group": group, "timestamp": "0", "isForce": "true"}
        r = yield admin.invoke(cluster.addr("broker-a"), RequestCode.INVOKE_BROKER_TO_RESET_OFFSET, header)
        assert r.code == ResponseCode.SUCCESS, r.remark
        assert r.body == (f'{{"offsetTable":{{{{"brokerName":"broker-a","queueId":0,"topic":"{topic}"}}:0,'
                          f'{{"brokerName":"broker-a","queueId":1,"topic":"{topic}"}}:0}}}}').encode()
        # the consumer drops its queues, takes the new offsets and gets every message again
        yield poll(lambda: sorted(rec.bodies()), lambda got: got == sorted(bodies * 2), 30,
                   what="every message consumed a second time")
    finally:
        yield c.shutdown()
        yield producer.shutdown()
        yield admin.close()
