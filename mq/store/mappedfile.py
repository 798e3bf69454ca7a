"""Fixed-size memory-mapped files named by their 20-digit starting offset, and chains of them.

Why mmap: appends are a slice assignment into the page cache (no syscall per message), reads are a slice
copy, and ``fdatasync`` on the descriptor persists pages dirtied through the mapping. Measurements behind
the choice are in docs/store.md.

Why reserve: a write through a mapping into a page the filesystem cannot allocate is a SIGBUS, which kills the
process with nothing logged. So the blocks of every mapped file are allocated before anything is written into
them (``posix_fallocate``; where the filesystem cannot, by rewriting the range onto itself), and a full disk is
a ``DiskFullError`` at that moment, which the store turns into a refused put. A new file is reserved whole,
except where its writer reserves it in pieces as it goes (IndexFiles: 420 MiB each by default; ConsumeQueue
files, of which a broker with thousands of queues has thousands).
"""

from __future__ import annotations

import errno
import mmap
import os
import re
import threading
from typing import List, Optional, Tuple

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
MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23)  # Linux 5.14+; Python does not name it before 3.13


class StoreError(Exception):
    """The store's files are not in a state it can work with."""


class DiskFullError(StoreError):
    """The filesystem has no room for a file or for the part of one about to be written (ENOSPC, EDQUOT)."""


NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
_UNSUPPORTED = frozenset({errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS})
_REWRITE_CHUNK = 1 << 20


def posix_fallocate(fd: int, offset: int, length: int) -> None:
    """``os.posix_fallocate`` that raises its failure on every interpreter.

    PyPy 7.3 (Python 3.9) returns the error number (ENOSPC: 28) instead of raising it, as the C function does:
    taken for success, a file the disk had no room for was mapped unreserved, and the writes into it, or the
    next start's recovery, met a SIGBUS.
    """
    err = os.posix_fallocate(fd, offset, length)
    if err:
        raise OSError(err, os.strerror(err))


#: ``posix_fallocate(fd, offset, length)``; tests replace it to simulate a full or an unsupporting filesystem.
allocate = posix_fallocate if hasattr(os, "posix_fallocate") else None


def store_error(e: OSError, what: str) -> StoreError:
    """``e``, met while making room for ``what``, as the StoreError the put path answers with."""
    if e.errno in NO_SPACE:
        return DiskFullError(f"no space left for {what}")
    return StoreError(f"cannot make room for {what}: {e}")


def reserve_range(fd: int, offset: int, length: int, path: str) -> None:
    """Have the filesystem allocate ``length`` bytes of ``fd`` from ``offset``; the content is unchanged.

    Raises DiskFullError when there is no room, StoreError on any other failure.
    """
    try:
        try:
            if allocate is None:
                raise OSError(errno.ENOSYS, "posix_fallocate is not available")
            allocate(fd, offset, length)
        except OSError as e:
            if e.errno not in _UNSUPPORTED:
                raise
            _rewrite(fd, offset, length)
    except OSError as e:
        raise store_error(e, f"{length} bytes of {path}") from None


def _rewrite(fd: int, offset: int, length: int) -> None:
    """Allocate a range by writing its own bytes back (a filesystem without fallocate); keeps data intact."""
    end = offset + length
    while offset < end:
        chunk = os.pread(fd, min(_REWRITE_CHUNK, end - offset), offset)
        if not chunk:
            raise OSError(errno.EIO, "short read while reserving space")
        offset += os.pwrite(fd, chunk, offset)


def files_in(directory: str) -> List[str]:
    """The names of a chain's files in ``directory`` (20-digit offsets), sorted; none if it does not exist."""
    if not os.path.isdir(directory):
        return []
    return sorted(n for n in os.listdir(directory) if _NAME.match(n))


