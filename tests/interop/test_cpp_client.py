"""The official C++ client (PyPI ``rocketmq`` 0.4.4, librocketmq) against ``twistd namesrv`` + ``twistd broker``.

The client runs in a subprocess (``cpp_client.py``) under an interpreter that has ``rocketmq``: ``$MQ_CPP_PYTHON``,
else this interpreter if it can import ``rocketmq.client``, else ``/tmp/venv-cpp/bin/python``. Its own logs
are in ``~/logs/rocketmq-cpp/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mq.client.simple import create_topic_request, pull_request, send_request
from mq.common.message_record import decode_messages
from mq.remoting.codes import ResponseCode as RC
from tests.broker.cluster import broker_starter, processes, start_namesrv
from tests.broker.wire import Wire, call
from tests.support.processes import REPO, child_env, wait_until

SCRIPT = Path(__file__).with_name("cpp_client.py")
PROPS = ["color", "n"]


def _cpp_python():
    explicit = os.environ.get("MQ_CPP_PYTHON")
    if explicit:
        return explicit
    try:
        import rocketmq.client  # noqa: F401

        return sys.executable
    except Exception:  # not installed here, or Apache's rocketmq-client-python without its library
        pass
    fallback = "/tmp/venv-cpp/bin/python"
    return fallback if os.path.exists(fallback) else None


CPP_PYTHON = _cpp_python()
pytestmark = pytest.mark.skipif(
    CPP_PYTHON is None,
    reason="no interpreter with the C++ client: pip install rocketmq==0.4.4 or set MQ_CPP_PYTHON")


def cpp(*args, timeout=60):
    """Run cpp_client.py to completion; its JSON lines."""
    result = subprocess.run([CPP_PYTHON, str(SCRIPT), *args], capture_output=True, timeout=timeout,
                            env=child_env(), cwd=str(REPO))
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return [json.loads(line) for line in result.stdout.decode().splitlines() if line.startswith("{")]


class PushConsumerProcess:
    def __init__(self, namesrv, topic, group, model, options=None):
        self.proc = subprocess.Popen([CPP_PYTHON, str(SCRIPT), "push", namesrv, topic, group, model,
                                      json.dumps(PROPS), json.dumps(options or {})],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=child_env(), cwd=str(REPO))
        self.messages = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            obj = json.loads(line)
            if "body" in obj:
                self.messages.append(obj)

    def bodies(self):
        return [m["body"] for m in self.messages]

    def stop(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cpp")
    with processes(tmp) as twistd:
        namesrv = start_namesrv(twistd, tmp)
        broker = broker_starter(twistd, tmp, namesrv)("--flush", "ASYNC_FLUSH", name="cpp-broker")
        yield namesrv, broker


def specs(prefix, n):
    return [{"body": f"{prefix}-{i}", "tags": f"tag{i % 3}", "keys": f"key{i} k{i}",
             "props": {"color": f"c{i}", "n": str(i)}} for i in range(n)]


def stored(broker, topic, queues=4):
    """Every message of the topic, read back with this project's pull."""
    out = []
    with Wire(broker.addr) as w:
        for qid in range(queues):
            offset = 0
            while True:
                r = w.call(pull_request("cpp_check", topic, qid, offset))
                if r.code != RC.SUCCESS:
                    break
                out += decode_messages(r.body)
                offset = int(r.ext_fields["nextBeginOffset"])
    return out


def check_stored(messages, expected):
    by_body = {m.body.decode(): m for m in messages}
    assert sorted(by_body) == sorted(s["body"] for s in expected)
    for s in expected:
        m = by_body[s["body"]]
        assert (m.tags, m.properties["KEYS"], m.properties["color"], m.properties["n"]) == (
            s["tags"], s["keys"], s["props"]["color"], s["props"]["n"])
        assert m.born_host[0] == "127.0.0.1"


