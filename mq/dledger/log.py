"""The log interface the Raft core reads and edits, and its in-memory implementation.

The core edits its log at once (a leader replicates entries before its own fsync) and reports every edit as a
persist operation; durability comes back separately through ``RaftNode.persisted``. A recovered store hands
the core a log holding what survived on disk.
"""

from __future__ import annotations

from typing import Iterable, List, Sequence

from mq.dledger.messages import Entry


class MemoryLog:
    """Entries 1..last in two lists (terms and bodies); index 0 is the sentinel with term 0."""

    __slots__ = ("_terms", "_bodies")

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self._terms: List[int] = [0]
        self._bodies: List[bytes] = [b""]
        for e in entries:
            self.append((e,))

    @property
    def last_index(self) -> int:
        return len(self._terms) - 1

    @property
    def last_term(self) -> int:
        return self._terms[-1]

    def term_at(self, index: int) -> int:
        """The term of the entry at ``index`` (0 for index 0); -1 beyond the end."""
        if 0 <= index < len(self._terms):
            return self._terms[index]
        return -1

    def entry(self, index: int) -> Entry:
        return Entry(index, self._terms[index], self._bodies[index])

    def slice(self, first: int, max_entries: int, max_bytes: int) -> List[Entry]:
        """Entries from ``first`` on: at most ``max_entries``, and no more than ``max_bytes`` of bodies
        unless a single entry alone is larger (it still goes, alone)."""
        out: List[Entry] = []
        size = 0
        end = min(len(self._terms), first + max_entries)
        for i in range(max(first, 1), end):
            body = self._bodies[i]
            if out and size + len(body) > max_bytes:
                break
            size += len(body)
            out.append(Entry(i, self._terms[i], body))
        return out

    def first_index_of_term(self, index: int) -> int:
        """The first index of the run of entries that share the term at ``index``."""
        term = self._terms[index]
        while index > 1 and self._terms[index - 1] == term:
            index -= 1
        return index

    def append(self, entries: Sequence[Entry]) -> None:
        for e in entries:
            if e.index != len(self._terms):
                raise ValueError(f"entry {e.index} does not follow the log's end {self.last_index}")
            if e.term < self._terms[-1]:
                raise ValueError(f"entry {e.index} has term {e.term} below the previous entry's {self._terms[-1]}")
            self._terms.append(e.term)
            self._bodies.append(e.body)

    def truncate_from(self, index: int) -> None:
        """Drop entries ``index``.. (index >= 1)."""
        if index < 1:
            raise ValueError("the sentinel entry 0 cannot be truncated")
        del self._terms[index:]
        del self._bodies[index:]

    def entries(self, first: int = 1) -> List[Entry]:
        return [Entry(i, self._terms[i], self._bodies[i]) for i in range(max(first, 1), len(self._terms))]
