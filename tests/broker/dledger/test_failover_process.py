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

from mq.broker.dledger.group import read_applied
from mq.client.simple import create_topic_request, send_request
from mq.common import fastjson
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.command import RemotingCommand
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


def topics(addr):
    """The names of the topics a broker has (GET_ALL_TOPIC_CONFIG)."""
    r = call(addr, RemotingCommand.request(RequestCode.GET_ALL_TOPIC_CONFIG))
    return set(fastjson.loads(r.body)["topicConfigTable"]) if r.code == RC.SUCCESS and r.body else set()


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
            if i == 3:  # killed before its first applied checkpoint: it re-applies from the start
                group.procs[follower].kill()
                group.start(follower)
            if i == 200:  # killed with a checkpoint behind it (of most of what it has now): it re-applies from there
                applied = str(group.store(follower) / f"dledger-{follower}")
                wait_until(lambda d=applied: read_applied(d)[0] >= 100, 30, 0.1,
                           what="the follower's applied checkpoint past index 100")
                group.procs[follower].kill()
    group.start(follower)
    leader = group.node_of(master)
    wait_until(lambda: group.commitlog(follower) == group.commitlog(leader), 30, 0.2,
               what="the restarted follower's CommitLog equal to the leader's")
    assert len(drain(group.addr(follower), TOPIC, 2)[0]) == 300


def test_delay_level_and_timer_messages_fire_once_on_the_new_leader(twistd, tmp_path):
    group = DLedgerCluster(twistd, tmp_path).start_all()
    master = group.wait_master()
    assert call(master, create_topic_request("DlLater", queues=1)).code == RC.SUCCESS
    wait_until(lambda: all(call(group.addr(n), send_request("DlLater", b"probe", queue_id=0)).code
                           in (RC.SUCCESS, RC.SERVICE_NOT_AVAILABLE) for n in group.ids), 5)
    for n in group.ids:  # the followers' slave sync copies the topic, for the new leader to deliver to
        wait_until(lambda n=n: "DlLater" in topics(group.addr(n)), 30, 0.1, what=f"the topic on {n}")
    with Wire(master) as w:
        r1 = w.call(send_request("DlLater", b"level-2", queue_id=0, properties={"DELAY": "2"}))  # 5 s
        r2 = w.call(send_request("DlLater", b"timer-4s", queue_id=0, properties={"TIMER_DELAY_SEC": "4"}))
    assert r1.code == r2.code == RC.SUCCESS, (r1.remark, r2.remark)
    group.procs[group.node_of(master)].kill()
    new = group.wait_master(30, other_than=master)
    wait_until(lambda: {b"level-2", b"timer-4s"} <= set(drain(new, "DlLater", 1)[0]), 30, 0.2,
               what="both delivered by the new leader")
    # markers behind them: the level's queue is delivered in order, timer slots in time order, so a repeat
    # of either by the new leader would come before its marker
    with Wire(new) as w:
        r1 = w.call(send_request("DlLater", b"level-marker", queue_id=0, properties={"DELAY": "2"}))
        r2 = w.call(send_request("DlLater", b"timer-marker", queue_id=0, properties={"TIMER_DELAY_SEC": "1"}))
    assert r1.code == r2.code == RC.SUCCESS, (r1.remark, r2.remark)
    wait_until(lambda: {b"level-marker", b"timer-marker"} <= set(drain(new, "DlLater", 1)[0]), 30, 0.2,
               what="both markers delivered by the new leader")
    bodies = drain(new, "DlLater", 1)[0]
    assert [bodies.count(b) for b in (b"level-2", b"timer-4s", b"level-marker", b"timer-marker")] == [1] * 4


def test_a_five_node_group_survives_the_loss_of_two(twistd, tmp_path):
    group = DLedgerCluster(twistd, tmp_path, nodes=5).start_all()
    master = group.wait_master()
    assert call(master, create_topic_request(TOPIC, queues=2)).code == RC.SUCCESS
    sent = []

    def send(addr, n):
        with Wire(addr) as w:
            for _ in range(n):
                body = b"five-%04d" % len(sent)
                r = w.call(send_request(TOPIC, body, queue_id=len(sent) % 2))
                assert r.code == RC.SUCCESS, (r.code, r.remark)
                sent.append(body)

    send(master, 150)
    leader = group.node_of(master)
    other = next(n for n in group.ids if n != leader)
    group.procs[leader].kill()
    group.procs[other].kill()  # two of five gone: a majority of three is left
    new = group.wait_master(30, other_than=master)
    send(new, 150)
    assert sorted(drain(new, TOPIC, 2)[0]) == sorted(sent)


def test_a_transaction_committed_on_the_leader_is_on_the_next_one(twistd, tmp_path):
    from mq.client.simple import end_transaction_request

    group = DLedgerCluster(twistd, tmp_path).start_all()
    master = group.wait_master()
    assert call(master, create_topic_request("DlTx", queues=1)).code == RC.SUCCESS
    props = {"TRAN_MSG": "true", "PGROUP": "dl_tx"}
    with Wire(master) as w:
        half = w.call(send_request("DlTx", b"tx-commit", properties=props, queue_id=0, group="dl_tx"))
        assert half.code == RC.SUCCESS, half.remark
        assert drain(master, "DlTx", 1)[0] == []  # a half message is not visible
        r = w.call(end_transaction_request("dl_tx", half, 8))  # COMMIT
        assert r.code == RC.SUCCESS, r.remark
    assert drain(master, "DlTx", 1)[0] == [b"tx-commit"]
    for n in group.ids:  # the followers learn the topic at their slave sync (slaveSyncInterval, 500 ms here)
        wait_until(lambda n=n: drain(group.addr(n), "DlTx", 1)[0] == [b"tx-commit"], 20, 0.1, what=f"on {n}")
    group.procs[group.node_of(master)].kill()
    new = group.wait_master(30, other_than=master)
    assert drain(new, "DlTx", 1)[0] == [b"tx-commit"]