@pytest.mark.parametrize("mode", ["sync", "async", "oneway", "orderly", "batch"])
def test_producer_modes(cluster, mode):
    namesrv, broker = cluster
    topic = f"CppSend_{mode}"
    assert call(broker.addr, create_topic_request(topic, queues=4)).code == RC.SUCCESS
    expected = specs(mode, 6)
    results = cpp("produce", namesrv.addr, topic, mode, json.dumps(expected))
    if mode == "oneway":
        wait_until(lambda: len(stored(broker, topic)) == len(expected), 10, 0.1, "oneway sends stored")
    else:
        assert {r["status"] for r in results} == {"OK"}, results  # SendStatus.OK is SEND_OK
        assert len(results) == (1 if mode == "batch" else len(expected))
    messages = stored(broker, topic)
    check_stored(messages, expected)
    if mode == "batch":  # a C++ batch is stored as its separate messages, in one queue
        assert len({m.queue_id for m in messages}) == 1
    if mode == "orderly":  # the selector put message i on queue i % 2
        assert all(m.queue_id == int(m.properties["n"]) % 2 for m in messages)


def _warm_up(broker, topic, consumers, deadline=60, queues=4, broadcast=False):
    """Send until every queue is being pulled: a consumer starts each queue at its end when it first pulls
    there, and the queues' first pulls come one by one (a message sent to a queue not pulled yet would be passed
    over). Every consumer has received a message, from every queue with ``broadcast`` (each consumer reads
    them all), else the consumers together from every queue."""
    end = time.monotonic() + deadline
    every = set(range(queues))

    def seen(c):
        return {m["queue_id"] for m in list(c.messages)}

    def ready():
        if not all(c.messages for c in consumers):
            return False
        if broadcast:
            return all(seen(c) >= every for c in consumers)
        return set().union(*(seen(c) for c in consumers)) >= every

    with Wire(broker.addr) as w:
        while not ready():
            if time.monotonic() > end:
                raise AssertionError("the C++ push consumers received nothing")
            for qid in range(queues):
                w.call(send_request(topic, b"warm-up", tags="warm", queue_id=qid))
            time.sleep(0.3)


def _send_expected(broker, topic, expected):
    with Wire(broker.addr) as w:
        for i, s in enumerate(expected):
            r = w.call(send_request(topic, s["body"].encode(), tags=s["tags"], keys=s["keys"],
                                    properties=s["props"], queue_id=i % 4))
            assert r.code == RC.SUCCESS


def _check_received(consumer, expected):
    got = {m["body"]: m for m in consumer.messages if m["body"] != "warm-up"}
    assert sorted(got) == sorted(s["body"] for s in expected)
    for s in expected:
        m = got[s["body"]]
        assert (m["tags"], m["keys"], m["props"]) == (s["tags"], s["keys"], s["props"])


@pytest.mark.parametrize("model", ["CLUSTERING", "BROADCASTING"])
def test_push_consumer(cluster, model):
    namesrv, broker = cluster
    topic = f"CppPush_{model}"
    group = f"cpp_push_{model.lower()}"
    assert call(broker.addr, create_topic_request(topic, queues=4)).code == RC.SUCCESS
    consumers = [PushConsumerProcess(namesrv.addr, topic, group, model) for _ in range(2 if model == "BROADCASTING" else 1)]
    try:
        _warm_up(broker, topic, consumers, broadcast=model == "BROADCASTING")
        expected = specs(model.lower(), 20)
        _send_expected(broker, topic, expected)
        for consumer in consumers:  # broadcasting: every consumer gets every message
            wait_until(lambda c=consumer: len([b for b in c.bodies() if b != "warm-up"]) >= len(expected), 30, 0.1,
                       f"{model} consumer received every message")
            _check_received(consumer, expected)
    finally:
        for consumer in consumers:
            consumer.stop()


def test_pull_consumer_from_offset(cluster):
    namesrv, broker = cluster
    topic = "CppPull"
    assert call(broker.addr, create_topic_request(topic, queues=2)).code == RC.SUCCESS
    expected = specs("pull", 5)
    with Wire(broker.addr) as w:
        for s in expected:
            w.call(send_request(topic, s["body"].encode(), tags=s["tags"], keys=s["keys"], properties=s["props"],
                                queue_id=1))
    got = cpp("pull", namesrv.addr, topic, "cpp_pull_group", "1", "2", json.dumps(PROPS))
    assert [(m["body"], m["queue_offset"]) for m in got] == [(f"pull-{i}", i) for i in range(2, 5)]
    assert [(m["tags"], m["keys"], m["props"]) for m in got] == [
        (s["tags"], s["keys"], s["props"]) for s in expected[2:]]


