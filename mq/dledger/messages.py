"""The Raft core's vocabulary: log entries, the messages nodes exchange, and what one step asks of its caller.

Every message names its sender and receiver and carries the sender's term. Entries are numbered from 1;
index 0 with term 0 is the empty log's sentinel. An entry with an empty body is a leader's no-op (the first
entry of every term, which lets earlier-term entries commit); applications skip it.
"""

from __future__ import annotations

from typing import List, NamedTuple, Optional, Tuple, Union

import attrs


class Entry(NamedTuple):
    """One log entry. A named tuple, not an attrs class: one is made per message on every node (the leader's
    proposal, each follower's decode), and a named tuple is made in half the time of a frozen attrs class."""

    index: int
    term: int
    body: bytes


# -- messages ----------------------------------------------------------------------------------------------


@attrs.frozen
class VoteRequest:
    """A candidate asks for a vote. ``pre`` is a pre-vote: ``term`` is the term the sender would campaign in
    and nothing changes at the receiver. ``transfer`` marks an election a leader asked for (leadership
    transfer), which receivers must not refuse for having heard that leader recently."""

    src: str
    dst: str
    term: int
    last_index: int
    last_term: int
    pre: bool = False
    transfer: bool = False


@attrs.frozen
class VoteResponse:
    src: str
    dst: str
    term: int
    granted: bool
    pre: bool = False


@attrs.frozen
class AppendRequest:
    """Entries after ``prev_index``/``prev_term`` (none: a heartbeat) and the leader's commit index."""

    src: str
    dst: str
    term: int
    prev_index: int
    prev_term: int
    entries: Tuple[Entry, ...]
    commit: int


@attrs.frozen
class AppendResponse:
    """``last``: the follower's log matches the leader's up to here; ``durable``: of those, fsynced (what
    counts toward a majority); ``hint``: on a refusal, where the leader should try next."""

    src: str
    dst: str
    term: int
    success: bool
    last: int
    durable: int
    hint: int = 0


@attrs.frozen
class TimeoutNow:
    """A leader tells a caught-up follower to campaign at once (leadership transfer)."""

    src: str
    dst: str
    term: int


Message = Union[VoteRequest, VoteResponse, AppendRequest, AppendResponse, TimeoutNow]


# -- outputs -----------------------------------------------------------------------------------------------


@attrs.frozen
class HardState:
    """Term and vote: must be durable (atomically) before the messages of the same output are sent."""

    term: int
    voted_for: Optional[str]


@attrs.frozen
class Truncate:
    """Remove entries from ``index`` on (they conflict with the leader's log)."""

    index: int


@attrs.frozen
class Append:
    """Write these entries (consecutive, following the log's end after the previous operations)."""

    entries: Tuple[Entry, ...]


PersistOp = Union[Truncate, Append]


@attrs.frozen
class RoleChange:
    role: str
    term: int
    leader: Optional[str]


@attrs.define
class Output:
    """What one call of the core asks its caller to do, in this order:

    1. persist ``hard_state`` (if any) durably;
    2. send ``messages`` (in any order: the network reorders them anyway);
    3. apply ``persist`` operations in order, and call ``RaftNode.persisted(index, term)`` once they are on
       disk (an fsync barrier: nothing written counts toward a majority before that call);
    4. apply ``committed`` entries to the state machine, in order.
    """

    hard_state: Optional[HardState] = None
    messages: List[Message] = attrs.Factory(list)
    persist: List[PersistOp] = attrs.Factory(list)
    committed: List[Entry] = attrs.Factory(list)
    roles: List[RoleChange] = attrs.Factory(list)

    def __bool__(self) -> bool:
        return bool(self.hard_state or self.messages or self.persist or self.committed or self.roles)


@attrs.frozen
class Proposed:
    """A proposal accepted: its entries are ``first``..``last`` in ``term``; acknowledge each once it is
    committed with that term (a different term at that index means it was lost in a leader change)."""

    first: int
    last: int
    term: int


@attrs.frozen
class Refused:
    """A proposal refused: ``reason`` is one of NOT_LEADER, TRANSFERRING, PENDING_FULL, TOO_LARGE, EMPTY;
    ``leader`` is who this node believes leads, if anyone."""

    reason: str
    leader: Optional[str] = None
