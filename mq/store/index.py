"""IndexFiles: RocketMQ's hash index from ``topic#key`` to CommitLog offsets, with a time window per entry.

File layout (wire doc §5.4): a 40-byte header, ``slots`` i32 hash slots holding the newest entry number of
their chain, then ``max_index`` 20-byte entries (key hash, CommitLog offset, seconds since the file's first
message, previous entry number). Entry numbers start at 1; 0 means "none". Files are created sparse.
"""

from __future__ import annotations

import os
import struct
import time
from typing import Callable, List, Tuple

import construct as c
from twisted.logger import Logger

from mq.common.hashing import index_key_hash
from mq.common.layout import FixedLayout
from mq.common.message import MessageConst
from mq.store.mappedfile import MappedFile, StoreError, remove_leftovers

log = Logger()

INDEX_HEADER = FixedLayout(
    ("begin_timestamp", c.Int64sb),
    ("end_timestamp", c.Int64sb),
    ("begin_phy_offset", c.Int64sb),
    ("end_phy_offset", c.Int64sb),
    ("hash_slot_count", c.Int32sb),
    ("index_count", c.Int32sb),
)
INDEX_ENTRY = FixedLayout(
    ("key_hash", c.Int32sb), ("phy_offset", c.Int64sb), ("time_diff", c.Int32sb), ("prev_index", c.Int32sb)
)
HEADER_SIZE = INDEX_HEADER.size  # 40
ENTRY_SIZE = INDEX_ENTRY.size  # 20
SLOT_SIZE = 4
_SLOT = struct.Struct(">i")
_INT_MAX = 0x7FFFFFFF


def index_file_size(slots: int, max_index: int) -> int:
    return HEADER_SIZE + slots * SLOT_SIZE + max_index * ENTRY_SIZE


