"""The replicated log on disk and the vote metadata beside it. Blocking: run in a worker thread or at startup.

``DurableLog`` keeps entries (``mq.dledger.entry``'s layout) in segment files named by the 20-digit position
of their first byte, as RocketMQ names CommitLog files; a segment is rolled before an entry would cross
``segment_bytes`` (no end-of-file filler is needed: the next file's name says where it starts). Writes go
through the page cache; ``sync`` is the fsync barrier whose result the caller hands to
``RaftNode.persisted``. In memory it keeps the terms as runs, every ``INDEX_EVERY``-th position and each
segment's first index.

Recovery streams every segment through a bounded read window (``RECOVERY_WINDOW``, or one entry if larger)
and checks each entry's header CRC, body CRC, index sequence and recorded position; the first entry that
fails (a torn write or an unsynced tail lost by a crash) and everything after it are cut, with one log line
saying how much. Nothing but term runs and every ``INDEX_EVERY``-th entry's position is kept (a position
between is found by hopping over at most that many headers); bodies are read back on demand
(``read_range``, safe from another thread for entries the writer no longer changes: applied ones).

``MetaStore`` holds the term and vote: written to a temporary file, fsynced, renamed over the old one and the
directory fsynced, so a crash leaves the old or the new state, never a mix. A meta file that fails its CRC
refuses to load (``StoreCorrupted``): forgetting a vote could elect two leaders in one term.
"""

from __future__ import annotations

import os
from array import array
from bisect import bisect_right
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import attrs
import construct as c
from twisted.logger import Logger

from mq.dledger import entry as entry_codec
from mq.dledger.log import TermRuns
from mq.dledger.messages import Append, Entry, HardState, PersistOp, Truncate
from mq.store.mappedfile import (
    NO_SPACE,
    DiskFullError,
    fsync_dir,  # the CommitLog store's directory fsync, shared
)

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
BASE_MAGIC = 0x6D71_7262  # "mqrb"
#: The entry before the first kept one, once retention deleted older segments: its index and term answer the
#: prev-index/term check of the first kept entry; ``pos`` is where that entry starts (the first segment's name).
BASE = c.Struct(
    "magic" / c.Const(BASE_MAGIC, c.Int32ub),
    "version" / c.Const(1, c.Int16ub),
    "index" / c.Int64sb,
    "term" / c.Int64sb,
    "pos" / c.Int64sb,
    "crc" / c.Int32ub,
)
BASE_FILE = "base"
#: The store keeps the position of entries whose index is a multiple of this (and of the first entry).
INDEX_EVERY = 64
#: ``os.pwrite``; tests replace it to simulate a full disk.
pwrite = os.pwrite
#: Bytes recovery and ``read_range`` read at once (a larger entry is read whole, alone).
RECOVERY_WINDOW = 1 << 20


class StoreCorrupted(Exception):
    """Stored state that cannot be trusted and must not be guessed at."""


class MetaStore:
    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, META_FILE)
        self.directory = directory

    def load(self) -> HardState:
        parsed = _load(self.path, META)
        if parsed is None:
            return HardState(0, None)
        if parsed.crc != _meta_crc(parsed.term, parsed.voted_for):
            raise StoreCorrupted(f"{self.path}: CRC mismatch")
        return HardState(parsed.term, parsed.voted_for or None)

    def save(self, state: HardState) -> None:
        voted = state.voted_for or ""
        data = META.build({"term": state.term, "voted_for": voted, "crc": _meta_crc(state.term, voted)})
        _save(self.directory, META_FILE, data)


def _load(path: str, layout: c.Construct):
    """A small record file parsed, or None if there is none; unreadable is StoreCorrupted."""
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 16)
    except FileNotFoundError:
        return None
    try:
        return layout.parse(data)
    except c.ConstructError as e:
        raise StoreCorrupted(f"{path}: unreadable ({e})") from None


def _save(directory: str, name: str, data: bytes) -> None:
    """Replace a small record file atomically: a crash leaves the old or the new one."""
    path = os.path.join(directory, name)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(directory)


def _meta_crc(term: int, voted: str) -> int:
    return entry_codec.crc31(term.to_bytes(8, "big", signed=True) + voted.encode("utf-8"))


def _base_crc(index: int, term: int, pos: int) -> int:
    return entry_codec.crc31(b"".join(v.to_bytes(8, "big", signed=True) for v in (index, term, pos)))


