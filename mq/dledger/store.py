"""The replicated log on disk and the vote metadata beside it. Blocking: run in a worker thread or at startup.

``DurableLog`` keeps entries (``mq.dledger.entry``'s layout) in segment files named by the 20-digit position
of their first byte, as RocketMQ names CommitLog files; a segment is rolled before an entry would cross
``segment_bytes`` (no end-of-file filler is needed: the next file's name says where it starts). Writes go
through the page cache; ``sync`` is the fsync barrier whose result the caller hands to
``RaftNode.persisted``. Recovery walks every entry and checks its header CRC, body CRC, index sequence and
recorded position; the first entry that fails (a torn write or an unsynced tail lost by a crash) and
everything after it are cut, with one log line saying how much.

``MetaStore`` holds the term and vote: written to a temporary file, fsynced, renamed over the old one and the
directory fsynced, so a crash leaves the old or the new state, never a mix. A meta file that fails its CRC
refuses to load (``StoreCorrupted``): forgetting a vote could elect two leaders in one term.
"""

from __future__ import annotations

import os
from array import array
from typing import Dict, List, Optional, Sequence, Tuple

import construct as c
from twisted.logger import Logger

from mq.dledger import entry as entry_codec
from mq.dledger.messages import Append, Entry, HardState, PersistOp, Truncate
from mq.store.store import _fsync_dir  # the CommitLog store's directory fsync, shared

log = Logger()

META_MAGIC = 0x6D71_7266  # "mqrf"
META = c.Struct(
    "magic" / c.Const(META_MAGIC, c.Int32ub),
    "version" / c.Const(1, c.Int16ub),
    "term" / c.Int64sb,
    "voted_for" / c.PascalString(c.Int16ub, "utf8"),
    "crc" / c.Int32ub,
)
META_FILE = "meta"


class StoreCorrupted(Exception):
    """Stored state that cannot be trusted and must not be guessed at."""


class MetaStore:
    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, META_FILE)
        self.directory = directory

    def load(self) -> HardState:
        try:
            with open(self.path, "rb") as f:
                data = f.read(1 << 16)
        except FileNotFoundError:
            return HardState(0, None)
        try:
            parsed = META.parse(data)
        except c.ConstructError as e:
            raise StoreCorrupted(f"{self.path}: unreadable ({e})") from None
        if parsed.crc != _meta_crc(parsed.term, parsed.voted_for):
            raise StoreCorrupted(f"{self.path}: CRC mismatch")
        return HardState(parsed.term, parsed.voted_for or None)

    def save(self, state: HardState) -> None:
        voted = state.voted_for or ""
        data = META.build({"term": state.term, "voted_for": voted, "crc": _meta_crc(state.term, voted)})
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        _fsync_dir(self.directory)


def _meta_crc(term: int, voted: str) -> int:
    return entry_codec.crc31(term.to_bytes(8, "big", signed=True) + voted.encode("utf-8"))