def test_timer_message_with_the_property_set_by_hand(cluster):
    """The C++ client has no timer API: ``TIMER_DELIVER_MS`` / ``TIMER_DELAY_SEC`` set as plain properties."""
    namesrv, broker = cluster
    topic = "CppTimer"
    assert call(broker.addr, create_topic_request(topic, queues=4)).code == RC.SUCCESS
    due = int(time.time() * 1000) + 15000  # beyond the C++ client's start-up and sends on a loaded machine
    sent = [{"body": "at-time", "props": {"TIMER_DELIVER_MS": str(due)}},
            {"body": "in-16s", "props": {"TIMER_DELAY_SEC": "16"}},
            {"body": "too-far", "props": {"TIMER_DELAY_SEC": str(4 * 86_400)}}]
    results = cpp("produce", namesrv.addr, topic, "sync", json.dumps(sent[:2]))
    assert {r["status"] for r in results} == {"OK"}, results
    assert stored(broker, topic) == []
    refused = cpp("produce", namesrv.addr, topic, "async", json.dumps(sent[2:]))
    assert refused[0]["status"] == "ERROR", refused  # MESSAGE_ILLEGAL (the binding drops the remark)
    wait_until(lambda: len(stored(broker, topic)) == 2, 40, 0.05, "both timers delivered")
    messages = stored(broker, topic)
    assert sorted(m.body for m in messages) == [b"at-time", b"in-16s"]
    for m in messages:
        out = int(m.properties["TIMER_OUT_MS"])
        assert m.body != b"at-time" or out == due
        assert m.store_timestamp >= out, (m.body, m.store_timestamp - out)  # never early (how late: task.Clock tests)


def test_timer_messages_from_the_cpp_client_survive_a_restart_and_a_sigkill(twistd, tmp_path):
    """Timers set by hand with the C++ client: pending across a graceful restart, then a SIGKILL between
    checkpoints in the middle of their deliveries; each is delivered, once."""
    from collections import Counter

    from tests.broker.cluster import pull_all, restartable_broker

    holder = restartable_broker(twistd, tmp_path, "timerFlushIntervalMs=60000\n", "cpp-timer-broker")
    namesrv, topic = holder["namesrv"], "CppTimerKill"
    assert call(holder["broker"].addr, create_topic_request(topic, queues=1)).code == RC.SUCCESS
    # due over 10 .. 18.8 s: after the client's exit and the restart, and spread so that the kill below comes
    # with most still to fire even if this process stalls a few seconds
    sent = [{"body": f"t{i}", "props": {"TIMER_DELAY_MS": str(10000 + 800 * i)}} for i in range(12)]
    assert {r["status"] for r in cpp("produce", namesrv.addr, topic, "sync", json.dumps(sent))} == {"OK"}
    broker = holder["restart"]()  # every timer still waits
    wait_until(lambda: len(pull_all(broker.addr, topic)) >= 4, 30, 0.05, "some timers delivered")
    delivered_before_kill = len(pull_all(broker.addr, topic))
    broker.kill()
    assert delivered_before_kill < 12  # killed in the middle of the deliveries
    broker = holder["start"]()
    wait_until(lambda: len(pull_all(broker.addr, topic)) >= 12, 30, 0.1, "every timer after the SIGKILL")
    # a marker timer due after every slot the others were in: slots fire in time order, a repeat comes first
    r = call(broker.addr, send_request(topic, b"marker", properties={"TIMER_DELAY_MS": "1000"}, queue_id=0))
    assert r.code == RC.SUCCESS, r.remark
    wait_until(lambda: b"marker" in [m.body for m in pull_all(broker.addr, topic)], 30, 0.1, "the marker timer")
    counts = Counter(m.body for m in pull_all(broker.addr, topic) if m.body != b"marker")
    assert counts == Counter(s["body"].encode() for s in sent), counts
