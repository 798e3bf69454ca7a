"""The client's answer to a running-info request with jstackEnable: its threads' stacks, bounded."""

from __future__ import annotations

import threading

from mq.client.stacks import thread_stacks


def test_every_thread_is_named_with_its_frames_innermost_first():
    started, stop = threading.Event(), threading.Event()

    def parked_worker():
        started.set()
        stop.wait(10)

    worker = threading.Thread(target=parked_worker, name="parked-worker")
    worker.start()
    try:
        started.wait(10)
        text = thread_stacks()
    finally:
        stop.set()
        worker.join()
    block = next(b for b in text.split("\n\n") if b.startswith("Thread: parked-worker RUNNABLE"))
    frames = [line for line in block.splitlines()[1:] if line]
    assert frames[0].startswith("\tat wait (") and any(f.startswith("\tat parked_worker (") for f in frames)
    assert "Thread: MainThread RUNNABLE" in text


def test_the_dump_is_bounded():
    assert thread_stacks(max_threads=1).count("Thread: ") == 1
    cut = thread_stacks(max_chars=100)
    assert len(cut) < 200 and cut.endswith("... cut at 100 characters\n")
