"""A plain Python program (no reactor of its own) using the blocking facade; run by test_blocking.py.

    blocking_program.py NAMESRV TOPIC GROUP  → JSON lines on stdout
"""

from __future__ import annotations

import json
import sys
import threading
import time

from mq.client import ConsumeConcurrentlyStatus, ConsumeFromWhere, make_message
from mq.client.blocking import BlockingLitePullConsumer, BlockingProducer, BlockingPushConsumer


def out(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(namesrv: str, topic: str, group: str) -> None:
    with BlockingProducer(f"{group}_P", namesrv) as producer:
        results = [producer.send(make_message(topic, f"m{i}", tags="T", keys=f"k{i}")) for i in range(10)]
        out({"sent": [r.status.value for r in results]})
        batch = producer.send_batch([make_message(topic, f"b{i}") for i in range(5)])
        out({"batch_ids": len(batch.msg_id.split(","))})
        producer.send_oneway(make_message(topic, "oneway"))

    got, threads_seen = [], set()
    done = threading.Event()

    def listener(msgs, context):
        time.sleep(0.01)  # a listener may block: it runs in a worker thread
        threads_seen.add(threading.current_thread().name)
        got.extend(m.body.decode() for m in msgs)
        if len(set(got)) >= 16:
            done.set()
        return ConsumeConcurrentlyStatus.CONSUME_SUCCESS

    consumer = BlockingPushConsumer(f"{group}_C", namesrv, instance_name="push",
                                    consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET)
    consumer.subscribe(topic, "*")
    consumer.register_message_listener(listener)
    with consumer:
        done.wait(60)
    out({"pushed": sorted(set(got)), "reactor_thread_used": any("reactor" in t for t in threads_seen)})

    pulled = []
    lite = BlockingLitePullConsumer(f"{group}_L", namesrv, instance_name="lite",
                                    consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET)
    lite.subscribe(topic, "T")
    with lite:
        deadline = time.monotonic() + 60
        while len(pulled) < 10 and time.monotonic() < deadline:
            pulled.extend(m.body.decode() for m in lite.poll(1.0))
    out({"polled": sorted(pulled)})


if __name__ == "__main__":
    main(*sys.argv[1:4])
