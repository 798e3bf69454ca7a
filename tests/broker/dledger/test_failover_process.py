"""Failover of a DLedger group of real ``twistd broker`` processes under synchronous sends from the project's
client: the leader killed with SIGKILL again and again loses no acknowledged message, and the time from each
kill to a new master in the NameServer's route is measured and printed (never asserted); a follower killed
and restarted catches up to the same CommitLog bytes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from mq.client.simple import create_topic_request, send_request
from mq.remoting.codes import ResponseCode as RC
from tests.broker.dledger.group_support import DLedgerCluster
from tests.broker.test_ha_integration import drain
from tests.broker.wire import Wire, call
from tests.support.processes import child_env, wait_until

SCRIPT = Path(__file__).with_name("sync_sender.py")

TOPIC = "DlFail"
KILLS = 3


class Sender:
    """``sync_sender.py`` in a child process (the blocking facade runs its own reactor); its lines read in a
    thread: what was acknowledged and what failed."""

    def __init__(self, namesrv: str, count: int = 1_000_000) -> None:
        self.proc = subprocess.Popen([sys.executable, str(SCRIPT), namesrv, TOPIC, str(count)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=child_env(),
                                     text=True)
        self.acked = []
        self.failed = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            status, body = line.split()
            if status == "ok":
                self.acked.append(body.encode())
            else:
                self.failed += 1

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)
        self.reader.join(10)


def test_killing_the_leader_again_and_again_loses_no_acknowledged_message(twistd, tmp_path):
    group = DLedgerCluster(twistd, tmp_path).start_all()
    master = group.wait_master()
    assert call(master, create_topic_request(TOPIC, queues=4)).code == RC.SUCCESS
    sender = Sender(group.namesrv.addr)
    times = []
    try:
        for _ in range(KILLS):
            base = len(sender.acked)
            wait_until(lambda base=base: len(sender.acked) >= base + 200, 60, 0.05, what="sends acknowledged")
            old = group.wait_master()
            node = group.node_of(old)
            group.procs[node].kill()
            killed = time.monotonic()
            group.wait_master(30, other_than=old)
            times.append(time.monotonic() - killed)
            group.start(node)  # back as a follower, so the next kill still leaves a majority
        base = len(sender.acked)
        wait_until(lambda: len(sender.acked) >= base + 100, 60, 0.05, what="sends after the last failover")
    finally:
        sender.stop()
    master = group.wait_master()
    got = drain(master, TOPIC, 4)[0]
    lost = set(sender.acked) - set(got)
    print(f"\nDLedger failover: {KILLS} SIGKILLs of the leader, {len(sender.acked)} sends acknowledged, "
          f"{sender.failed} failed, {len(lost)} acknowledged lost; kill to new routed master: "
          + ", ".join(f"{t:.2f} s" for t in times))
    assert not lost, sorted(lost)[:10]
    assert len(got) == len(set(got))  # nothing applied twice


def test_a_killed_follower_catches_up_byte_for_byte(twistd, tmp_path):
    group = DLedgerCluster(twistd, tmp_path).start_all()
    master = group.wait_master()
    assert call(master, create_topic_request(TOPIC, queues=2)).code == RC.SUCCESS
    follower = next(n for n in group.ids if group.addr(n) != master)
    with Wire(master) as w:
        for i in range(300):
            r = w.call(send_request(TOPIC, b"c-%04d" % i + b"." * (i % 500), queue_id=i % 2))
            assert r.code == RC.SUCCESS, (r.code, r.remark)
            if i == 100:
                group.procs[follower].kill()
    group.start(follower)
    leader = group.node_of(master)
    wait_until(lambda: group.commitlog(follower) == group.commitlog(leader), 30, 0.2,
               what="the restarted follower's CommitLog equal to the leader's")
    assert len(drain(group.addr(follower), TOPIC, 2)[0]) == 300
