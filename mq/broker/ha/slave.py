"""Slave side of HA replication: connect to the master's HA port, append its bytes, find where logs part.

The slave appends exactly the master's bytes at the master's offsets (``MessageStore.append_raw``); the
store's reput builds the ConsumeQueues and the index from them. After every transfer it writes, and every
``haSendHeartbeatInterval``, it reports the offset up to which it holds the master's bytes.

**Finding the common point.** A slave that already holds data does not simply report its end X: the master
may have lost a tail the slave holds (a crash before its flush, a restore) and written other records at the
same offsets since, or the slave's log may be foreign. So every connection starts by *verifying*: the slave
reports the start P of its last record (a record boundary found through its ConsumeQueues), the master
streams from P, and the slave compares the overlap [P, X) with its own bytes before appending past X.

* The overlap matches: the logs agree up to X; append what follows. (A record holds its own offset, store
  time and body CRC, so one matching whole record means the histories agree up to it.)
* A later record differs: the logs part at the start of that record; truncate there and reconnect.
* The first record (at P) already differs, or the master ends before P (our master says so with a heartbeat
  carrying its end before it closes): look further back, doubling the step each time, through record
  boundaries; at the slave's first offset there is nothing to keep and the log is emptied.
* The master ends inside the overlap (a heartbeat at the verified point while the slave holds more): the
  slave's extra tail is not on the master; truncate it.

Until verified, the slave reports the end of the verified part, so a SYNC_MASTER never counts an unverified
byte as replicated. Truncation waits until the store's flush worker is idle, then the slave reconnects at
once. A slave whose store is empty reports 0 and starts wherever the master starts (RocketMQ: the beginning
of the master's last CommitLog file).

**A full disk** (``DiskFullError`` from the store: a CommitLog, queue or index file could not be reserved)
stops replication with one log line: the connection closes, and every reconnect interval the slave tries
again (first the entries of what it already holds, then the master's bytes), quietly, until the disk has room;
then one line says replication resumed. Nothing is written that the disk cannot hold, so nothing is torn.
"""

from __future__ import annotations

import struct
from typing import Optional

from twisted.internet import protocol, task
from twisted.logger import Logger

from mq.broker.ha.master import HAConfig
from mq.common.ha_protocol import TransferDecoder, encode_report
from mq.store.consumequeue import PAD_SIZE
from mq.store.mappedfile import DiskFullError

log = Logger()

_I32 = struct.Struct(">i")
FIRST_STEP = 64 * 1024


class HASlaveProtocol(protocol.Protocol):
    def __init__(self, slave: "HASlave") -> None:
        self.slave = slave
        self.decoder = TransferDecoder()

    def connectionMade(self) -> None:
        self.slave.connected(self)

    def dataReceived(self, data: bytes) -> None:
        try:
            transfers = self.decoder.feed(data)
        except ValueError as e:
            log.error("HA: bad data from the master: {e}", e=e)
            self.transport.loseConnection()
            return
        self.slave.received(self, transfers)

    def connectionLost(self, reason=None) -> None:
        self.slave.disconnected(self)

    def report(self, offset: int) -> None:
        self.transport.write(encode_report(offset))

    def close(self) -> None:
        self.transport.loseConnection()


class _Factory(protocol.ClientFactory):
    def __init__(self, slave: "HASlave") -> None:
        self.slave = slave

    def buildProtocol(self, addr):
        return HASlaveProtocol(self.slave)

    def clientConnectionFailed(self, connector, reason) -> None:
        self.slave.connect_failed(reason)