def _origin(base: int) -> int:
    """The first index above ``base`` whose position the store keeps."""
    return (base // INDEX_EVERY + 1) * INDEX_EVERY


@attrs.frozen
class Compact:
    """A store operation (not the core's): delete the segments holding entries up to ``index`` (retention)."""

    index: int


class DurableLog:
    """Segment files of entries; in memory, the terms as runs, every ``INDEX_EVERY``-th entry's position and
    each segment's first index."""

    def __init__(self, directory: str, segment_bytes: int = 64 << 20) -> None:
        if segment_bytes < entry_codec.HEADER_SIZE:
            raise ValueError(f"segment_bytes {segment_bytes} below one entry header")
        self.directory = directory
        self.segment_bytes = segment_bytes
        os.makedirs(directory, exist_ok=True)
        self.runs = TermRuns()
        # (origin, anchors): anchors[j] is where entry origin + j * INDEX_EVERY starts, origin the first multiple
        # of INDEX_EVERY above the base; swapped whole when the base moves, so a reader in another thread
        # always pairs an array with its own origin
        self._index: Tuple[int, array] = (INDEX_EVERY, array("q"))
        self.segments: List[int] = []  # start positions, ascending (replaced whole, never shrunk in place)
        self._segment_first: Dict[int, int] = {}  # segment start -> the index of its first entry
        self.end = 0  # the position after the last entry
        self.base_pos = 0  # where entry base_index + 1 starts
        self._fds: Dict[int, int] = {}
        self._dirty: set = set()
        self.recovered_cut = 0  # bytes cut by recovery

    @property
    def last_index(self) -> int:
        return self.runs.last

    @property
    def base_index(self) -> int:
        return self.runs.base

    def position(self, index: int) -> int:
        """Where entry ``index`` (``base_index < index <= last_index``) starts in the log's byte space: from
        the nearest kept position, over at most ``INDEX_EVERY - 1`` headers. Opens its own descriptors."""
        origin, anchors = self._index
        j = (index - origin) // INDEX_EVERY
        if index >= origin and j < len(anchors):
            at, pos = origin + j * INDEX_EVERY, anchors[j]
        else:
            at, pos = self.runs.base + 1, self.base_pos
        fds: Dict[int, int] = {}
        try:
            while at < index:
                segments = self.segments
                start = segments[bisect_right(segments, pos) - 1]
                fd = fds.get(start)
                if fd is None:
                    fd = fds[start] = os.open(self._name(start), os.O_RDONLY)
                head = os.pread(fd, entry_codec.HEADER_SIZE, pos - start)
                if len(head) < entry_codec.HEADER_SIZE:
                    raise StoreCorrupted(f"{self._name(start)}: entry {at} cut short at {pos}")
                magic, size, got = entry_codec.ENTRY_HEADER.unpack(head)[:3]
                if magic != entry_codec.MAGIC or got != at or size < entry_codec.HEADER_SIZE:
                    raise StoreCorrupted(f"{self._name(start)}: entry {at} expected at {pos}, found {got}")
                pos += size
                at += 1
        finally:
            for fd in fds.values():
                os.close(fd)
        return pos

    def _anchor(self, anchors: array, index: int, pos: int) -> None:
        if index % INDEX_EVERY == 0:
            anchors.append(pos)

    def _name(self, start: int) -> str:
        return os.path.join(self.directory, f"{start:020d}")

    def _fd(self, start: int) -> int:
        fd = self._fds.get(start)
        if fd is None:
            fd = self._fds[start] = os.open(self._name(start), os.O_RDWR | os.O_CREAT, 0o644)
        return fd

    # -- recovery ----------------------------------------------------------------------------------------

    def recover(self) -> int:
        """Scan every segment; cut the first broken entry and all after it. Returns the entries kept."""
        names = sorted(n for n in os.listdir(self.directory) if len(n) == 20 and n.isdigit())
        base = _load(os.path.join(self.directory, BASE_FILE), BASE)
        if base is not None:
            if base.crc != _base_crc(base.index, base.term, base.pos):
                raise StoreCorrupted(f"{self.directory}/{BASE_FILE}: CRC mismatch")
            self.runs = TermRuns(base.index, base.term)
            self._index = (_origin(base.index), array("q"))
            self.base_pos = base.pos
            for name in [n for n in names if int(n) < base.pos]:  # a deletion a crash interrupted
                os.unlink(self._name(int(name)))
            names = [n for n in names if int(n) >= base.pos]
            if names and int(names[0]) != base.pos:
                raise StoreCorrupted(f"{self.directory}: the first segment after the base (entry {base.index}) "
                                     f"should start at {base.pos}, found {names[0]}")
        elif names:
            self.base_pos = int(names[0])
        expected_pos = self.end = self.base_pos
        anchors = self._index[1]
        runs = self.runs
        broken = False
        for name in names:
            start = int(name)
            if broken or start != expected_pos:
                broken = True
                self.recovered_cut += os.path.getsize(self._name(start))
                os.unlink(self._name(start))
                continue
            self._segment_first[start] = runs.last + 1
            offset, size = self._scan_segment(start, anchors)
            self.segments.append(start)
            if offset < size:
                broken = True
                self.recovered_cut += size - offset
                os.truncate(self._name(start), offset)
                self._dirty.add(start)
            expected_pos = self.end = start + offset
        if broken:
            log.warn("DLedger log: recovery cut {n} bytes after entry {index}", n=self.recovered_cut,
                     index=runs.last)
            self.sync()
            fsync_dir(self.directory)
        return runs.last - runs.base

    def _scan_segment(self, start: int, anchors: array) -> Tuple[int, int]:
        """Check the entries of one segment through a bounded window; returns (intact bytes, file size)."""
        runs = self.runs
        with open(self._name(start), "rb") as f:
            size = os.fstat(f.fileno()).st_size
            buf = f.read(RECOVERY_WINDOW)
            buf_at = 0  # file offset of buf[0]
            offset = 0  # in buf
            while buf_at + offset < size:
                try:
                    index, term, offset_after = entry_codec.scan_at(buf, offset, pos=start + buf_at + offset)
                    if index != runs.last + 1 or term < runs.last_term:
                        raise entry_codec.EntryError(f"entry {index} (term {term}) out of sequence")
                except entry_codec.Incomplete as short:
                    if buf_at + len(buf) < size:  # the window ends inside the entry: slide it
                        buf_at += offset
                        buf = buf[offset:] + f.read(max(RECOVERY_WINDOW, short.need) - (len(buf) - offset))
                        offset = 0
                        continue
                    err: Exception = short
                except entry_codec.EntryError as e:
                    err = e
                else:
                    self._anchor(anchors, index, start + buf_at + offset)
                    runs.append(index, term)
                    offset = offset_after
                    continue
                log.warn("DLedger log: {path} broken at byte {offset} ({err}); the rest is cut",
                         path=self._name(start), offset=buf_at + offset, err=str(err))
                break
        return buf_at + offset, size

    # -- reads -------------------------------------------------------------------------------------------

    def read_range(self, first: int, last: int, max_bytes: int) -> List[Entry]:
        """Entries ``first..last``, no more than ``max_bytes`` of bodies unless the first alone is larger.
        Opens its own descriptors, so it may run beside the writer for entries the writer no longer changes."""
        out: List[Entry] = []
        size = 0
        index = first
        fds: Dict[int, int] = {}
        pos = self.position(first) if first <= last else 0
        try:
            while index <= last:
                segments = self.segments
                start = segments[bisect_right(segments, pos) - 1]
                fd = fds.get(start)
                if fd is None:
                    fd = fds[start] = os.open(self._name(start), os.O_RDONLY)
                want = min(max(max_bytes - size, 0) + entry_codec.HEADER_SIZE, RECOVERY_WINDOW)
                buf = os.pread(fd, want, pos - start)
                offset = 0
                while index <= last:
                    try:
                        e, after = entry_codec.decode_at(buf, offset, pos + offset)
                    except entry_codec.Incomplete as short:
                        if offset:
                            break  # the next window starts here
                        buf = os.pread(fd, short.need, pos - start)
                        if len(buf) < short.need:
                            raise StoreCorrupted(f"{self._name(start)}: entry {index} cut short at {pos}") from None
                        continue
                    except entry_codec.EntryError as err:
                        raise StoreCorrupted(f"{self._name(start)}: entry {index} at {pos + offset}: {err}") from None
                    if e.index != index:
                        raise StoreCorrupted(f"{self._name(start)}: entry {e.index} where {index} belongs")
                    if out and size + len(e.body) > max_bytes:
                        return out
                    out.append(e)
                    size += len(e.body)
                    index += 1
                    offset = after
                pos += offset  # entries never cross segments: the next one starts where this one ended
        finally:
            for fd in fds.values():
                os.close(fd)
        return out

    def iter_entries(self, first: int = 1) -> Iterator[Entry]:
        """Every entry from ``first`` on, one read window at a time."""
        index = max(first, self.runs.base + 1)
        while index <= self.runs.last:
            batch = self.read_range(index, self.runs.last, RECOVERY_WINDOW)
            yield from batch
            index += len(batch)

    # -- writes ------------------------------------------------------------------------------------------

    def apply(self, ops: Sequence[Union[PersistOp, Compact]]) -> None:
        for op in ops:
            if isinstance(op, Truncate):
                self.truncate_from(op.index)
            elif isinstance(op, Append):
                self.append(op.entries)
            elif isinstance(op, Compact):
                self.compact(op.index)

    def append(self, entries: Sequence[Entry]) -> None:
        """Write ``entries`` after the end. An entry the disk has no room for is undone (its bytes cut, a
        segment it opened deleted) and ``DiskFullError`` raised: the entries before it stay written, the log
        ends at an entry boundary, and the caller may append the rest once there is room.

        The entries that fit in the current segment go in one ``pwrite`` (a system call per batch, not per
        entry); should it fail, its bytes are cut and the entries written one by one, which finds the one
        that does not fit."""
        k = 0
        while k < len(entries):
            if not self.segments:
                self._append_each(entries[k : k + 1])
                k += 1
                continue
            start = self.segments[-1]
            first = entries[k]
            if first.index != self.last_index + 1:
                raise ValueError(f"entry {first.index} does not follow {self.last_index}")
            pos = self.end
            parts = []
            n = k
            while n < len(entries):
                e = entries[n]
                if e.index != first.index + n - k:
                    raise ValueError(f"entry {e.index} does not follow {first.index + n - k - 1}")
                size = entry_codec.HEADER_SIZE + len(e.body)
                if pos > start and pos - start + size > self.segment_bytes:
                    break
                parts.append(entry_codec.encode(e, pos))
                pos += size
                n += 1
            if n - k < 2:  # one entry, or a roll-over: the entry by entry path
                self._append_each(entries[k : k + 1])
                k += 1
                continue
            data = b"".join(parts)
            done = 0
            failed: Optional[OSError] = None
            try:
                fd = self._fd(start)
                while done < len(data):
                    done += pwrite(fd, data[done:], self.end - start + done)
            except OSError as err:
                failed = err
            self._dirty.add(start)
            anchors = self._index[1]
            pos = self.end
            for e, part in zip(entries[k:n], parts):
                if pos + len(part) - self.end > done:
                    break  # the whole entries written stay; the cut one goes
                self._anchor(anchors, e.index, pos)
                self.runs.append(e.index, e.term)
                pos += len(part)
                k += 1
            self.end = pos
            if failed is not None:
                os.ftruncate(self._fd(start), self.end - start)
                if failed.errno in NO_SPACE:
                    raise DiskFullError(f"no space left for DLedger entry {entries[k].index} in {self.directory}")
                raise failed

    def _append_each(self, entries: Sequence[Entry]) -> None:
        anchors = self._index[1]
        for e in entries:
            if e.index != self.last_index + 1:
                raise ValueError(f"entry {e.index} does not follow {self.last_index}")
            size = entry_codec.HEADER_SIZE + len(e.body)
            start = self.segments[-1] if self.segments else None
            rolled = start is None or (self.end > start and self.end - start + size > self.segment_bytes)
            if rolled:
                start = self.end
            data = entry_codec.encode(e, self.end)
            try:
                fd = self._fd(start)
                done = 0
                while done < len(data):
                    done += pwrite(fd, data[done:], self.end - start + done)
            except OSError as err:
                self._undo(start, rolled)
                if err.errno in NO_SPACE:
                    raise DiskFullError(f"no space left for DLedger entry {e.index} in {self.directory}") from None
                raise
            if rolled:
                self._segment_first[start] = e.index
                self.segments.append(start)
            self._dirty.add(start)
            self._anchor(anchors, e.index, self.end)
            self.runs.append(e.index, e.term)
            self.end += len(data)

    def _undo(self, start: int, rolled: bool) -> None:
        """Cut a failed write back to the end (shrinking needs no space); a segment it created goes."""
        if rolled:
            self._close(start)
            if os.path.exists(self._name(start)):
                os.unlink(self._name(start))
        else:
            os.ftruncate(self._fd(start), self.end - start)

    def truncate_from(self, index: int) -> None:
        """Drop entries ``index``..; segments that start at or after the cut are deleted."""
        if index < 1:
            raise ValueError("index 0 cannot be truncated")
        if index > self.last_index:
            return
        if index <= self.runs.base:
            raise ValueError(f"entry {index} is at or below the base {self.runs.base}: it cannot be truncated")
        cut = self.position(index)
        doomed = [s for s in self.segments if s > cut or (s == cut and s != self.segments[0])]
        for start in doomed:
            self._close(start)
            os.unlink(self._name(start))
        if doomed:
            self.segments = [s for s in self.segments if s not in doomed]
            for start in doomed:
                self._segment_first.pop(start, None)
        if self.segments:
            start = self.segments[-1]
            os.ftruncate(self._fd(start), cut - start)
            self._dirty.add(start)
        origin, anchors = self._index
        del anchors[max(0, -(-(index - origin) // INDEX_EVERY)):]  # anchors of entries from ``index`` on
        self.runs.truncate_from(index)
        self.end = cut

    def sync(self) -> Optional[Tuple[int, int]]:
        """fsync what was written; returns the last entry's (index, term), the argument of ``persisted``."""
        for start in sorted(self._dirty):
            if start in self.segments:
                os.fsync(self._fd(start))
        if self._dirty:
            self._dirty.clear()
        return self.written()

    def written(self) -> Optional[Tuple[int, int]]:
        """The last entry written, fsynced or not, as (index, term); None for an empty log. Under ASYNC_FLUSH
        this is what ``persisted`` is told: a write in the page cache survives the process, not the host."""
        if self.last_index == 0:
            return None
        return self.last_index, self.runs.last_term

    @property
    def dirty(self) -> bool:
        """Whether something written is not yet fsynced."""
        return bool(self._dirty)

    # -- retention -------------------------------------------------------------------------------------

    def compactable(self, upto: int, written_before: Optional[float] = None) -> Optional[int]:
        """The highest base that deleting whole segments reaches, keeping every entry above ``upto`` and
        every segment last written at or after ``written_before`` (a wall-clock time; None: any age). The
        last segment always stays. None: nothing to delete."""
        segments = self.segments
        best = None
        for k in range(len(segments) - 1):
            following = self._segment_first.get(segments[k + 1])
            if following is None:  # the writer just removed it
                break
            last_in = following - 1  # the segment's last entry
            if last_in > upto:
                break
            if written_before is not None and os.stat(self._name(segments[k])).st_mtime >= written_before:
                break
            best = last_in
        return best if best is not None and best > self.runs.base else None

    def compact(self, base: int) -> None:
        """Delete the segments holding entries up to ``base`` (entry ``base + 1`` must start a segment): the
        base record is written first, so a crash between leaves files recovery deletes, never a gap."""
        if base <= self.runs.base:
            return
        pos = self.position(base + 1)
        if pos not in self.segments:
            raise ValueError(f"entry {base + 1} does not start a segment")
        self._save_base(base, self.runs.term_at(base), pos)
        doomed = [s for s in self.segments if s < pos]
        self.segments = [s for s in self.segments if s >= pos]
        origin, anchors = self._index
        new_origin = _origin(base)
        self._index = (new_origin, anchors[(new_origin - origin) // INDEX_EVERY:])
        self.runs.compact(base)
        self.base_pos = pos
        for start in doomed:
            self._close(start)
            self._segment_first.pop(start, None)
            os.unlink(self._name(start))
        log.info("DLedger log: retention deleted {n} segments; the log now starts after entry {base}",
                 n=len(doomed), base=base)

    def reset(self, base: int, term: int, pos: int) -> None:
        """Empty the log and start it after entry ``base`` (of ``term``), the next entry at ``pos``: a
        follower resynced from a leader whose retention deleted what this one still needed."""
        self._save_base(base, term, pos)
        for start in self.segments:
            self._close(start)
            os.unlink(self._name(start))
        self.segments = []
        self._segment_first = {}
        self._index = (_origin(base), array("q"))
        self.runs = TermRuns(base, term)
        self.end = self.base_pos = pos
        fsync_dir(self.directory)

    def _save_base(self, base: int, term: int, pos: int) -> None:
        data = BASE.build({"index": base, "term": term, "pos": pos, "crc": _base_crc(base, term, pos)})
        try:
            _save(self.directory, BASE_FILE, data)
        except OSError as err:
            if err.errno in NO_SPACE:
                raise DiskFullError(f"no space left for the base record in {self.directory}") from None
            raise

    def read(self, index: int) -> Entry:
        return self.read_range(index, index, 0)[0]

    def _close(self, start: int) -> None:
        fd = self._fds.pop(start, None)
        if fd is not None:
            os.close(fd)
        self._dirty.discard(start)

    def close(self) -> None:
        for start in list(self._fds):
            self._close(start)
