"""Master side of HA replication: the HA port, one ``HAConnection`` per slave, SYNC_MASTER waits.

A slave connects to the master's HA port (listenPort + 1 unless ``haListenPort``) and reports its CommitLog
max offset; the master streams raw CommitLog bytes from there (``mq.common.ha_protocol``), at most
``haTransferBatchSize`` bytes per transfer and never across a CommitLog file. Later reports are the slave's
acks. A SYNC_MASTER send completes when some slave has acked the end of its record (or after
``syncFlushTimeout`` with FLUSH_SLAVE_TIMEOUT; SLAVE_NOT_AVAILABLE at once when no slave is connected or the
best one is ``haMaxGapNotInSync`` bytes or more behind, and to every waiting send as soon as the last slave's
connection closes: a dead slave does not hold sends until their timeout).

Pushing is driven by writes: the broker calls ``notify()`` when a message is stored, and every connection
sends what it has not sent yet at the end of that reactor turn (so a burst of sends goes out in few
transfers). Each connection is a streaming producer of its transport, so a slow slave never makes the
master buffer more than one transfer for it.
"""

from __future__ import annotations

import collections
import os
from typing import Deque, Dict, List, Optional, Tuple

import attrs
from prometheus_client.core import GaugeMetricFamily
from twisted.application import internet
from twisted.internet import defer, protocol, task
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from zope.interface import implementer

from mq.broker.stats.metrics import LATENCY_BUCKETS, FastHistogram
from mq.common.config import PORT_OR_OFF, convert_value, tunable, within
from mq.common.ha_protocol import ReportDecoder, encode_header
from mq.common.log_tally import LogTally
from mq.common.progress import LoggedProgress
from mq.store.config import SYNC_FLUSH_TIMEOUT, BrokerRole
from mq.store.results import PutMessageResult, PutMessageStatus

log = Logger()

_WAITABLE = (PutMessageStatus.PUT_OK, PutMessageStatus.FLUSH_DISK_TIMEOUT)
#: What a waiting SYNC_MASTER send learns: acknowledged, timed out, or its slave went away.
_ACKED, _TIMED_OUT, _LOST = "acked", "timed out", "lost"


@attrs.define
class HAConfig:
    """HA settings, read from ``broker.conf`` keys (RocketMQ's where it has one)."""

    #: Port of the replication stream; 0 = listenPort + 1.
    listen_port: int = tunable(0, PORT_OR_OFF)
    #: ms between the slave's reports, and of master silence before a heartbeat (haSendHeartbeatInterval).
    heartbeat_interval: int = tunable(5000, within(100, 600_000, "ms"))
    #: ms without reading anything after which either side drops the connection (haHousekeepingInterval).
    housekeeping_interval: int = tunable(20000, within(1000, 3_600_000, "ms"))
    #: Largest transfer in bytes (RocketMQ: 32 KiB; see docs/performance.md for this value).
    transfer_batch_size: int = tunable(256 * 1024, within(1024, 64 << 20, "bytes"))
    #: A SYNC_MASTER send gets SLAVE_NOT_AVAILABLE when the best slave is this many bytes behind.
    max_gap_not_in_sync: int = tunable(256 * 1024 * 1024, within(0, 1 << 40, "bytes"))
    #: Where a slave connects; empty = the ``haServerAddr`` its NameServer registration answers.
    master_address: str = ""
    #: ms between a slave's connection attempts (RocketMQ: 5 s).
    reconnect_interval: int = tunable(5000, within(10, 600_000, "ms"))
    #: ms between a slave's copies of topics, offsets, delay offsets and groups (RocketMQ: 10 s).
    slave_sync_interval: int = tunable(10000, within(10, 3_600_000, "ms"))
    #: ms a SYNC_MASTER send waits for a slave's ack (syncFlushTimeout; its range is the store's).
    sync_timeout: int = tunable(5000, SYNC_FLUSH_TIMEOUT)

    KEYS = {
        "haListenPort": "listen_port",
        "haSendHeartbeatInterval": "heartbeat_interval",
        "haHousekeepingInterval": "housekeeping_interval",
        "haTransferBatchSize": "transfer_batch_size",
        "haMaxGapNotInSync": "max_gap_not_in_sync",
        "haMasterAddress": "master_address",
        "haSlaveReconnectInterval": "reconnect_interval",
        "slaveSyncInterval": "slave_sync_interval",
        "syncFlushTimeout": "sync_timeout",
    }

    @classmethod
    def from_broker_config(cls, config) -> "HAConfig":
        """The HA keys of ``broker.conf``; ValueError names a key whose value does not parse or is out of range."""
        fields = attrs.fields_dict(cls)
        values = {}
        for key, name in cls.KEYS.items():
            raw = config.extra.get(key)
            if raw is None or not str(raw).strip():
                continue
            values[name] = convert_value(fields[name], raw, key)
        return cls(**values)


