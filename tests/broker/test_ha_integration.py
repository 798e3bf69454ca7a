"""Master/slave replication over real processes: ``twistd namesrv``, a master and a slave ``twistd broker``.

The slave learns its master from the NameServer's registration answer, as in production. Timings that
RocketMQ fixes at 5 s / 10 s (reports, reconnects, slave sync) are shortened through broker.conf keys.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from mq.client.simple import (
    create_topic_request,
    pull_request,
    query_offset_request,
    send_request,
    update_offset_request,
)
from mq.common.message_record import decode_messages
from mq.remoting.codes import ResponseCode as RC
from tests.broker.cluster import route_of, start_namesrv
from tests.broker.ha_support import append_foreign
from tests.broker.wire import Wire, call
from tests.support.processes import free_port, wait_until

HA_CONF = ("brokerClusterName=HaCluster\nbrokerName=ha-a\nmappedFileSizeCommitLog=4194304\n"
           "mappedFileSizeConsumeQueue=20000\nregisterNameServerPeriod=10000\n"
           "haSendHeartbeatInterval=500\nhaSlaveReconnectInterval=200\nslaveSyncInterval=500\n"
           "slaveReadEnable=true\n")
#: The master counts nothing as "in memory", so any consumer behind the end is sent to the slave; the slave
#: keeps the default 40% of RAM, so a consumer reading recent data there is sent back.
MASTER_EXTRA = "accessMessageInMemoryMaxRatio=0\n"


class HaCluster:
    """A NameServer, a master and a slave, each restartable on its fixed port and store."""

    def __init__(self, twistd, tmp_path: Path, role: str = "SYNC_MASTER") -> None:
        self.twistd = twistd
        self.tmp = tmp_path
        # The default 120 s broker expiry: a shorter one than the 10 s registration period below drops a live
        # master between registrations, and a slave (re)started then finds no master. A killed master leaves the
        # route at once anyway, when its connection to the NameServer closes.
        self.namesrv = start_namesrv(twistd, tmp_path)
        self.conf = {"master": tmp_path / "master.conf", "slave": tmp_path / "slave.conf"}
        self.conf["master"].write_text(HA_CONF + MASTER_EXTRA)
        self.conf["slave"].write_text(HA_CONF)
        self.role = role
        self.ports = {"master": free_port(), "slave": free_port()}
        while abs(self.ports["slave"] - self.ports["master"]) < 4:
            self.ports["slave"] = free_port()
        self.procs = {}

    def store(self, which: str) -> Path:
        return self.tmp / f"store-{which}"

    def addr(self, which: str) -> str:
        return f"127.0.0.1:{self.ports[which]}"

    def start(self, which: str):
        role, bid = (self.role, "0") if which == "master" else ("SLAVE", "1")
        port = self.ports[which]
        proc = self.twistd("broker", "--port", str(port), "--namesrv", self.namesrv.addr,
                           "--store", str(self.store(which)), "--ip", "127.0.0.1", "--config", str(self.conf[which]),
                           "--role", role, "--broker-id", bid,
                           workdir=self.tmp / f"{which}-{time.monotonic_ns()}")
        proc.wait_port(port)
        proc.addr = self.addr(which)
        self.procs[which] = proc
        return proc

    def start_both(self):
        self.start("master")
        wait_until(lambda: route_of(self.namesrv, "HaCluster") is not None, 10, what="the master registered")
        slave = self.start("slave")
        slave.wait_log("HA: connected to the master", 20)
        return self

    def commitlog(self, which: str) -> bytes:
        files = sorted((self.store(which) / "commitlog").iterdir())
        return b"".join(f.read_bytes() for f in files)


@pytest.fixture
def cluster(twistd, tmp_path):
    return HaCluster(twistd, tmp_path)


def drain(addr: str, topic: str, queues: int, group: str = "drain"):
    """Every body of ``topic`` on the broker at ``addr``, by pulls from offset 0; and the last answers."""
    bodies = []
    last = {}
    with Wire(addr) as w:
        for qid in range(queues):
            offset = 0
            while True:
                r = w.call(pull_request(group, topic, qid, offset))
                last[qid] = r
                if r.code != RC.SUCCESS:
                    break
                bodies += [m.body for m in decode_messages(r.body)]
                offset = int(r.ext_fields["nextBeginOffset"])
    return bodies, last


def slave_has(cluster, topic, queues, count):
    def check():
        try:
            return len(drain(cluster.addr("slave"), topic, queues)[0]) >= count
        except OSError:
            return False

    wait_until(check, 30, 0.2, what=f"{count} messages of {topic} on the slave")


def test_sync_master_acks_survive_sigkill_and_consumers_move_to_the_slave(cluster):
    cluster.start_both()
    master, maddr, saddr = cluster.procs["master"], cluster.addr("master"), cluster.addr("slave")
    assert call(maddr, create_topic_request("HaT", queues=4)).code == RC.SUCCESS
    with Wire(maddr) as w:
        acked = w.send_each("HaT", (b"ha-%04d" % i for i in range(300)), queues=4, tags="t")
    assert call(maddr, update_offset_request("haG", "HaT", 0, 7)).code == RC.SUCCESS
    # the route lists both; the slave's CommitLog is the master's, byte for byte
    route = route_of(cluster.namesrv, "HaT")
    assert route.broker_datas[0].broker_addrs == {0: maddr, 1: saddr}
    assert cluster.commitlog("slave") == cluster.commitlog("master")
    # a consumer reading old data from the master is pointed at the slave (accessMessageInMemoryMaxRatio=0)
    r = call(maddr, pull_request("haG", "HaT", 0, 0))
    assert r.code == RC.SUCCESS and r.ext_fields["suggestWhichBrokerId"] == "1"

    # the slave copies topics and offsets every slaveSyncInterval; pulls need the topic
    wait_until(lambda: call(saddr, query_offset_request("haG", "HaT", 0)).ext_fields.get("offset") == "7", 20, 0.2,
               what="the slave's copy of the topic and the offset")

    master.kill()  # SIGKILL: every acknowledged message must be on the slave
    bodies, last = drain(saddr, "HaT", 4)
    assert sorted(bodies) == acked
    assert all(r.code == RC.PULL_NOT_FOUND for r in last.values())
    assert call(saddr, send_request("HaT", b"x")).code == RC.SERVICE_NOT_AVAILABLE  # a slave refuses writes
    # the NameServer drops the dead master; the route keeps the slave for consumers
    wait_until(lambda: route_of(cluster.namesrv, "HaT").broker_datas[0].broker_addrs == {1: saddr}, 15,
               what="the master dropped from the route")

    cluster.start("master")  # the master comes back: the slave reconnects and follows again
    slave = cluster.procs["slave"]
    # (it started empty, so this reconnection is the first that verifies its log against the master's)
    wait_until(lambda: "HA: the CommitLog agrees with the master's" in slave.log_text(), 20, 0.1,
               what="the slave reconnected and verified")
    with Wire(maddr) as w:
        acked += w.send_each("HaT", (b"ha-%04d" % i for i in range(300, 350)), queues=4, first_queue=300)
    assert sorted(drain(saddr, "HaT", 4)[0]) == acked
    # a consumer reading recent data from the slave is sent back to the master
    r = call(saddr, pull_request("haG", "HaT", 0, 0))
    assert r.code == RC.SUCCESS and r.ext_fields["suggestWhichBrokerId"] == "0"


def test_slave_restarted_empty_catches_up_and_a_diverged_slave_repairs(cluster):
    cluster.role = "ASYNC_MASTER"
    cluster.start_both()
    maddr = cluster.addr("master")
    assert call(maddr, create_topic_request("HaR", queues=2)).code == RC.SUCCESS
    with Wire(maddr) as w:
        for i in range(400):
            assert w.call(send_request("HaR", b"r-%d" % i + b"." * (i % 300), queue_id=i % 2)).code == RC.SUCCESS
    slave_has(cluster, "HaR", 2, 400)
    # restarted from an empty store: catches up to the same bytes
    cluster.procs["slave"].stop()
    shutil.rmtree(cluster.store("slave"))
    cluster.start("slave")
    slave_has(cluster, "HaR", 2, 400)
    wait_until(lambda: cluster.commitlog("slave") == cluster.commitlog("master"), 20, 0.2,
               what="identical CommitLogs")
    # diverged: the slave's log gets records the master never had (as after a master lost its tail)
    cluster.procs["slave"].stop()
    append_foreign(cluster.store("slave"), 40)
    with Wire(maddr) as w:
        for i in range(400, 420):
            assert w.call(send_request("HaR", b"r-%d" % i, queue_id=i % 2)).code == RC.SUCCESS
    slave = cluster.start("slave")
    slave.wait_log("truncating the CommitLog", 20)
    wait_until(lambda: cluster.commitlog("slave") == cluster.commitlog("master"), 20, 0.2,
               what="identical CommitLogs after the repair")
    bodies = drain(cluster.addr("slave"), "HaR", 2)[0]
    assert len(bodies) == 420 and not any(b.startswith(b"foreign") for b in bodies)


def test_timer_messages_are_on_the_slave_which_fires_none(twistd, tmp_path):
    cluster = HaCluster(twistd, tmp_path)
    cluster.start_both()
    master, maddr, saddr = cluster.procs["master"], cluster.addr("master"), cluster.addr("slave")
    assert call(maddr, create_topic_request("HaTimer", queues=1)).code == RC.SUCCESS
    with Wire(maddr) as w:
        for body, delay in ((b"soon", "1000"), (b"later", "600000"), (b"marker", "3000")):
            r = w.call(send_request("HaTimer", body, properties={"TIMER_DELAY_MS": delay}, queue_id=0))
            assert r.code == RC.SUCCESS, r.remark

    def delivered_on_slave():
        try:
            return drain(saddr, "HaTimer", 1)[0]
        except OSError:
            return []

    # The master fires "soon", then "marker" 2 s later; the slave has both deliveries, and a slave that fired
    # timers itself would have fired "soon" before the marker came: it has the master's deliveries only.
    wait_until(lambda: b"marker" in delivered_on_slave(), 30, 0.2, what="the master's marker on the slave")
    assert delivered_on_slave() == [b"soon", b"marker"]
    slave_has(cluster, "rmq_sys_wheel_timer", 1, 3)  # and the timer records, for reads to fail over to
    master.kill()
    assert sorted(drain(saddr, "rmq_sys_wheel_timer", 1)[0]) == [b"later", b"marker", b"soon"]
    assert drain(saddr, "HaTimer", 1)[0] == [b"soon", b"marker"]
    assert "timer wheel" not in cluster.procs["slave"].log_text()