class HASlave:
    """The HA client of a SLAVE broker (RocketMQ's HAClient), plus the divergence check above."""

    def __init__(self, broker, config: Optional[HAConfig] = None, clock=None) -> None:
        self.broker = broker
        self.store = broker.store
        self.config = config or HAConfig.from_broker_config(broker.config)
        self.clock = clock or broker.reactor
        self.proto: Optional[HASlaveProtocol] = None
        self.connecting = False
        self.master: Optional[str] = None  # the HA address of the current or last connection
        # per connection
        self.cursor: Optional[int] = None  # where the next transfer must start (None: empty store, anywhere)
        self.verified = True
        self.probe = 0
        # across connections
        self.next_probe: Optional[int] = None
        self.step = FIRST_STEP
        self.pending_truncate: Optional[int] = None
        self.last_read = self.last_report = 0.0
        self.connects = 0
        self.truncations = 0
        self.truncated_bytes = 0
        self.bytes_received = 0
        self.disk_full = False  # replication stopped on a full disk; retried every tick
        self._stopped_at = 0  # the store's dispatched end when it stopped
        self._loop: Optional[task.LoopingCall] = None
        self._running = False

    # -- life cycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self._running = True
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = self.clock
        interval = min(self.config.reconnect_interval, self.config.heartbeat_interval) / 1000.0
        self._loop.start(max(0.02, interval), now=True).addErrback(lambda f: log.failure("HA client timer", f))

    def stop(self) -> None:
        self._running = False
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self.proto is not None:
            self.proto.close()

    def master_address(self) -> Optional[str]:
        return self.config.master_address or self.broker.ha_master_addr

    @property
    def is_connected(self) -> bool:
        return self.proto is not None

    def _tick(self) -> None:
        now = self.clock.seconds()
        addr = self.master_address()
        proto = self.proto
        if proto is not None:
            if addr and addr != self.master:
                log.info("HA: the master moved from {old} to {new}: reconnecting", old=self.master, new=addr)
                proto.close()
            elif now - self.last_read > self.config.housekeeping_interval / 1000.0:
                log.warn("HA: nothing from the master {m} for {s:.0f} s: reconnecting", m=self.master,
                         s=now - self.last_read)
                proto.close()
            elif now - self.last_report >= self.config.heartbeat_interval / 1000.0:
                self._report()
            return
        if self.disk_full:
            try:
                self.store.dispatch_appended()
            except DiskFullError:
                return
        self.connect()

    def connect(self) -> None:
        addr = self.master_address()
        if not self._running or self.connecting or self.proto is not None or not addr:
            return
        host, _, port = addr.rpartition(":")
        self.connecting = True
        self.master = addr
        self.clock.connectTCP(host, int(port), _Factory(self), timeout=10)

    def connect_failed(self, reason) -> None:
        self.connecting = False
        log.debug("HA: cannot reach the master {m}: {r}", m=self.master, r=reason.getErrorMessage())

    # -- connection events -------------------------------------------------------------------------

    def connected(self, proto: HASlaveProtocol) -> None:
        self.connecting = False
        if not self._running:
            proto.close()
            return
        self.proto = proto
        self.connects += 1
        self.last_read = self.clock.seconds()
        store = self.store
        end = store.get_max_phy_offset()
        if end <= store.get_min_phy_offset():
            self.cursor = None
            self.verified = True
            self.probe = 0
        else:
            probe = self.next_probe
            if probe is None or probe >= end:
                probe = self._last_record_start(end)
            self.probe = self.cursor = probe
            self.verified = False
        log.info("HA: connected to the master {m}; CommitLog ends at {end}, reporting {probe}",
                 m=self.master, end=end, probe=self.probe)
        self._report()

    def disconnected(self, proto: HASlaveProtocol) -> None:
        if proto is not self.proto:
            return
        self.proto = None
        if not self._running:
            return
        if self.pending_truncate is not None:
            offset, self.pending_truncate = self.pending_truncate, None
            self.store.flusher.when_idle().addCallback(lambda _: self._truncate(offset)).addBoth(
                lambda _: self.connect())
        elif self.next_probe is not None:
            self.clock.callLater(0, self.connect)

    def received(self, proto: HASlaveProtocol, transfers) -> None:
        if proto is not self.proto:
            return
        self.last_read = self.clock.seconds()
        wrote = False
        for offset, data in transfers:
            try:
                ok = self._handle(offset, data)
            except DiskFullError as e:
                if not self.disk_full:
                    log.error("HA: replication stops: {e}; retrying every {s:g} s", e=e,
                              s=self.config.reconnect_interval / 1000.0)
                    self.disk_full = True
                    self._stopped_at = self.store.reput_offset
                ok = False
            if not ok:
                proto.close()
                return
            wrote = wrote or bool(data)
        if wrote:
            if self.disk_full and self.store.reput_offset > self._stopped_at:
                log.info("HA: the disk has room again: replication resumes at {o}", o=self.store.get_max_phy_offset())
                self.disk_full = False
            self._report()

    def _report(self) -> None:
        if self.proto is None:
            return
        if self.verified:
            offset = self.store.get_max_phy_offset() if self.cursor is not None else self.probe
        else:
            offset = self.cursor
        self.proto.report(offset)
        self.last_report = self.clock.seconds()

    # -- transfers ---------------------------------------------------------------------------------

    def _handle(self, offset: int, data: bytes) -> bool:
        """Take one transfer; False closes the connection (and may schedule a truncation or a new probe)."""
        store = self.store
        if not data:
            return self._heartbeat(offset)
        self.bytes_received += len(data)
        if self.cursor is None:
            # Empty store: the master's first transfer says where this CommitLog begins.
            if not store.append_raw(offset, data):
                log.error("HA: cannot start the CommitLog at {o}", o=offset)
                return False
            self.cursor = offset + len(data)
            return True
        if offset != self.cursor:
            log.error("HA: the master sent offset {o}, expected {c}: reconnecting", o=offset, c=self.cursor)
            return False
        if self.verified:
            if not store.append_raw(offset, data):
                log.error("HA: appending {n} bytes at {o} failed: reconnecting", n=len(data), o=offset)
                return False
            self.cursor = offset + len(data)
            return True
        return self._verify(offset, data)

    def _verify(self, offset: int, data: bytes) -> bool:
        store = self.store
        end = store.get_max_phy_offset()
        n = min(len(data), end - offset)
        local = store.get_commit_log_data(offset, n) or b""
        if len(local) == n and local == data[:n]:
            self.cursor = offset + n
            if self.cursor < end:
                return True
            # The whole overlap matched: the logs agree up to ``end``.
            self.verified = True
            self.next_probe = None
            self.step = FIRST_STEP
            log.info("HA: the CommitLog agrees with the master's from {p} to {e}", p=self.probe, e=end)
            rest = data[n:]
            if rest:
                if not store.append_raw(end, rest):
                    return False
                self.cursor = end + len(rest)
            return True
        i = next((k for k in range(min(len(local), n)) if local[k] != data[k]), min(len(local), n))
        parted = self._record_start(self.probe, offset + i)
        if parted > self.probe:
            return self._truncate_later(parted, f"the logs part at {parted}")
        return self._step_back(self.probe - 1, f"the record at {self.probe} differs from the master's")

    def _heartbeat(self, offset: int) -> bool:
        """A heartbeat: the master's next transfer starts at ``offset`` (our master: it holds no more)."""
        if self.cursor is None or self.verified:
            return True
        if offset < self.cursor or offset == self.probe:
            return self._step_back(offset, f"the master ends at {offset}, before {self.cursor}")
        if offset == self.cursor and self._record_start(self.probe, offset) == offset:
            return self._truncate_later(offset, f"the master ends at {offset}")
        return True

    # -- looking for the common point ----------------------------------------------------------------

    def _step_back(self, limit: int, why: str) -> bool:
        lowest = self.store.get_min_phy_offset()
        if self.probe <= lowest:
            return self._truncate_later(lowest, f"{why}, and no earlier record exists: emptying the CommitLog")
        target = max(lowest, min(limit, self.probe - self.step))
        self.step *= 2
        self.next_probe = self._boundary_at_or_before(target)
        log.warn("HA: {why}: checking from {p}", why=why, p=self.next_probe)
        return False

    def _truncate_later(self, offset: int, why: str) -> bool:
        log.warn("HA: {why}: truncating the CommitLog at {o} (dropping {n} bytes)", why=why, o=offset,
                 n=self.store.get_max_phy_offset() - offset)
        self.pending_truncate = offset
        self.next_probe = None
        self.step = FIRST_STEP
        return False

    def _truncate(self, offset: int) -> None:
        end = self.store.get_max_phy_offset()
        if offset >= end:
            return
        self.store.truncate(offset)
        self.truncations += 1
        self.truncated_bytes += end - offset

    def _size_at(self, pos: int) -> int:
        raw = self.store.commitlog.read(pos, 4)
        return _I32.unpack(raw)[0] if raw else 0

    def _record_start(self, start: int, pos: int) -> int:
        """The start of the local record holding ``pos``, walking record sizes from ``start`` (a boundary)."""
        rec = start
        while True:
            size = self._size_at(rec)
            if size <= 0 or rec + size > pos:
                return rec
            rec += size

    def _last_record_start(self, end: int) -> int:
        """The start of the last record before ``end``."""
        rec = self._boundary_at_or_before(end - 1)
        while True:
            size = self._size_at(rec)
            if size <= 0 or rec + size >= end:
                return rec
            rec += size

    def _boundary_at_or_before(self, target: int) -> int:
        """A record boundary ≤ ``target``: the latest ConsumeQueue entry there, else its file's start."""
        files = self.store.commitlog.files
        f = files.find(target)
        best = f.start if f is not None else files.min_offset
        for cq in self.store.queues.all():
            lo, hi = cq.min_offset, cq.max_offset - 1
            found = -1
            while lo <= hi:
                mid = (lo + hi) // 2
                entry = cq.entry(mid)
                if entry is None or entry[1] <= 0 or entry[1] == PAD_SIZE:
                    break
                if entry[0] <= target:
                    found = entry[0]
                    lo = mid + 1
                else:
                    hi = mid - 1
            if found > best:
                best = found
        return best

    # -- figures -------------------------------------------------------------------------------------

    def info(self) -> dict:
        return {
            "master": self.master, "connected": self.is_connected, "verified": self.verified,
            "maxPhyOffset": self.store.get_max_phy_offset(), "connects": self.connects,
            "truncations": self.truncations, "truncatedBytes": self.truncated_bytes,
            "bytesReceived": self.bytes_received,
        }
