"""``DLedgerGroup``: one broker as a member of a Raft group (RocketMQ's DLedger mode, docs/replication.md).

* Puts: the store (``MessageStore.replicator`` is this object) encodes each send's records at the offsets where
  they will land once committed and hands them here; they become one Raft entry, and the producer is answered
  when a majority has the entry on disk. Every member, the leader included, writes committed entries into its
  CommitLog and queues (``MessageStore.append_committed``): consumers only ever see committed messages.
* ``dledger-<selfId>/applied`` holds the last applied index and the CommitLog end after it, written only once
  the CommitLog is flushed that far; a restart truncates the CommitLog there and re-applies the entries after
  it (they land at the same offsets, byte for byte), so nothing is applied twice or lost.
* Roles, as RocketMQ's DLedgerRoleChangeHandler: a follower (or candidate) is a SLAVE with brokerId
  ``int(selfId[1:]) + 1`` that syncs topics, groups and offsets from its leader; a leader becomes the
  SYNC_MASTER with brokerId 0 once everything in its log is committed and applied. Each change registers with
  every NameServer at once.
* Leadership transfer (DLedger's request code 51005, ``mqadmin transferLeadership``), before a graceful stop,
  and back to ``preferredLeaderId`` when that node is caught up.
"""

from __future__ import annotations

import collections
import json
import os
import random
from typing import Deque, Dict, Optional, Tuple

from twisted.internet import defer, task
from twisted.logger import Logger

from mq.broker.dledger.settings import DLedgerSettings
from mq.broker.dledger.transport import LEADERSHIP_TRANSFER, RaftTransport
from mq.common.configfile import write_atomically
from mq.common.progress import LoggedProgress
from mq.dledger.config import RaftConfig
from mq.dledger.driver import ProposalFailed, RaftDriver
from mq.dledger.log import DEFAULT_CACHE_BYTES, RaftLog
from mq.dledger.messages import AppendRequest, Entry, RoleChange
from mq.dledger.node import CANDIDATE, FOLLOWER, LEADER, RaftNode
from mq.dledger.store import DurableLog, MetaStore
from mq.remoting.codes import ResponseCode
from mq.remoting.command import RemotingCommand
from mq.store.config import BrokerRole, FlushDiskType
from mq.store.mappedfile import DiskFullError
from mq.store.results import PutMessageResult, PutMessageStatus

log = Logger()

APPLIED_FILE = "applied"
#: (applied index, CommitLog end) marks kept while the CommitLog flush catches up; older ones are dropped
#: (a checkpoint that is older than it could be is always safe: more is re-applied at the next start).
MAX_MARKS = 4096
_BUSY = ("PENDING_FULL", "TIMEOUT")
#: Leadership transfer requests that may wait for their outcome at once (each waits 3 s at most).
MAX_TRANSFER_WAITERS = 16
#: Proposals whose dispatch fields a leader keeps for its apply (beyond: they are parsed from the bytes).
MAX_LOCAL = 20_000


def open_driver(reactor, settings: DLedgerSettings, directory: str, send, on_commit, on_role, applied: int,
                config: Optional[RaftConfig] = None, segment_bytes: int = 1 << 30,
                cache_bytes: int = DEFAULT_CACHE_BYTES, flush_each: bool = True,
                flush_interval_ms: int = 500) -> RaftDriver:
    """The Raft driver of this node over its durable log (``<directory>/data``, in files of ``segment_bytes``:
    DLedger's data files are ``mappedFileSizeCommitLog`` long) and vote file; ``cache_bytes`` is
    ``dLegerCacheBytes``; ``flush_each`` is SYNC_FLUSH (an fsync before a write counts toward a majority),
    otherwise the log is fsynced every ``flush_interval_ms`` (``flushIntervalCommitLog``)."""
    store = DurableLog(os.path.join(directory, "data"), segment_bytes)
    raft_log = RaftLog.from_store(store, cache_bytes)  # recovers the store, holding no bodies beyond its cache
    meta = MetaStore(directory)
    now = int(reactor.seconds() * 1000)
    node = RaftNode(settings.self_id, list(settings.peers), config or RaftConfig(), random.Random(), now,
                    meta.load(), raft_log, applied)
    return RaftDriver(reactor, node, store, meta, send, on_commit, on_role, flush_each=flush_each,
                      flush_interval_ms=flush_interval_ms)


