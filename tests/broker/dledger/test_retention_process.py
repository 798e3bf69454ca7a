"""The Raft log's retention in a DLedger group of real processes: at the ``deleteWhen`` hour, segments older
than ``fileReservedTime`` + 1 h go on every node (the leader keeps what a follower lacks), a restart recovers
after the deleted part, and the group goes on taking sends with every CommitLog the same."""

from __future__ import annotations

import os
import time

from mq.client.simple import create_topic_request
from mq.remoting.codes import ResponseCode as RC
from tests.broker.dledger.group_support import DLedgerCluster
from tests.broker.wire import Wire, call
from tests.support.processes import wait_until


def segments(group, node):
    data = group.store(node) / f"dledger-{node}" / "data"
    return sorted(p for p in data.iterdir() if len(p.name) == 20)


def test_old_raft_segments_go_at_the_delete_hour(twistd, tmp_path):
    hours = ";".join(f"{(time.localtime().tm_hour + k) % 24:02d}" for k in (0, 1))  # this hour and the next
    group = DLedgerCluster(twistd, tmp_path, extra_conf=f"deleteWhen={hours}\ncleanResourceInterval=500\n"
                                                       "fileReservedTime=1\n").start_all()
    master = group.wait_master()
    assert call(master, create_topic_request("DlRet", queues=2)).code == RC.SUCCESS
    with Wire(master) as w:  # ~3.4 MB: several 1 MiB segments on each node
        w.send_each("DlRet", (b"r-%05d" % i + b"." * 1000 for i in range(3000)), queues=2)
    leader = group.node_of(master)
    wait_until(lambda: all(len(segments(group, n)) >= 3 for n in group.ids), 20, 0.2, what="segments everywhere")
    before = {n: len(segments(group, n)) for n in group.ids}
    for n in group.ids:  # as if written three hours ago: past fileReservedTime + 1 h
        for path in segments(group, n)[:-1]:
            os.utime(path, (time.time() - 3 * 3600,) * 2)
    wait_until(lambda: all(len(segments(group, n)) < before[n] for n in group.ids), 20, 0.2,
               what="old segments deleted on every node")
    assert "Raft log segments up to entry" in group.procs[leader].log_text()

    follower = next(n for n in group.ids if n != leader)
    group.procs[follower].stop()
    group.start(follower)
    with Wire(master) as w:
        w.send_each("DlRet", (b"r-%05d" % i for i in range(3000, 3100)), queues=2, first_queue=3000)
    wait_until(lambda: group.commitlog(follower) == group.commitlog(leader), 30, 0.2,
               what="the restarted follower's CommitLog equal to the leader's")
