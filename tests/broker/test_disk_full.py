"""A full disk, from outside: a ``twistd broker`` whose store lives on a small tmpfs is filled with sends.

It stays alive, refuses sends with SERVICE_NOT_AVAILABLE and a remark saying the disk is full, serves every
acknowledged message, stops and starts again on the full disk (state files that cannot be saved are one
warning, the old ones kept), and takes sends again once space is freed. Also: state files and a slave on a
full disk, in process. The store's side, with a simulated ENOSPC: tests/store/test_disk_full.py.
"""

from __future__ import annotations

import errno
import os
import re

import pytest_twisted
from twisted.internet import reactor
from twisted.logger import LogLevel

from mq.broker.service import BrokerService
from mq.broker.state_file import JsonStateFile
from mq.client.simple import create_topic_request, pull_request, query_message_request, send_request
from mq.common.message_record import decode_messages
from mq.remoting.codes import ResponseCode as RC
from mq.store import mappedfile
from tests.broker.conftest import broker_config
from tests.broker.wire import Wire, call
from tests.support.logs import logged_lines, tracebacks
from tests.support.polling import poll
from tests.support.processes import TwistdProcess, free_port, port_open, wait_until

DISK_CONF = (
    "brokerClusterName=DiskCluster\n"
    "mappedFileSizeCommitLog=524288\n"  # 512 KiB CommitLog files
    "mappedFileSizeConsumeQueue=20000\n"  # 20 KB queue files
    "maxHashSlotNum=1000\nmaxIndexNum=8000\n"  # 164 KB index files
    "diskSpaceWarningLevelRatio=99\n"  # so that the disk itself, not the ratio, says no: the SIGBUS case
    "flushDiskType=SYNC_FLUSH\n"
)
BODY = 4000


# -- a real broker on a real full filesystem ----------------------------------------------------------


def _start(tmp_path, store, port, n):
    conf = tmp_path / "broker.conf"
    conf.write_text(DISK_CONF)
    proc = TwistdProcess("broker", ["--port", str(port), "--store", str(store), "--ip", "127.0.0.1",
                                    "--broker-name", "disk-broker", "--config", str(conf)],
                         tmp_path / f"broker-{n}").start()
    try:
        proc.wait_port(port)
    except BaseException:
        proc.kill()
        raise
    return proc


def _pull_everything(addr, topic):
    got = []
    offset = 0
    with Wire(addr) as w:
        while True:
            r = w.call(pull_request("disk_check", topic, 0, offset))
            if r.code != RC.SUCCESS:
                return got
            got += decode_messages(r.body)
            offset = int(r.ext_fields["nextBeginOffset"])


def test_a_broker_on_a_full_disk_refuses_sends_serves_reads_and_recovers(tmp_path, small_disk):
    filler = small_disk / "filler"
    filler.write_bytes(b"\xff" * (5 << 20))  # leaves about 3 MiB for the store
    store = small_disk / "store"
    port = free_port()
    addr = f"127.0.0.1:{port}"
    procs = [_start(tmp_path, store, port, 0)]
    try:
        assert call(addr, create_topic_request("DiskT", queues=1)).code == RC.SUCCESS
        acked = []
        refusal = None
        with Wire(addr) as w:
            for i in range(2000):  # 8 MB of bodies: more than the disk holds
                body = b"%06d" % i + b"d" * BODY
                r = w.call(send_request("DiskT", body, keys=f"key{i}", queue_id=0))
                if r.code == RC.SUCCESS:
                    acked.append(body)
                    continue
                refusal = r
                break
            assert refusal is not None, "the disk never filled up"
            assert refusal.code == RC.SERVICE_NOT_AVAILABLE, (refusal.code, refusal.remark)
            # Whichever notices first: the reservation of the next CommitLog file, or the periodic free-space
            # check (on a fast interpreter the sends outrun its 100 ms interval less often).
            assert re.search(r"the broker's disk is full: (no space left for 524288 bytes of commitlog/"
                             r"|\d+\.\d% used, over diskSpaceWarningLevelRatio)", refusal.remark), refusal.remark
            assert str(small_disk) not in refusal.remark
            for _ in range(20):  # a flood of sends on the full disk: refused, nothing written
                r = w.call(send_request("DiskT", b"x" * BODY, queue_id=0))
                assert r.code == RC.SERVICE_NOT_AVAILABLE and "disk is full" in r.remark
        assert procs[0].running and port_open(port)
        assert len(acked) > 200
        # Reads are served: every acknowledged message, in order, and a key lookup in the index.
        assert [m.body for m in _pull_everything(addr, "DiskT")] == acked
        found = call(addr, query_message_request("DiskT", "key7"))
        assert found.code == RC.SUCCESS and [m.body for m in decode_messages(found.body)] == [acked[7]]
        # Stop and start again on the full disk: nothing acknowledged is lost.
        assert procs[0].stop() in (0, -15)
        log = procs[0].log_text()
        assert "Traceback" not in log and "RPython traceback" not in log and "Unhandled" not in log, log
        assert "puts refused: the broker's disk is full" in log
        for name in os.listdir(store / "commitlog"):  # every file mapped is allocated whole: no write can SIGBUS
            st = os.stat(store / "commitlog" / name)
            assert st.st_blocks * 512 >= st.st_size, (name, st.st_blocks * 512)
        for path in (p for p in (store / "consumequeue").rglob("0*") if p.is_file()):  # written part allocated
            data = path.read_bytes()
            assert path.stat().st_blocks * 512 >= len(data.rstrip(b"\0")), path
        procs.append(_start(tmp_path, store, port, 1))
        assert [m.body for m in _pull_everything(addr, "DiskT")] == acked
        assert call(addr, send_request("DiskT", b"x" * BODY, queue_id=0)).code == RC.SERVICE_NOT_AVAILABLE
        # Space returns: sends are taken again (within diskSpaceCheckInterval), and the CommitLog grows.
        filler.unlink()

        def accepted():
            return call(addr, send_request("DiskT", b"after" + b"a" * BODY, queue_id=0)).code == RC.SUCCESS

        wait_until(accepted, timeout=10, what="sends accepted after space was freed")
        for i in range(300):  # more than a CommitLog file: new files are created again
            assert call(addr, send_request("DiskT", b"more%d" % i, queue_id=0)).code == RC.SUCCESS
        bodies = [m.body for m in _pull_everything(addr, "DiskT")]
        assert bodies[: len(acked)] == acked and bodies[-1] == b"more299"
        log = procs[1].log_text()
        assert "puts are accepted again" in log and "Traceback" not in log, log
    finally:
        for p in procs:
            p.stop(timeout=15)


