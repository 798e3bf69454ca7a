"""Issue 7, client side: the project's Producer and PushConsumer against a master/slave broker group.

Real ``twistd`` processes: a NameServer, group ``broker-a`` (a SYNC_MASTER and its slave) and group
``broker-b`` (a master), the topic on both groups. The consumer's pulls are recorded at its ``ClientAPI``
(address asked, answer, ``suggestWhichBrokerId``, bodies), and the slave's own pull count is read from it
(GET_BROKER_RUNTIME_INFO), so "read from the slave" is checked on both ends. A listener that holds its calls
(``Gate``) and a low flow-control limit stop the pulls with a backlog left on every queue, so a broker can go
away while the consumer still has data to read there.

* the consumer goes where ``suggestWhichBrokerId`` says, and back to the master when the slave dies under it;
* with broker-a's master SIGKILLed the consumer drains broker-a from the slave, a producer sending all along
  (fault-latency avoidance on) sees no error, every send after the kill lands on broker-b; when the master
  is back the consumer reads from it again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List, Optional

import attr
import pytest
import pytest_twisted
from twisted.internet import defer, task, threads

from mq.client import (
    ClientConfig,
    ConsumeConcurrentlyStatus,
    ConsumeFromWhere,
    MessageQueue,
    Producer,
    PullStatus,
    PushConsumer,
    SendStatus,
    SimpleClient,
    make_message,
)
from mq.client.instance import get_instance
from mq.client.simple import create_topic_request, parse_route, pull_request, route_request
from mq.common import fastjson
from mq.common.message_record import decode_messages
from mq.remoting.codes import RequestCode, ResponseCode
from tests.broker.wire import call
from tests.support.polling import poll
from tests.support.processes import TwistdProcess, free_port, wait_until

CONF = ("brokerClusterName=HaClientCluster\nmappedFileSizeCommitLog=4194304\nmappedFileSizeConsumeQueue=120000\n"
        "registerNameServerPeriod=10000\nhaSendHeartbeatInterval=500\nhaSlaveReconnectInterval=200\n"
        "slaveSyncInterval=500\nslaveReadEnable=true\n")
#: Nothing counts as "in memory": every pull that finds messages is told to read from the slave (1), on the
#: master while its slave holds everything, and on the slave itself (a consumer far behind stays there).
READ_FROM_SLAVE = "accessMessageInMemoryMaxRatio=0\n"
#: key → (brokerName, role, brokerId)
MEMBERS = {"a-master": ("broker-a", "SYNC_MASTER", 0), "a-slave": ("broker-a", "SLAVE", 1),
           "b-master": ("broker-b", "ASYNC_MASTER", 0)}


class HaGroups:
    """``twistd namesrv`` and the three brokers, each restartable on its own port and store."""

    def __init__(self, root: Path, extra: Optional[Dict[str, str]] = None) -> None:
        self.root = root
        self.procs: List[TwistdProcess] = []
        self.brokers: Dict[str, TwistdProcess] = {}
        self.ports: Dict[str, int] = {}
        for key in MEMBERS:
            port = free_port()
            while any(abs(port - p) < 4 for p in self.ports.values()):
                port = free_port()
            self.ports[key] = port
            (root / f"{key}.conf").write_text(CONF + (extra or {}).get(key, ""))
        port = free_port()
        # A dead broker's channel closes at once, which drops it from the routes. The expiry stays the default
        # 120 s: one shorter than the 10 s registration period drops live masters between registrations, and a
        # slave started then finds no master.
        self.namesrv = self._spawn("namesrv", ["--port", str(port), "--kv-config", str(root / "kv.json")],
                                   "namesrv")
        self.namesrv.wait_port(port)
        self.namesrv_addr = f"127.0.0.1:{port}"

    def _spawn(self, plugin: str, args: List[str], name: str) -> TwistdProcess:
        proc = TwistdProcess(plugin, args, self.root / f"{name}-{time.monotonic_ns()}")
        self.procs.append(proc)
        return proc.start()

    def addr(self, key: str) -> str:
        return f"127.0.0.1:{self.ports[key]}"

    def start(self, key: str) -> TwistdProcess:
        name, role, bid = MEMBERS[key]
        proc = self._spawn("broker", ["--port", str(self.ports[key]), "--namesrv", self.namesrv_addr,
                                      "--store", str(self.root / f"store-{key}"), "--ip", "127.0.0.1",
                                      "--broker-name", name, "--role", role, "--broker-id", str(bid),
                                      "--config", str(self.root / f"{key}.conf")], key)
        proc.wait_port(self.ports[key])
        self.brokers[key] = proc
        if role == "SLAVE":
            proc.wait_log("HA: connected to the master", 30)
        else:
            wait_until(lambda: self.route_addrs("TBW102").get(name, {}).get(0) == self.addr(key), 30,
                       what=f"{key} registered")
        return proc

    def route_addrs(self, topic: str) -> Dict[str, Dict[int, str]]:
        route = parse_route(call(self.namesrv_addr, route_request(topic)))
        return {} if route is None else {bd.broker_name: dict(bd.broker_addrs) for bd in route.broker_datas}

    def start_all(self) -> "HaGroups":
        self.start("a-master")
        self.start("b-master")
        self.start("a-slave")
        return self

    def create_topic(self, topic: str, queues: int = 4) -> None:
        """On both masters; wait for the route to list both and for the slave's copy of the topic."""
        for key in ("a-master", "b-master"):
            assert call(self.addr(key), create_topic_request(topic, queues)).code == ResponseCode.SUCCESS
        wait_until(lambda: len(self.route_addrs(topic)) == 2, 20, what=f"route of {topic}")
        wait_until(lambda: call(self.addr("a-slave"), pull_request("probe", topic, 0, 0)).code
                   != ResponseCode.TOPIC_NOT_EXIST, 20, 0.1, what=f"{topic} copied to the slave")

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(timeout=15)


