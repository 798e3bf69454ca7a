"""The log the Raft core reads and edits: terms of every entry, bodies cached up to a byte budget.

The core edits its log at once (a leader replicates entries before its own fsync) and reports every edit as a
persist operation; durability comes back separately through ``RaftNode.persisted``. ``RaftLog`` keeps, per
entry, nothing but its term (as runs: one pair per leader change) and, for the newest entries, the body.
Bodies leave memory oldest first once they exceed ``cache_bytes`` (``dLegerCacheBytes``), but only bodies of
*applied* entries (the node calls ``release``): those are committed, so never truncated, and fsynced, so
readable from the store; anything newer stays in memory whatever the budget (a leader holds at most
``max_pending`` such entries). A follower catching up or a leader resending older entries reads them back
from the store (``store.read_range``).

``RaftLog.from_store(store)`` recovers a ``DurableLog`` and opens the log over it without reading a body:
everything recovered is on disk. ``MemoryLog`` is the same log without a store (every body in memory), for
the simulation and tests.

Entries below ``base_index`` were deleted by retention (``compact``); ``term_at(base_index)`` still answers,
so the prev-index/term check of the entry after it works, and ``first_index`` is ``base_index + 1``.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from typing import Iterable, List, Optional, Sequence

from mq.dledger.messages import Entry

#: ``dLegerCacheBytes`` default: bodies of applied entries kept in memory (64 MiB).
DEFAULT_CACHE_BYTES = 64 << 20


class TermRuns:
    """The terms of entries ``base+1..last`` as runs (the first index of each run and its term), plus the
    base entry's term; shared by the core's log and the store, which hold the same log at different times."""

    __slots__ = ("base", "base_term", "last", "starts", "terms")

    def __init__(self, base: int = 0, base_term: int = 0) -> None:
        self.base = base
        self.base_term = base_term
        self.last = base
        self.starts = array("q")
        self.terms = array("q")

    def copy(self) -> "TermRuns":
        other = TermRuns(self.base, self.base_term)
        other.last = self.last
        other.starts = array("q", self.starts)
        other.terms = array("q", self.terms)
        return other

    @property
    def last_term(self) -> int:
        return self.terms[-1] if self.terms else self.base_term

    def term_at(self, index: int) -> int:
        """The term of the entry at ``index`` (the base's at ``base``); -1 outside ``base..last``."""
        if index == self.base:
            return self.base_term
        if not self.base < index <= self.last:
            return -1
        return self.terms[bisect_right(self.starts, index) - 1]

    def run_start(self, index: int) -> int:
        """The first index (above the base) of the run of entries sharing the term at ``index``."""
        if index <= self.base:
            return self.base + 1
        return self.starts[bisect_right(self.starts, index) - 1]

    def append(self, index: int, term: int) -> None:
        if index != self.last + 1:
            raise ValueError(f"entry {index} does not follow the log's end {self.last}")
        if term < self.last_term:
            raise ValueError(f"entry {index} has term {term} below the previous entry's {self.last_term}")
        if not self.terms or term != self.terms[-1]:
            self.starts.append(index)
            self.terms.append(term)
        self.last = index

    def truncate_from(self, index: int) -> None:
        """Drop ``index``.. (``index`` above the base)."""
        if index <= self.base:
            raise ValueError(f"entry {index} is at or below the base {self.base}: it cannot be truncated")
        if index > self.last:
            return
        k = bisect_left(self.starts, index)
        del self.starts[k:]
        del self.terms[k:]
        self.last = index - 1

    def compact(self, base: int) -> None:
        """Forget the terms below ``base`` (``base..last``), keeping the base entry's."""
        if not self.base <= base <= self.last:
            raise ValueError(f"new base {base} outside {self.base}..{self.last}")
        self.base_term = self.term_at(base)
        k = bisect_right(self.starts, base + 1) - 1  # the run holding base + 1, if any
        del self.starts[: max(k, 0)]
        del self.terms[: max(k, 0)]
        if base == self.last:
            del self.starts[:]
            del self.terms[:]
        elif self.starts:
            self.starts[0] = base + 1
        self.base = base


class RaftLog:
    """The core's log: term runs for every entry, the newest bodies in memory, older ones read from ``store``
    (anything with ``read_range(first, last, max_bytes) -> List[Entry]``); ``store=None`` keeps every body."""

    def __init__(self, store=None, cache_bytes: int = DEFAULT_CACHE_BYTES, runs: Optional[TermRuns] = None) -> None:
        if cache_bytes < 0:
            raise ValueError(f"cache_bytes {cache_bytes} is negative")
        self.store = store
        self.cache_bytes = cache_bytes
        self.runs = runs if runs is not None else TermRuns()
        #: entries _origin.. as the core made or received them (the same objects every time they are read: a
        #: leader's two AppendRequests can share one encoding), the first _dead already gone
        self._bodies: List[Optional[Entry]] = []
        self._origin = self.runs.last + 1
        self._dead = 0
        self._cached = 0  # body bytes in memory
        self._released = self.runs.last  # bodies up to here may leave memory (recovered ones are on disk)
        self.disk_reads = 0  # entries read back from the store

    @classmethod
    def from_store(cls, store, cache_bytes: int = DEFAULT_CACHE_BYTES) -> "RaftLog":
        """Recover ``store`` (a ``DurableLog``: the scan holds one read window, never every entry) and open
        the log over it; no body is read until the core asks for one."""
        store.recover()
        return cls(store, cache_bytes, store.runs.copy())

    # -- reads -------------------------------------------------------------------------------------------

    @property
    def last_index(self) -> int:
        return self.runs.last

    @property
    def last_term(self) -> int:
        return self.runs.last_term

    @property
    def base_index(self) -> int:
        return self.runs.base

    @property
    def first_index(self) -> int:
        return self.runs.base + 1

    @property
    def cached_bytes(self) -> int:
        return self._cached

    @property
    def cache_first(self) -> int:
        """The oldest index whose body is in memory (``last_index + 1``: none)."""
        return self._origin + self._dead

    def term_at(self, index: int) -> int:
        """The term of the entry at ``index`` (0 for the empty log's index 0); -1 outside the log."""
        return self.runs.term_at(index)

    def first_index_of_term(self, index: int) -> int:
        """The first index of the run of entries that share the term at ``index``."""
        return self.runs.run_start(index)

    def entry(self, index: int) -> Entry:
        if not self.runs.base < index <= self.runs.last:
            raise IndexError(f"entry {index} is outside {self.first_index}..{self.last_index}")
        if index >= self.cache_first:
            return self._bodies[index - self._origin]
        return self._read(index, index, 0)[0]

    def slice(self, first: int, max_entries: int, max_bytes: int) -> List[Entry]:
        """Entries from ``first`` on: at most ``max_entries``, and no more than ``max_bytes`` of bodies
        unless a single entry alone is larger (it still goes, alone)."""
        first = max(first, self.first_index)
        end = min(self.runs.last + 1, first + max_entries)
        if first >= end:
            return []
        cached_from = self.cache_first
        out = self._read(first, min(end, cached_from) - 1, max_bytes) if first < cached_from else []
        size = sum(len(e.body) for e in out)
        if out and out[-1].index < min(end, cached_from) - 1:
            return out  # the byte bound stopped the read from disk
        bodies, origin = self._bodies, self._origin
        for i in range(max(first, cached_from), end):
            e = bodies[i - origin]
            n = len(e.body)
            if out and size + n > max_bytes:
                break
            size += n
            out.append(e)
        return out

    def range(self, first: int, last: int) -> List[Entry]:
        """Entries ``first..last`` (inclusive), all of them."""
        if first > last:
            return []
        return self.slice(first, last - first + 1, 1 << 62)

    def entries(self, first: int = 1) -> List[Entry]:
        return self.range(max(first, self.first_index), self.last_index)

    def _read(self, first: int, last: int, max_bytes: int) -> List[Entry]:
        if self.store is None:
            raise IndexError(f"entries {first}..{last} are not in memory and there is no store")
        out = self.store.read_range(first, last, max_bytes)
        self.disk_reads += len(out)
        return out

    # -- edits -------------------------------------------------------------------------------------------

    def append(self, entries: Sequence[Entry]) -> None:
        runs = self.runs
        for e in entries:
            runs.append(e.index, e.term)
            self._bodies.append(e)
            self._cached += len(e.body)
        self._evict()

    def truncate_from(self, index: int) -> None:
        """Drop entries ``index``.. (above the base)."""
        if index < 1:
            raise ValueError("the sentinel entry 0 cannot be truncated")
        if index > self.runs.last:
            return
        first_cached = self.cache_first
        self.runs.truncate_from(index)
        if index >= first_cached:
            cut = index - self._origin
            self._cached -= sum(len(e.body) for e in self._bodies[cut:])
            del self._bodies[cut:]
        else:  # the whole cache goes (the cut entries from ``index`` up to it were on disk only)
            self._bodies, self._origin, self._dead, self._cached = [], index, 0, 0
        self._released = min(self._released, index - 1)

    def release(self, upto: int) -> None:
        """Entries up to ``upto`` are applied (committed and on this node's disk): their bodies may leave."""
        if upto > self._released:
            self._released = upto
            self._evict()

    def compact(self, base: int) -> None:
        """Forget entries up to ``base`` (retention deleted or is deleting them); ``base`` must be released."""
        if base <= self.runs.base:
            return
        if base > self._released:
            raise ValueError(f"base {base} is beyond the released entries (up to {self._released})")
        while self.cache_first <= base and self._evict_one():
            pass
        if self.cache_first <= base:  # ``store=None``: drop what the eviction kept
            self._drop_head(base + 1 - self.cache_first)
        self.runs.compact(base)

    def _evict(self) -> None:
        if self.store is None:
            return
        while self._cached > self.cache_bytes and self._evict_one():
            pass

    def _evict_one(self) -> bool:
        if self.store is None or self.cache_first > min(self._released, self.runs.last):
            return False
        self._drop_head(1)
        return True

    def _drop_head(self, n: int) -> None:
        bodies = self._bodies
        for k in range(self._dead, self._dead + n):
            self._cached -= len(bodies[k].body)
            bodies[k] = None
        self._dead += n
        if self._dead > 1024 and self._dead * 2 > len(bodies):
            del bodies[: self._dead]
            self._origin += self._dead
            self._dead = 0


class MemoryLog(RaftLog):
    """A ``RaftLog`` with every body in memory and no store (the simulation and unit tests)."""

    def __init__(self, entries: Iterable[Entry] = (), base: int = 0, base_term: int = 0) -> None:
        super().__init__(None, runs=TermRuns(base, base_term))
        self.append(tuple(entries))
