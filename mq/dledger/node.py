"""The Raft core as a pure state machine: ``step`` (a message), ``tick`` (the clock), ``propose``,
``persisted`` (an fsync barrier passed) and ``transfer_leadership``; each returns an ``Output`` (messages,
persist operations, committed entries, role changes) and changes nothing outside this object.

Time is a monotonic reading in ms passed into every call; randomness is a ``random.Random`` passed in, so a
seed replays a run exactly. Beyond the Raft paper it has:

* pre-vote: a node that lost its leader first asks whether it could win; nodes that heard from a leader within
  the shortest election timeout say no and do not move their term, so a rejoining partitioned node does not
  depose a healthy leader;
* check-quorum: a leader that has not heard from a majority for the shortest election timeout steps down, so a
  partitioned old leader stops taking proposals (it could never commit them anyway);
* durable counting: an entry counts toward a majority on a node only once that node reported it fsynced
  (``persisted``); followers acknowledge ``durable`` separately from what merely matches;
* leadership transfer: the leader stops taking proposals, brings the target up to date and tells it to
  campaign at once (``TimeoutNow``); the target's votes carry ``transfer`` so the lease does not refuse them.

Committed entries are handed out only up to this node's own durable index, so what an application applied is
always on its own disk too.
"""

from __future__ import annotations

import random
from typing import Dict, Optional, Sequence, Set, Tuple, Union

from mq.dledger.config import RaftConfig
from mq.dledger.log import MemoryLog, RaftLog
from mq.dledger.messages import (
    Append,
    AppendRequest,
    AppendResponse,
    Entry,
    HardState,
    Message,
    Output,
    Proposed,
    Refused,
    RoleChange,
    TimeoutNow,
    Truncate,
    VoteRequest,
    VoteResponse,
)

FOLLOWER = "FOLLOWER"
PRE_CANDIDATE = "PRE_CANDIDATE"
CANDIDATE = "CANDIDATE"
LEADER = "LEADER"


