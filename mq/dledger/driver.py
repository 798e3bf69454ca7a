"""``RaftDriver``: runs a ``RaftNode`` on a reactor with its durable log, vote store and a send function.

It keeps the core's contract (docs/dledger.md): term and vote are saved before the messages of the same step
leave (synchronously: an fsync on the reactor thread, once per election, not per message); persist operations
go to the log in a worker, one batch at a time (group commit: what arrives meanwhile waits for the next
batch), and ``persisted`` follows each fsync; ticks run by ``callLater`` at the core's next deadline.
``propose`` returns a Deferred that fires with the entry's index once it is committed in the term it was
proposed in, and fails with ``ProposalFailed`` if it is refused, lost in a leader change, or not committed
within ``wait_ack_ms`` (DLedger's ``maxWaitAckTimeMs``, 2.5 s; RocketMQ answers that with OS_PAGECACHE_BUSY).

Proposals made in one reactor turn go to the core together at the end of the turn (group commit): one
AppendRequest per follower and one fsync carry all of them, rather than one round trip each. A node that
does not lead (or is handing leadership over) refuses at once.

With ``flush_each`` off (the broker's ASYNC_FLUSH, as DLedger itself acknowledges once a majority has
written an entry), ``persisted`` follows each write and an fsync runs every ``flush_interval_ms`` and on
``close``: an acknowledged entry then survives any process crash, and a host crash of a majority within the
interval only, like a single master's ASYNC_FLUSH. SYNC_FLUSH keeps one fsync before every ``persisted``.
Under ASYNC_FLUSH the write itself (page cache, one ``pwrite`` per batch) runs on the reactor thread, before
the step's messages leave, and the core's answer to it goes out with them: a follower answers an AppendRequest
once, already counting its write, and no thread hand-off is paid per round (it cost more CPU than the write);
only the fsync (and a retention deletion) runs in the worker, and never beside an inline write.

A proposal's wait for its quorum is bounded by one timer for all waiting proposals (their deadlines are in
index order), not a timer each.

A full disk is not fatal: a write that finds no room is undone to the last whole entry (``DurableLog.append``),
the operations not yet written wait, proposals fail ``DISK_FULL`` (RocketMQ's SERVICE_NOT_AVAILABLE) and the
write is retried every ``disk_retry_ms`` until it fits; nothing unwritten is reported ``persisted``, so nothing
counts toward a majority before it is on disk. Any other write or fsync failure stops the driver.
"""

from __future__ import annotations

import collections
import time
from typing import Callable, Deque, Dict, List, Optional, Sequence, Tuple

from twisted.internet import defer, threads
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from mq.dledger.messages import Append, AppendResponse, Entry, HardState, Message, Output, Proposed, RoleChange
from mq.dledger.node import LEADER, RaftNode
from mq.dledger.store import Compact, DurableLog, MetaStore
from mq.store.mappedfile import NO_SPACE, DiskFullError

log = Logger()