# -- state files ---------------------------------------------------------------------------------------


class _Table(JsonStateFile):
    def __init__(self, path) -> None:
        super().__init__(path)
        self.table = {"a": 1}

    def encode(self):
        return self.table

    def decode(self, data) -> None:
        self.table = data


def test_a_state_file_that_cannot_be_saved_keeps_the_old_one_and_is_saved_later(tmp_path, monkeypatch, log_events):
    table = _Table(str(tmp_path / "config" / "t.json"))
    assert table.persist()
    real_fsync = os.fsync
    full = {"on": True}

    def fsync(fd):
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    table.table = {"a": 2}
    assert table.persist() is False and table.dirty
    table.persist_if_dirty()
    assert sorted(os.listdir(tmp_path / "config")) == ["t.json"]  # no .tmp left, the old file intact
    assert (tmp_path / "config" / "t.json").read_text() == '{"a":1}'
    warnings = logged_lines(log_events, "cannot save")
    assert len(warnings) == 1 and "No space left on device" in warnings[0]
    assert not tracebacks(log_events)  # no traceback
    full["on"] = False
    table.persist_if_dirty()
    assert not table.dirty and (tmp_path / "config" / "t.json").read_text() == '{"a":2}'


# -- a slave on a full disk ----------------------------------------------------------------------------


class _SlaveDisk:
    """``posix_fallocate`` failing with ENOSPC for files under one directory while ``full``."""

    def __init__(self, monkeypatch, root) -> None:
        self.root = str(root)
        self.full = False
        self.real = mappedfile.allocate
        monkeypatch.setattr(mappedfile, "allocate", self)

    def __call__(self, fd, offset, length):
        if self.full and os.readlink(f"/proc/self/fd/{fd}").startswith(self.root):
            raise OSError(errno.ENOSPC, "No space left on device")
        self.real(fd, offset, length)


@pytest_twisted.inlineCallbacks
def test_a_slave_on_a_full_disk_stops_replicating_with_a_log_line_and_resumes(tmp_path, monkeypatch, client, log_events):
    fast = {"haSendHeartbeatInterval": 200, "haSlaveReconnectInterval": 100, "slaveSyncInterval": 200,
            "mappedFileSizeCommitLog": 65536}
    disk = _SlaveDisk(monkeypatch, tmp_path / "s")
    started = []
    try:
        m = BrokerService(broker_config(tmp_path / "m", brokerName="ha", **fast), reactor)
        m.startService()
        started.append(m)
        s = BrokerService(broker_config(tmp_path / "s", brokerRole="SLAVE", brokerId=1, brokerName="ha",
                                        haMasterAddress=f"127.0.0.1:{m.config.ha_listen_port}", **fast), reactor)
        s.startService()
        started.append(s)
        maddr = m.config.broker_addr
        yield client.create_topic(maddr, "HaDisk", queues=1)
        for _ in range(10):
            assert (yield client.send(maddr, "HaDisk", b"a" * 2000, queue_id=0)).code == RC.SUCCESS
        yield poll(lambda: s.store.get_max_phy_offset() == m.store.get_max_phy_offset(), bool, timeout=30,
                   what="the slave to catch up")
        disk.full = True
        for _ in range(60):  # past the first 64 KiB CommitLog file: the slave cannot create its second
            assert (yield client.send(maddr, "HaDisk", b"b" * 2000, queue_id=0)).code == RC.SUCCESS
        yield poll(lambda: s.ha_slave.disk_full, bool, timeout=30, what="the slave to meet the full disk")
        assert s.store.get_max_phy_offset() == 65536 < m.store.get_max_phy_offset()
        yield poll(lambda: s.ha_slave.connects, lambda n: n >= 3, timeout=30, what="retries")
        assert len(logged_lines(log_events, "HA: replication stops: no space left for")) == 1
        assert not tracebacks(log_events)
        disk.full = False
        yield poll(lambda: s.store.get_max_phy_offset() == m.store.get_max_phy_offset(), bool, timeout=30,
                   what="the slave to resume")
        yield poll(lambda: s.store.get_max_offset_in_queue("HaDisk", 0), lambda n: n == 70, timeout=30,
                   what="the slave's queue entries")
        assert logged_lines(log_events, "replication resumes", levels=(LogLevel.info,))
    finally:
        for svc in reversed(started):
            if svc.running:
                yield svc.stopService()