def _total_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 8 << 30


@implementer(IPushProducer)
class HAConnection(protocol.Protocol):
    """One slave: reads its reports, streams CommitLog bytes to it."""

    def __init__(self, service: "HAService") -> None:
        self.service = service
        self.store = service.store
        self.decoder = ReportDecoder()
        self.next: Optional[int] = None  # where the next transfer starts; None until the first report
        self.start_offset = 0  # where the first transfer started (an empty slave skips the older files)
        self.ack = -1  # the slave's last report
        self.paused = False
        self.peer = "?"
        self.last_read = self.last_write = service.clock.seconds()
        self.connected_at = self.last_read
        self.bytes_sent = 0

    # -- connection ------------------------------------------------------------------------------

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.peer = f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}"
        self.transport.registerProducer(self, True)
        self.service.connection_made(self)
        log.info("HA: slave {peer} connected", peer=self.peer)

    def connectionLost(self, reason=None) -> None:
        self.service.connection_lost(self)
        log.info("HA: slave {peer} disconnected (acked {ack})", peer=self.peer, ack=self.ack)

    def dataReceived(self, data: bytes) -> None:
        self.last_read = self.service.clock.seconds()
        for offset in self.decoder.feed(data):
            if self.next is None:
                self._start(offset)
                if self.next is None:
                    return
            elif offset > self.store.get_max_phy_offset():
                log.warn("HA: slave {peer} reports {offset}, beyond this master's end {end}: closing",
                         peer=self.peer, offset=offset, end=self.store.get_max_phy_offset())
                self.transport.loseConnection()
                return
            else:
                self.ack = offset
        self.service.acked(self)

    def _start(self, offset: int) -> None:
        end = self.store.get_max_phy_offset()
        if offset == 0:
            # RocketMQ: an empty slave starts at the beginning of the master's last CommitLog file.
            start = end - end % self.store.commitlog.file_size
        elif offset > end:
            # The slave holds more than this master: tell it where this master ends, so that it can look for
            # the point where the two logs part (a Java slave just disconnects), then close.
            log.warn("HA: slave {peer} starts at {offset}, beyond this master's end {end}: closing",
                     peer=self.peer, offset=offset, end=end)
            self.transport.write(encode_header(end, 0))
            self.transport.loseConnection()
            return
        else:
            start = offset
        self.next = start
        self.start_offset = start
        self.ack = offset
        log.info("HA: slave {peer} starts at {start} (reported {offset})", peer=self.peer, start=start, offset=offset)
        self.push()

    # -- transfers -------------------------------------------------------------------------------

    def push(self) -> None:
        """Send what the slave has not been sent, batch by batch, until caught up or paused."""
        nxt = self.next
        if nxt is None or self.paused or self.transport is None:
            return
        read = self.store.get_commit_log_data
        batch = self.service.config.transfer_batch_size
        write = self.transport.writeSequence
        sent = 0
        while not self.paused:
            data = read(nxt, batch)
            if not data:
                break
            write((encode_header(nxt, len(data)), data))
            nxt += len(data)
            sent += len(data)
        if sent:
            self.next = nxt
            self.bytes_sent += sent
            self.last_write = self.service.clock.seconds()

    def heartbeat(self, now: float) -> None:
        # Only when caught up: a heartbeat's offset then is this master's end, which slaves rely on.
        if (self.next is not None and now - self.last_write >= self.service.config.heartbeat_interval / 1000.0
                and self.next >= self.store.get_max_phy_offset()):
            self.transport.write(encode_header(self.next, 0))
            self.last_write = now

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.push()

    def stopProducing(self) -> None:
        self.paused = True


