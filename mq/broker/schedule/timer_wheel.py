"""The timing wheel on disk: a TimerLog of fixed units, and a wheel of slots that each point at their newest unit.

RocketMQ 5.x's TimerLog/TimerWheel design, simplified (docs/timer.md says why):

- ``timerlog/<20-digit start>``: files of ``FILE_UNITS`` units of 40 bytes, appended in order. A unit is
  ``prev`` (the slot's previous unit, or -1), ``slot_ms`` (the slot it is linked into), ``deliver_ms``,
  ``phy``/``size`` (the timer-topic record in the CommitLog) and a magic. Units of one slot form a list from
  the newest back, so linking a timer is one append and one slot write, whatever its delay.
- ``timerwheel``: a 16-byte header (magic, precision, slot count) then one 8-byte slot per precision step
  of the wheel's span: the position + 1 of the newest unit linked into it (0: none). Slot ``i`` serves every
  time ``t`` with ``t / precision ≡ i (mod slots)``; a slot list is walked from its newest unit back until a
  unit for an earlier time, so the time a slot served last never needs clearing.

All reads and writes are ``pread``/``pwrite`` on file descriptors: the files live in the page cache, not in
the process, so a million pending timers cost the broker no resident memory. Writes go unit first, then
slot, so after a SIGKILL every slot points at a whole unit; ``cut`` takes the wheel back to a checkpoint.
"""

from __future__ import annotations

import os
import struct
from typing import Dict, Iterator, List, Optional, Tuple

from twisted.logger import Logger

log = Logger()

UNIT = struct.Struct(">qqqqii")  # prev, slot_ms, deliver_ms, phy, size, magic
UNIT_SIZE = UNIT.size
UNIT_MAGIC = 0x7E1A_0C01
#: Units per TimerLog file (40 MiB): a file is deleted once every slot it serves has fired.
FILE_UNITS = 1 << 20
_HEADER = struct.Struct(">iiq")  # magic, precision ms, slots
_WHEEL_MAGIC = 0x7E1A_0E01
_SLOT = struct.Struct(">q")

#: (position, slot_ms, deliver_ms, phy, size) of one unit.
Unit = Tuple[int, int, int, int, int]