class RaftNode:
    def __init__(
        self,
        node_id: str,
        peers: Sequence[str],
        config: RaftConfig,
        rng: random.Random,
        now: int,
        hard_state: Optional[HardState] = None,
        log: Optional[RaftLog] = None,
        applied: int = 0,
    ) -> None:
        """``peers`` lists every member, this node included; ``log`` holds what is durable (a recovered
        store: ``RaftLog.from_store``); ``applied`` is how far the application already applied (it is
        committed, hence the start)."""
        if len(set(peers)) != len(peers) or node_id not in peers:
            raise ValueError(f"peers {list(peers)!r} must be distinct and include {node_id!r}")
        self.id = node_id
        self.others: Tuple[str, ...] = tuple(p for p in peers if p != node_id)
        self.quorum = len(peers) // 2 + 1
        self.config = config
        self.rng = rng
        hs = hard_state or HardState(0, None)
        self.term = hs.term
        self.voted_for = hs.voted_for
        self.log = log if log is not None else MemoryLog()
        self.durable = self.log.last_index
        # below the log's base everything was applied before retention deleted it
        self.commit = self.applied = max(self.log.base_index, min(applied, self.durable))
        self.log.release(self.applied)
        self.role = FOLLOWER
        self.leader: Optional[str] = None
        self.leader_heard: Optional[int] = None  # when the current leader was last heard from
        self.verified = 0  # this log matches the current leader's up to here
        self.votes: Set[str] = set()
        # leader state, per peer
        self.next: Dict[str, int] = {}
        self.acked: Dict[str, int] = {}
        self.match: Dict[str, int] = {}
        self.probing: Dict[str, bool] = {}
        #: peers that need entries this leader's retention deleted: they get heartbeats at the base only,
        #: until something outside the core (the broker's resync) starts their log at or after the base
        self.behind: Set[str] = set()
        self.contact: Dict[str, int] = {}
        self.heartbeat_due = 0
        self.transfer_target: Optional[str] = None
        self.transfer_deadline = 0
        self._out = Output()
        self._reported = RoleChange(FOLLOWER, self.term, None)
        self._reset_election_timer(now)

    # -- public calls ------------------------------------------------------------------------------------

    def step(self, msg: Message, now: int) -> Output:
        """Take one message from a peer."""
        if msg.dst == self.id and msg.src in self.others and msg.term >= 0:
            self._step(msg, now)
        return self._take()

    def tick(self, now: int) -> Output:
        """Let the clock act: committed entries still to hand out, heartbeats, check-quorum, transfer timeout,
        election timeout."""
        self._hand_out()
        if self.role == LEADER:
            if self.transfer_target is not None and now >= self.transfer_deadline:
                self.transfer_target = None
            recent = 1 + sum(1 for p in self.others if now - self.contact[p] < self.config.election_min_ms)
            if recent < self.quorum:
                self._become_follower(self.term, None)
                self._reset_election_timer(now)
            elif now >= self.heartbeat_due:
                self.heartbeat_due = now + self.config.heartbeat_ms
                for p in self.others:
                    if not self.probing[p]:
                        self.next[p] = self.acked[p] + 1
                    self._send_append(p)
                    if p in self.behind:
                        base = self.log.base_index
                        self._send(AppendRequest(self.id, p, self.term, base, self.log.term_at(base), (), self.commit))
                    if p == self.transfer_target and self.match[p] >= self.log.last_index:
                        self._send(TimeoutNow(self.id, p, self.term))
        elif now >= self.election_deadline:
            self._pre_campaign(now)
        return self._take()

    def next_deadline(self) -> int:
        """The earliest time at which ``tick`` may have something to do (0: now)."""
        if self.applied < min(self.commit, self.durable):
            return 0  # committed entries wait to be handed out
        if self.role != LEADER:
            return self.election_deadline
        times = [self.heartbeat_due]
        needed = self.quorum - 1  # peers that must have been heard from recently
        if needed:
            times.append(sorted(self.contact.values(), reverse=True)[needed - 1] + self.config.election_min_ms)
        if self.transfer_target is not None:
            times.append(self.transfer_deadline)
        return min(times)

    def propose(self, bodies: Sequence[bytes], now: int) -> Tuple[Union[Proposed, Refused], Output]:
        """Append ``bodies`` as consecutive entries if this node leads and can take them."""
        refused = self._refuse(bodies)
        if refused is not None:
            return refused, self._take()
        first = self.log.last_index + 1
        entries = tuple(Entry(first + k, self.term, bytes(b)) for k, b in enumerate(bodies))
        self._append_own(entries)
        for p in self.others:
            if not self.probing[p] and self.next[p] == first:
                self._send_append(p)
        self._maybe_commit()
        return Proposed(first, entries[-1].index, self.term), self._take()

    def persisted(self, index: int, term: int, now: int) -> Output:
        """The caller's persist operations up to the entry ``index`` (of ``term``) are on disk."""
        if index > self.durable and self.log.term_at(index) == term:
            self.durable = index
            if self.role == LEADER:
                self._maybe_commit()
            elif self.leader is not None and self.verified:
                self._send(AppendResponse(self.id, self.leader, self.term, True, self.verified,
                                          min(self.verified, self.durable)))
            self._hand_out()
        return self._take()

    def transfer_leadership(self, target: str, now: int) -> Tuple[Optional[str], Output]:
        """Start handing leadership to ``target``; returns an error (NOT_LEADER, UNKNOWN_PEER) or None."""
        if self.role != LEADER:
            return "NOT_LEADER", self._take()
        if target == self.id:
            return None, self._take()
        if target not in self.others:
            return "UNKNOWN_PEER", self._take()
        self.transfer_target = target
        self.transfer_deadline = now + self.config.election_min_ms
        if self.match[target] >= self.log.last_index:
            self._send(TimeoutNow(self.id, target, self.term))
        elif not self.probing[target]:
            self.next[target] = self.acked[target] + 1
            self._send_append(target)
        return None, self._take()

    @property
    def transferring(self) -> bool:
        return self.transfer_target is not None

    # -- messages ----------------------------------------------------------------------------------------

    def _step(self, msg: Message, now: int) -> None:
        if msg.term > self.term:
            if isinstance(msg, VoteRequest):
                if not msg.transfer and self._in_lease(now):
                    return  # a live leader: the candidate cannot be right, and must not move our term
                if not msg.pre:
                    self._become_follower(msg.term, None)
            elif isinstance(msg, VoteResponse) and msg.pre and msg.granted:
                pass  # a granted pre-vote carries the term the candidate asked about
            else:
                leader = msg.src if isinstance(msg, (AppendRequest, TimeoutNow)) else None
                self._become_follower(msg.term, leader)
        elif msg.term < self.term:
            if isinstance(msg, AppendRequest):
                self._send(AppendResponse(self.id, msg.src, self.term, False, 0, 0))
            elif isinstance(msg, VoteRequest):
                self._send(VoteResponse(self.id, msg.src, self.term, False, msg.pre))
            return
        if isinstance(msg, AppendRequest):
            self._on_append(msg, now)
        elif isinstance(msg, AppendResponse):
            if self.role == LEADER:
                self._on_append_response(msg, now)
        elif isinstance(msg, VoteRequest):
            self._on_vote(msg, now)
        elif isinstance(msg, VoteResponse):
            self._on_vote_response(msg, now)
        elif isinstance(msg, TimeoutNow):
            if self.role == FOLLOWER and msg.src == self.leader:
                self._campaign(now, transfer=True)

    def _in_lease(self, now: int) -> bool:
        if self.role == LEADER:
            return True
        return (self.leader is not None and self.leader_heard is not None
                and now - self.leader_heard < self.config.election_min_ms)

    def _log_ok(self, last_index: int, last_term: int) -> bool:
        mine = self.log.last_term
        return last_term > mine or (last_term == mine and last_index >= self.log.last_index)

    def _on_vote(self, m: VoteRequest, now: int) -> None:
        ok = self._log_ok(m.last_index, m.last_term)
        if m.pre:
            granted = m.term > self.term and ok
            self._send(VoteResponse(self.id, m.src, m.term if granted else self.term, granted, True))
            return
        granted = ok and self.voted_for in (None, m.src) and self.role != LEADER
        if granted:
            if self.voted_for != m.src:
                self.voted_for = m.src
                self._out.hard_state = HardState(self.term, self.voted_for)
            self._reset_election_timer(now)
        self._send(VoteResponse(self.id, m.src, self.term, granted, False))

    def _on_vote_response(self, m: VoteResponse, now: int) -> None:
        if not m.granted:
            return
        if m.pre:
            if self.role == PRE_CANDIDATE and m.term == self.term + 1:
                self.votes.add(m.src)
                if len(self.votes) >= self.quorum:
                    self._campaign(now, transfer=False)
        elif self.role == CANDIDATE and m.term == self.term:
            self.votes.add(m.src)
            if len(self.votes) >= self.quorum:
                self._become_leader(now)

    def _on_append(self, m: AppendRequest, now: int) -> None:
        if self.role == LEADER:
            return  # two leaders in one term cannot happen; never act on it
        if not _entries_valid(m):
            return
        if self.role != FOLLOWER or self.leader != m.src:
            self._become_follower(self.term, m.src)
        self.leader_heard = now
        self._reset_election_timer(now)
        log = self.log
        entries = m.entries
        if m.prev_index < log.base_index:  # up to the base all was applied here: committed, so it matches
            entries = entries[log.base_index - m.prev_index:]
        elif m.prev_index > log.last_index:
            self._send(AppendResponse(self.id, m.src, self.term, False, 0, 0, log.last_index + 1))
            return
        elif log.term_at(m.prev_index) != m.prev_term:
            hint = min(m.prev_index, max(self.commit + 1, log.first_index_of_term(m.prev_index)))
            self._send(AppendResponse(self.id, m.src, self.term, False, 0, 0, hint))
            return
        for k, e in enumerate(entries):
            if log.term_at(e.index) != e.term:
                if e.index <= log.last_index:
                    if e.index <= self.commit:
                        return  # would drop a committed entry: refuse the message rather than lose data
                    log.truncate_from(e.index)
                    self._out.persist.append(Truncate(e.index))
                    self.durable = min(self.durable, e.index - 1)
                new = entries[k:]
                log.append(new)
                self._out.persist.append(Append(tuple(new)))
                break
        self.verified = max(self.verified, m.prev_index + len(m.entries))
        commit = min(m.commit, self.verified)
        if commit > self.commit:
            self.commit = commit
            self._hand_out()
        self._send(AppendResponse(self.id, m.src, self.term, True, self.verified, min(self.verified, self.durable)))

    def _on_append_response(self, m: AppendResponse, now: int) -> None:
        p = m.src
        if m.last > self.log.last_index or m.durable > m.last:
            return
        self.contact[p] = now
        if m.success:
            self.probing[p] = False
            self.acked[p] = max(self.acked[p], m.last)
            self.match[p] = max(self.match[p], m.durable)
            self.next[p] = max(self.next[p], self.acked[p] + 1)
            self._maybe_commit()
            if p == self.transfer_target and self.match[p] >= self.log.last_index:
                self._send(TimeoutNow(self.id, p, self.term))
            elif self.next[p] <= self.log.last_index:
                self._send_append(p)
        elif m.hint >= 1:
            # a refusal names a hint below what was sent; a stale or duplicated one does not lower next again.
            # A hint at or below ``acked``: the follower restarted without entries it had matched (unsynced).
            self.acked[p] = min(self.acked[p], m.hint - 1)
            next_index = max(self.acked[p] + 1, min(self.next[p], m.hint))
            if next_index < self.next[p]:
                self.next[p] = next_index
                self._send_append(p)

    # -- roles -------------------------------------------------------------------------------------------

    def _become_follower(self, term: int, leader: Optional[str]) -> None:
        if leader != self.leader or term != self.term:
            self.verified = 0
        if term != self.term:
            self.term = term
            self.voted_for = None
            self._out.hard_state = HardState(term, None)
        self.role = FOLLOWER
        self.leader = leader
        self.votes = set()
        self.transfer_target = None
        self._report()

    def _pre_campaign(self, now: int) -> None:
        self._stand(PRE_CANDIDATE, now, pre=True, transfer=False)

    def _campaign(self, now: int, transfer: bool) -> None:
        self.term += 1
        self.voted_for = self.id
        self._out.hard_state = HardState(self.term, self.id)
        self._stand(CANDIDATE, now, pre=False, transfer=transfer)

    def _stand(self, role: str, now: int, pre: bool, transfer: bool) -> None:
        """Ask every peer for a (pre-)vote; a group of one wins at once."""
        self.role = role
        self.leader = None
        self.verified = 0
        self.votes = {self.id}
        self._reset_election_timer(now)
        self._report()
        if len(self.votes) >= self.quorum:
            if pre:
                self._campaign(now, transfer=False)
            else:
                self._become_leader(now)
            return
        term = self.term + 1 if pre else self.term
        for p in self.others:
            self._send(VoteRequest(self.id, p, term, self.log.last_index, self.log.last_term, pre, transfer))

    def _become_leader(self, now: int) -> None:
        self.role = LEADER
        self.leader = self.id
        last = self.log.last_index
        self.behind = set()
        for p in self.others:
            self.next[p] = last + 1
            self.acked[p] = 0
            self.match[p] = 0
            self.probing[p] = True
            self.contact[p] = now
        self.transfer_target = None
        self.heartbeat_due = now + self.config.heartbeat_ms
        self._report()
        self._append_own((Entry(last + 1, self.term, b""),))  # the no-op that lets earlier terms commit
        for p in self.others:
            self._send_append(p)
        self._maybe_commit()

    # -- replication -------------------------------------------------------------------------------------

    def _refuse(self, bodies: Sequence[bytes]) -> Optional[Refused]:
        if self.role != LEADER:
            return Refused("NOT_LEADER", self.leader)
        if self.transfer_target is not None:
            return Refused("TRANSFERRING", self.leader)
        if not bodies or not all(bodies):
            return Refused("EMPTY", self.leader)
        if any(len(b) > self.config.max_entry_bytes for b in bodies):
            return Refused("TOO_LARGE", self.leader)
        if self.log.last_index - self.commit + len(bodies) > self.config.max_pending:
            return Refused("PENDING_FULL", self.leader)
        return None

    def _append_own(self, entries: Tuple[Entry, ...]) -> None:
        self.log.append(entries)
        self._out.persist.append(Append(entries))

    def _send_append(self, p: str) -> None:
        first = self.next[p]
        prev = first - 1
        if prev < self.log.base_index:
            self.behind.add(p)  # its next entries are gone here: no send (``tick`` keeps it a follower)
            return
        self.behind.discard(p)
        entries = tuple(self.log.slice(first, self.config.max_batch_entries, self.config.max_batch_bytes))
        self._send(AppendRequest(self.id, p, self.term, prev, self.log.term_at(prev), entries, self.commit))
        if not self.probing[p]:
            self.next[p] = first + len(entries)

    def _maybe_commit(self) -> None:
        marks = sorted([self.durable] + [self.match[p] for p in self.others], reverse=True)
        n = marks[self.quorum - 1]
        if n > self.commit and self.log.term_at(n) == self.term:
            self.commit = n
            self._hand_out()

    def _hand_out(self) -> None:
        """Committed entries up to this node's durable index, at most one append batch a call (a restart far
        behind would otherwise read them all at once); ``next_deadline`` asks for a tick while more wait."""
        upto = min(self.commit, self.durable)
        if upto > self.applied:
            batch = self.log.slice(self.applied + 1, min(upto - self.applied, self.config.max_batch_entries),
                                   self.config.max_batch_bytes)
            self._out.committed.extend(batch)
            self.applied = batch[-1].index
            self.log.release(self.applied)

    # -- plumbing ----------------------------------------------------------------------------------------

    def _reset_election_timer(self, now: int) -> None:
        self.election_deadline = now + self.rng.randint(self.config.election_min_ms, self.config.election_max_ms)

    def _send(self, msg: Message) -> None:
        self._out.messages.append(msg)

    def _report(self) -> None:
        change = RoleChange(self.role, self.term, self.leader)
        if change != self._reported:
            self._reported = change
            self._out.roles.append(change)

    def _take(self) -> Output:
        out, self._out = self._out, Output()
        return out


def _entries_valid(m: AppendRequest) -> bool:
    """Entries follow ``prev_index`` one by one, with terms between ``prev_term`` and the sender's."""
    term = m.prev_term
    for k, e in enumerate(m.entries):
        if e.index != m.prev_index + 1 + k or e.term < term or e.term > m.term:
            return False
        term = e.term
    return m.prev_index >= 0 and m.commit >= 0
