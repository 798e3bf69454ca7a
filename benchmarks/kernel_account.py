"""What the kernel sees of a broker under the Java benchmark's load: system calls and reactor turns per request.

    python -m benchmarks.kernel_account [--loads 128x1,128x8,b128x8x32] [--seconds 5] [--warmup 3]
                                        [--python PATH] [--no-strace]

For each load (``SIZExWORKERS`` or ``bSIZExWORKERSxBATCH``, as ``benchmarks.java_load``) a generator
(``mq.bench.java_load``) runs against a fresh ``twistd broker``; after the warm-up come two windows, each
counted from the broker's side (the topic's queue max offsets before and after, so a slowed broker is divided
by what it really stored):

1. untraced: the broker's CPU (user and system, ``/proc/PID/stat``) and its context switches
   (``/proc/PID/task/*/status``) per request;
2. traced: ``strace -c -f`` attached for the window: ``epoll_wait``, ``epoll_ctl``, ``recvfrom``/``recvmsg``,
   ``sendto``/``sendmsg``/``write`` and all system calls per request.

From 2 it derives reactor turns (``epoll_wait`` calls) per read and ``epoll_ctl`` per write: a write path that
buffers each response and asks epoll for writability shows ~2 turns and ~2 ``epoll_ctl`` per read; one that
sends the responses of a read directly shows ~1 turn and no ``epoll_ctl``. A request is one send (a batch of
32 is one request). strace slows the broker; its counts per request, not its rates, are the figures to read.
"""

from __future__ import annotations

import argparse
import glob
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.java_load import PYPY_ENV, Brokers, parse_load  # noqa: E402
from benchmarks.profile_broker import start_generator  # noqa: E402
from mq.bench.java_load import proc_cpu_times  # noqa: E402

READS = ("recvfrom", "recvmsg", "recv", "read")
WRITES = ("sendto", "sendmsg", "send", "write", "writev")


def context_switches(pid: int) -> Dict[str, int]:
    """Voluntary and involuntary context switches of all the process's threads."""
    out = {"voluntary": 0, "involuntary": 0}
    for path in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            text = Path(path).read_text()
        except OSError:  # a thread that ended meanwhile
            continue
        for line in text.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                out["voluntary"] += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                out["involuntary"] += int(line.split()[1])
    return out


def parse_strace_summary(text: str) -> Dict[str, int]:
    """``strace -c`` table → calls per system call name."""
    calls: Dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        # "% time  seconds  usecs/call  calls  [errors]  syscall"
        if len(parts) >= 5 and parts[3].isdigit() and not parts[-1].startswith("total"):
            calls[parts[-1]] = int(parts[3])
    return calls


def account(calls: Dict[str, int], requests: int) -> Dict[str, float]:
    """Per-request figures and the reactor-turn ratios from one window's system call counts."""
    n = max(requests, 1)
    reads = sum(calls.get(name, 0) for name in READS)
    writes = sum(calls.get(name, 0) for name in WRITES)
    turns = calls.get("epoll_wait", 0)
    return {
        "syscalls": sum(calls.values()) / n,
        "epoll_wait": turns / n,
        "epoll_ctl": calls.get("epoll_ctl", 0) / n,
        "reads": reads / n,
        "writes": writes / n,
        "requests_per_read": requests / reads if reads else 0.0,
        "turns_per_read": turns / reads if reads else 0.0,
        "epoll_ctl_per_write": calls.get("epoll_ctl", 0) / writes if writes else 0.0,
    }


def measure(brokers: Brokers, topic: str, load: dict, args) -> dict:
    batch = load["batch"]
    window = args.seconds
    gen = start_generator(brokers, topic, load, args.warmup, 2 * window + 2, args.generator_python)
    try:
        time.sleep(args.warmup + 0.5)  # the generator's fixed warm-up, not a wait for a condition
        pid = brokers.pid
        n0, cpu0, cs0 = brokers.stored(topic), proc_cpu_times(pid), context_switches(pid)
        time.sleep(window)
        n1, cpu1, cs1 = brokers.stored(topic), proc_cpu_times(pid), context_switches(pid)
        requests = max((n1 - n0) // batch, 1)
        row = {
            "load": load["name"], "requests": requests, "rps": requests / window,
            "cpu_us": 1e6 * sum(b - a for a, b in zip(cpu0, cpu1)) / requests,
            "sys_us": 1e6 * (cpu1[1] - cpu0[1]) / requests,
            "voluntary_cs": (cs1["voluntary"] - cs0["voluntary"]) / requests,
            "involuntary_cs": (cs1["involuntary"] - cs0["involuntary"]) / requests,
        }
        if not args.no_strace and shutil.which("strace"):
            out_file = brokers.tmp / f"strace-{load['name']}.txt"
            # counted from just before strace attaches to just after it detached: the traced window is inside
            s0 = brokers.stored(topic)
            tracer = subprocess.Popen(["strace", "-c", "-f", "-p", str(pid), "-o", str(out_file)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(window)
            tracer.send_signal(signal.SIGINT)
            tracer.communicate(timeout=60)
            s1 = brokers.stored(topic)
            traced = max((s1 - s0) // batch, 1)
            row.update(traced_requests=traced, **account(parse_strace_summary(out_file.read_text()), traced))
        gen.communicate(timeout=2 * window + args.warmup + 60)
        return row
    finally:
        if gen.poll() is None:
            gen.kill()
            gen.wait()


def print_rows(rows: List[dict], runtime: str) -> None:
    print(f"\n{runtime}: per request (a batch is one request)")
    print("| load | req/s | CPU µs (system) | vol. / invol. context switches | syscalls | epoll_wait | epoll_ctl "
          "| reads | writes | requests per read | turns per read | epoll_ctl per write |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        traced = (f"{r['syscalls']:.2f} | {r['epoll_wait']:.3f} | {r['epoll_ctl']:.3f} | {r['reads']:.3f} | "
                  f"{r['writes']:.3f} | {r['requests_per_read']:.2f} | {r['turns_per_read']:.2f} | "
                  f"{r['epoll_ctl_per_write']:.2f}") if "syscalls" in r else "– | – | – | – | – | – | – | –"
        print(f"| {r['load']} | {r['rps']:,.0f} | {r['cpu_us']:.1f} ({r['sys_us']:.1f}) | "
              f"{r['voluntary_cs']:.3f} / {r['involuntary_cs']:.3f} | {traced} |", flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--loads", default="128x1,128x8,b128x8x32")
    p.add_argument("--seconds", type=float, default=5.0, help="each of the two windows (default 5)")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--python", default=None, help="broker interpreter (default this one)")
    p.add_argument("--generator-python", default=None)
    p.add_argument("--no-strace", action="store_true", help="only the untraced /proc figures")
    args = p.parse_args(argv)
    pypy = "pypy" in (args.python or "")
    brokers = Brokers(args.python or sys.executable, PYPY_ENV if pypy else {}).start()
    rows = []
    try:
        for i, text in enumerate(t for t in args.loads.split(",") if t):
            load = parse_load(text)
            topic = f"Kernel{i}"
            brokers.create_topic(topic)
            rows.append(measure(brokers, topic, load, args))
    finally:
        brokers.stop()
    print_rows(rows, "PyPy" if pypy else "CPython")
    return 0


if __name__ == "__main__":
    sys.exit(main())