class DurableLog:
    """Segment files of entries; ``positions``/``terms`` index every entry in memory (16 bytes each)."""

    def __init__(self, directory: str, segment_bytes: int = 64 << 20) -> None:
        if segment_bytes < entry_codec.HEADER_SIZE:
            raise ValueError(f"segment_bytes {segment_bytes} below one entry header")
        self.directory = directory
        self.segment_bytes = segment_bytes
        os.makedirs(directory, exist_ok=True)
        self.positions = array("q", [0])  # positions[i]: where entry i starts; [0] unused
        self.terms = array("q", [0])
        self.segments: List[int] = []  # start positions, ascending
        self.end = 0  # the position after the last entry
        self._fds: Dict[int, int] = {}
        self._dirty: set = set()
        self.recovered_cut = 0  # bytes cut by recovery

    @property
    def last_index(self) -> int:
        return len(self.positions) - 1

    def _name(self, start: int) -> str:
        return os.path.join(self.directory, f"{start:020d}")

    def _fd(self, start: int) -> int:
        fd = self._fds.get(start)
        if fd is None:
            fd = self._fds[start] = os.open(self._name(start), os.O_RDWR | os.O_CREAT, 0o644)
        return fd

    # -- recovery ----------------------------------------------------------------------------------------

    def recover(self) -> List[Entry]:
        """Read every intact entry; cut the first broken one and all after it. Returns the entries."""
        names = sorted(n for n in os.listdir(self.directory) if len(n) == 20 and n.isdigit())
        entries: List[Entry] = []
        expected_pos = int(names[0]) if names else 0
        self.end = expected_pos
        broken_at: Optional[Tuple[int, int]] = None  # (segment start, offset in it)
        for name in names:
            start = int(name)
            if broken_at is not None or start != expected_pos:
                broken_at = broken_at or (start, 0)
                self.recovered_cut += os.path.getsize(self._name(start))
                os.unlink(self._name(start))
                continue
            with open(self._name(start), "rb") as f:
                data = f.read()
            offset = 0
            while offset < len(data):
                try:
                    e, after = entry_codec.decode_at(data, offset, pos=start + offset)
                    if e.index != len(entries) + 1 or (entries and e.term < entries[-1].term):
                        raise entry_codec.EntryError(f"entry {e.index} (term {e.term}) out of sequence")
                except entry_codec.EntryError as err:
                    log.warn("DLedger log: {path} broken at byte {offset} ({err}); the rest is cut",
                             path=self._name(start), offset=offset, err=str(err))
                    broken_at = (start, offset)
                    break
                entries.append(e)
                self.positions.append(start + offset)
                self.terms.append(e.term)
                offset = after
            self.segments.append(start)
            if broken_at is not None:
                self.recovered_cut += len(data) - offset
                os.truncate(self._name(start), offset)
                self._dirty.add(start)
            expected_pos = self.end = start + offset
        if broken_at is not None:
            log.warn("DLedger log: recovery cut {n} bytes after entry {index}", n=self.recovered_cut,
                     index=len(entries))
            self.sync()
            _fsync_dir(self.directory)
        return entries

    # -- writes ------------------------------------------------------------------------------------------

    def apply(self, ops: Sequence[PersistOp]) -> None:
        for op in ops:
            if isinstance(op, Truncate):
                self.truncate_from(op.index)
            elif isinstance(op, Append):
                self.append(op.entries)

    def append(self, entries: Sequence[Entry]) -> None:
        for e in entries:
            if e.index != self.last_index + 1:
                raise ValueError(f"entry {e.index} does not follow {self.last_index}")
            size = entry_codec.HEADER_SIZE + len(e.body)
            start = self.segments[-1] if self.segments else None
            if start is None or (self.end > start and self.end - start + size > self.segment_bytes):
                start = self.end
                self.segments.append(start)
            data = entry_codec.encode(e, self.end)
            os.pwrite(self._fd(start), data, self.end - start)
            self._dirty.add(start)
            self.positions.append(self.end)
            self.terms.append(e.term)
            self.end += len(data)

    def truncate_from(self, index: int) -> None:
        """Drop entries ``index``..; segments that start at or after the cut are deleted."""
        if index < 1:
            raise ValueError("index 0 cannot be truncated")
        if index > self.last_index:
            return
        cut = self.positions[index]
        for start in [s for s in self.segments if s > cut or (s == cut and s != self.segments[0])]:
            self._close(start)
            os.unlink(self._name(start))
            self.segments.remove(start)
        if self.segments:
            start = self.segments[-1]
            os.ftruncate(self._fd(start), cut - start)
            self._dirty.add(start)
        del self.positions[index:]
        del self.terms[index:]
        self.end = cut

    def sync(self) -> Optional[Tuple[int, int]]:
        """fsync what was written; returns the last entry's (index, term), the argument of ``persisted``."""
        for start in sorted(self._dirty):
            if start in self.segments:
                os.fsync(self._fd(start))
        if self._dirty:
            self._dirty.clear()
        if self.last_index == 0:
            return None
        return self.last_index, self.terms[-1]

    def read(self, index: int) -> Entry:
        pos = self.positions[index]
        start = max(s for s in self.segments if s <= pos)
        fd = self._fd(start)
        head = os.pread(fd, entry_codec.HEADER_SIZE, pos - start)
        size = entry_codec.ENTRY_HEADER.unpack(head)[1]
        e, _ = entry_codec.decode_at(os.pread(fd, size, pos - start), 0, pos)
        return e

    def _close(self, start: int) -> None:
        fd = self._fds.pop(start, None)
        if fd is not None:
            os.close(fd)
        self._dirty.discard(start)

    def close(self) -> None:
        for start in list(self._fds):
            self._close(start)
