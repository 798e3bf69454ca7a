"""Where a broker's CPU goes under the Java benchmark's load (``mq.bench.java_load``), per message.

    python -m benchmarks.profile_broker --tool cprofile|pyspy|strace|perf [--load 128x8] [--seconds 10]
                                        [--warmup 3] [--top 40] [--python PATH] [--no-delay-patch]

* ``cprofile``: the broker runs under ``twistd --profiler=cprofile``; functions by own time, in µs per message
  (the whole run is profiled; the load's messages are the divisor, so start-up adds a little).
* ``pyspy``: ``py-spy record`` (raw collapsed stacks, with ``--native`` when ``--native``) over the window;
  own-time shares and µs per message, no tracing overhead.
* ``strace``: ``strace -c -f`` over the window; system calls per message.
* ``perf``: ``perf stat`` over the window (context switches, cycles when the kernel allows).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pstats
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.java_load import PYPY_ENV, Brokers, generator_python, parse_load  # noqa: E402
from tests.support.processes import TWISTD, TwistdProcess, child_env  # noqa: E402


class ProfiledTwistd(TwistdProcess):
    """``twistd`` with its own profiler options before the plugin name."""

    def __init__(self, *args, twistd_options=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.twistd_options = list(twistd_options)

    def start(self) -> "ProfiledTwistd":
        cmd = [self.python, "-c", TWISTD, "-n", "--pidfile=", "-l", str(self.logfile), *self.twistd_options,
               self.plugin, *self.args]
        self.proc = subprocess.Popen(cmd, cwd=str(self.workdir), env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.workdir / f"{self.plugin}.stderr", "ab"))
        return self


def start_generator(brokers, topic, load, warmup, seconds, python=None):
    cmd = [generator_python(python), "-m", "mq.bench.java_load", "--addr", brokers.addr, "--topic", topic,
           "--workers", str(load["workers"]), "--size", str(load["size"]), "--batch", str(load["batch"]),
           "--warmup", str(warmup), "--seconds", str(seconds), "--broker-pid", str(brokers.pid)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), cwd=str(REPO))


def finish(gen) -> dict:
    out, err = gen.communicate(timeout=600)
    if gen.returncode:
        raise RuntimeError(err.decode(errors="replace")[-2000:])
    return json.loads(out.decode().strip().splitlines()[-1])


def print_pstats(st: pstats.Stats, messages: int, top: int, own: bool = True) -> None:
    """The ``top`` functions by own (or cumulative) time, in µs and calls per message."""
    print(f"{'own µs/msg':>10} {'cum µs/msg':>10} {'calls/msg':>9}  function")
    rows = sorted(st.stats.items(), key=lambda kv: -kv[1][2 if own else 3])
    for (file, line, name), (_cc, nc, tt, ct, _) in rows[:top]:
        short = file.replace(str(REPO) + "/", "").split("site-packages/")[-1]
        print(f"{1e6 * tt / messages:10.2f} {1e6 * ct / messages:10.2f} {nc / messages:9.2f}  {short}:{line}({name})")


def run_cprofile(args, load) -> None:
    brokers = Brokers(args.python)
    stats_file = brokers.tmp / "broker.pstats"
    orig = Brokers.start

    def start_profiled(self):
        # Brokers.start builds a TwistdProcess; swap in the profiled one for the broker only.
        import benchmarks.java_load as jl

        real = jl.TwistdProcess

        def make(plugin, *a, **kw):
            if plugin == "broker":
                return ProfiledTwistd(plugin, *a, twistd_options=[f"--profile={stats_file}", "--profiler=cprofile",
                                                                   "--savestats"], **kw)
            return real(plugin, *a, **kw)

        jl.TwistdProcess = make
        try:
            return orig(self)
        finally:
            jl.TwistdProcess = real

    start_profiled(brokers)
    try:
        brokers.create_topic("Profile")
        result = finish(start_generator(brokers, "Profile", load, args.warmup, args.seconds, args.generator_python))
        total = brokers.stored("Profile")
        brokers.broker.proc.send_signal(signal.SIGTERM)
        brokers.broker.proc.wait(60)
        print(json.dumps(result))
        print(f"messages stored during the profiled run: {total:,}")
        st = pstats.Stats(str(stats_file))
        print_pstats(st, total, args.top, own=True)
        if args.cum:
            print("\nby cumulative time:")
            print_pstats(st, total, args.top, own=False)
    finally:
        brokers.stop()


def run_window_tool(args, load) -> None:
    brokers = Brokers(args.python, dict(PYPY_ENV) if "pypy" in (args.python or "") else {}).start()
    try:
        brokers.create_topic("Profile")
        gen = start_generator(brokers, "Profile", load, args.warmup, args.seconds, args.generator_python)
        time.sleep(args.warmup)  # the generator's fixed warm-up: the window starts with its measured window
        out_file = brokers.tmp / "tool.out"
        if args.tool == "pyspy":
            cmd = [shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy"), "record",
                   "-p", str(brokers.pid), "-d", str(int(args.seconds)), "-r", "250", "-f", "raw", "-o", str(out_file)]
            if args.native:
                cmd.append("--native")
            tool = subprocess.run(cmd, capture_output=True)
            text = tool.stderr.decode(errors="replace")
        elif args.tool == "strace":
            tool = subprocess.Popen(["strace", "-c", "-f", "-p", str(brokers.pid), "-o", str(out_file)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(args.seconds)
            tool.send_signal(signal.SIGINT)
            tool.communicate(timeout=60)
            text = ""
        else:
            tool = subprocess.run(["perf", "stat", "-p", str(brokers.pid), "--", "sleep", str(args.seconds)],
                                  capture_output=True)
            text = tool.stderr.decode(errors="replace")
        result = finish(gen)
        print(json.dumps(result))
        messages = result["messages"]
        sends = result["sends"]
        if args.tool == "pyspy":
            summarize_pyspy(out_file, result, args.top)
        elif args.tool == "strace":
            print(f"strace over the window ({sends:,} sends in the generator's window; strace slows the broker):")
            for line in out_file.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 5 and parts[3].isdigit():
                    print(f"{line}   {int(parts[3]) / max(sends, 1):.3f}/send")
                else:
                    print(line)
        else:
            print(text)
            print(f"{messages:,} messages in the window")
    finally:
        brokers.stop()


def summarize_pyspy(path: Path, result: dict, top: int) -> None:
    """Own-time shares per function from py-spy's collapsed stacks, scaled to the broker's CPU µs/msg."""
    own = collections.Counter()
    inclusive = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    per_msg = result.get("broker_cpu_us_per_msg") or 0
    print(f"{total} samples; broker CPU {per_msg} µs/msg (idle samples excluded by py-spy)")
    print(f"{'own %':>6} {'own µs':>7} {'incl %':>6}  frame")
    for frame, n in own.most_common(top):
        print(f"{100 * n / total:6.1f} {per_msg * n / total:7.2f} {100 * inclusive[frame] / total:6.1f}  {frame}")
    print("\ninclusive:")
    for frame, n in inclusive.most_common(top):
        print(f"{100 * n / total:6.1f} {per_msg * n / total:7.2f}  {frame}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tool", choices=("cprofile", "pyspy", "strace", "perf"), default="cprofile")
    p.add_argument("--load", default="128x8")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--cum", action="store_true", help="cprofile: also list by cumulative time")
    p.add_argument("--native", action="store_true", help="pyspy: include native frames")
    p.add_argument("--python", default=None, help="broker interpreter (default this one)")
    p.add_argument("--generator-python", default=None)
    args = p.parse_args()
    load = parse_load(args.load)
    if args.tool == "cprofile":
        run_cprofile(args, load)
    else:
        run_window_tool(args, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