class TimerWheel:
    """The wheel and its log under ``directory``; times are epoch ms, multiples of ``precision`` for slots."""

    def __init__(self, directory: str, precision: int, slots: int, file_units: int = FILE_UNITS) -> None:
        self.directory = directory
        self.precision = precision
        self.slots = slots
        self.file_size = file_units * UNIT_SIZE
        self.log_dir = os.path.join(directory, "timerlog")
        self.wheel_path = os.path.join(directory, "timerwheel")
        self._wheel_fd = -1
        #: start position → fd, and → the latest slot_ms linked from that file (when it may be deleted).
        self._files: Dict[int, int] = {}
        self.file_last_slot: Dict[int, int] = {}
        self.end = 0

    @property
    def span_ms(self) -> int:
        return self.slots * self.precision

    # -- files -----------------------------------------------------------------------------------------

    def open(self, end: int, file_last_slot: Dict[int, int], fired_before_ms: int) -> bool:
        """Open the files, the log ending at ``end`` (a checkpoint's; ``cut`` undoes what came after). False
        (and empty files) when the wheel or a log file the checkpoint names is missing, or the wheel was
        made for another precision or size: the caller rebuilds from the CommitLog."""
        os.makedirs(self.log_dir, exist_ok=True)
        header = _HEADER.pack(_WHEEL_MAGIC, self.precision, self.slots)
        intact = os.path.exists(self.wheel_path)
        if intact:
            with open(self.wheel_path, "rb") as f:
                intact = f.read(_HEADER.size) == header and os.path.getsize(self.wheel_path) == self._wheel_bytes()
        starts = [int(n) for n in os.listdir(self.log_dir) if n.isdigit()]
        need = {s for s, last in file_last_slot.items() if last >= fired_before_ms}  # others may be deleted
        if end > 0:
            need.add((end - 1) - (end - 1) % self.file_size)
        if intact:
            intact = all(s in starts and os.path.getsize(self._path(s)) == self.file_size for s in need)
        if not intact:
            self.reset()
            return False
        self._wheel_fd = os.open(self.wheel_path, os.O_RDWR)
        for start in starts:
            self._files[start] = os.open(self._path(start), os.O_RDWR)
        self.file_last_slot = {s: v for s, v in file_last_slot.items() if s in self._files}
        self.end = end
        return True

    def _wheel_bytes(self) -> int:
        return _HEADER.size + self.slots * _SLOT.size

    def _path(self, start: int) -> str:
        return os.path.join(self.log_dir, f"{start:020d}")

    def reset(self) -> None:
        """Empty files: a wheel with nothing linked."""
        self.close()
        os.makedirs(self.log_dir, exist_ok=True)
        for name in os.listdir(self.log_dir):
            os.unlink(os.path.join(self.log_dir, name))
        with open(self.wheel_path, "wb") as f:
            f.write(_HEADER.pack(_WHEEL_MAGIC, self.precision, self.slots))
            f.truncate(self._wheel_bytes())  # sparse: untouched slots take no disk
        self._wheel_fd = os.open(self.wheel_path, os.O_RDWR)
        self.file_last_slot = {}
        self.end = 0

    def close(self) -> None:
        for fd in list(self._files.values()) + ([self._wheel_fd] if self._wheel_fd >= 0 else []):
            os.close(fd)
        self._files = {}
        self._wheel_fd = -1

    def flush(self) -> None:
        """fsync what was written (before a checkpoint names it)."""
        for fd in list(self._files.values()) + [self._wheel_fd]:
            os.fsync(fd)

    def _file(self, pos: int, create: bool = False) -> Tuple[Optional[int], int]:
        start = pos - pos % self.file_size
        fd = self._files.get(start)
        if fd is None and create:
            fd = os.open(self._path(start), os.O_RDWR | os.O_CREAT, 0o644)
            os.ftruncate(fd, self.file_size)
            self._files[start] = fd
        return fd, pos - start

    @property
    def min_pos(self) -> int:
        return min(self._files) if self._files else self.end

    # -- slots -----------------------------------------------------------------------------------------

    def slot_of(self, time_ms: int) -> int:
        """The slot time serving ``time_ms``: the next multiple of the precision (never early)."""
        p = self.precision
        return -(-time_ms // p) * p

    def _slot_offset(self, slot_ms: int) -> int:
        return _HEADER.size + (slot_ms // self.precision) % self.slots * _SLOT.size

    def _head(self, slot_ms: int) -> int:
        return _SLOT.unpack(os.pread(self._wheel_fd, _SLOT.size, self._slot_offset(slot_ms)))[0] - 1

    def _set_head(self, slot_ms: int, pos: int) -> None:
        os.pwrite(self._wheel_fd, _SLOT.pack(pos + 1), self._slot_offset(slot_ms))

    # -- units -----------------------------------------------------------------------------------------

    def link(self, slot_ms: int, deliver_ms: int, phy: int, size: int) -> int:
        """Append a unit for the timer-topic record at ``phy`` and make it the newest of ``slot_ms``."""
        pos = self.end
        fd, rel = self._file(pos, create=True)
        os.pwrite(fd, UNIT.pack(self._head(slot_ms), slot_ms, deliver_ms, phy, size, UNIT_MAGIC), rel)
        self._set_head(slot_ms, pos)
        self.end = pos + UNIT_SIZE
        start = pos - rel
        if self.file_last_slot.get(start, 0) < slot_ms:
            self.file_last_slot[start] = slot_ms
        return pos

    def read(self, pos: int) -> Optional[Unit]:
        """The unit at ``pos``, or None if its file is gone or it is not a whole unit."""
        if pos < 0 or pos >= self.end:
            return None
        fd, rel = self._file(pos)
        if fd is None:
            return None
        data = os.pread(fd, UNIT_SIZE, rel)
        if len(data) < UNIT_SIZE:
            return None
        prev, slot_ms, deliver_ms, phy, size, magic = UNIT.unpack(data)
        if magic != UNIT_MAGIC:
            return None
        return prev, slot_ms, deliver_ms, phy, size

    def walk(self, slot_ms: int, start: Optional[int] = None, limit: int = 1 << 62) -> Tuple[List[Unit], int]:
        """Up to ``limit`` units of ``slot_ms``, newest first, from ``start`` (a position, default the slot's
        newest); returns them and where to go on (-1: the slot is done)."""
        pos = self._head(slot_ms) if start is None else start
        out: List[Unit] = []
        while pos >= 0 and len(out) < limit:
            unit = self.read(pos)
            if unit is None or unit[1] != slot_ms:
                return out, -1  # an older time's unit (or a deleted file): the end of this slot's list
            out.append((pos,) + unit[1:])
            if unit[0] >= pos:  # lists only point back: anything else is damage, never a loop
                log.warn("timer log unit at {pos} points forward to {prev}: the rest of its slot is skipped",
                         pos=pos, prev=unit[0])
                return out, -1
            pos = unit[0]
        return out, pos

    def count(self, slot_ms: int) -> int:
        return len(self.walk(slot_ms)[0])

    # -- recovery and retention ----------------------------------------------------------------------

    def cut(self, end: int) -> int:
        """Undo every link made at or after ``end`` (a checkpoint's log end): each slot they touched points
        back at its newest unit before ``end``, their units are zeroed and files begun after ``end`` deleted.
        Returns how many units were undone."""
        self.end = max((s + self.file_size for s in self._files), default=end)
        after = [u for _pos, u in self.units_from(end)]
        for slot_ms in {u[1] for u in after}:  # first every slot, while the units to walk back through exist
            head = self._head(slot_ms)
            while head >= end:
                back = self.read(head)
                head = back[0] if back is not None and back[0] < head else -1
            self._set_head(slot_ms, head)
        keep = end - end % self.file_size
        for start in [s for s in self._files if s > keep or (s == keep and end % self.file_size == 0 and s == end)]:
            os.close(self._files.pop(start))
            self.file_last_slot.pop(start, None)
            os.unlink(self._path(start))
        fd, rel = self._file(end)
        if fd is not None:
            os.pwrite(fd, bytes(self.file_size - rel), rel)
        self.end = end
        return len(after)

    def release(self, fired_before_ms: int) -> List[int]:
        """Delete the log files all of whose slots are before ``fired_before_ms`` (except the one being
        written); returns their start positions."""
        current = self.end - self.end % self.file_size
        gone = []
        for start, last in sorted(self.file_last_slot.items()):
            if start == current or last >= fired_before_ms:
                continue
            os.close(self._files.pop(start))
            del self.file_last_slot[start]
            try:
                os.unlink(self._path(start))
            except OSError as e:
                log.warn("cannot delete the timer log file {path}: {error}", path=self._path(start), error=e)
            gone.append(start)
        return gone

    def units_from(self, pos: int) -> Iterator[Tuple[int, Unit]]:
        """Every whole unit from ``pos`` to the end (tests, tools)."""
        while pos < self.end:
            unit = self.read(pos)
            if unit is None:
                return
            yield pos, unit
            pos += UNIT_SIZE
