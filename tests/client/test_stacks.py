"""The client's answer to a running-info request with jstackEnable: its threads' stacks, bounded."""

from __future__ import annotations

import threading
import time

from mq.client.stacks import thread_stacks


def test_every_thread_is_named_with_its_frames_innermost_first():
    started, stop = threading.Event(), threading.Event()

    def parked_worker():
        started.set()
        stop.wait(10)

    worker = threading.Thread(target=parked_worker, name="parked-worker")
    worker.start()
    def worker_frames(text):
        block = next(b for b in text.split("\n\n") if b.startswith("Thread: parked-worker RUNNABLE"))
        return [line.split(" (")[0] for line in block.splitlines()[1:] if line]

    try:
        started.wait(10)
        # the worker may still be on its way into the wait (in parked_worker, or in the lock Event.wait takes
        # first): look again until it is parked there, innermost frames first
        deadline = time.monotonic() + 10
        while True:
            text = thread_stacks()
            frames = worker_frames(text)
            if "\tat wait" in frames or time.monotonic() > deadline:
                break
    finally:
        stop.set()
        worker.join()
    assert "\tat parked_worker" in frames and "\tat wait" in frames, frames
    assert frames.index("\tat wait") < frames.index("\tat parked_worker")  # the callee first
    assert "Thread: MainThread RUNNABLE" in text


def test_the_dump_is_bounded():
    assert thread_stacks(max_threads=1).count("Thread: ") == 1
    cut = thread_stacks(max_chars=100)
    assert len(cut) < 200 and cut.endswith("... cut at 100 characters\n")
