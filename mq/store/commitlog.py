"""The CommitLog: every message of every topic, appended to a chain of fixed-size files.

A record never spans two files: when one does not fit (with 8 bytes to spare) the rest of the file gets a
blank record (``[remaining][BLANK_MAGIC_CODE]``) and the record goes to the next file. A record's physical
offset is its address.
"""

from __future__ import annotations

import struct
import zlib
from typing import Callable, Iterator, Optional, Tuple

from twisted.logger import Logger

from mq.common.message_record import BLANK_MAGIC_CODE, BLANK_RECORD, HEAD, MESSAGE_MAGIC_CODE, RecordError, record_tail_positions
from mq.store.mappedfile import PAGE, MappedFile, MappedFileQueue, Prefaulter, StoreError

log = Logger()

END_FILE_MIN_BLANK_LENGTH = 8
RELEASE_EVERY = 16 << 20  # give written pages back to the page cache every 16 MiB: resident memory stays flat
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_TOTAL_MAGIC = struct.Struct(">ii")
_HEAD_SIZE = HEAD.size  # 40 bytes, the same for every host combination


class CommitLog:
    """Appends and reads records; validates them for recovery and before serving."""

    def __init__(
        self, directory: str, file_size: int, check_crc_on_read: bool = True, prefault_ahead: int = 0
    ) -> None:
        self.files = MappedFileQueue(directory, file_size)
        self.file_size = file_size
        self.check_crc_on_read = check_crc_on_read
        self.corrupt_records = 0
        self._cur: Optional[MappedFile] = None
        self._release_at = RELEASE_EVERY
        # Pages up to ``_prefault_at`` were handed to the prefaulter; a new range is asked for when the writer
        # comes within half of ``prefault_ahead`` of it (0: no prefaulting).
        self.prefault_ahead = prefault_ahead - prefault_ahead % PAGE if prefault_ahead > 0 else 0
        self.prefaulter: Optional[Prefaulter] = Prefaulter() if self.prefault_ahead else None
        self._prefault_at = 0
        self.on_new_file: Optional[Callable[[], None]] = None  # called after a file is created

    # ------------------------------------------------------------------ positions

    def load(self) -> None:
        self.files.load()
        self._cur = self.files.last()

    @property
    def max_offset(self) -> int:
        return self.files.wrote

    @property
    def min_offset(self) -> int:
        return self.files.min_offset

    @property
    def flushed(self) -> int:
        return self.files.flushed

    # ------------------------------------------------------------------ writing

    def position_for(self, size: int) -> int:
        """Where a record (or batch) of ``size`` bytes will go: pads the file and rolls over if needed.

        The next file is created (and its space reserved) before the pad is written: if the disk is full, the
        DiskFullError leaves the CommitLog exactly as it was.
        """
        f = self._cur
        wrote = self.files.wrote
        if f is None or wrote >= f.end:
            self._roll(wrote)
        elif wrote - f.start + size + END_FILE_MIN_BLANK_LENGTH > f.size:
            new = self._create(f.end)
            rel = wrote - f.start
            BLANK_RECORD.pack_into(f.mm, rel, f.size - rel, BLANK_MAGIC_CODE)
            self._switch(new)
        return self.files.wrote

    def _create(self, start: int) -> MappedFile:
        if start % self.file_size:
            raise StoreError(f"cannot start a CommitLog file at {start}")
        f = self.files.create(start)
        if self.on_new_file is not None:
            self.on_new_file()
        return f

    def _roll(self, start: int) -> MappedFile:
        return self._switch(self._create(start))

    def _switch(self, f: MappedFile) -> MappedFile:
        """Make the new file ``f`` the one written into."""
        start = f.start
        if self._cur is not None:
            self._cur.release_pages()
        self._cur = f
        self.files.wrote = start
        self._prefault_at = start
        if self.prefaulter is not None:
            self._prefault(f, start)
        return f

    def _prefault(self, f: MappedFile, end: int) -> None:
        """Have the pages from ``end`` (or from what was already asked for) to ``prefault_ahead`` past it mapped."""
        lo = max(self._prefault_at, end - end % PAGE, f.start)
        hi = end + self.prefault_ahead
        hi = min(f.end, hi - hi % PAGE)  # madvise wants page-aligned ranges
        if hi > lo:
            self.prefaulter.request(f, lo - f.start, hi - lo)  # type: ignore[union-attr]
        self._prefault_at = hi

    def write(self, phy: int, data: bytes) -> None:
        """Copy ``data`` (records placed by ``position_for``, or replicated bytes) into the current file at ``phy``
        and advance the write position."""
        f = self._cur
        rel = phy - f.start  # type: ignore[union-attr]
        end = phy + len(data)
        f.mm[rel : rel + len(data)] = data  # type: ignore[union-attr]
        self.files.wrote = end
        if end > self._release_at:
            self._release_behind(f, rel)  # type: ignore[arg-type]
        if end + (self.prefault_ahead >> 1) > self._prefault_at and self.prefaulter is not None:
            self._prefault(f, end)  # type: ignore[arg-type]

    def release_pages(self) -> None:
        """Give resident pages back (they stay in the page cache), except the prefaulted ones ahead of the writer."""
        cur = self._cur
        for f in self.files.files:
            if f is not cur:
                f.release_pages()
        if cur is not None:
            rel = self.files.wrote - cur.start
            upto = rel - rel % PAGE if self.prefaulter is not None else cur.size
            if upto > 0:
                cur.release_pages(0, upto)

    def _release_behind(self, f: MappedFile, rel: int) -> None:
        upto = rel - rel % PAGE
        if upto > 0:
            f.release_pages(0, upto)
        self._release_at = f.start + rel + RELEASE_EVERY

    def append_raw(self, phy: int, data: bytes) -> None:
        """Append replicated bytes at ``phy`` (must be the current end; never crossing a file boundary)."""
        if phy != self.files.wrote:
            raise StoreError(f"raw append at {phy}, CommitLog ends at {self.files.wrote}")
        f = self._cur
        if f is None or phy >= f.end:
            f = self._roll(phy)
        if phy + len(data) > f.end:
            raise StoreError("raw append crosses a CommitLog file boundary")
        self.write(phy, data)

    # ------------------------------------------------------------------ reading

    def read(self, phy: int, size: int) -> Optional[bytes]:
        """``size`` raw bytes at ``phy`` within one file, or None if not (or no longer) stored."""
        f = self.files.find(phy)
        if f is None or size <= 0 or phy + size > self.files.wrote or phy + size > f.end:
            return None
        rel = phy - f.start
        return f.mm[rel : rel + size]

    def read_upto(self, phy: int, max_bytes: int) -> Optional[bytes]:
        """Raw bytes from ``phy`` up to ``max_bytes``, stopping at the end of data or of the file (HA)."""
        f = self.files.find(phy)
        if f is None or phy >= self.files.wrote:
            return None
        end = min(phy + max_bytes, f.end, self.files.wrote)
        return f.mm[phy - f.start : end - f.start]

    def read_record(self, phy: int, size: Optional[int] = None, requested: bool = False) -> Optional[bytes]:
        """The whole valid record at ``phy``: checked for size, magic, own offset and body CRC.

        A record that fails is logged, counted and never returned. ``requested``: ``phy`` is what a request
        named (VIEW_MESSAGE_BY_ID...), not an offset the store wrote down, so a failure most likely means it
        is not a record's start: simply not found, logged at debug level and not counted (anyone could
        otherwise flood the log and raise false corruption alarms).
        """
        f = self.files.find(phy)
        if f is None or phy >= self.files.wrote:
            return None
        rel = phy - f.start
        if size is None:
            if rel + 4 > f.size:
                return None
            size = _I32.unpack_from(f.mm, rel)[0]
        if size < _HEAD_SIZE or phy + size > self.files.wrote or rel + size > f.size:
            return self._not_served(phy, "size out of range", requested)
        data = f.mm[rel : rel + size]
        problem = check_record(data, 0, phy, self.check_crc_on_read)
        if problem:
            return self._not_served(phy, problem, requested)
        return data

    def _not_served(self, phy: int, problem: str, requested: bool) -> None:
        if requested:
            log.debug("no CommitLog record at requested offset {phy}: {problem}", phy=phy, problem=problem)
            return None
        return self._corrupt(phy, problem)

    def _corrupt(self, phy: int, problem: str) -> None:
        self.corrupt_records += 1
        log.error("CommitLog record at {phy} is not served: {problem}", phy=phy, problem=problem)
        return None

    def read_store_timestamp(self, phy: int) -> int:
        """STORETIMESTAMP of the record at ``phy``, or -1."""
        f = self.files.find(phy)
        if f is None or phy + _HEAD_SIZE + 28 > min(self.files.wrote, f.end):
            return -1
        rel = phy - f.start
        sys_flag = _I32.unpack_from(f.mm, rel + 36)[0]
        return _I64.unpack_from(f.mm, rel + (68 if sys_flag & 0x10 else 56))[0]

    # ------------------------------------------------------------------ scanning (recovery, reput)

    def scan(self, start: int, check_crc: bool, end: Optional[int] = None) -> Iterator[Tuple[MappedFile, int, int]]:
        """Yield (file, position in file, size) of each whole valid record from ``start``; stop at the first
        position that is not one. ``last_scan_end`` then holds that position: where valid data ends."""
        pos = start
        limit_all = end
        self.last_scan_end = pos
        while True:
            f = self.files.find(pos)
            if f is None:
                break
            rel = pos - f.start
            limit = f.size if limit_all is None else min(f.size, limit_all - f.start)
            if rel + END_FILE_MIN_BLANK_LENGTH > limit:
                if rel == f.size:
                    pos = f.end
                    self.last_scan_end = pos
                    continue
                break
            total, magic = _TOTAL_MAGIC.unpack_from(f.mm, rel)
            if magic == BLANK_MAGIC_CODE and total == f.size - rel:
                if f.end > (limit_all if limit_all is not None else f.end):
                    break
                pos = f.end
                self.last_scan_end = pos
                continue
            if magic != MESSAGE_MAGIC_CODE or total < _HEAD_SIZE or rel + total > limit:
                if (magic or total) and limit_all is None:
                    log.warn(
                        "CommitLog scan stops at {pos}: size {total}, magic {magic:#x}",
                        pos=pos, total=total, magic=magic & 0xFFFFFFFF,
                    )  # fmt: skip
                break
            problem = check_record(f.mm, rel, pos, check_crc, total)
            if problem:
                log.warn("CommitLog scan stops at {pos}: {problem}", pos=pos, problem=problem)
                break
            yield f, rel, total
            pos += total
            self.last_scan_end = pos

    def truncate(self, offset: int) -> None:
        if self.prefaulter is not None:
            self.prefaulter.quiesce()
        self.files.truncate(offset)
        self._cur = self.files.last()
        self._prefault_at = 0

    def delete_first_file(self) -> MappedFile:
        if self.prefaulter is not None:
            self.prefaulter.quiesce()
        f = self.files.delete_first()
        self._cur = self.files.last()
        return f

    def close(self) -> None:
        if self.prefaulter is not None:
            self.prefaulter.stop()
        self.files.close()
        self._cur = None


def check_record(buf, rel: int, phy: int, check_crc: bool, total: Optional[int] = None) -> Optional[str]:
    """Why the record at ``buf[rel:]`` (stored at ``phy``) is not whole and consistent, or None if it is."""
    if total is None:
        total = _I32.unpack_from(buf, rel)[0]
    magic, crc, _qid, _flag, _qoff, own_phy, sys_flag = struct.unpack_from(">iiiiqqi", buf, rel + 4)
    if magic != MESSAGE_MAGIC_CODE:
        return "bad magic code"
    if own_phy != phy:
        return f"record claims offset {own_phy}"
    try:
        body_start, body_len, *_ = record_tail_positions(buf, rel, total, sys_flag)
    except RecordError as e:
        return str(e)
    if check_crc and (zlib.crc32(buf[body_start : body_start + body_len]) & 0x7FFFFFFF) != crc:
        return "body CRC mismatch"
    return None

