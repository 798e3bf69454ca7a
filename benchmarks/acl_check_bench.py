"""Send throughput with ACL off and on, in one run: two ``twistd broker`` processes (no NameServer), the same
load from this process (``broker_bench.Load``: ``connections`` × ``window`` SEND_MESSAGE_V2 in flight).

    python -m benchmarks.acl_check_bench [--seconds 8] [--connections 4] [--window 64] [--size 128] [--rounds 2]

The ACL broker checks every request (signature over the extFields and the body, then the topic's perm); the
requests are signed once before the run, so the figures are the broker's cost, not the client's. Rounds
alternate off/on to spread the machine's noise over both.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from twisted.internet import defer, task

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.broker_bench import Load  # noqa: E402
from mq.acl.signing import Credentials  # noqa: E402
from mq.client.simple import create_topic_request, send_request  # noqa: E402
from tests.support.processes import TwistdProcess, free_port  # noqa: E402

ACL = ("accounts:\n  - accessKey: benchAccount\n    secretKey: benchSecret1\n    admin: true\n"
       "  - accessKey: benchSender\n    secretKey: benchSecret2\n    defaultTopicPerm: PUB\n")
ADMIN = Credentials("benchAccount", "benchSecret1")
SENDER = Credentials("benchSender", "benchSecret2")


def start_broker(tmp: Path, name: str, acl: bool) -> TwistdProcess:
    port = free_port()
    (tmp / f"{name}.conf").write_text(f"mappedFileSizeCommitLog=268435456\nrocketmqHome={tmp / 'home'}\n")
    args = ["--port", str(port), "--store", str(tmp / f"store-{name}"), "--ip", "127.0.0.1", "--broker-name", name,
            "--namesrv", "127.0.0.1:1", "--config", str(tmp / f"{name}.conf")] + (["--acl"] if acl else [])
    proc = TwistdProcess("broker", args, tmp / name).start()
    proc.wait_port(port)
    proc.addr = f"127.0.0.1:{port}"
    return proc


@defer.inlineCallbacks
def run(reactor, args):
    tmp = Path(tempfile.mkdtemp(prefix="mq-acl-bench-"))
    (tmp / "home" / "conf").mkdir(parents=True)
    (tmp / "home" / "conf" / "plain_acl.yml").write_text(ACL)
    procs = {}
    rates = {"off": [], "on": []}
    try:
        procs["off"] = start_broker(tmp, "plain", acl=False)
        procs["on"] = start_broker(tmp, "acl", acl=True)
        body = b"x" * args.size
        for proc in procs.values():
            load = Load(reactor, proc.addr, 1)
            response = yield load.clients[0].call(proc.addr, ADMIN.sign_request(create_topic_request("Bench", 8)))
            assert response.code == 0, response.remark
            yield load.close()

        def requests(mode):
            def make():
                out = [send_request("Bench", body, tags="bench", queue_id=i % 8) for i in range(256)]
                return [SENDER.sign_request(r) for r in out] if mode == "on" else out
            return make

        for _ in range(args.rounds):
            for mode, proc in procs.items():
                load = Load(reactor, proc.addr, args.connections)
                yield load.saturate(requests(mode), args.window, 1.0)  # warm-up
                count, elapsed, _, errors = yield load.saturate(requests(mode), args.window, args.seconds)
                assert errors == 0, f"{errors} sends refused with ACL {mode}"
                rates[mode].append(count / elapsed)
                yield load.close()
    finally:
        for proc in procs.values():
            proc.stop(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    off, on = max(rates["off"]), max(rates["on"])
    print(f"| send {args.size} B, {args.connections}x{args.window} in flight | msg/s (best of {args.rounds}) |")
    print("|---|---|")
    print(f"| ACL off | {off:,.0f} |")
    print(f"| ACL on (signed, checked) | {on:,.0f} |")
    print(f"| cost of ACL | {100 * (1 - on / off):.1f} % |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    task.react(lambda reactor: run(reactor, args))


if __name__ == "__main__":
    main()
