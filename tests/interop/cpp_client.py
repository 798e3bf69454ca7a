"""Drives the official C++ client (PyPI ``rocketmq`` 0.4.4, librocketmq) for the interop tests.

Run by an interpreter that has ``rocketmq`` installed, as a subprocess of the tests (the C++ library and
this project's reactor stay in separate processes). Output is JSON, one object per line, on stdout.

    cpp_client.py produce NAMESRV TOPIC MODE MESSAGES_JSON     MODE: sync async oneway orderly batch sync_each
        (sync_each: a failed send is a line {"status": "ERROR"} and the next one goes on; a spec's "sleep_ms"
        waits before its send)
    cpp_client.py push NAMESRV TOPIC GROUP MODEL PROPS_JSON [OPTIONS_JSON]
        MODEL: CLUSTERING or BROADCASTING; runs until stdin closes. OPTIONS: {"orderly": true} for an orderly
        consumer, {"fail_prefix": "x"} to raise (RECONSUME_LATER) for every message whose body starts with x.
    cpp_client.py pull NAMESRV TOPIC GROUP QUEUE_ID OFFSET PROPS_JSON

With MQ_CPP_ACCESS_KEY and MQ_CPP_SECRET_KEY in the environment every client signs its requests
(``set_session_credentials``; the OnsChannel value is MQ_CPP_CHANNEL, default ALIYUN).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

from rocketmq.client import Message, MessageModel, Producer, PullConsumer, PushConsumer


def out(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")


def with_credentials(client):
    """``client`` after ``set_session_credentials`` when the environment names an account."""
    access_key = os.environ.get("MQ_CPP_ACCESS_KEY")
    if access_key:
        client.set_session_credentials(access_key, os.environ.get("MQ_CPP_SECRET_KEY", ""),
                                       os.environ.get("MQ_CPP_CHANNEL", "ALIYUN"))
    return client


def message(topic: str, spec: dict) -> Message:
    msg = Message(topic)
    msg.set_body(spec["body"])
    if spec.get("tags"):
        msg.set_tags(spec["tags"])
    if spec.get("keys"):
        msg.set_keys(spec["keys"])
    for key, value in (spec.get("props") or {}).items():
        msg.set_property(key, value)
    if spec.get("delay"):
        msg.set_delay_time_level(int(spec["delay"]))
    return msg


def received(msg, props) -> dict:
    return {"body": text(msg.body), "tags": text(msg.tags), "keys": text(msg.keys), "queue_id": msg.queue_id,
            "queue_offset": msg.queue_offset, "id": msg.id, "reconsume_times": msg.reconsume_times,
            "born_timestamp": msg.born_timestamp, "store_timestamp": msg.store_timestamp,
            "received_ms": int(time.time() * 1000), "thread": threading.get_ident(),
            "props": {k: text(msg.get_property(k)) for k in props}}


def produce(namesrv: str, topic: str, mode: str, specs: list) -> None:
    producer = with_credentials(Producer("cpp_interop_producer_" + mode))
    producer.set_namesrv_addr(namesrv)
    producer.start()
    try:
        if mode == "batch":
            r = producer.send_batch([message(topic, s) for s in specs])
            out({"status": r.status.name, "msg_id": r.msg_id, "offset": r.offset})
            return
        done = threading.Semaphore(0)
        for i, spec in enumerate(specs):
            msg = message(topic, spec)
            if spec.get("sleep_ms"):
                time.sleep(spec["sleep_ms"] / 1000)
            if mode == "sync_each":
                try:
                    r = producer.send_sync(msg)
                except Exception as e:  # noqa: BLE001 - the C++ client raises for any failed send
                    out({"status": "ERROR", "body": spec["body"], "error": str(e)[:200]})
                    continue
                out({"status": r.status.name, "body": spec["body"], "msg_id": r.msg_id, "offset": r.offset})
            elif mode == "sync":
                r = producer.send_sync(msg)
                out({"status": r.status.name, "msg_id": r.msg_id, "offset": r.offset})
            elif mode == "orderly":
                r = producer.send_orderly(msg, i % 2)
                out({"status": r.status.name, "msg_id": r.msg_id, "offset": r.offset})
            elif mode == "oneway":
                producer.send_oneway(msg)
                out({"status": "ONEWAY"})
            elif mode == "async":
                producer.send_async(
                    msg,
                    lambda r: (out({"status": r.status.name, "msg_id": r.msg_id, "offset": r.offset}), done.release()),
                    lambda e: (out({"status": "ERROR", "error": str(e)}), done.release()),
                )
        if mode == "async":
            for _ in specs:
                if not done.acquire(timeout=20):
                    out({"status": "TIMEOUT"})
                    break
    finally:
        producer.shutdown()


def push(namesrv: str, topic: str, group: str, model: str, props: list, options: dict) -> None:
    consumer = with_credentials(PushConsumer(group, orderly=bool(options.get("orderly")),
                                             message_model=MessageModel[model]))
    consumer.set_namesrv_addr(namesrv)
    if model == "BROADCASTING":
        # Its offsets are kept in ~/.rocketmq_offsets/<clientId>/<group>, and the client id is ip@DEFAULT for
        # every C++ client: two consumers (or the suites CI runs at once, each with its own broker) would share one
        # file and read each other's offsets, past their own queues' ends. One instance name per process.
        consumer.set_instance_name(f"cpp-{os.getpid()}")
    fail_prefix = options.get("fail_prefix")

    def on_message(msg):
        out(received(msg, props))
        if fail_prefix and text(msg.body).startswith(fail_prefix):
            raise RuntimeError("failing on purpose: reconsume later")

    consumer.subscribe(topic, on_message)
    consumer.start()
    out({"started": True})
    try:
        sys.stdin.read()  # until the test closes our stdin
    finally:
        consumer.shutdown()


def pull(namesrv: str, topic: str, group: str, queue_id: int, offset: int, props: list) -> None:
    consumer = with_credentials(PullConsumer(group))
    consumer.set_namesrv_addr(namesrv)
    consumer.start()
    try:
        consumer.offset_table[f"{topic}@{queue_id}"] = offset
        for msg in consumer.pull(topic):
            if msg.queue_id == queue_id and msg.queue_offset >= offset:
                out(received(msg, props))
    finally:
        consumer.shutdown()


def specs_argument(text: str) -> list:
    """JSON message specs, given inline or as ``@path`` (a long run's specs exceed one argument's 128 KiB)."""
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as f:
            return json.load(f)
    return json.loads(text)


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    started = time.monotonic()
    if command == "produce":
        produce(args[0], args[1], args[2], specs_argument(args[3]))
    elif command == "push":
        push(args[0], args[1], args[2], args[3], json.loads(args[4]), json.loads(args[5]) if len(args) > 5 else {})
    elif command == "pull":
        pull(args[0], args[1], args[2], int(args[3]), int(args[4]), json.loads(args[5]))
    else:
        raise SystemExit(f"unknown command {command}")
