"""What ACL signature checking costs a broker: send TPS and broker CPU per message, ACL on versus off.

    python -m benchmarks.acl_bench [--seconds 6] [--rounds 2] [--connections 4] [--window 64] [--size 128]
                                   [--server-python /tmp/venv-pypy/bin/python] [--json]

One ``twistd namesrv`` and two ``twistd broker`` processes run side by side: one with ``aclEnable=false``, one
with ``aclEnable=true`` and a ``plain_acl.yml`` under its ``ROCKETMQ_HOME`` (an admin account that creates the
topic, and a producer account allowed to PUB it). The same pipelined load (``connections`` × ``window``
SEND_MESSAGE_V2 in flight, this project's ``SimpleClient``; every request signed for the ACL broker, none for
the other) goes to each broker in turn, ``rounds`` times, so both see the machine in the same state. Broker CPU is
``utime + stime`` of its process (``/proc/<pid>/stat``) over the measured seconds, divided by the messages acked.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from twisted.internet import defer, task

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.broker_bench import Load, server_env  # noqa: E402
from mq.acl.signing import Credentials  # noqa: E402
from mq.client.simple import create_topic_request, send_request  # noqa: E402
from tests.support.processes import TwistdProcess, child_env, free_port  # noqa: E402

TOPIC = "BenchAcl"
ADMIN = Credentials("benchAdmin", "benchAdminSecret")
PRODUCER = Credentials("benchProducer", "benchProducerSecret")
PLAIN_ACL = f"""\
globalWhiteRemoteAddresses: []
accounts:
  - accessKey: {ADMIN.access_key}
    secretKey: {ADMIN.secret_key}
    admin: true
  - accessKey: {PRODUCER.access_key}
    secretKey: {PRODUCER.secret_key}
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - {TOPIC}=PUB
"""
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, seconds (fields 14 and 15 of /proc/<pid>/stat, after the command name)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_broker(tmp: Path, name: str, namesrv: str, acl: bool, args) -> TwistdProcess:
    home = tmp / f"{name}-home"
    (home / "conf").mkdir(parents=True)
    if acl:
        (home / "conf" / "plain_acl.yml").write_text(PLAIN_ACL)
    conf = tmp / f"{name}.conf"
    conf.write_text(f"mappedFileSizeCommitLog=268435456\naclEnable={'true' if acl else 'false'}\n"
                    f"rocketmqHome={home}\n")
    port = free_port()
    env = server_env(args.server_env)
    env["ROCKETMQ_HOME"] = str(home)
    proc = TwistdProcess("broker", ["--port", str(port), "--namesrv", namesrv, "--store", str(tmp / f"{name}-store"),
                                    "--ip", "127.0.0.1", "--broker-name", name, "--config", str(conf)],
                         tmp / name, python=args.server_python, env=child_env(env)).start()
    proc.wait_port(port)
    proc.addr = f"127.0.0.1:{port}"
    return proc


@defer.inlineCallbacks
def measure(reactor, broker: TwistdProcess, signer, args):
    """(messages acked, seconds, broker CPU seconds, errors) of one saturating run against ``broker``."""
    load = Load(reactor, broker.addr, args.connections)
    for client in load.clients:
        client.remoting.signer = signer
    body = b"x" * args.size

    def requests():
        return [send_request(TOPIC, body, tags="bench", queue_id=i % 8) for i in range(256)]

    try:
        yield load.saturate(requests, args.window, args.warmup)
        cpu0 = cpu_seconds(broker.proc.pid)
        count, elapsed, _, errors = yield load.saturate(requests, args.window, args.seconds)
        cpu = cpu_seconds(broker.proc.pid) - cpu0
    finally:
        yield load.close()
    return count, elapsed, cpu, errors


@defer.inlineCallbacks
def run(reactor, args):
    tmp = Path(tempfile.mkdtemp(prefix="mq-acl-bench-"))
    procs = []
    totals = {False: [0, 0.0, 0.0, 0], True: [0, 0.0, 0.0, 0]}
    try:
        ns_port = free_port()
        namesrv = TwistdProcess("namesrv", ["--port", str(ns_port), "--kv-config", str(tmp / "kv.json")],
                                tmp / "namesrv").start()
        procs.append(namesrv)
        namesrv.wait_port(ns_port)
        brokers = {}
        for acl in (False, True):
            brokers[acl] = start_broker(tmp, "acl-on" if acl else "acl-off", f"127.0.0.1:{ns_port}", acl, args)
            procs.append(brokers[acl])
        setup = Load(reactor, brokers[False].addr, 1).clients[0]
        setup.remoting.signer = ADMIN.sign_request  # ignored by the ACL-off broker, needed by the other
        for acl in (False, True):
            response = yield setup.call(brokers[acl].addr, create_topic_request(TOPIC, queues=8))
            if response.code != 0:
                raise SystemExit(f"creating {TOPIC} on the ACL-{'on' if acl else 'off'} broker failed: "
                                 f"{response.code} {response.remark}")
        yield setup.close()
        for _ in range(args.rounds):
            for acl in (False, True):
                signer = PRODUCER.sign_request if acl else None
                result = yield measure(reactor, brokers[acl], signer, args)
                totals[acl] = [a + b for a, b in zip(totals[acl], result)]
    finally:
        for proc in reversed(procs):
            proc.stop(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    rows = {}
    for acl, (count, elapsed, cpu, errors) in totals.items():
        rows[acl] = {"acl": acl, "messages": count, "seconds": round(elapsed, 2), "tps": round(count / elapsed),
                     "broker_cpu_us_per_msg": round(cpu / count * 1e6, 1) if count else None, "errors": errors}
    off, on = rows[False], rows[True]
    cost = {"tps_drop_pct": round(100.0 * (off["tps"] - on["tps"]) / off["tps"], 1) if off["tps"] else None,
            "cpu_extra_pct": round(100.0 * (on["broker_cpu_us_per_msg"] / off["broker_cpu_us_per_msg"] - 1), 1)
            if off["broker_cpu_us_per_msg"] and on["broker_cpu_us_per_msg"] else None}
    print(f"send {args.size} B, {args.connections}x{args.window} in flight, {args.rounds} rounds of "
          f"{args.seconds:g} s each")
    print("| ACL | messages | TPS | broker CPU µs/msg | errors |")
    print("|---|---|---|---|---|")
    for r in (off, on):
        print(f"| {'on' if r['acl'] else 'off'} | {r['messages']:,} | {r['tps']:,} | {r['broker_cpu_us_per_msg']} "
              f"| {r['errors']} |")
    print(f"ACL on costs {cost['tps_drop_pct']}% of throughput and {cost['cpu_extra_pct']}% more broker CPU "
          "per message")
    if args.json:
        print(json.dumps({"off": off, "on": on, **cost}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per round and broker")
    parser.add_argument("--rounds", type=int, default=2, help="off/on alternations (default 2)")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--size", type=int, default=128, help="message body bytes")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before each measured run")
    parser.add_argument("--server-python", default=None, help="interpreter for the brokers (e.g. PyPy)")
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the brokers; repeatable")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    task.react(lambda reactor: run(reactor, args))


if __name__ == "__main__":
    main()