class ProposalFailed(Exception):
    """``reason``: NOT_LEADER, TRANSFERRING, PENDING_FULL, TOO_LARGE, EMPTY, DISK_FULL, LOST or TIMEOUT."""

    def __init__(self, reason: str, leader: Optional[str] = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.leader = leader


def _in_thread(reactor, fn: Callable[[], object]) -> defer.Deferred:
    return threads.deferToThreadPool(reactor, reactor.getThreadPool(), fn)


class RaftDriver:
    def __init__(
        self,
        reactor: IReactorTime,
        node: RaftNode,
        store: DurableLog,
        meta: MetaStore,
        send: Callable[[Message], None],
        on_commit: Callable[[List[Entry]], None] = lambda entries: None,
        on_role: Callable[[RoleChange], None] = lambda change: None,
        wait_ack_ms: int = 2_500,
        run_blocking: Optional[Callable[[Callable[[], object]], defer.Deferred]] = None,
        disk_retry_ms: int = 1_000,
        flush_each: bool = True,
        flush_interval_ms: int = 500,
    ) -> None:
        self.reactor = reactor
        self.node = node
        self.store = store
        self.meta = meta
        self.send = send
        self.on_commit = on_commit
        self.on_role = on_role
        self.wait_ack_ms = wait_ack_ms
        self.run_blocking = run_blocking or (lambda fn: _in_thread(reactor, fn))
        self._ops: list = []
        self._syncing = False
        self._timer: Optional[IDelayedCall] = None
        #: proposals waiting for their commit: last index -> (term, Deferred); their deadlines in index order
        self._pending: Dict[int, Tuple[int, defer.Deferred]] = {}
        self._deadlines: Deque[Tuple[float, int]] = collections.deque()
        self._expiry: Optional[IDelayedCall] = None
        self._queued: List[Tuple[Sequence[bytes], defer.Deferred]] = []
        self._queued_count = 0
        self._flush_call: Optional[IDelayedCall] = None
        self._stopped = False
        self.disk_retry_ms = disk_retry_ms
        self.disk_full = False
        self._retry: Optional[IDelayedCall] = None
        self._unsaved: Optional[HardState] = None  # term and vote not yet on disk
        self._meta_full = False
        self.flush_each = flush_each
        self.flush_interval_ms = flush_interval_ms
        self._fsync_due = False
        self._fsync_timer: Optional[IDelayedCall] = None

    def now(self) -> int:
        return int(self.reactor.seconds() * 1000)

    def start(self) -> None:
        self._schedule()
        if not self.flush_each:
            self._fsync_timer = self.reactor.callLater(self.flush_interval_ms / 1000, self._fsync_tick)

    def _fsync_tick(self) -> None:
        """ASYNC_FLUSH: the written log is fsynced by the next write round, or by one of its own when idle."""
        self._fsync_timer = self.reactor.callLater(self.flush_interval_ms / 1000, self._fsync_tick)
        if self.store.dirty:
            self._fsync_due = True
            self._sync()

    def stop(self) -> None:
        self._stopped = True
        for timer in (self._timer, self._retry, self._flush_call, self._fsync_timer, self._expiry):
            if timer is not None and timer.active():
                timer.cancel()
        queued, self._queued = self._queued, []
        for _bodies, d in queued:
            d.errback(ProposalFailed("NOT_LEADER"))
        pending, self._pending = self._pending, {}
        self._deadlines.clear()
        for _term, d in pending.values():
            d.errback(ProposalFailed("NOT_LEADER"))

    # -- inputs ------------------------------------------------------------------------------------------

    def receive(self, msg: Message) -> None:
        if not self._stopped:
            self._handle(self.node.step(msg, self.now()))

    def propose(self, bodies: Sequence[bytes]) -> defer.Deferred:
        """Fires with the last entry's index once all of ``bodies`` are committed."""
        if self.disk_full:
            return defer.fail(ProposalFailed("DISK_FULL", self.node.leader))
        d: defer.Deferred = defer.Deferred()
        node = self.node
        if (self._stopped or node.role != LEADER or node.transferring or not bodies
                or node.log.last_index - node.commit + self._queued_count + len(bodies) > node.config.max_pending):
            self._propose_now([(bodies, d)])  # the core's own refusal, at once
            return d
        self._queued.append((bodies, d))
        self._queued_count += len(bodies)
        if self._flush_call is None:
            self._flush_call = self.reactor.callLater(0, self._flush_proposals)
        return d

    @property
    def queued(self) -> int:
        """Bodies proposed in this reactor turn, not yet handed to the core."""
        return self._queued_count

    def _flush_proposals(self) -> None:
        self._flush_call = None
        queued, self._queued, self._queued_count = self._queued, [], 0
        if queued:
            self._propose_now(queued)

    def _propose_now(self, groups: List[Tuple[Sequence[bytes], defer.Deferred]]) -> None:
        """One proposal of every group's bodies; each group's Deferred fires with its last index. The wait for a
        quorum is bounded by one timer for all of them (``_expire``), not one per proposal."""
        result, out = self.node.propose([b for bodies, _ in groups for b in bodies], self.now())
        if not isinstance(result, Proposed):
            self._handle(out)
            for _bodies, d in groups:
                d.errback(ProposalFailed(result.reason, result.leader))
            return
        last = result.first - 1
        deadline = self.reactor.seconds() + self.wait_ack_ms / 1000
        for bodies, d in groups:
            last += len(bodies)
            self._pending[last] = (result.term, d)
            self._deadlines.append((deadline, last))
        if self._expiry is None:
            self._expiry = self.reactor.callLater(self.wait_ack_ms / 1000, self._expire)
        self._handle(out)

    def transfer_leadership(self, target: str) -> Optional[str]:
        error, out = self.node.transfer_leadership(target, self.now())
        self._handle(out)
        return error

    def delete_expired(self, reserved_ms: Optional[int], upto: Optional[int] = None) -> Optional[int]:
        """Retention (DLedger's ``fileReservedHours``): delete the whole segments of applied entries (and at
        most ``upto``, e.g. what the broker has flushed) last written more than ``reserved_ms`` ago (None: any
        age, for a disk over ``diskSpaceRatioToForceClean``). The core forgets them at once; the files go in the
        writer thread. Returns the new base index, or None."""
        applied = self.node.applied if upto is None else min(upto, self.node.applied)
        before = None if reserved_ms is None else time.time() - reserved_ms / 1000  # file times: wall clock
        base = self.store.compactable(applied, before)
        if base is None or self._stopped:
            return None
        self.node.log.compact(base)
        self._ops.insert(0, Compact(base))  # before writes a full disk holds back: it makes room for them
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
            self._retry = None
        self._sync()
        return base

    # -- outputs -----------------------------------------------------------------------------------------

    def _handle(self, out: Output) -> None:
        if out.hard_state is not None:
            self._unsaved = out.hard_state
        messages = out.messages
        if self._unsaved is not None and not self._save_hard_state():
            messages = []  # nothing leaves while the disk lags the term or vote in memory (lost, as on a network)
        for change in out.roles:
            log.info("DLedger {id}: {role} in term {term}, leader {leader}", id=self.node.id, role=change.role,
                     term=change.term, leader=change.leader)
            self.on_role(change)
        later: Optional[Output] = None
        if out.persist:
            self._ops.extend(out.persist)
            if self._inline():
                # ASYNC_FLUSH: written here, and what the write lets the core do leaves with this step's messages
                # (a follower's two answers to one AppendRequest, before and after its write, become one)
                later = self._write_inline()
                if later is not None and messages:
                    messages = _coalesce(messages + later.messages)
                    later.messages = []
            else:
                self._sync()
        for msg in messages:
            self.send(msg)
        if out.committed:
            self._committed(out.committed)
        if later:
            self._handle(later)
        else:
            self._schedule()

    def _committed(self, entries: List[Entry]) -> None:
        self.on_commit(entries)
        pending = self._pending
        if not pending:
            return
        for e in entries:
            waiting = pending.pop(e.index, None)
            if waiting is not None:
                term, d = waiting
                if term == e.term:
                    d.callback(e.index)
                else:
                    d.errback(ProposalFailed("LOST"))
        deadlines = self._deadlines
        while deadlines and deadlines[0][1] not in pending:
            deadlines.popleft()

    def _save_hard_state(self) -> bool:
        """Term and vote durable before any message of the step leaves; on a full disk the step's messages are
        dropped and the save is tried again at the next step (ticks come at least every heartbeat)."""
        try:
            self.meta.save(self._unsaved)
        except OSError as e:
            if e.errno not in NO_SPACE:
                raise
            if not self._meta_full:
                self._meta_full = True
                log.error("DLedger {id}: no space to save term and vote; sending nothing until it fits", id=self.node.id)
            return False
        self._unsaved = None
        if self._meta_full:
            self._meta_full = False
            log.info("DLedger {id}: term and vote saved again", id=self.node.id)
        return True

    def _inline(self) -> bool:
        """Whether the operations waiting may be written on this thread now: under ASYNC_FLUSH a write goes to
        the page cache and takes microseconds, less than handing it to a thread and back; only fsyncs (and a
        retention deletion, which fsyncs its base record) go to the worker. Never beside a worker's write."""
        return (not self.flush_each and not self._syncing and not self._fsync_due and not self._stopped
                and not (self._retry is not None and self._retry.active())
                and not any(type(op) is Compact for op in self._ops))

    def _write_inline(self) -> Optional[Output]:
        """Write the waiting operations now; the core's output for them having been written, or None."""
        ops, self._ops = self._ops, []
        try:
            self._write(ops, False)
        except Exception:  # noqa: BLE001 - the worker's failure path, from this thread
            self._write_failed(Failure(), ops)
            return None
        mark = self.store.written()
        self._disk_free()
        if mark is None or self._stopped:
            return None
        return self.node.persisted(mark[0], mark[1], self.now())

    def _write(self, ops: list, fsync: bool) -> Optional[Tuple[int, int]]:
        """Apply ``ops`` in order (run in the worker, or inline); on a full disk ``ops`` keeps what is unwritten."""
        while ops:
            op = ops[0]
            try:
                self.store.apply((op,))
            except DiskFullError:
                if isinstance(op, Append):  # the entries written stay; the rest waits
                    ops[0] = Append(tuple(e for e in op.entries if e.index > self.store.last_index))
                raise
            del ops[0]
        return self.store.sync() if fsync else self.store.written()

    def _disk_free(self) -> None:
        if self.disk_full:
            self.disk_full = False
            log.info("DLedger {id}: the log is written again after a full disk", id=self.node.id)

    def _write_failed(self, f: Failure, ops: list) -> None:
        if f.check(DiskFullError) and not self._stopped:
            self._ops[:0] = ops  # unwritten, in order, before anything that came meanwhile
            if not self.disk_full:
                self.disk_full = True
                log.error("DLedger {id}: {err}; proposals are refused (DISK_FULL) and the write retried every "
                          "{ms} ms", id=self.node.id, err=f.getErrorMessage(), ms=self.disk_retry_ms)
            self._retry = self.reactor.callLater(self.disk_retry_ms / 1000, self._retry_sync)
            return
        log.failure("DLedger {id}: writing the log failed; nothing more is acknowledged", f, id=self.node.id)
        self._stopped = True

    def _sync(self) -> None:
        if (self._syncing or not (self._ops or self._fsync_due) or self._stopped
                or (self._retry is not None and self._retry.active())):
            return  # a write in flight takes what arrives next; a full disk waits for its retry
        if self._inline():
            out = self._write_inline()
            if out is not None:
                self._handle(out)
            return
        ops, self._ops = self._ops, []
        fsync = self.flush_each or self._fsync_due
        self._fsync_due = False
        self._syncing = True

        def done(mark):
            self._syncing = False
            self._disk_free()
            if mark is not None and not self._stopped:
                self._handle(self.node.persisted(mark[0], mark[1], self.now()))
            self._sync()

        def failed(f):
            self._syncing = False
            self._write_failed(f, ops)

        self.run_blocking(lambda: self._write(ops, fsync)).addCallbacks(done, failed)

    def _retry_sync(self) -> None:
        self._retry = None
        self._sync()

    def _schedule(self) -> None:
        if self._stopped:
            return
        delay = max(0, self.node.next_deadline() - self.now()) / 1000
        if self._timer is not None and self._timer.active():
            self._timer.reset(delay)
        else:
            self._timer = self.reactor.callLater(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._handle(self.node.tick(self.now()))

    def _expire(self) -> None:
        """Fail the proposals whose wait for a quorum is over (``wait_ack_ms``); wake again for the next."""
        self._expiry = None
        now = self.reactor.seconds()
        deadlines, pending = self._deadlines, self._pending
        while deadlines and (deadlines[0][0] <= now or deadlines[0][1] not in pending):
            waiting = pending.pop(deadlines.popleft()[1], None)
            if waiting is not None:
                waiting[1].errback(ProposalFailed("TIMEOUT"))
        if deadlines and not self._stopped:
            self._expiry = self.reactor.callLater(max(0.0, deadlines[0][0] - now), self._expire)


def _coalesce(messages: List[Message]) -> List[Message]:
    """Drop a successful AppendResponse that a later one to the same node in the same term covers (its ``last``
    and ``durable`` at least as high): the leader takes the maximum of both anyway."""
    latest: Dict[str, int] = {}
    drop = set()
    for k, m in enumerate(messages):
        if type(m) is AppendResponse and m.success:
            j = latest.get(m.dst)
            if j is not None:
                p = messages[j]
                if p.term == m.term and p.last <= m.last and p.durable <= m.durable:
                    drop.add(j)
            latest[m.dst] = k
    return [m for k, m in enumerate(messages) if k not in drop] if drop else messages
