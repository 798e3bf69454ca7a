"""``thread_stacks``: what this client process is doing, for GET_CONSUMER_RUNNING_INFO with ``jstackEnable``.

A Java client answers a thread dump there (``mqadmin consumerStatus -s``, rocketmq-dashboard's running info
with jstack); this is the Python equivalent in the same shape: ``Thread: <name> <state>`` and then one
``\tat <function> (<file>:<line>)`` line per frame, innermost first. Bounded: at most ``max_threads`` threads
and ``max_chars`` characters (the rest is cut with a note), as the answer travels in one remoting frame.
"""

from __future__ import annotations

import sys
import threading
import traceback

MAX_THREADS = 256
MAX_CHARS = 256 * 1024


def thread_stacks(max_threads: int = MAX_THREADS, max_chars: int = MAX_CHARS) -> str:
    names = {t.ident: (t.name, "RUNNABLE" if t.is_alive() else "TERMINATED") for t in threading.enumerate()}
    parts = []
    for ident, frame in list(sys._current_frames().items())[:max_threads]:
        name, state = names.get(ident, (f"thread-{ident}", "RUNNABLE"))
        lines = [f"Thread: {name} {state}"]
        for f in reversed(traceback.extract_stack(frame)):
            lines.append(f"\tat {f.name} ({f.filename}:{f.lineno})")
        parts.append("\n".join(lines) + "\n")
    text = "\n".join(parts)
    if len(text) > max_chars:
        text = text[:max_chars] + f"\n... cut at {max_chars} characters\n"
    return text
