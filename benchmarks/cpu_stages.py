"""CPU per message from ``/proc`` and, with py-spy, per stage: the accounting behind the DLedger throughput work.

``cpu_seconds(pid)`` is a process's utime + stime; ``Recorder`` runs ``py-spy record`` (raw collapsed stacks,
idle samples left out, so samples are CPU) on a process for a window, and ``stages`` folds the stacks into the
stages a replicated send passes through on a node. Each sample goes to the most specific stage marker on its
stack (a marker's rank, then the innermost frame), so a CommitLog write under the apply step counts as apply,
and an entry encode under the leader's send counts as encode.
"""

from __future__ import annotations

import collections
import os
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Tuple

TICKS = os.sysconf("SC_CLK_TCK")

#: (rank, path part, function or None, stage): higher rank wins; within a rank the innermost frame.
STAGES: List[Tuple[int, str, Optional[str], str]] = [
    (5, "mq/dledger/store.py", None, "Raft log write + fsync (writer thread)"),
    (5, "mq/dledger/entry.py", "encode", "encode entries"),
    (5, "mq/dledger/codec.py", "to_command", "encode Raft message"),
    (5, "mq/dledger/codec.py", "from_command", "decode Raft message"),
    (5, "mq/dledger/entry.py", "decode_all", "decode Raft message"),
    (5, "mq/broker/dledger/group.py", "_apply", "apply (CommitLog + queues)"),
    (5, "mq/broker/dledger/group.py", "_commit", "apply (CommitLog + queues)"),
    (4, "mq/broker/dledger/group.py", "propose", "leader: proposal and its answer"),
    (4, "mq/store/store.py", "put_message_now", "leader: store put (record encode)"),
    (4, "mq/store/store.py", "put_messages_now", "leader: store put (record encode)"),
    (4, "mq/remoting/protocol.py", "send_oneway", "network send"),
    (4, "mq/remoting/protocol.py", "send_response", "network send"),
    (4, "mq/remoting/protocol.py", "_flush_output", "network send"),
    (3, "mq/dledger/node.py", None, "Raft core"),
    (3, "mq/dledger/log.py", None, "Raft core"),
    (3, "mq/broker/processor", None, "leader: send processor"),
    (2, "mq/dledger/driver.py", None, "Raft driver (Deferreds, timers, handoff)"),
    (2, "mq/broker/dledger/transport.py", None, "Raft transport"),
    (2, "mq/remoting/", None, "network receive + framing"),
    (1, "twisted/internet/", None, "reactor + sockets"),
    (1, "twisted/python/threadpool", None, "thread pool"),
    (1, "threading.py", None, "thread pool"),
]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its threads, seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def thread_cpu_seconds(pid: int) -> Tuple[float, float]:
    """(the main thread's, every other thread's) utime + stime: the reactor against the writer/flush threads.
    Threads that ended before the call are missing from the second figure."""
    main = others = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            with open(task / "stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds = (int(fields[11]) + int(fields[12])) / TICKS
        if int(task.name) == pid:
            main += seconds
        else:
            others += seconds
    return main, others


def self_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


#: Leaf frames where a thread waits rather than runs (py-spy's idle detection misses some of them).
#: A worker blocked in msync/fsync is sampled as running too, though ``/proc`` shows its thread nearly idle.
IDLE_LEAVES = ("Condition.wait (threading.py", "EPollReactor.doPoll (twisted", "Event.wait (threading.py",
               "Thread._wait_for_tstate_lock (threading.py", "MappedFile.sync (mq/store", "DurableLog.sync (mq/dledger")


def classify(frames: List[str]) -> str:
    best: Tuple[int, int] = (0, -1)
    stage = "other"
    for depth, frame in enumerate(frames):
        func_name = frame.split(" ", 1)[0].rsplit(".", 1)[-1]
        for rank, path, func, name in STAGES:
            if path in frame and (func is None or func_name == func):
                if (rank, depth) > best:
                    best, stage = (rank, depth), name
                break
    return stage


def stages(raw: str) -> Dict[str, int]:
    """Samples per stage from py-spy's raw output (``frame;frame;... count`` per line, outermost first),
    waiting samples (``IDLE_LEAVES``) left out."""
    out: Dict[str, int] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if not frames[-1].startswith(IDLE_LEAVES):
            out[classify(frames)] += int(count)
    return out


def leaves(raw: str, top: int = 15) -> List[Tuple[str, int]]:
    out: Dict[str, int] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit() and not stack.split(";")[-1].startswith(IDLE_LEAVES):
            out[stack.split(";")[-1]] += int(count)
    return out.most_common(top)


class Recorder:
    """``py-spy record`` on ``pid`` for ``seconds`` at ``rate`` Hz into ``path`` (raw format)."""

    def __init__(self, pyspy: str, pid: int, path: Path, seconds: float, rate: int = 200) -> None:
        self.path = path
        self.rate = rate
        self.proc = subprocess.Popen(
            [pyspy, "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate), "--nonblocking",
             "--duration", str(max(1, int(seconds))), "--output", str(path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def result(self) -> str:
        self.proc.wait(60)
        return self.path.read_text() if self.path.exists() else ""
