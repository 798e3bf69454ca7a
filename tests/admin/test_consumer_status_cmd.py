"""``mqadmin getConsumerStatus`` against real ``twistd namesrv`` + ``twistd broker`` processes and push consumers
of ours in this process: the broker asks each consumer (GET_CONSUMER_STATUS_FROM_CLIENT) for the offsets it
holds. ``mqadmin`` runs in a thread, so the reactor keeps serving the consumers meanwhile."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import defer, threads

from mq.client import ConsumeFromWhere, LitePullConsumer, Producer, PushConsumer
from tests.admin import test_broker_commands as commands
from tests.admin.conftest import adm
from tests.client.test_push_consumer import Recorder, send_all
from tests.support.polling import poll

create_topic = commands.create_topic


def run(broker, *args):
    return threads.deferToThread(adm, broker, *args)


def status_json(broker, group, topic, *extra):
    """The --json output, or None while the command fails."""
    d = run(broker, "getConsumerStatus", "-g", group, "-t", topic, "--json", *extra)
    return d.addCallback(lambda r: r.json() if r.code == 0 else None)


def held(consumer, topic):
    """What the consumer holds in memory, as getConsumerStatus --json lists it."""
    return [{"brokerName": mq.broker_name, "queueId": mq.queue_id, "topic": mq.topic, "offset": offset}
            for mq, offset in sorted(consumer.offsets.table.items()) if mq.topic == topic]


class Setup:
    """A topic of its own, a producer and the push consumers of one group."""

    def __init__(self, broker, name, queues=2):
        self.broker = broker
        self.topic, self.group = f"CS_{name}", f"CSG_{name}"
        create_topic(broker, self.topic, queues)
        self.producer = Producer(f"CSP_{name}", broker.namesrv)
        self.consumers = []

    def consumer(self, instance: str, recorder: Recorder) -> PushConsumer:
        c = PushConsumer(self.group, self.broker.namesrv, instance_name=instance,
                         consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET)
        c.subscribe(self.topic, "*")
        c.register_message_listener(recorder)
        self.consumers.append(c)
        return c

    def close(self):
        return defer.gatherResults([c.shutdown() for c in self.consumers] + [self.producer.shutdown()])


@pytest_twisted.inlineCallbacks
def test_a_push_consumer_reports_the_offsets_it_holds(broker):
    s = Setup(broker, "one")
    rec = Recorder()
    c = s.consumer("cs-one", rec)
    try:
        s.producer.start()
        yield c.start()
        bodies = [f"m{i}" for i in range(10)]
        results = yield send_all(s.producer, s.topic, bodies)
        yield poll(lambda: sorted(rec.bodies()), lambda got: got == sorted(bodies), 30, what="10 messages consumed")
        per_queue = {}
        for r in results:
            per_queue[r.message_queue.queue_id] = max(per_queue.get(r.message_queue.queue_id, 0), r.queue_offset + 1)
        expected = [{"brokerName": broker.name, "queueId": q, "topic": s.topic, "offset": n}
                    for q, n in sorted(per_queue.items())]
        cid = c.instance.client_id
        data = yield poll(lambda: status_json(broker, s.group, s.topic),
                          lambda d: d is not None and d["consumerTable"].get(cid) == expected, 30,
                          what="the consumer's offsets reported")
        assert held(c, s.topic) == expected  # what it holds is what it reported
        assert (data["group"], data["topic"], data["originClientId"]) == (s.group, s.topic, "")
        assert data["brokerAddr"] == broker.addr and list(data["consumerTable"]) == [cid]

        r = yield run(broker, "getConsumerStatus", "-g", s.group, "-t", s.topic)
        assert r.code == 0, r.err
        lines = r.out.splitlines()
        assert lines[0] == f"get consumer status from client. group={s.group}, topic={s.topic}, originClientId="
        assert lines[1].split() == ["#clientId", "#brokerName", "#queueId", "#offset"]
        assert [line.split() for line in lines[2:]] == [[cid, broker.name, str(q["queueId"]), str(q["offset"])]
                                                         for q in expected]
    finally:
        yield s.close()


@pytest_twisted.inlineCallbacks
def test_i_picks_one_consumer_by_client_id_or_address(broker):
    s = Setup(broker, "two")
    a, b = s.consumer("cs-two-a", Recorder()), s.consumer("cs-two-b", Recorder())
    try:
        s.producer.start()
        yield a.start()
        yield b.start()
        yield send_all(s.producer, s.topic, [f"m{i}" for i in range(8)])
        ids = sorted([a.instance.client_id, b.instance.client_id])

        def split(d):  # each consumer holds one of the two queues, and reports what it holds
            return d is not None and sorted(d["consumerTable"]) == ids and all(
                len(d["consumerTable"][c.instance.client_id]) == 1 == len(held(c, s.topic))
                and d["consumerTable"][c.instance.client_id][0]["queueId"] == held(c, s.topic)[0]["queueId"]
                for c in (a, b))

        both = yield poll(lambda: status_json(broker, s.group, s.topic), split, 40, what="both consumers reported")
        only_b = yield status_json(broker, s.group, s.topic, "-i", b.instance.client_id)
        assert only_b["originClientId"] == b.instance.client_id
        assert only_b["consumerTable"].keys() == {b.instance.client_id}
        assert only_b["consumerTable"][b.instance.client_id][0]["queueId"] == \
            both["consumerTable"][b.instance.client_id][0]["queueId"]
        # the address the broker sees the client at picks it too
        conn = (yield run(broker, "consumerConnection", "-g", s.group, "--json")).json()
        addr_of_a = [x["clientAddr"] for x in conn["connectionSet"] if x["clientId"] == a.instance.client_id][0]
        only_a = yield status_json(broker, s.group, s.topic, "-i", addr_of_a)
        assert only_a["consumerTable"].keys() == {a.instance.client_id}

        r = yield run(broker, "getConsumerStatus", "-g", s.group, "-t", s.topic, "-i", "10.9.9.9@nobody")
        assert r.code == 1 and r.out == ""
        assert r.err == (f"mqadmin getConsumerStatus: no consumer of group '{s.group}' with client id or address "
                         f"'10.9.9.9@nobody' reported its offsets via broker {broker.addr}\n")
    finally:
        yield s.close()


@pytest_twisted.inlineCallbacks
def test_a_group_without_consumers_or_an_unknown_topic_fails_clearly(broker):
    create_topic(broker, "CS_lonely", 2)
    r = yield run(broker, "getConsumerStatus", "-g", "CSG_nobody", "-t", "CS_lonely")
    assert r.code == 1 and r.out == ""
    assert r.err == ("mqadmin getConsumerStatus: consumer status of group 'CSG_nobody' on topic 'CS_lonely' via "
                     f"broker {broker.addr}: SYSTEM_ERROR: No Any Consumer online in the consumer group: "
                     "[CSG_nobody]\n")
    r = yield run(broker, "getConsumerStatus", "-g", "CSG_nobody", "-t", "CS_NoSuchTopic")
    assert r.code == 1
    assert r.err == ("mqadmin getConsumerStatus: topic route not found: no route for topic 'CS_NoSuchTopic' "
                     "on the NameServer\n")


@pytest_twisted.inlineCallbacks
def test_a_lite_pull_consumer_reports_the_offsets_it_holds(broker):
    s = Setup(broker, "lite")
    c = LitePullConsumer(s.group, broker.namesrv, instance_name="cs-lite",
                         consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET)
    c.subscribe(s.topic, "*")
    got = []
    try:
        s.producer.start()
        yield c.start()
        yield send_all(s.producer, s.topic, [f"m{i}" for i in range(6)])

        def polled():
            return c.poll(0.2).addCallback(lambda msgs: got.extend(msgs) or len(got))

        yield poll(polled, lambda n: n == 6, 30, what="6 messages polled")
        expected = held(c, s.topic)
        assert sum(q["offset"] for q in expected) == 6
        data = yield poll(lambda: status_json(broker, s.group, s.topic),
                          lambda d: d is not None and d["consumerTable"].get(c.instance.client_id) == expected, 30,
                          what="the lite pull consumer's offsets reported")
        assert list(data["consumerTable"]) == [c.instance.client_id]
    finally:
        yield c.shutdown()
        yield s.close()
