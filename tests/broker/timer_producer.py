"""Send timer messages with the project's producer (blocking facade); run by test_timer_process.py.

    timer_producer.py NAMESRV TOPIC SPECS_JSON  → one JSON line per message: its status or the broker's refusal

A spec is ``{"body": ..., "delay_ms" | "delay_sec" | "deliver_in": n}`` (``deliver_in``: TIMER_DELIVER_MS set to
this many ms from the send), or ``{"cancel": i}``: cancel the timer of spec ``i`` (sent with ``deliver_in``).
"""

from __future__ import annotations

import json
import sys
import time

from mq.client import make_message
from mq.client.blocking import BlockingProducer
from mq.client.model import MQBrokerError


def main(namesrv: str, topic: str, specs: list) -> None:
    with BlockingProducer("timer_it_producer", namesrv, retry_times=0) as producer:
        sent = []
        for spec in specs:
            if "cancel" in spec:
                result, deliver = sent[spec["cancel"]]
                out = {"status": producer.cancel_timer(result, deliver).status.value}
                sys.stdout.write(json.dumps(out) + "\n")
                sent.append((None, None))
                continue
            deliver = int(time.time() * 1000) + spec["deliver_in"] if "deliver_in" in spec else None
            msg = make_message(topic, spec["body"], deliver_time_ms=deliver, delay_ms=spec.get("delay_ms"))
            if "delay_sec" in spec:
                msg.delay_time_sec = spec["delay_sec"]
            try:
                r = producer.send(msg)
                out = {"status": r.status.value}
                sent.append((r, deliver))
            except MQBrokerError as e:
                out = {"code": e.code, "remark": e.remark}
                sent.append((None, None))
            sys.stdout.write(json.dumps(out) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