class IndexFile:
    """One IndexFile; the header lives in attributes and is written to the mapping on every put."""

    def __init__(self, path: str, slots: int, max_index: int, create: bool) -> None:
        self.slots = slots
        self.max_index = max_index
        self.path = path
        self.file = MappedFile(path, 0, index_file_size(slots, max_index), create=create)
        self.mm = self.file.mm
        self._entries_at = HEADER_SIZE + slots * SLOT_SIZE
        self.dirty = create
        if create:
            self.begin_timestamp = self.end_timestamp = 0
            self.begin_phy_offset = self.end_phy_offset = 0
            self.hash_slot_count = 0
            self.index_count = 1
            self._write_header()
        else:
            (self.begin_timestamp, self.end_timestamp, self.begin_phy_offset, self.end_phy_offset,
             self.hash_slot_count, self.index_count) = INDEX_HEADER.unpack_from(self.mm, 0)  # fmt: skip
            if self.index_count < 1:
                self.index_count = 1

    def _write_header(self) -> None:
        INDEX_HEADER.pack_into(
            self.mm, 0, self.begin_timestamp, self.end_timestamp, self.begin_phy_offset, self.end_phy_offset,
            self.hash_slot_count, self.index_count,
        )  # fmt: skip

    @property
    def is_full(self) -> bool:
        return self.index_count >= self.max_index

    @property
    def has_entries(self) -> bool:
        return self.index_count > 1

    def put_key(self, key: str, phy_offset: int, store_timestamp: int) -> bool:
        """Add one key; False if the file is full."""
        if self.index_count >= self.max_index:
            return False
        key_hash = index_key_hash(key)
        slot_pos = HEADER_SIZE + (key_hash % self.slots) * SLOT_SIZE
        mm = self.mm
        prev = _SLOT.unpack_from(mm, slot_pos)[0]
        if prev <= 0 or prev > self.index_count:
            prev = 0
        if self.begin_timestamp <= 0:
            time_diff = 0
        else:
            time_diff = min(max((store_timestamp - self.begin_timestamp) // 1000, 0), _INT_MAX)
        n = self.index_count
        INDEX_ENTRY.pack_into(mm, self._entries_at + n * ENTRY_SIZE, key_hash, phy_offset, time_diff, prev)
        _SLOT.pack_into(mm, slot_pos, n)
        if n <= 1:
            self.begin_phy_offset = phy_offset
            self.begin_timestamp = store_timestamp
        if prev == 0:
            self.hash_slot_count += 1
        self.index_count = n + 1
        self.end_phy_offset = phy_offset
        self.end_timestamp = store_timestamp
        self._write_header()
        self.dirty = True
        return True

    def is_time_matched(self, begin: int, end: int) -> bool:
        return self.begin_timestamp <= end and self.end_timestamp >= begin

    def select(self, key: str, max_num: int, begin: int, end: int, out: List[int]) -> None:
        """Append to ``out`` the offsets of entries for ``key`` stored within [begin, end], newest first."""
        key_hash = index_key_hash(key)
        mm = self.mm
        n = _SLOT.unpack_from(mm, HEADER_SIZE + (key_hash % self.slots) * SLOT_SIZE)[0]
        if n <= 0 or n >= self.index_count:
            return
        seen = set()
        while len(out) < max_num and n not in seen:
            seen.add(n)
            h, phy, diff, prev = INDEX_ENTRY.unpack_from(mm, self._entries_at + n * ENTRY_SIZE)
            t = self.begin_timestamp + diff * 1000
            if h == key_hash and begin <= t <= end:
                out.append(phy)
            if prev <= 0 or prev >= self.index_count or t < begin:
                break
            n = prev

    def sync(self) -> None:
        self.file.sync()

    def close(self) -> None:
        self.file.close()

    def destroy(self) -> None:
        self.file.destroy()


def _file_name(ms: int) -> str:
    t = time.localtime(ms / 1000)
    return time.strftime("%Y%m%d%H%M%S", t) + f"{ms % 1000:03d}"


class IndexService:
    """The chain of IndexFiles: builds entries from dispatched messages and answers key queries."""

    def __init__(self, directory: str, slots: int, max_index: int, now_ms: Callable[[], int]) -> None:
        self.directory = directory
        self.slots = slots
        self.max_index = max_index
        self.now_ms = now_ms
        self.files: List[IndexFile] = []
        self.indexed_until = -1  # CommitLog offset of the last indexed message; re-dispatch skips up to it
        self.flushed = 0

    def load(self) -> None:
        if not os.path.isdir(self.directory):
            return
        size = index_file_size(self.slots, self.max_index)
        remove_leftovers(self.directory)
        for name in sorted(os.listdir(self.directory)):
            path = os.path.join(self.directory, name)
            if not name.isdigit() or os.path.getsize(path) != size:
                raise StoreError(f"{path}: not an index file of {self.slots} slots and {self.max_index} entries")
            self.files.append(IndexFile(path, self.slots, self.max_index, create=False))
        if self.files and self.files[-1].has_entries:
            self.indexed_until = self.files[-1].end_phy_offset

    def _writable(self) -> IndexFile:
        if self.files and not self.files[-1].is_full:
            return self.files[-1]
        os.makedirs(self.directory, exist_ok=True)
        ms = self.now_ms()
        while True:
            path = os.path.join(self.directory, _file_name(ms))
            if not os.path.exists(path):
                break
            ms += 1
        f = IndexFile(path, self.slots, self.max_index, create=True)
        self.files.append(f)
        return f

    def build(self, topic: str, properties: dict, phy: int, store_timestamp: int) -> None:
        """Index a message's UNIQ_KEY and each KEYS token as ``topic#key``."""
        if phy <= self.indexed_until:
            return
        f = self.files[-1] if self.files and not self.files[-1].is_full else self._writable()
        uniq = properties.get(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
        if uniq:
            f = self._put(f, f"{topic}#{uniq}", phy, store_timestamp)
        keys = properties.get(MessageConst.PROPERTY_KEYS)
        if keys:
            for k in keys.split(MessageConst.KEY_SEPARATOR):
                if k:
                    f = self._put(f, f"{topic}#{k}", phy, store_timestamp)
        self.indexed_until = phy

    def _put(self, f: IndexFile, key: str, phy: int, ts: int) -> IndexFile:
        if not f.put_key(key, phy, ts):
            f = self._writable()
            f.put_key(key, phy, ts)
        return f

    def query(self, topic: str, key: str, max_num: int, begin: int, end: int) -> Tuple[List[int], int, int]:
        """(offsets newest first without duplicates, last update timestamp, last update offset)."""
        out: List[int] = []
        full_key = f"{topic}#{key}"
        for f in reversed(self.files):
            if len(out) >= max_num:
                break
            if f.has_entries and f.is_time_matched(begin, end):
                f.select(full_key, max_num, begin, end, out)
        last = self.files[-1] if self.files else None
        uniq = list(dict.fromkeys(out))
        return uniq, (last.end_timestamp if last else 0), (last.end_phy_offset if last else 0)

    def truncate(self, phy_end: int) -> None:
        """After the CommitLog was cut at ``phy_end``: let offsets from there be indexed again."""
        self.indexed_until = min(self.indexed_until, phy_end - 1)

    def delete_expired(self, min_phy: int) -> int:
        """Delete files (never the last) whose newest entry is below ``min_phy``."""
        deleted = 0
        while len(self.files) > 1 and self.files[0].end_phy_offset < min_phy:
            self.files.pop(0).destroy()
            deleted += 1
        return deleted

    def collect_dirty(self) -> List[MappedFile]:
        """Files written since the last call (to fsync off the reactor thread)."""
        dirty = [f.file for f in self.files if f.dirty]
        for f in self.files:
            f.dirty = False
        return dirty

    def release_pages(self) -> None:
        for f in self.files:
            f.file.release_pages()

    def close(self) -> None:
        for f in self.files:
            f.close()
        self.files = []