@pytest.fixture
def groups(tmp_path, request):
    g = HaGroups(tmp_path, getattr(request, "param", None))
    try:
        yield g.start_all()
    finally:
        g.close()


@attr.s(slots=True)
class Pull:
    addr: str = attr.ib()
    topic: str = attr.ib()
    queue_id: int = attr.ib()
    offset: int = attr.ib()
    at: float = attr.ib()
    status: Optional[PullStatus] = attr.ib(default=None)  # None: in flight; error: failed
    suggest: Optional[int] = attr.ib(default=None)
    bodies: List[str] = attr.ib(factory=list)
    error: Optional[str] = attr.ib(default=None)


def record_pulls(consumer: PushConsumer, topic: str) -> List[Pull]:
    """The pulls of ``topic`` (not the group's retry topic) the consumer's client instance makes, in order
    (wraps ``ClientAPI.pull`` before the consumer starts)."""
    instance = get_instance(consumer.config, consumer.reactor)
    api = instance.api
    original = api.pull
    pulls: List[Pull] = []

    def pull(addr, header, subscription, timeout):
        d = original(addr, header, subscription, timeout)
        if header.topic != topic:
            return d
        p = Pull(addr, header.topic, header.queue_id, header.queue_offset, time.monotonic())
        pulls.append(p)

        def done(result):
            p.status, p.suggest = result.status, result.suggest_which_broker_id
            p.bodies = [m.body.decode() for m in result.messages]
            return result

        def failed(f):
            p.error = f.getErrorMessage()
            return f

        return d.addCallbacks(done, failed)

    api.pull = pull
    return pulls


class Gate:
    """A listener that records bodies and, once closed, holds every call until opened."""

    def __init__(self, close_after: int) -> None:
        self.got: List[str] = []
        self.close_after = close_after
        self.opened = defer.Deferred()

    def __call__(self, msgs, context):
        self.got.extend(m.body.decode() for m in msgs)
        if len(self.got) >= self.close_after and not self.opened.called:
            d = defer.Deferred()
            self.opened.addBoth(lambda _: d.callback(ConsumeConcurrentlyStatus.CONSUME_SUCCESS))
            return d
        return ConsumeConcurrentlyStatus.CONSUME_SUCCESS

    def open(self) -> None:
        if not self.opened.called:
            self.opened.callback(None)


def new_consumer(groups: HaGroups, topic: str, gate: Gate, name: str) -> PushConsumer:
    # small batches and a low flow-control limit, so a closed gate stops the pulls with a backlog left
    config = ClientConfig(namesrv_addr=groups.namesrv_addr, instance_name=name, poll_namesrv_interval=1.0)
    consumer = PushConsumer(f"CG_{topic}", config=config, pull_batch_size=8, pull_threshold_for_queue=8,
                            consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET)
    consumer.subscribe(topic, "*")
    consumer.register_message_listener(gate)
    return consumer