#: Connections the HA port keeps at once: slaves of one master are a handful; every other file descriptor is the
#: store's and the clients'. One more is closed as it is accepted, with a log line.
MAX_HA_CONNECTIONS = 64


class HAFactory(protocol.Factory):
    def __init__(self, service: "HAService") -> None:
        self.service = service
        self.refused = LogTally()

    def buildProtocol(self, addr):
        if len(self.service.connections) >= MAX_HA_CONNECTIONS:
            n = self.refused.add(self.service.clock.seconds())
            if n is not None:
                log.warn("HA: closed {n} new connection(s), the last from {peer}: {open} open, the most the HA "
                         "port keeps", n=n, peer=getattr(addr, "host", addr), open=len(self.service.connections))
            return None
        return HAConnection(self.service)


class _Waiter:
    __slots__ = ("end", "deadline", "deferred", "started")

    def __init__(self, end: int, deadline: float, deferred: defer.Deferred, started: float) -> None:
        self.end = end
        self.deadline = deadline
        self.deferred = deferred
        self.started = started


class HAService:
    """The master's replication service (built for every broker; it serves the HA port unless a slave)."""

    def __init__(self, broker, config: Optional[HAConfig] = None, clock=None) -> None:
        self.broker = broker
        self.store = broker.store
        self.config = config or HAConfig.from_broker_config(broker.config)
        self.clock = clock or broker.reactor
        self.sync_master = broker.config.broker_role is BrokerRole.SYNC_MASTER
        self.connections: List[HAConnection] = []
        self.acked_offset = -1  # the best ack of the connected slaves (RocketMQ's push2SlaveMaxOffset)
        self.waiters: Deque[_Waiter] = collections.deque()
        self.wait_time = FastHistogram(LATENCY_BUCKETS)
        self.sync_results = {"ok": 0, "timeout": 0, "not_available": 0}
        self._push_call = None
        self._timeout_call = None
        self._loop: Optional[task.LoopingCall] = None
        ratio = self.store.config.access_message_in_memory_max_ratio
        self.memory_window = _total_memory() * ratio // 100
        #: (master end offset, time) samples, one per reactor turn that wrote, for the lag in seconds.
        self._samples: Deque[Tuple[int, float]] = collections.deque()
        #: Slaves more than haMaxGapNotInSync behind: their catch-up, logged while it lasts, and where it began.
        self._catching_up: Dict[int, Tuple[LoggedProgress, int]] = {}  # by id() of the connection

    # -- life cycle --------------------------------------------------------------------------------

    def server(self, interface: str = "") -> internet.TCPServer:
        return internet.TCPServer(self.broker.config.ha_listen_port, HAFactory(self), interface=interface,
                                  reactor=self.clock)

    def start(self) -> None:
        self._loop = task.LoopingCall(self._housekeeping)
        self._loop.clock = self.clock
        interval = min(self.config.heartbeat_interval, self.config.housekeeping_interval) / 4000.0
        self._loop.start(max(0.05, interval), now=False).addErrback(lambda f: log.failure("HA housekeeping", f))

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        for call in (self._push_call, self._timeout_call):
            if call is not None and call.active():
                call.cancel()
        self._push_call = self._timeout_call = None
        for conn in list(self.connections):
            conn.transport.loseConnection()
        self._expire(float("inf"))

    # -- connections -------------------------------------------------------------------------------

    def connection_made(self, conn: HAConnection) -> None:
        self.connections.append(conn)

    def connection_lost(self, conn: HAConnection) -> None:
        if conn in self.connections:
            self.connections.remove(conn)
        self._catching_up.pop(id(conn), None)
        self.acked_offset = max((c.ack for c in self.connections), default=-1)
        if not self.connections:
            self._samples.clear()
        if self.waiters and not any(c.next is not None for c in self.connections):
            # No slave left that could acknowledge them: answer the waiting sends now, not at their timeout.
            waiters, self.waiters = self.waiters, collections.deque()
            log.warn("HA: no slave left; {n} waiting SYNC_MASTER sends answered SLAVE_NOT_AVAILABLE", n=len(waiters))
            for w in waiters:
                w.deferred.callback(_LOST)

    def acked(self, conn: HAConnection) -> None:
        if conn.ack > self.acked_offset:
            self.acked_offset = conn.ack
            waiters = self.waiters
            now = self.clock.seconds()
            while waiters and waiters[0].end <= conn.ack:
                w = waiters.popleft()
                self.wait_time.observe(now - w.started)
                w.deferred.callback(_ACKED)
        low = min(c.ack for c in self.connections)
        samples = self._samples
        while len(samples) > 1 and samples[1][0] <= low:
            samples.popleft()

    # -- pushing -----------------------------------------------------------------------------------

    def notify(self) -> None:
        """New CommitLog data: push it to every slave at the end of this reactor turn."""
        if self._push_call is None and self.connections:
            self._push_call = self.clock.callLater(0, self._push_all)

    def _push_all(self) -> None:
        self._push_call = None
        end = self.store.get_max_phy_offset()
        samples = self._samples
        if not samples or samples[-1][0] < end:
            samples.append((end, self.clock.seconds()))
        for conn in self.connections:
            conn.push()

    def _housekeeping(self) -> None:
        now = self.clock.seconds()
        limit = self.config.housekeeping_interval / 1000.0
        for conn in list(self.connections):
            if now - conn.last_read > limit:
                log.warn("HA: nothing from slave {peer} for {secs:.0f} s: closing", peer=conn.peer, secs=now - conn.last_read)
                conn.transport.loseConnection()
                continue
            conn.push()
            conn.heartbeat(now)
        self.report_catch_up()

    def report_catch_up(self) -> None:
        """A slave further behind than haMaxGapNotInSync (a new or long-gone one) gets a log line every
        LOG_EVERY seconds with how far it got, and one when it is back within the gap."""
        end = self.store.get_max_phy_offset()
        gap = self.config.max_gap_not_in_sync
        for conn in self.connections:
            if conn.next is None:
                continue
            ack = max(conn.ack, conn.start_offset)
            entry = self._catching_up.get(id(conn))
            if entry is None:
                if end - ack <= gap:
                    continue
                entry = self._catching_up[id(conn)] = (
                    LoggedProgress(f"HA: slave {conn.peer} catching up", clock=self.clock.seconds), ack)
            progress, began = entry
            progress.update(ack - began, end - began)
            if end - ack <= gap:
                progress.finish()
                del self._catching_up[id(conn)]

    # -- SYNC_MASTER -------------------------------------------------------------------------------

    def slave_ok(self, end: int) -> bool:
        return any(c.next is not None for c in self.connections) and end - self.acked_offset < self.config.max_gap_not_in_sync

    def slave_can_serve(self) -> bool:
        """May a consumer reading older data than the master keeps in memory be sent to a slave?

        On a master: only while a slave is connected and holds everything older than that memory window
        (``accessMessageInMemoryMaxRatio`` of RAM), so the consumer finds there what it would read here.
        A slave serves what it has (the existing rule: stay while the consumer still reads from disk).
        """
        if self.broker.config.is_slave:
            return True
        if not any(c.next is not None for c in self.connections):
            return False
        return self.store.get_max_phy_offset() - self.acked_offset <= self.memory_window

    def replicated(self, d, wait: Optional[str] = None):
        """A put's outcome, made to wait for a slave's ack on a SYNC_MASTER (unless ``WAIT=false``).

        ``d`` is a Deferred of a PutMessageResult or the result itself (``put_message_now``); what comes back
        is the same kind, or a Deferred when the put has to wait for a slave.
        """
        if not self.sync_master or (wait is not None and wait.lower() == "false"):
            return d
        if isinstance(d, defer.Deferred):
            return d.addCallback(self._wait_for_slave)
        return self._wait_for_slave(d)

    def _wait_for_slave(self, result: PutMessageResult):
        ar = result.append_result
        if result.status not in _WAITABLE or ar is None:
            return result
        end = ar.wrote_offset + ar.wrote_bytes
        if end <= self.acked_offset:
            self.sync_results["ok"] += 1
            return result
        if not self.slave_ok(end):
            self.sync_results["not_available"] += 1
            why = "no slave connected" if not self.connections else f"the slave is {end - self.acked_offset} bytes behind"
            return PutMessageResult(PutMessageStatus.SLAVE_NOT_AVAILABLE, ar, reason=why)
        now = self.clock.seconds()
        d = defer.Deferred()
        self.waiters.append(_Waiter(end, now + self.config.sync_timeout / 1000.0, d, now))
        if self._timeout_call is None:
            self._timeout_call = self.clock.callLater(self.config.sync_timeout / 1000.0, self._on_timeout)
        self.notify()

        def outcome(how: str):
            if how is _ACKED:
                self.sync_results["ok"] += 1
                return result
            if how is _LOST:
                self.sync_results["not_available"] += 1
                return PutMessageResult(PutMessageStatus.SLAVE_NOT_AVAILABLE, ar,
                                        reason="the slave's connection closed before it acknowledged the message")
            self.sync_results["timeout"] += 1
            reason = f"no slave acknowledged the message within {self.config.sync_timeout} ms"
            return PutMessageResult(PutMessageStatus.FLUSH_SLAVE_TIMEOUT, ar, reason=reason)

        return d.addCallback(outcome)

    def _on_timeout(self) -> None:
        self._timeout_call = None
        self._expire(self.clock.seconds())

    def _expire(self, now: float) -> None:
        waiters = self.waiters
        while waiters and waiters[0].deadline <= now:
            waiters.popleft().deferred.callback(_TIMED_OUT)
        if waiters and self._timeout_call is None and now != float("inf"):
            self._timeout_call = self.clock.callLater(max(0.0, waiters[0].deadline - now), self._on_timeout)

    # -- figures -----------------------------------------------------------------------------------

    def lag_seconds(self, ack: int) -> float:
        """How long ago the first byte past ``ack`` was written (0 when the slave has everything)."""
        end = self.store.get_max_phy_offset()
        if ack >= end:
            return 0.0
        for offset, at in self._samples:
            if offset > ack:
                return max(0.0, self.clock.seconds() - at)
        return 0.0

    def slaves(self) -> List[dict]:
        end = self.store.get_max_phy_offset()
        out = []
        for c in self.connections:
            ack = max(c.ack, 0)
            out.append({"addr": c.peer, "ackOffset": c.ack, "lagBytes": max(0, end - ack),
                        "lagSeconds": round(self.lag_seconds(ack), 3), "bytesSent": c.bytes_sent})
        return out

    def gauges(self):
        slaves = self.slaves()
        yield GaugeMetricFamily("mq_broker_ha_connected_slaves", "Slaves connected to this master's HA port",
                                value=len(slaves))
        lag_b = GaugeMetricFamily("mq_broker_ha_slave_lag_bytes", "CommitLog bytes a slave has not acknowledged",
                                  labels=["slave"])
        lag_s = GaugeMetricFamily("mq_broker_ha_slave_lag_seconds",
                                  "Age of the oldest CommitLog byte a slave has not acknowledged", labels=["slave"])
        for s in slaves:
            lag_b.add_metric([s["addr"]], s["lagBytes"])
            lag_s.add_metric([s["addr"]], s["lagSeconds"])
        yield lag_b
        yield lag_s
        yield self.wait_time.family("mq_broker_ha_sync_wait_seconds",
                                    "Time SYNC_MASTER sends waited for a slave's acknowledgement")
        yield GaugeMetricFamily("mq_broker_ha_sync_waiting", "SYNC_MASTER sends waiting for a slave now",
                                value=len(self.waiters))
