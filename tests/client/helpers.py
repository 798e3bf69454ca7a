"""Small helpers for the client tests: pulling what a broker stored, waiting inside the reactor."""

from __future__ import annotations

from typing import List

from twisted.internet import defer

from mq.client import Producer
from mq.client.simple import SimpleClient
from mq.common.message import MessageExt
from mq.common.message_record import decode_messages
from mq.remoting.codes import ResponseCode


@defer.inlineCallbacks
def stored(client: SimpleClient, broker: str, topic: str, queues: int = 4) -> List[MessageExt]:
    """Every message of ``topic`` on ``broker`` (queues 0..queues-1), in queue order."""
    out = []
    for qid in range(queues):
        offset = 0
        while True:
            r = yield client.pull(broker, "client_test_reader", topic, qid, offset)
            if r.code != ResponseCode.SUCCESS:
                break
            msgs = decode_messages(r.body)
            out.extend(msgs)
            offset = int(r.ext_fields["nextBeginOffset"])
    return out


def setup_topic(cluster, unique, brokers=None, queues=4):
    """A topic of this test on ``brokers`` (default all), its consumer group name and a started producer."""
    topic = f"T_{unique}"
    cluster.create_topic(topic, queues=queues, brokers=brokers)
    producer = Producer(f"PG_{unique}", cluster.namesrv_addr)
    producer.start()
    return topic, f"CG_{unique}", producer
