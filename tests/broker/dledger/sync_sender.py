"""Synchronous sends with the project's producer (blocking facade), one after another; run by the failover tests.

    sync_sender.py NAMESRV TOPIC COUNT  → one line per send: ``ok BODY`` once acknowledged, ``fail BODY`` otherwise

It stops after COUNT sends, or when its standard input closes.
"""

from __future__ import annotations

import sys
import threading
import time

from mq.client import make_message
from mq.client.blocking import BlockingProducer


def main(namesrv: str, topic: str, count: int) -> None:
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    with BlockingProducer("dl_sync_sender", namesrv, send_timeout=3.0, retry_times=2) as producer:
        for i in range(count):
            if stop.is_set():
                break
            body = "s-%07d" % i
            try:
                ok = producer.send(make_message(topic, body.encode(), tags="t")).status.name == "SEND_OK"
            except Exception as e:  # noqa: BLE001 - a failed send carries no promise
                sys.stderr.write(f"{body}: {e}\n")
                ok = False
            sys.stdout.write(f"{'ok' if ok else 'fail'} {body}\n")
            sys.stdout.flush()
            if not ok:
                time.sleep(0.02)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
