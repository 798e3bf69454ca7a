"""Fixed-size memory-mapped files named by their 20-digit starting offset, and chains of them.

Why mmap: appends are a slice assignment into the page cache (no syscall per message), reads are a slice
copy, and ``fdatasync`` on the descriptor persists pages dirtied through the mapping. Measurements behind
the choice are in docs/store.md. Files are created sparse (``ftruncate``), so a 1 GiB file costs nothing
until written.
"""

from __future__ import annotations

import mmap
import os
import re
from typing import List, Optional

from twisted.logger import Logger

log = Logger()

_NAME = re.compile(r"^\d{20}$")
CREATING_SUFFIX = ".creating"


def remove_leftovers(directory: str) -> None:
    """Delete files a crash left half-created (never renamed into place, so they hold no data)."""
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        if name.endswith(CREATING_SUFFIX):
            log.warn("removing {path}, left half-created by a crash", path=os.path.join(directory, name))
            os.unlink(os.path.join(directory, name))
_ZERO_CHUNK = 1 << 20
PAGE = mmap.PAGESIZE


class StoreError(Exception):
    """The store's files are not in a state it can work with."""


def file_name(offset: int) -> str:
    return f"{offset:020d}"


class MappedFile:
    """One file of ``size`` bytes starting at absolute offset ``start``."""

    __slots__ = ("path", "start", "size", "end", "fd", "mm")

    def __init__(self, path: str, start: int, size: int, create: bool = False) -> None:
        self.path = path
        self.start = start
        self.size = size
        self.end = start + size
        if create:
            # Sized under a temporary name, then renamed: a crash never leaves a short file under the
            # real name for recovery to trip over (leftovers are removed by ``remove_leftovers``).
            if os.path.exists(path):
                raise StoreError(f"{path} exists already")
            creating = path + CREATING_SUFFIX
            self.fd = os.open(creating, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        else:
            self.fd = os.open(path, os.O_RDWR)
        try:
            if create:
                os.ftruncate(self.fd, size)
                os.rename(creating, path)
            else:
                actual = os.fstat(self.fd).st_size
                if actual != size:
                    raise StoreError(f"{path} has {actual} bytes, expected {size}")
            self.mm = mmap.mmap(self.fd, size, access=mmap.ACCESS_WRITE)
        except BaseException:
            os.close(self.fd)
            raise

    def sync(self) -> None:
        """Make every page written so far durable (mapped writes included). Blocking: call off the reactor."""
        os.fdatasync(self.fd)

    def release_pages(self, start: int = 0, length: Optional[int] = None) -> None:
        """Drop this mapping's resident pages (they stay in the page cache; dirty ones stay dirty).

        Keeps the process's resident memory flat however much data passes through the mapping.
        """
        try:
            self.mm.madvise(mmap.MADV_DONTNEED, start, self.size - start if length is None else length)
        except (AttributeError, OSError, ValueError):  # pragma: no cover - platform without madvise
            pass

    def zero_from(self, rel: int) -> None:
        """Zero the file from ``rel`` up to the first all-zero megabyte: stale bytes past a truncation point
        must never pass for records later."""
        mm = self.mm
        pos = rel
        while pos < self.size:
            end = min(self.size, (pos // _ZERO_CHUNK + 1) * _ZERO_CHUNK)
            chunk = mm[pos:end]
            if chunk.count(0) == len(chunk):
                if pos != rel:
                    break
            else:
                mm[pos:end] = bytes(end - pos)
            pos = end

    def close(self) -> None:
        try:
            self.mm.close()
        finally:
            os.close(self.fd)

    def destroy(self) -> None:
        self.close()
        os.unlink(self.path)

    def mtime(self) -> float:
        return os.fstat(self.fd).st_mtime

    def __repr__(self) -> str:
        return f"MappedFile({self.path!r})"


class MappedFileQueue:
    """A directory of contiguous MappedFiles of one size; ``wrote``/``flushed`` are absolute offsets."""

    def __init__(self, directory: str, file_size: int) -> None:
        self.directory = directory
        self.file_size = file_size
        self.files: List[MappedFile] = []
        self.wrote = 0
        self.flushed = 0
        self.dir_dirty = False

    def load(self) -> None:
        """Open every file in the directory; refuse gaps and size mismatches."""
        if not os.path.isdir(self.directory):
            return
        remove_leftovers(self.directory)
        names = sorted(n for n in os.listdir(self.directory) if _NAME.match(n))
        expected = None
        for name in names:
            start = int(name)
            if start % self.file_size:
                raise StoreError(f"{self.directory}/{name}: offset is not a multiple of the file size {self.file_size}")
            if expected is not None and start != expected:
                raise StoreError(f"{self.directory}: missing file before {name}")
            self.files.append(MappedFile(os.path.join(self.directory, name), start, self.file_size))
            expected = start + self.file_size
        if self.files:
            self.wrote = self.flushed = self.files[-1].end

    @property
    def min_offset(self) -> int:
        return self.files[0].start if self.files else 0

    def last(self) -> Optional[MappedFile]:
        return self.files[-1] if self.files else None

    def create(self, start: int) -> MappedFile:
        os.makedirs(self.directory, exist_ok=True)
        f = MappedFile(os.path.join(self.directory, file_name(start)), start, self.file_size, create=True)
        self.files.append(f)
        self.dir_dirty = True
        return f

    def find(self, offset: int) -> Optional[MappedFile]:
        """The file holding absolute ``offset``, or None."""
        files = self.files
        if not files:
            return None
        i = (offset - files[0].start) // self.file_size
        if 0 <= i < len(files):
            return files[i]
        return None

    def dirty_files(self) -> List[MappedFile]:
        """Files with bytes between ``flushed`` and ``wrote``."""
        lo, hi = self.flushed, self.wrote
        return [f for f in self.files if f.end > lo and f.start < hi]

    def sync_dir(self) -> None:
        """fsync the directory so new file names survive power loss. Blocking."""
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def truncate(self, offset: int) -> None:
        """Forget everything at and after ``offset``: zero the tail of its file, delete later files."""
        while self.files and self.files[-1].start >= offset:
            f = self.files.pop()
            log.info("deleting {path} past truncation point {offset}", path=f.path, offset=offset)
            f.destroy()
            self.dir_dirty = True
        f = self.find(offset)
        if f is not None and offset < f.end:
            f.zero_from(offset - f.start)
        self.wrote = offset
        self.flushed = min(self.flushed, offset)

    def delete_first(self) -> MappedFile:
        f = self.files.pop(0)
        f.destroy()
        self.dir_dirty = True
        return f

    def release_pages(self) -> None:
        for f in self.files:
            f.release_pages()

    def close(self) -> None:
        for f in self.files:
            f.close()
        self.files = []

    def disk_bytes(self) -> int:
        return sum(os.fstat(f.fd).st_blocks * 512 for f in self.files)