def read_applied(directory: str) -> Tuple[int, int]:
    """(applied index, CommitLog end) of the last checkpoint; (0, 0) without one."""
    try:
        with open(os.path.join(directory, APPLIED_FILE), encoding="utf-8") as f:
            data = json.loads(f.read(4096))
        return int(data["index"]), int(data["commitLogEnd"])
    except FileNotFoundError:
        return 0, 0
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{os.path.join(directory, APPLIED_FILE)} is unreadable ({e})") from None


class DLedgerGroup:
    def __init__(self, broker, settings: DLedgerSettings, raft_config: Optional[RaftConfig] = None,
                 signer=None) -> None:
        self.broker = broker
        self.settings = settings
        self.reactor = broker.reactor
        self.store = broker.store
        self.raft_config = raft_config or RaftConfig()
        self.directory = os.path.join(broker.config.store_path_root_dir, f"dledger-{settings.self_id}")
        # ``signer``: the broker's own account signs every Raft message (its peers' ACL checks them)
        self.transport = RaftTransport(self.reactor, settings, self._receive, self._peer_info, signer=signer)
        self.transport.dispatcher.register(LEADERSHIP_TRANSFER, self.process_transfer)
        self.driver: Optional[RaftDriver] = None
        #: A leader whose CommitLog holds everything committed: it takes puts at ``end`` / ``queue_offsets``.
        self.ready = False
        self.end = 0
        self.queue_offsets: Dict[Tuple[str, int], int] = {}
        self.peer_addrs: Dict[str, str] = {}
        self.applied_index = 0
        #: Committed entries handed out by the core and not yet in the CommitLog (a full disk holds them back).
        self._unapplied: Deque[Entry] = collections.deque()
        #: id(record bytes) -> (the bytes, their dispatch fields): this leader's proposals not applied yet
        self._local: Dict[int, Tuple[bytes, tuple]] = {}
        self._waiting_for_room = False
        self.checkpointed = (0, 0)
        self._marks: Deque[Tuple[int, int]] = collections.deque(maxlen=MAX_MARKS)
        self._loops: list = []
        self._ready_poll: Optional[task.LoopingCall] = None
        self._role_waiters: list = []
        self.broken: Optional[str] = None
        # metrics
        self.elections = 0
        self.leader_changes = 0
        self.leaderless_since: Optional[float] = self.reactor.seconds()
        self.leaderless_total = 0.0
        self._leader: Optional[str] = None
        self._leader_config = ""  # the config versions the leader last announced
        #: The commit index in the last AppendRequest received, and the catch-up being logged (with its start).
        self.leader_commit = 0
        self._catching_up: Optional[Tuple[LoggedProgress, int]] = None

    # -- life cycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """After the store recovered: cut the CommitLog back to the checkpoint, open the Raft log and run."""
        os.makedirs(self.directory, exist_ok=True)
        cl = self.store.commitlog
        if not os.path.exists(os.path.join(self.directory, APPLIED_FILE)):
            if cl.max_offset > cl.min_offset:
                raise ValueError("the CommitLog holds messages written outside DLedger mode; start DLedger mode on "
                                 "an empty store")
            self._save_checkpoint((0, 0))  # from now on the CommitLog is this group's, however a start ends
        index, end = read_applied(self.directory)
        if cl.max_offset < end:
            raise ValueError(f"the CommitLog ends at {cl.max_offset}, before {end} where {self.directory}/applied "
                             f"says entry {index} ended: the store lost data it had flushed")
        if cl.max_offset > end:
            log.info("DLedger: CommitLog cut from {hi} to {end}, the end of applied entry {index}; the entries "
                     "after it are applied again", hi=cl.max_offset, end=end, index=index)
            self.store.truncate(end)
        self.applied_index = index
        self.checkpointed = (index, end)
        self.driver = open_driver(self.reactor, self.settings, self.directory, self.transport.send, self._commit,
                                  self._role, index, self.raft_config, self.store.config.mapped_file_size_commit_log,
                                  cache_bytes=self.broker.config.d_leger_cache_bytes,
                                  flush_each=self.store.config.flush_disk_type == FlushDiskType.SYNC_FLUSH,
                                  flush_interval_ms=self.store.config.flush_interval_commit_log)
        self._become_slave()
        self.driver.start()
        self._every(1.0, self._announce)
        self._every(1.0, self.checkpoint)
        self._every(1.0, self.report_catch_up)
        if self.settings.preferred_leader is not None:
            self._every(5.0, self._back_to_preferred)
        self._every(self.store.config.clean_resource_interval / 1000, self.retention)
        log.info("DLedger {id} of group {group}: Raft port {port}, peers {peers}, applied up to {index}",
                 id=self.settings.self_id, group=self.settings.group, port=self.settings.port,
                 peers=";".join(f"{n}-{h}:{p}" for n, (h, p) in self.settings.peers.items()), index=index)

    def _every(self, seconds: float, fn) -> None:
        loop = task.LoopingCall(fn)
        loop.clock = self.reactor
        loop.start(seconds, now=False).addErrback(lambda f: log.failure("DLedger timer {fn}", f, fn=fn))
        self._loops.append(loop)

    @defer.inlineCallbacks
    def hand_over(self, timeout: float = 3.0):
        """A graceful stop: a leader hands leadership to its most caught-up follower first."""
        node = self.driver.node if self.driver is not None else None
        if node is None or node.role != LEADER or not node.others:
            return
        target = max(node.others, key=lambda p: (node.match[p], p))
        log.info("DLedger {id}: stopping, leadership goes to {target} first", id=node.id, target=target)
        code, remark = yield self.transfer(target, timeout)
        if code != ResponseCode.SUCCESS:
            log.warn("DLedger: handing leadership over before stopping failed: {remark}", remark=remark)

    def stop(self) -> Tuple[int, int]:
        """Stop taking part; returns the (applied index, CommitLog end) to write once the store is flushed."""
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops = []
        if self._ready_poll is not None and self._ready_poll.running:
            self._ready_poll.stop()
        self.ready = False
        if self.driver is not None:
            self.driver.stop()
        return self.applied_index, self.store.commitlog.max_offset

    @defer.inlineCallbacks
    def close(self, timeout: float = 5.0):
        """Close the Raft log's files once no write of the driver runs in the worker thread any more (a closed
        descriptor's number could otherwise be reused under that write)."""
        if self.driver is None:
            return
        deadline = self.reactor.seconds() + timeout
        while self.driver._syncing and self.reactor.seconds() < deadline:
            yield task.deferLater(self.reactor, 0.01, lambda: None)
        if self.driver._syncing:
            log.warn("DLedger: a Raft log write still runs after {t} s; its files stay open", t=timeout)
            return
        try:
            self.driver.store.sync()  # ASYNC_FLUSH leaves the last writes to this flush
        except OSError as e:
            log.error("DLedger: the Raft log's last fsync failed: {e}", e=e)
        self.driver.store.close()

    def write_checkpoint(self, mark: Tuple[int, int]) -> None:
        if mark != self.checkpointed and mark[0] >= self.checkpointed[0]:
            self._save_checkpoint(mark)

    def _save_checkpoint(self, mark: Tuple[int, int]) -> None:
        write_atomically(os.path.join(self.directory, APPLIED_FILE),
                         json.dumps({"index": mark[0], "commitLogEnd": mark[1]}) + "\n")
        self.checkpointed = mark

    def checkpoint(self) -> None:
        """Save the newest (applied index, CommitLog end) the CommitLog flush has reached, and ask for a flush;
        apply again what a full disk held back."""
        if self._unapplied:
            self._apply()
        flushed = self.store.commitlog.flushed
        best = None
        while self._marks and self._marks[0][1] <= flushed:
            best = self._marks.popleft()
        if best is not None:
            try:
                self.write_checkpoint(best)
            except OSError as e:
                log.warn("DLedger: saving the applied checkpoint failed (tried again in a second): {e}", e=e)
                self._marks.appendleft(best)
        if self._marks:
            self.store.flusher.request_commitlog()

    def retention(self) -> Optional[int]:
        """The Raft log's retention on the store's schedule and keys: at ``deleteWhen`` (or with the disk over
        ``diskMaxUsedSpaceRatio``) segments older than ``fileReservedTime`` + 1 h (DLedger's fileReservedHours),
        any age over ``diskSpaceCleanForciblyRatio``; never entries beyond the applied checkpoint (a restart needs
        them) nor, on a leader and short of a full disk, entries a follower lacks (it could not catch up)."""
        store, driver = self.store, self.driver
        if driver is None or self.broken is not None or not store.running:
            return None
        cfg = store.config
        percent = store.space.refresh() * 100
        forcibly = percent > cfg.disk_space_clean_forcibly_ratio
        if not (forcibly or percent > cfg.disk_max_used_space_ratio or store.retention._is_delete_hour(store.now_ms())):
            return None
        node = driver.node
        upto = self.checkpointed[0]
        if node.role == LEADER and not forcibly:
            upto = min([upto] + [node.match[p] for p in node.others])
        base = driver.delete_expired(None if forcibly else (cfg.file_reserved_time + 1) * 3_600_000, upto)
        if base is not None:
            log.info("DLedger {id}: Raft log segments up to entry {base} deleted ({why})", id=node.id, base=base,
                     why="disk full" if forcibly else "expired")
        return base

    # -- Raft in and out ---------------------------------------------------------------------------

    def _receive(self, msg) -> None:
        if self.driver is not None:
            if isinstance(msg, AppendRequest) and msg.term >= self.driver.node.term:
                self.leader_commit = msg.commit
            self.driver.receive(msg)

    def report_catch_up(self) -> None:
        """A follower further behind its leader's commit index than a leader may hold uncommitted
        (``max_pending`` entries: a new, restarted or long-cut-off node) logs how far it got every LOG_EVERY
        seconds, as HA slaves do, and one line once it is back within that."""
        node = self.driver.node if self.driver is not None else None
        if node is None or node.role != FOLLOWER or node.leader is None:
            return  # an election: the catch-up (if any) goes on under the next leader
        far = self.leader_commit - self.applied_index > node.config.max_pending
        if self._catching_up is None:
            if not far:
                return
            what = f"DLedger {node.id}: catching up with leader {node.leader}"
            self._catching_up = (LoggedProgress(what, clock=self.reactor.seconds, unit="entries"), self.applied_index)
        progress, began = self._catching_up
        progress.update(self.applied_index - began, self.leader_commit - began)
        if not far:
            progress.finish()
            self._catching_up = None

    def _peer_info(self, node: str, addr: str, config_version: str = "") -> None:
        if self.peer_addrs.get(node) != addr:
            self.peer_addrs[node] = addr
            self._follow()
        if node == self._leader and not self.ready and config_version != self._leader_config:
            # The leader's topics, groups or offsets changed: copy them now rather than at the next
            # slaveSyncInterval, so a failover soon after loses (or delivers again) less. At most one copy
            # runs at a time and the announcement comes every second: offsets that change all the time are
            # copied about once a second.
            sync = self.broker.slave_sync
            if sync is not None and self.broker.master_addr == addr and sync._running is None:
                self._leader_config = config_version
                sync.sync_all()

    def _announce(self) -> None:
        """Every second: this node's broker address, and the versions of its tables (topics, subscription groups,
        and the change counts of consumer and delay offsets), so a follower copies what changed on its leader
        within about a second rather than at the next ``slaveSyncInterval``."""
        b = self.broker
        versions = (b.topic_config_manager.data_version, b.subscription_group_manager.data_version)
        text = " ".join(f"{v.timestamp}.{v.counter}" for v in versions)
        if self.ready:  # offsets move on the master only (a follower's own copies change them too)
            offsets = b.consumer_offset_manager.changes
            schedule = getattr(b, "schedule_service", None)
            text += f" {offsets}.{getattr(schedule, 'changes', 0)}"
        self.transport.announce(b.config.broker_addr, text)

    def _commit(self, entries) -> None:
        """Committed entries (also on this node's disk) into the CommitLog and queues, in order."""
        self._unapplied.extend(entries)
        self._apply()

    def _apply(self) -> None:
        """Apply the committed entries not applied yet, in order. A full disk that stops a record from being
        written leaves it and the rest for the next try (every second); one that stops only its queue entries
        leaves those to the next record's dispatch."""
        if self.broken is not None:
            return
        store = self.store
        cl = store.commitlog
        applied = False
        written = False  # records written and not dispatched yet: one dispatch for the batch, at the end
        local_fields = self._local
        while self._unapplied:
            e = self._unapplied[0]
            body = e.body
            if body:
                end = cl.max_offset
                local = local_fields.pop(id(body), None) if local_fields else None
                try:
                    if local is not None and local[0] is body:  # proposed here: its fields are at hand
                        self._dispatch(written)  # earlier records first: queue entries go in CommitLog order
                        written = not store.append_committed_local(body, local[1])
                    else:
                        store.append_committed(body, dispatch=False)
                        written = True
                except DiskFullError as err:
                    if cl.max_offset == end:
                        if local is not None:
                            local_fields[id(body)] = local  # tried again with it
                        if not self._waiting_for_room:
                            log.error("DLedger: entry {index} waits for disk space: {err}", index=e.index, err=err)
                        self._waiting_for_room = True
                        break
                    written = True  # its queue entries come with the next dispatch
                    log.error("DLedger: writing entry {index} stopped: {err}", index=e.index, err=err)
                except Exception as err:  # noqa: BLE001 - a node that cannot apply must stop applying
                    self._dispatch(written)
                    self.broken = f"applying entry {e.index} failed: {err}"
                    log.critical("DLedger {id}: {why}; this node applies nothing more", id=self.settings.self_id,
                                 why=self.broken)
                    return
            self._unapplied.popleft()
            self._waiting_for_room = False
            self.applied_index = e.index
            applied = True
        self._dispatch(written)
        if applied:
            self._marks.append((self.applied_index, cl.max_offset))

    def _dispatch(self, written: bool) -> None:
        """Queue and index entries for the records just written (a full disk stops them at a record; the next
        dispatch takes up from there)."""
        if written:
            try:
                self.store.dispatch_appended(check_crc=False)  # the Raft entries' body CRCs covered these bytes
            except DiskFullError as err:
                log.error("DLedger: dispatching up to entry {index} stopped: {err}", index=self.applied_index, err=err)

    def _role(self, change: RoleChange) -> None:
        now = self.reactor.seconds()
        if change.role == CANDIDATE:
            self.elections += 1
        if change.leader != self._leader:
            if change.leader is not None:
                self.leader_changes += 1
                if self.leaderless_since is not None:
                    self.leaderless_total += now - self.leaderless_since
                    log.info("DLedger group {group}: {leader} leads term {term} after {s:.2f} s without a leader",
                             group=self.settings.group, leader=change.leader, term=change.term,
                             s=now - self.leaderless_since)
                    self.leaderless_since = None
            elif self.leaderless_since is None:
                self.leaderless_since = now
            self._leader = change.leader
        for d in self._role_waiters[:]:
            if change.role != LEADER:
                self._role_waiters.remove(d)
                d.callback(change)
        if change.role == LEADER:
            self._await_ready()
        else:
            if self._ready_poll is not None and self._ready_poll.running:
                self._ready_poll.stop()
            self._become_slave()
            self._follow()

    def _await_ready(self) -> None:
        """RocketMQ's rule: a new leader serves once everything in its log is committed and applied."""
        def poll() -> None:
            node = self.driver.node
            if node.role != LEADER:
                self._ready_poll.stop()
            elif (node.applied == node.log.last_index and node.commit == node.applied and not self._unapplied
                  and self.broken is None):
                self._ready_poll.stop()
                self._become_master()

        self._ready_poll = task.LoopingCall(poll)
        self._ready_poll.clock = self.reactor
        self._ready_poll.start(0.01, now=True)

    def _become_master(self) -> None:
        cl = self.store.commitlog
        self.end = cl.max_offset
        self.queue_offsets = dict(self.store.queue_offsets)
        self._set_role(0, BrokerRole.SYNC_MASTER)
        self.broker.master_addr = None
        self.ready = True
        if self.broker.slave_sync is not None:
            self.broker.slave_sync.stop()
        log.info("DLedger {id}: master of {name} (term {term}), CommitLog end {end}", id=self.settings.self_id,
                 name=self.broker.config.broker_name, term=self.driver.node.term, end=self.end)
        # The whole topic table first: a service creating its system topic registers that topic alone, which
        # the NameServer, seeing a first id-0 registration, would take as the whole table.
        self._register()
        self._master_services(True)

    def _become_slave(self) -> None:
        self.ready = False
        self._local.clear()  # what this node proposed is applied, if ever, from the bytes alone
        sync = self.broker.slave_sync
        if sync is not None and not (sync._loop is not None and sync._loop.running):
            sync.start()
        config = self.broker.config
        if config.broker_role is not BrokerRole.SLAVE or config.broker_id != self.settings.slave_id:
            self._set_role(self.settings.slave_id, BrokerRole.SLAVE)
            self._master_services(False)
            self._register()

    def _master_services(self, run: bool) -> None:
        """What RocketMQ's changeToMaster starts and changeToSlave stops: delay-level delivery, timer messages
        and the transaction check (each reloads its progress, which the slave sync kept current, when it
        starts)."""
        b = self.broker
        schedule, timer, transaction = b.schedule_service, b.timer_service, b.transaction_service
        if run:
            if schedule._loop is None or not schedule._loop.running:
                schedule.stop()  # saves the offsets the slave sync decoded, which start() loads back
                schedule.start()
            if not timer.running:
                timer.start()
            if transaction._loop is None:
                transaction.start()
        else:
            schedule.stop()
            timer.stop()
            transaction.stop()

    def _set_role(self, broker_id: int, role: BrokerRole) -> None:
        config = self.broker.config
        config.broker_id = broker_id
        config.broker_role = role
        self.store.config.broker_role = role

    def _follow(self) -> None:
        """A follower's master, for the slave sync: the broker address its leader announced."""
        if not self.ready and self._leader is not None:
            self.broker.master_addr = self.peer_addrs.get(self._leader)

    def _register(self) -> None:
        if self.broker.running:
            self.broker.register_broker_all()

    # -- the store's put path (mq.store.store.Replicator) ------------------------------------------

    def refusal(self) -> Optional[PutMessageResult]:
        node = self.driver.node if self.driver is not None else None
        if node is None or not self.ready or node.role != LEADER:
            return PutMessageResult(PutMessageStatus.SERVICE_NOT_AVAILABLE, reason="not the DLedger leader")
        if node.transferring:
            return PutMessageResult(PutMessageStatus.SERVICE_NOT_AVAILABLE, reason="handing leadership over")
        if node.log.last_index - node.commit + self.driver.queued >= node.config.max_pending:
            return PutMessageResult(PutMessageStatus.OS_PAGECACHE_BUSY, reason="too many entries waiting for a quorum")
        return None

    def propose(self, data: bytes, result, local: Optional[tuple] = None) -> defer.Deferred:
        """``local``: the record's dispatch fields, kept (by the identity of ``data``, which becomes the entry's
        body) until it is applied here, so the leader dispatches it without parsing it again."""
        if local is not None and len(self._local) < MAX_LOCAL:
            self._local[id(data)] = (data, local)
        return self.driver.propose([data]).addCallbacks(
            lambda _index: PutMessageResult(PutMessageStatus.PUT_OK, result), self._failed, errbackArgs=(data,))

    def _failed(self, failure, data: bytes) -> PutMessageResult:
        self._local.pop(id(data), None)  # not committed (it may be later: then parsed, as any other entry)
        return _proposal_failed(failure)

    # -- leadership transfer -----------------------------------------------------------------------

    def transfer(self, target: str, timeout: float = 3.0) -> defer.Deferred:
        """Hand leadership to ``target``: fires with (response code, remark) once this node no longer leads, or
        when that did not happen within ``timeout`` seconds."""
        node = self.driver.node if self.driver is not None else None
        if node is None or node.role != LEADER:
            leader = node.leader if node is not None else None
            return defer.succeed((ResponseCode.SYSTEM_ERROR, f"{self.settings.self_id} is not the leader"
                                  + (f"; {leader} is" if leader else "")))
        if target == node.id:
            return defer.succeed((ResponseCode.SUCCESS, f"{target} already leads"))
        if len(self._role_waiters) >= MAX_TRANSFER_WAITERS:
            return defer.succeed((ResponseCode.SYSTEM_ERROR, "too many leadership transfer requests waiting"))
        error = self.driver.transfer_leadership(target)
        if error is not None:
            return defer.succeed((ResponseCode.SYSTEM_ERROR, f"cannot hand leadership to {target!r}: {error} "
                                  f"(peers {', '.join(self.settings.peers)})"))
        d: defer.Deferred = defer.Deferred()
        self._role_waiters.append(d)

        def expired() -> None:
            if d in self._role_waiters:
                self._role_waiters.remove(d)
                d.callback(None)

        timer = self.reactor.callLater(timeout, expired)

        def done(change):
            if timer.active():
                timer.cancel()
            if change is None:
                return ResponseCode.SYSTEM_ERROR, f"{target} did not take leadership within {timeout:g} s"
            return ResponseCode.SUCCESS, f"leadership handed from {node.id} to {target} (term {change.term})"

        return d.addCallback(done)

    def process_transfer(self, request: RemotingCommand, channel) -> defer.Deferred:
        """LEADERSHIP_TRANSFER (51005): ``transfereeId`` in the ext fields or a DLedger-style JSON body."""
        target = (request.ext_fields or {}).get("transfereeId")
        if target is None and request.body:
            try:
                target = json.loads(request.body[:4096]).get("transfereeId")
            except (ValueError, AttributeError):
                target = None
        if not isinstance(target, str) or not target:
            return defer.succeed(request.response(ResponseCode.SYSTEM_ERROR, "transfereeId is missing"))
        return self.transfer(target).addCallback(lambda r: request.response(r[0], r[1]))

    def _back_to_preferred(self) -> None:
        node = self.driver.node
        preferred = self.settings.preferred_leader
        if (node.role == LEADER and self.ready and preferred != node.id and not node.transferring
                and node.match.get(preferred, 0) >= node.commit
                and self.reactor.seconds() * 1000 - node.contact.get(preferred, 0) < self.raft_config.election_min_ms):
            log.info("DLedger {id}: {preferred} is caught up; leadership moves back to it", id=node.id,
                     preferred=preferred)
            self.transfer(preferred)


def _proposal_failed(failure) -> PutMessageResult:
    failure.trap(ProposalFailed)
    reason = failure.value.reason
    if reason in _BUSY:
        return PutMessageResult(PutMessageStatus.OS_PAGECACHE_BUSY,
                                reason=f"DLedger: {reason.lower().replace('_', ' ')} waiting for a quorum")
    return PutMessageResult(PutMessageStatus.SERVICE_NOT_AVAILABLE, reason=f"DLedger: {reason.lower()}")