def new_producer(groups: HaGroups, topic: str) -> Producer:
    producer = Producer(f"PG_{topic}", groups.namesrv_addr, instance_name=f"producer-{topic}",
                        send_latency_fault_enable=True)
    producer.start()
    return producer


@defer.inlineCallbacks
def backlog(producer: Producer, topic: str, per_queue: int, prefix: str):
    """``per_queue`` messages on each of the 4 queues of both groups (explicit queues: an even backlog)."""
    sent = []
    for i in range(per_queue * 8):
        broker, qid = ("broker-a", "broker-b")[i % 2], (i // 2) % 4
        result = yield producer.send(make_message(topic, f"{prefix}-{i}"), queue=MessageQueue(topic, broker, qid))
        assert result.status is SendStatus.SEND_OK
        sent.append(f"{prefix}-{i}")
    return sent


def in_flight(pulls: List[Pull], broker_addrs) -> List[Pull]:
    """The pulls of the given brokers still waiting for an answer (a closed gate stops them by flow control)."""
    return [p for p in pulls if p.addr in broker_addrs and p.status is None and p.error is None]


@defer.inlineCallbacks
def pulls_served(groups: HaGroups, key: str):
    """The messages the broker ``key`` says it returned to pulls (msgGetTotalTodayNow)."""
    client = SimpleClient()
    try:
        r = yield client.invoke(groups.addr(key), RequestCode.GET_BROKER_RUNTIME_INFO)
        return int(fastjson.loads(r.body)["table"]["msgGetTotalTodayNow"])
    finally:
        yield client.close()


def wait_consumed(gate: Gate, bodies, timeout: float = 45.0, what: str = "every message"):
    return poll(lambda: set(gate.got), lambda got: set(bodies) <= got, timeout, 0.1, what=what)


@pytest.mark.parametrize("groups", [{"a-master": READ_FROM_SLAVE, "a-slave": READ_FROM_SLAVE}], indirect=True)
@pytest_twisted.inlineCallbacks
def test_consumer_follows_suggest_which_broker_id_and_returns_when_the_slave_goes(groups):
    topic = "HaSuggest"
    groups.create_topic(topic)
    master, slave, b_master = groups.addr("a-master"), groups.addr("a-slave"), groups.addr("b-master")
    producer = new_producer(groups, topic)
    gate = Gate(close_after=24)
    consumer = new_consumer(groups, topic, gate, "suggest-consumer")
    pulls = record_pulls(consumer, topic)
    try:
        sent = yield backlog(producer, topic, 50, "s")
        yield consumer.start()
        yield poll(lambda: len(gate.got), lambda n: n >= 24, 45, what="24 consumed")
        yield poll(lambda: in_flight(pulls, (master, slave)), lambda left: not left, 30,
                   what="broker-a's pulls stopped by flow control")

        # broker-a: the master answered the first pull of each queue, suggesting the slave; every later pull
        # went to the slave, which kept suggesting itself while the consumer was behind
        a_pulls = [p for p in pulls if p.addr in (master, slave)]
        queues = {p.queue_id for p in a_pulls}
        assert queues == {0, 1, 2, 3}
        for qid in queues:
            mine = [p for p in a_pulls if p.queue_id == qid]
            assert mine[0].addr == master and mine[0].status is PullStatus.FOUND and mine[0].suggest == 1, mine[0]
            assert len(mine) >= 2 and all(p.addr == slave for p in mine[1:]), [(p.addr, p.suggest) for p in mine]
            assert all(p.status is PullStatus.FOUND and p.suggest == 1 for p in mine[1:]), mine
        from_slave = sum(len(p.bodies) for p in a_pulls if p.addr == slave)
        assert from_slave >= 4 * 8
        assert (yield pulls_served(groups, "a-slave")) == from_slave  # the slave says so too
        # broker-b has no slave: its master never suggests one
        b_pulls = [p for p in pulls if p.addr not in (master, slave)]
        assert b_pulls and all(p.addr == b_master and p.suggest in (0, None) for p in b_pulls)

        # the slave goes away while the consumer reads there: its next pulls go back to the master, which
        # (no slave connected) now keeps it
        killed_at = time.monotonic()
        groups.brokers["a-slave"].kill()
        gate.open()
        yield wait_consumed(gate, sent)
        after = [p for p in pulls if p.at > killed_at and p.addr in (master, slave)]
        assert not any(p.addr == slave and p.status is not None for p in after)
        back = [p for p in after if p.addr == master and p.status is PullStatus.FOUND]
        assert {p.queue_id for p in back} == queues and all(p.suggest == 0 for p in back)
        assert len(gate.got) == len(sent) and set(gate.got) == set(sent)  # offsets went on where they were
    finally:
        gate.open()
        yield consumer.shutdown()
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_master_killed_consumer_drains_the_slave_and_producer_sends_to_the_other_group(groups):
    topic = "HaKill"
    groups.create_topic(topic)
    master, slave = groups.addr("a-master"), groups.addr("a-slave")
    producer = new_producer(groups, topic)
    gate = Gate(close_after=24)
    consumer = new_consumer(groups, topic, gate, "kill-consumer")
    pulls = record_pulls(consumer, topic)
    reactor = consumer.reactor
    outcomes = []
    state = {"stop": False}
    try:
        before = yield backlog(producer, topic, 50, "k")  # acked by a SYNC_MASTER: on the slave too
        yield consumer.start()
        yield poll(lambda: len(gate.got), lambda n: n >= 24, 45, what="24 consumed")
        yield poll(lambda: in_flight(pulls, (master, slave)), lambda left: not left, 30,
                   what="broker-a's pulls stopped by flow control")
        # the default memory ratio: the master keeps its consumers
        assert all(p.addr == master and p.suggest == 0 for p in pulls if p.addr in (master, slave))

        # a producer sending all along; no send may fail

        @defer.inlineCallbacks
        def keep_sending():
            i = 0
            while not state["stop"]:
                body = f"c-{i}"
                i += 1
                started = time.monotonic()
                try:
                    r = yield producer.send(make_message(topic, body))
                    outcomes.append((body, started, r.status, r.message_queue.broker_name, time.monotonic()))
                except Exception as e:  # recorded, asserted below
                    outcomes.append((body, started, None, repr(e), time.monotonic()))
                yield task.deferLater(reactor, 0.02, lambda: None)

        sending = keep_sending()
        yield poll(lambda: len(outcomes), lambda n: n >= 20, 20, what="sends before the kill")
        groups.brokers["a-master"].kill()  # SIGKILL
        killed_at = time.monotonic()
        gate.open()

        # every message sent before the kill is consumed; broker-a's rest comes from the slave
        yield wait_consumed(gate, before + [o[0] for o in list(outcomes) if o[1] < killed_at], 60,
                            "everything sent before the kill")
        from_slave = [p for p in pulls if p.addr == slave and p.status is PullStatus.FOUND]
        assert {p.queue_id for p in from_slave} == {0, 1, 2, 3}
        yield poll(lambda: len([o for o in outcomes if o[1] > killed_at]), lambda n: n >= 50, 30,
                   what="50 sends while broker-a is down")
        errors = [o for o in outcomes if o[2] is None]
        assert not errors, errors[:5]
        assert {o[3] for o in outcomes if o[1] > killed_at + 0.001} == {"broker-b"}

        # broker-a's master comes back: the slave follows it again, the consumer returns to it
        slave_log = groups.brokers["a-slave"]
        yield threads.deferToThread(groups.start, "a-master")
        yield poll(lambda: slave_log.log_text().count("HA: connected to the master"), lambda n: n >= 2, 30,
                   what="the slave reconnected")
        instance = consumer.instance
        yield poll(lambda: instance.broker_addrs.get("broker-a", {}).get(0), lambda a: a == master, 30,
                   what="the consumer saw the master in the route")
        state["stop"] = True
        yield sending
        assert not [o for o in outcomes if o[2] is None]
        assert all(o[2] is SendStatus.SEND_OK for o in outcomes)
        returned_at = time.monotonic()
        rounds = []
        for r in range(2):  # the first may still be answered by a pull the slave was holding
            bodies = [f"back{r}-{q}" for q in range(4)]
            for q, body in enumerate(bodies):
                result = yield producer.send(make_message(topic, body), queue=MessageQueue(topic, "broker-a", q))
                assert result.status is SendStatus.SEND_OK
            yield wait_consumed(gate, bodies, 30, f"round {r} on broker-a")
            rounds.append(bodies)
        served = {b: p.addr for p in pulls if p.at > returned_at for b in p.bodies}
        assert {served[b] for b in rounds[1]} == {master}
        yield wait_consumed(gate, [o[0] for o in outcomes], 30, "everything the producer sent")
        # duplicates only where the consumer changed brokers (broker-a), none of broker-b's, except a send in
        # flight at the kill: broker-a's master may have stored it (and its slave with it) without answering, and
        # the producer's retry stored it again on broker-b; then one copy is served by each group
        on_a = {b for i, b in enumerate(before) if i % 2 == 0} | {o[0] for o in outcomes if o[3] == "broker-a"}
        retried = {o[0] for o in outcomes if o[1] < killed_at <= o[4] and o[3] == "broker-b"}
        dupes = {b for b in gate.got if gate.got.count(b) > 1}
        assert dupes <= on_a | retried, sorted(dupes - on_a - retried)[:10]
        for body in dupes - on_a:
            served_by = {p.addr for p in pulls if body in p.bodies}
            assert served_by & {master, slave} and groups.addr("b-master") in served_by, (body, served_by)
    finally:
        state["stop"] = True
        gate.open()
        yield consumer.shutdown()
        yield producer.shutdown()


@pytest_twisted.inlineCallbacks
def test_timers_fired_by_the_master_are_read_from_the_slave_once_it_dies(groups):
    """Timer messages sent by the project's producer (``deliver_time_ms``) to broker-a: its master delivers
    them within the precision (1 s) and they reach its slave; then the master is SIGKILLed and a push
    consumer started afterwards reads every one from the slave. A timer not due yet stays a timer there (a
    slave fires nothing)."""
    topic = "HaTimerRead"
    groups.create_topic(topic)
    master, slave = groups.addr("a-master"), groups.addr("a-slave")
    producer = new_producer(groups, topic)
    bodies = [f"t-{q}-{i}" for q in range(4) for i in range(2)]
    try:
        for n, body in enumerate(bodies):  # due 5 s after its own send: a send after its due time is no timer
            due = int(time.time() * 1000) + 5000 + 100 * n
            r = yield producer.send(make_message(topic, body, deliver_time_ms=due),
                                    queue=MessageQueue(topic, "broker-a", n // 2))
            assert r.status is SendStatus.SEND_OK
        r = yield producer.send(make_message(topic, "far", deliver_time_ms=int(time.time() * 1000) + 600_000),
                                queue=MessageQueue(topic, "broker-a", 0))
        assert r.status is SendStatus.SEND_OK
    finally:
        yield producer.shutdown()

    def on(addr):
        got = []
        for q in range(4):
            response = call(addr, pull_request("timer_probe", topic, q, 0, 32))
            if response.code == ResponseCode.SUCCESS:
                got += decode_messages(response.body)
        return got

    fired = yield poll(lambda: threads.deferToThread(on, master), lambda got: len(got) == len(bodies), 30, 0.1,
                       what="the master delivered every due timer")
    for m in fired:  # never early (one host's clock); the precision itself is test_timer_clock's (task.Clock):
        # here a loaded host's stalls add to it, so only seconds late fails
        assert 0 <= m.store_timestamp - int(m.properties["TIMER_OUT_MS"]) < 5000, m.body
    yield poll(lambda: threads.deferToThread(on, slave), lambda got: len(got) == len(bodies), 30, 0.1,
               what="the deliveries replicated to the slave")
    groups.brokers["a-master"].kill()  # SIGKILL
    yield poll(lambda: groups.route_addrs(topic).get("broker-a", {}), lambda addrs: 0 not in addrs, 30, 0.2,
               what="broker-a's master out of the route")
    gate = Gate(close_after=10_000)
    consumer = new_consumer(groups, topic, gate, "timer-slave-consumer")
    pulls = record_pulls(consumer, topic)
    try:
        yield consumer.start()
        yield wait_consumed(gate, bodies, 60, "the delivered timers, from the slave")
        assert {p.addr for p in pulls if p.status is PullStatus.FOUND and p.bodies} == {slave}
        assert sorted(b for b in gate.got if b.startswith("t-")) == sorted(bodies) and "far" not in gate.got
    finally:
        yield consumer.shutdown()
