"""Failover of a DLedger group of real ``twistd broker`` processes under synchronous sends from the project's
client: the leader killed with SIGKILL again and again loses no acknowledged message, and the time from each
kill to a new master in the NameServer's route is measured and printed (never asserted); a follower killed
and restarted catches up to the same CommitLog bytes."""

from __future__ import annotations

import threading
import time

from mq.client.blocking import BlockingProducer
from mq.client.producer import make_message
from mq.client.simple import create_topic_request
from mq.remoting.codes import ResponseCode as RC
from tests.broker.dledger.group_support import DLedgerCluster
from tests.broker.test_ha_integration import drain
from tests.broker.wire import call
from tests.support.processes import wait_until

TOPIC = "DlFail"
KILLS = 3


class Sender(threading.Thread):
    """Synchronous sends, one after another, until stopped; what was acknowledged is kept."""

    def __init__(self, namesrv: str) -> None:
        super().__init__(daemon=True)
        self.producer = BlockingProducer("dl_failover_producer", namesrv, send_timeout=3.0, retry_times=2)
        self.acked = []
        self.failed = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stopping.is_set():
            body = b"f-%06d" % i
            i += 1
            try:
                result = self.producer.send(make_message(TOPIC, body, tags="t"))
            except Exception:  # noqa: BLE001 - a send that failed carries no promise
                self.failed += 1
                time.sleep(0.02)
                continue
            if result.send_status.name == "SEND_OK":
                self.acked.append(body)

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)
        self.producer.shutdown()


def test_killing_the_leader_again_and_again_loses_no_acknowledged_message(twistd, tmp_path):
    group = DLedgerCluster(twistd, tmp_path).start_all()
    master = group.wait_master()
    assert call(master, create_topic_request(TOPIC, queues=4)).code == RC.SUCCESS
    sender = Sender(group.namesrv.addr)
    sender.producer.start()
    sender.start()
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
    with BlockingProducer("dl_catch_up", group.namesrv.addr) as producer:
        for i in range(300):
            assert producer.send(make_message(TOPIC, b"c-%04d" % i + b"." * (i % 500))).send_status.name == "SEND_OK"
            if i == 100:
                group.procs[follower].kill()
    group.start(follower)
    leader = group.node_of(master)
    wait_until(lambda: group.commitlog(follower) == group.commitlog(leader), 30, 0.2,
               what="the restarted follower's CommitLog equal to the leader's")
    assert len(drain(group.addr(follower), TOPIC, 2)[0]) == 300