def fsync_dir(path: str) -> None:
    """fsync a directory, so the names created or removed in it survive power loss. Blocking."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_name(offset: int) -> str:
    return f"{offset:020d}"


def make_dirs(directory: str) -> None:
    """``os.makedirs`` whose failure is a StoreError (DiskFullError on a full disk)."""
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise store_error(e, f"the directory {directory}") from None


class MappedFile:
    """One file of ``size`` bytes starting at absolute offset ``start``.

    ``reserved``: the first ``reserved`` bytes are allocated on disk (writable without a SIGBUS); ``reserved_end``
    is the same as an absolute offset, for writers that check it per entry. A new file gets ``reserve`` bytes
    (all by default); an existing one 0 until ``reserve_upto`` is called.
    """

    __slots__ = ("path", "start", "size", "end", "fd", "mm", "reserved", "reserved_end")

    def __init__(self, path: str, start: int, size: int, create: bool = False, reserve: Optional[int] = None) -> None:
        self.path = path
        self.start = start
        self.size = size
        self.end = start + size
        self.reserved = 0
        self.reserved_end = start
        if create:
            self._create(path, size, size if reserve is None else min(reserve, size))
        else:
            self.fd = os.open(path, os.O_RDWR)
            try:
                actual = os.fstat(self.fd).st_size
                if actual != size:
                    raise StoreError(f"{path} has {actual} bytes, expected {size}")
            except BaseException:
                os.close(self.fd)
                raise
        try:
            self.mm = mmap.mmap(self.fd, size, access=mmap.ACCESS_WRITE)
        except BaseException:
            os.close(self.fd)
            raise

    def _create(self, path: str, size: int, reserve: int) -> None:
        """Size and reserve the file under a temporary name, then rename it: a crash never leaves a short
        file under the real name for recovery to trip over (leftovers go in ``remove_leftovers``), and a full
        disk leaves nothing at all."""
        if os.path.exists(path):
            raise StoreError(f"{path} exists already")
        creating = path + CREATING_SUFFIX
        try:
            self.fd = os.open(creating, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as e:
            raise store_error(e, f"the file {path}") from None
        try:
            try:
                os.ftruncate(self.fd, size)
            except OSError as e:
                raise store_error(e, f"the file {path}") from None
            if reserve:
                reserve_range(self.fd, 0, reserve, path)
            self.reserved = reserve
            self.reserved_end = self.start + reserve
            os.rename(creating, path)
        except BaseException:
            os.close(self.fd)
            try:
                os.unlink(creating)
            except OSError:
                pass
            raise

    def reserve_upto(self, upto: int) -> None:
        """Make the first ``upto`` bytes (at most the whole file) writable without a SIGBUS; DiskFullError if
        the disk has no room for them (nothing is written then)."""
        upto = min(upto, self.size)
        if upto > self.reserved:
            reserve_range(self.fd, self.reserved, upto - self.reserved, self.path)
            self.reserved = upto
            self.reserved_end = self.start + upto

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

    def advise_random(self, start: int = 0) -> None:
        """No readahead on faults from ``start`` (page-aligned) on: the part of a file not written yet, written
        a few entries at a time (a ConsumeQueue), would otherwise have each fault into a missing page read
        (zero-fill) a whole readahead window around it; measured here (Linux 6.18, ext4): 1.5 ms for the first
        write into a new 6 MB file, 3.7 µs with this. The written part keeps readahead for readers."""
        try:
            self.mm.madvise(mmap.MADV_RANDOM, start, self.size - start)
        except (AttributeError, OSError, ValueError):  # pragma: no cover - platform without madvise
            pass

    def zero_from(self, rel: int) -> None:
        """Zero the file from ``rel`` up to the first all-zero megabyte: stale bytes past a truncation point
        must never pass for records later. Only the chunks it writes zeros into are reserved first: the rest of
        a sparse file stays sparse."""
        mm = self.mm
        pos = rel
        while pos < self.size:
            end = min(self.size, (pos // _ZERO_CHUNK + 1) * _ZERO_CHUNK)
            chunk = mm[pos:end]
            if chunk.count(0) == len(chunk):
                if pos != rel:
                    break
            else:
                self.reserve_upto(end)
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


class Prefaulter:
    """Maps file pages ahead of a writer, in a thread of its own (RocketMQ's "warm mapped file" idea).

    A write into a page of a sparse file that is not mapped yet costs a page fault (0.7–2.5 µs per 4 KiB page
    here, on the reactor thread); into a populated page, a plain memory copy. ``request`` hands a range to the
    thread, which populates it with ``madvise(MADV_POPULATE_WRITE)`` (the GIL is released meanwhile); kernels
    without it get ``posix_fadvise(WILLNEED)``, which at least puts the pages in the page cache. Populating
    writes no data: the mapping's contents are unchanged. At most one range waits; a newer one replaces it.
    ``quiesce`` must be called before a file that may have been requested is closed: it waits for a running
    ``madvise`` and drops the waiting range.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: Optional[Tuple[MappedFile, int, int]] = None
        self._thread: Optional[threading.Thread] = None
        self._stopping = False
        self.populate = True  # False once the kernel refused MADV_POPULATE_WRITE
        self.requests = 0

    def request(self, f: MappedFile, rel: int, length: int) -> None:
        with self._cond:
            if self._stopping:
                return
            self._pending = (f, rel, length)
            self.requests += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mq-store-prefault", daemon=True)
                self._thread.start()
            self._cond.notify()

    def quiesce(self) -> None:
        with self._cond:  # the worker holds it while it populates
            self._pending = None

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._pending = None
            self._cond.notify()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        self._stopping = False

    def _run(self) -> None:
        cond = self._cond
        with cond:
            while True:
                while self._pending is None and not self._stopping:
                    cond.wait()
                if self._stopping:
                    return
                f, rel, length = self._pending  # type: ignore[misc]
                self._pending = None
                try:  # still holding the lock: the file cannot be closed meanwhile
                    self._populate(f, rel, length)
                except (OSError, ValueError, SystemError):  # closed or unmapped since (PyPy wraps OSError)
                    pass

    def _populate(self, f: MappedFile, rel: int, length: int) -> None:
        if self.populate:
            try:
                f.mm.madvise(MADV_POPULATE_WRITE, rel, length)
                return
            except OSError as e:
                if e.errno not in (22, 95):  # EINVAL/EOPNOTSUPP: the kernel has no MADV_POPULATE_WRITE
                    raise
                self.populate = False
            except SystemError:  # PyPy 7.3 wraps madvise's OSError, errno lost (and dumps a trace to stderr
                self.populate = False  # each time): fall back for good rather than repeat that on every range
        os.posix_fadvise(f.fd, rel, length, os.POSIX_FADV_WILLNEED)


class MappedFileQueue:
    """A directory of contiguous MappedFiles of one size; ``wrote``/``flushed`` are absolute offsets.

    ``reserve_whole``: new files, and the last one at load, are reserved whole; False leaves them to a writer
    that reserves as it goes (``MappedFile.reserve_upto``).
    """

    def __init__(self, directory: str, file_size: int, reserve_whole: bool = True) -> None:
        self.directory = directory
        self.file_size = file_size
        self.reserve_whole = reserve_whole
        self.files: List[MappedFile] = []
        self.wrote = 0
        self.flushed = 0
        self.dir_dirty = False

    def load(self, names: Optional[List[str]] = None) -> None:
        """Open every file in the directory (``names``: its ``files_in``, when the caller has read them already);
        refuse gaps and size mismatches."""
        if not os.path.isdir(self.directory):
            return
        remove_leftovers(self.directory)
        if names is None:
            names = files_in(self.directory)
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
            if self.reserve_whole:
                self.files[-1].reserve_upto(self.file_size)  # the one written into next (a no-op unless sparse)

    @property
    def min_offset(self) -> int:
        return self.files[0].start if self.files else 0

    def last(self) -> Optional[MappedFile]:
        return self.files[-1] if self.files else None

    def create(self, start: int, reserve: Optional[int] = None) -> MappedFile:
        """A new file at ``start`` with its first ``reserve`` bytes reserved (default: whole, or none without
        ``reserve_whole``); DiskFullError (and no file) if the disk has no room."""
        make_dirs(self.directory)
        if reserve is None and not self.reserve_whole:
            reserve = 0
        path = os.path.join(self.directory, file_name(start))
        f = MappedFile(path, start, self.file_size, create=True, reserve=reserve)
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
        fsync_dir(self.directory)

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
