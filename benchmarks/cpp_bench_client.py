"""C++ client load for broker_bench (run under an interpreter with PyPI ``rocketmq`` 0.4.4).

    cpp_bench_client.py NAMESRV TOPIC SIZE THREADS SECONDS   → one JSON line: sends, errors, latencies (ms)
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import Counter

from rocketmq.client import Message, Producer


def main(namesrv: str, topic: str, size: int, threads: int, seconds: float) -> None:
    producer = Producer("cpp_bench_producer")
    producer.set_namesrv_addr(namesrv)
    producer.start()
    body = b"x" * size
    warm = Message(topic)
    warm.set_body(body)
    producer.send_sync(warm)
    latencies, errors = [], [0]
    why: Counter = Counter()  # each distinct failure (its text, numbers masked) and how often
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def worker() -> None:
        mine, bad, reasons = [], 0, Counter()
        msg = Message(topic)
        msg.set_body(body)
        while time.monotonic() < end:
            t0 = time.perf_counter()
            try:
                producer.send_sync(msg)
                mine.append(time.perf_counter() - t0)
            except Exception as e:
                bad += 1
                reasons[re.sub(r"\d+", "N", f"{type(e).__name__}: {e}")[:300]] += 1
        with lock:
            latencies.extend(mine)
            errors[0] += bad
            why.update(reasons)

    started = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - started
    producer.shutdown()
    latencies.sort()
    n = len(latencies)
    print(json.dumps({
        "sends": n, "errors": errors[0], "seconds": elapsed, "tps": n / elapsed,
        "avg_ms": 1000 * sum(latencies) / max(n, 1),
        "p99_ms": 1000 * latencies[int(n * 0.99)] if n else 0, "max_ms": 1000 * latencies[-1] if n else 0,
        "error_kinds": dict(why.most_common(5)),
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
