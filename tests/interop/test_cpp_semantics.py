"""The official C++ client (PyPI ``rocketmq`` 0.4.4) and the broker's message semantics: delay levels,
consumption retries into the DLQ, orderly consumption with queue locks.

The broker runs as ``twistd`` with a short level table (``messageDelayLevel``); the retry group allows 2
reconsumes. Waits are polls with deadlines.
"""

from __future__ import annotations

import json

import pytest

from mq.client.simple import create_topic_request, lock_batch_request, send_request
from mq.common import fastjson
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.command import RemotingCommand
from tests.broker.cluster import processes, pull_all, restartable_broker
from tests.broker.wire import Wire, call
from tests.interop.test_cpp_client import CPP_PYTHON, PushConsumerProcess, _warm_up, cpp
from tests.support.processes import wait_until

pytestmark = pytest.mark.skipif(
    CPP_PYTHON is None,
    reason="no interpreter with the C++ client: pip install rocketmq==0.4.4 or set MQ_CPP_PYTHON")

LEVELS = "1s 2s " + " ".join(["1s"] * 16)
DELAY_MS = {1: 1000, 2: 2000}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cpp_sem")
    with processes(tmp) as twistd:
        holder = restartable_broker(twistd, tmp, f"messageDelayLevel={LEVELS}\n", "cpp-sem-broker")
        yield holder["namesrv"], holder["broker"]


def all_of(addr, topic, queues=4):
    return [m for q in range(queues) for m in pull_all(addr, topic, q)]


def test_delay_level_sent_by_the_cpp_producer(cluster):
    namesrv, broker = cluster
    assert call(broker.addr, create_topic_request("CppDelay", queues=4)).code == RC.SUCCESS
    specs = [{"body": "late-2", "tags": "d", "delay": 2}, {"body": "late-1", "tags": "d", "delay": 1}]
    results = cpp("produce", namesrv.addr, "CppDelay", "sync", json.dumps(specs))
    assert {r["status"] for r in results} == {"OK"}, results
    got = {}

    def arrived():
        got.update({m.body.decode(): m for m in all_of(broker.addr, "CppDelay")})
        return len(got) == 2

    wait_until(arrived, 20, 0.1, "the delayed messages")
    for level, body in ((2, "late-2"), (1, "late-1")):
        m = got[body]
        [held] = [p for p in pull_all(broker.addr, "SCHEDULE_TOPIC_XXXX", level - 1) if p.body == body.encode()]
        assert held.properties["DELAY"] == str(level) and held.properties["REAL_TOPIC"] == "CppDelay"
        assert m.store_timestamp - m.born_timestamp >= DELAY_MS[level]  # arrived after its delay, never early
        assert m.store_timestamp - held.store_timestamp >= DELAY_MS[level]  # (how late: test_schedule_clock's)


def test_failing_callback_retries_with_raised_count_then_dead_letter(cluster):
    namesrv, broker = cluster
    group = "cpp_retry_group"
    assert call(broker.addr, create_topic_request("CppRetry", queues=4)).code == RC.SUCCESS
    conf = {"groupName": group, "retryMaxTimes": 2, "retryQueueNums": 1, "consumeEnable": True}
    r = call(broker.addr, RemotingCommand.request(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, None,
                                                  fastjson.dumps_bytes(conf)))
    assert r.code == RC.SUCCESS
    consumer = PushConsumerProcess(namesrv.addr, "CppRetry", group, "CLUSTERING", {"fail_prefix": "fail"})
    try:
        _warm_up(broker, "CppRetry", [consumer])
        assert call(broker.addr, send_request("CppRetry", b"fail-always", tags="r", queue_id=0)).code == RC.SUCCESS

        def attempts():
            return [m for m in consumer.messages if m["body"] == "fail-always"]

        wait_until(lambda: len(attempts()) >= 3, 60, 0.2, "the message and its two retries")
        wait_until(lambda: all_of(broker.addr, f"%DLQ%{group}", 1), 20, 0.2, "the dead letter")
        seen = attempts()
        assert [m["reconsume_times"] for m in seen[:3]] == [0, 1, 2]
        for before, after in zip(seen, seen[1:3]):  # each retry waited for its delay (1 s levels here)
            assert after["received_ms"] - before["received_ms"] >= 900
        [dead] = all_of(broker.addr, f"%DLQ%{group}", 1)
        assert (dead.body, dead.reconsume_times, dead.properties["RETRY_TOPIC"]) == (b"fail-always", 3, "CppRetry")
        retried = all_of(broker.addr, f"%RETRY%{group}", 1)
        assert [m.reconsume_times for m in retried if m.body == b"fail-always"] == [1, 2]
    finally:
        consumer.stop()
    assert len(attempts()) == 3  # nothing after the dead letter


def test_orderly_consumers_hold_their_queues_and_see_them_in_order(cluster):
    namesrv, broker = cluster
    group = "cpp_orderly_group"
    assert call(broker.addr, create_topic_request("CppOrder", queues=4)).code == RC.SUCCESS
    consumers = [PushConsumerProcess(namesrv.addr, "CppOrder", group, "CLUSTERING", {"orderly": True})
                 for _ in range(2)]
    try:
        _warm_up(broker, "CppOrder", consumers)

        def intruder_gets():
            with Wire(broker.addr) as w:
                r = w.call(lock_batch_request(group, "intruder", "cpp-sem-broker", "CppOrder", range(4)))
                return [mq["queueId"] for mq in fastjson.loads(r.body)["lockOKMQSet"]]

        # the two consumers hold every queue's lock between them
        wait_until(lambda: intruder_gets() == [], 40, 0.5, "the orderly consumers locking all queues")
        per_queue = 25
        with Wire(broker.addr) as w:
            opaques = [w.send(send_request("CppOrder", b"q%d-%d" % (q, i), tags="o", queue_id=q))
                       for i in range(per_queue) for q in range(4)]
            for opaque in opaques:
                assert w.receive(opaque).code == RC.SUCCESS

        def ordered(c):
            return [m for m in c.messages if m["body"].startswith("q")]

        wait_until(lambda: len({m["body"] for c in consumers for m in ordered(c)}) == 4 * per_queue, 60, 0.2,
                   "every ordered message consumed")
        for c in consumers:
            for q in range(4):
                seqs = [int(m["body"].split("-")[1]) for m in ordered(c) if m["queue_id"] == q]
                assert seqs == sorted(seqs), (q, seqs)  # each consumer sees a queue in order
        assert all(ordered(c) for c in consumers), "both consumers should have had queues"
    finally:
        for c in consumers:
            c.stop()
