"""Interop with the official C++ client (PyPI ``rocketmq`` 0.4.4): this project's producer feeding the C++
``PushConsumer``, and the C++ producer feeding this project's push and lite pull consumers, with bodies,
tags, keys and properties intact. The C++ client runs in a subprocess (``tests/interop/cpp_client.py``)."""

from __future__ import annotations

import json
import subprocess
import threading

import pytest_twisted

from mq.client import ConsumeFromWhere, LitePullConsumer, Producer, PushConsumer, make_message
from tests.interop.test_cpp_client import CPP_PYTHON, SCRIPT, pytestmark  # noqa: F401 - skip without the C++ client
from tests.support.polling import poll
from tests.support.processes import REPO, child_env

PROPS = ["color", "n"]


def specs(prefix, n):
    return [{"body": f"{prefix}-{i}", "tags": f"tag{i % 3}", "keys": f"key{i} k{i}",
             "props": {"color": f"c{i}", "n": str(i)}} for i in range(n)]


class CppPushConsumer:
    """The C++ PushConsumer in a subprocess; its messages are collected by a reader thread."""

    def __init__(self, namesrv, topic, group):
        self.proc = subprocess.Popen([CPP_PYTHON, str(SCRIPT), "push", namesrv, topic, group, "CLUSTERING",
                                      json.dumps(PROPS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=child_env(), cwd=str(REPO))
        self.messages, self.started = [], threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            obj = json.loads(line)
            if obj.get("started"):
                self.started.set()
            elif "body" in obj:
                self.messages.append(obj)

    def stop(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest_twisted.inlineCallbacks
def test_project_producer_feeds_the_cpp_push_consumer(cluster, unique):
    topic = f"T_{unique}"
    cluster.create_topic(topic)
    cpp = CppPushConsumer(cluster.namesrv_addr, topic, f"CppCG_{unique}")
    producer = Producer(f"PG_{unique}", cluster.namesrv_addr)
    producer.start()
    try:
        yield poll(lambda: cpp.started.is_set(), bool, 30, what="the C++ consumer started")
        expected = specs("py", 12)
        for s in expected:
            yield producer.send(make_message(topic, s["body"], tags=s["tags"], keys=s["keys"], properties=s["props"]))
        yield producer.send_batch([make_message(topic, f"batch-{i}", tags="tb") for i in range(4)])
        got = yield poll(lambda: list(cpp.messages), lambda m: len({x["body"] for x in m}) >= 16, 60,
                         what="16 messages in the C++ consumer")
        by_body = {m["body"]: m for m in got}
        for s in expected:
            m = by_body[s["body"]]
            assert (m["tags"], m["keys"], m["props"]) == (s["tags"], s["keys"], s["props"])
        assert {f"batch-{i}" for i in range(4)} <= set(by_body)
    finally:
        yield producer.shutdown()
        cpp.stop()


@pytest_twisted.inlineCallbacks
def test_cpp_producer_feeds_the_project_consumers(cluster, unique):
    topic = f"T_{unique}"
    cluster.create_topic(topic)
    expected = specs("cpp", 10)
    result = subprocess.run(  # blocks the reactor while the C++ producer runs: nothing of ours is running yet
        [CPP_PYTHON, str(SCRIPT), "produce", cluster.namesrv_addr, topic, "sync", json.dumps(expected)],
        capture_output=True, timeout=90, env=child_env(), cwd=str(REPO))
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    statuses = [json.loads(line)["status"] for line in result.stdout.decode().splitlines() if line.startswith("{")]
    assert statuses == ["OK"] * 10, statuses
    got = []
    push = PushConsumer(f"CG_{unique}", cluster.namesrv_addr, instance_name=f"{unique}-push",
                        consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET)
    push.subscribe(topic, "tag0 || tag1 || tag2")
    push.register_message_listener(lambda msgs, ctx: got.extend(msgs))
    lite = LitePullConsumer(f"LG_{unique}", cluster.namesrv_addr, instance_name=f"{unique}-lite",
                            consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET)
    lite.subscribe(topic, "tag1")
    polled = []
    try:
        yield push.start()
        yield lite.start()
        yield poll(lambda: len(got), lambda n: n >= 10, 30, what="10 messages pushed")
        yield poll(lambda: lite.poll(0.5).addCallback(lambda ms: polled.extend(ms) or polled),
                   lambda p: len(p) >= 3, 30, what="the tag1 messages polled")
        by_body = {m.body.decode(): m for m in got}
        assert sorted(by_body) == sorted(s["body"] for s in expected)
        for s in expected:
            m = by_body[s["body"]]
            assert (m.tags, m.properties["KEYS"], m.properties["color"], m.properties["n"]) == (
                s["tags"], s["keys"], s["props"]["color"], s["props"]["n"])
            assert m.keys == s["keys"].split()
        assert sorted(m.body.decode() for m in polled) == ["cpp-1", "cpp-4", "cpp-7"]
    finally:
        yield push.shutdown()
        yield lite.shutdown()
