"""IndexFiles: RocketMQ's hash index from ``topic#key`` to CommitLog offsets, with a time window per entry.

File layout (wire doc §5.4): a 40-byte header, ``slots`` i32 hash slots holding the newest entry number of
their chain, then ``max_index`` 20-byte entries (key hash, CommitLog offset, seconds since the file's first
message, previous entry number). Entry numbers start at 1; 0 means "none". A new file has its header and slots
reserved on disk; its entries are reserved ``RESERVE_AHEAD`` bytes at a time as they are written (the default
file is 420 MiB, mostly entries that may never be written).
"""

from __future__ import annotations

import os
import struct
import time
from operator import mul
from typing import Callable, Dict, List, Sequence, Tuple

import construct as c
from twisted.logger import Logger

from mq.common.hashing import HORNER_POWERS, MAX_FAST, POW31, index_key_hash, java_unsigned_hash
from mq.common.hotcache import PYPY
from mq.common.layout import FixedLayout
from mq.common.message import MessageConst
from mq.store.mappedfile import MappedFile, StoreError, make_dirs, remove_leftovers

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
_slot_unpack = _SLOT.unpack_from
_slot_pack = _SLOT.pack_into
_entry_pack = INDEX_ENTRY.pack_into
_header_pack = INDEX_HEADER.pack_into
_INT_MAX = 0x7FFFFFFF
_UNIQ = MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX
_KEYS = MessageConst.PROPERTY_KEYS
_KEY_SEPARATOR = MessageConst.KEY_SEPARATOR
_UNIQ_FIXED = 20  # MessageClientIDSetter: 20 hex characters of IP, pid and class loader, then 12 that vary:
_UNIQ_TIMED = 28  # 8 of time since the month began, 4 of a counter
_UNIQ_LENGTH = 32
RESERVE_AHEAD = 1 << 20  # entry bytes reserved on disk at a time
# The UNIQ_KEY's last 4 characters (MessageClientIDSetter's counter), their Horner sum looked up: CPython only;
# under PyPy the table made batches ~10% dearer end to end (paired runs), so no tail length matches there.
_TAIL = -1 if PYPY else 4
#: tail → its Java-hash Horner sum (ASCII tails only); bounded by the 65,536 spellings of a hex counter
_TAIL_SUMS: Dict[str, int] = {}
_TAIL_SUMS_MAX = 1 << 16
_POW31_TAIL = POW31[4]


def index_file_size(slots: int, max_index: int) -> int:
    return HEADER_SIZE + slots * SLOT_SIZE + max_index * ENTRY_SIZE


class IndexFile:
    """One IndexFile; the header lives in attributes and is written to the mapping on every put."""

    def __init__(self, path: str, slots: int, max_index: int, create: bool) -> None:
        self.slots = slots
        self.max_index = max_index
        self.path = path
        self._entries_at = HEADER_SIZE + slots * SLOT_SIZE
        self.file = MappedFile(path, 0, index_file_size(slots, max_index), create, self._entries_at + RESERVE_AHEAD)
        self.mm = self.file.mm
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

    def reserve(self, count: int) -> None:
        """Make room on disk for ``count`` more entries (DiskFullError if there is none; nothing written)."""
        end = self._entries_at + min(self.index_count + count, self.max_index) * ENTRY_SIZE
        if end > self.file.reserved:
            self.file.reserve_upto(end + RESERVE_AHEAD)

    def repair_torn_tail(self) -> int:
        """Undo a put the process died in; returns how many slots were repaired.

        A put writes its entry, then the slot, then the header. Killed in between, a slot names an entry at or
        past ``index_count``; indexing that message again would chain the entry to itself and cut every older
        entry of the slot off. Each such slot is walked back through the torn entries' ``prev`` links (written
        before the slot) to the newest entry the header vouches for, and the torn entries are zeroed.
        """
        mm = self.mm
        count = self.index_count
        repaired = 0
        pos = count
        while pos < self.max_index:
            at = self._entries_at + pos * ENTRY_SIZE
            if mm[at : at + ENTRY_SIZE] == bytes(ENTRY_SIZE):
                break
            slot_pos = HEADER_SIZE + (INDEX_ENTRY.unpack_from(mm, at)[0] % self.slots) * SLOT_SIZE
            head = _slot_unpack(mm, slot_pos)[0]
            if head >= count:
                while head >= count:
                    prev = INDEX_ENTRY.unpack_from(mm, self._entries_at + head * ENTRY_SIZE)[3] if head < self.max_index else 0
                    head = prev if prev < head else 0  # links only point back; anything else is junk
                _slot_pack(mm, slot_pos, max(head, 0))
                repaired += 1
            pos += 1
        if pos > count:
            self.file.reserve_upto(self._entries_at + pos * ENTRY_SIZE)
            start = self._entries_at + count * ENTRY_SIZE
            mm[start : self._entries_at + pos * ENTRY_SIZE] = bytes((pos - count) * ENTRY_SIZE)
            self.dirty = True
        return repaired

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
        return self.put_hashes(((index_key_hash(key), phy_offset),), store_timestamp) == 1

    def put_hash(self, key_hash: int, phy: int, store_timestamp: int) -> None:
        """``put_hashes`` for one key (the usual message: a UNIQ_KEY only); the caller checks ``is_full``."""
        n = self.index_count
        if self._entries_at + (n + 1) * ENTRY_SIZE > self.file.reserved:
            self.reserve(1)
        begin = self.begin_timestamp
        if begin <= 0:
            time_diff = 0
        else:
            time_diff = min(max((store_timestamp - begin) // 1000, 0), _INT_MAX)
        mm = self.mm
        slot_pos = HEADER_SIZE + (key_hash % self.slots) * SLOT_SIZE
        prev = _slot_unpack(mm, slot_pos)[0]
        if prev <= 0 or prev >= n:
            prev = 0
            self.hash_slot_count += 1
        _entry_pack(mm, self._entries_at + n * ENTRY_SIZE, key_hash, phy, time_diff, prev)
        _slot_pack(mm, slot_pos, n)
        if n <= 1:
            self.begin_phy_offset = phy
            self.begin_timestamp = begin = store_timestamp
        self.index_count = n + 1
        self.end_phy_offset = phy
        self.end_timestamp = store_timestamp
        _header_pack(mm, 0, begin, store_timestamp, self.begin_phy_offset, phy, self.hash_slot_count, n + 1)
        self.dirty = True

    def put_hashes(self, keys: Sequence[Tuple[int, int]], store_timestamp: int, start: int = 0) -> int:
        """Add ``(index_key_hash(key), CommitLog offset)`` pairs from ``keys[start]`` on, all stored at
        ``store_timestamp``, until the file is full; returns how many were added. The header is written once,
        at the end."""
        n = self.index_count
        room = self.max_index - n
        if room <= 0 or start >= len(keys):
            return 0
        self.reserve(min(room, len(keys) - start))
        if self.begin_timestamp <= 0:
            time_diff = 0
        else:
            time_diff = min(max((store_timestamp - self.begin_timestamp) // 1000, 0), _INT_MAX)
        mm = self.mm
        slots = self.slots
        entries_at = self._entries_at
        new_slots = 0
        first = n
        phy = 0
        for key_hash, phy in keys[start : start + room]:
            slot_pos = HEADER_SIZE + (key_hash % slots) * SLOT_SIZE
            prev = _slot_unpack(mm, slot_pos)[0]
            if prev <= 0 or prev >= n:
                prev = 0
                new_slots += 1
            _entry_pack(mm, entries_at + n * ENTRY_SIZE, key_hash, phy, time_diff, prev)
            _slot_pack(mm, slot_pos, n)
            if n <= 1:
                self.begin_phy_offset = phy
                self.begin_timestamp = store_timestamp
            n += 1
        self.hash_slot_count += new_slots
        self.index_count = n
        self.end_phy_offset = phy
        self.end_timestamp = store_timestamp
        self._write_header()
        self.dirty = True
        return n - first

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
        self._prefix_hashes: Dict[str, Dict[str, int]] = {}  # topic -> {UNIQ_KEY head: hash of topic#head}
        self._last_mid: Tuple[str, str, int] = ("", "", 0)  # (topic, a key's first 28 characters, hash of topic#those)
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
        if self.files:
            last = self.files[-1]
            last.file.reserve_upto(last._entries_at + last.index_count * ENTRY_SIZE)  # a no-op unless sparse
            repaired = last.repair_torn_tail()
            if repaired:
                log.warn("{path}: repaired {n} hash slots left by an interrupted put", path=self.files[-1].path, n=repaired)
        if self.files and self.files[-1].has_entries:
            self.indexed_until = self.files[-1].end_phy_offset

    def prepare(self, keys: int) -> None:
        """Make room for ``keys`` more entries (a new file if the last lacks it) before the put writes its
        record: a full disk then refuses the put instead of failing after it was stored."""
        files = self.files
        if files:  # the usual case, kept cheap: the last file has the room, reserved already
            f = files[-1]
            end = f.index_count + keys
            if end <= self.max_index and f._entries_at + end * ENTRY_SIZE <= f.file.reserved:
                return
        keys = min(keys, self.max_index - 1)
        f = files[-1] if files else None
        if f is None or f.index_count + keys > self.max_index:
            f = self._new_file()
        f.reserve(keys)

    def _writable(self) -> IndexFile:
        if self.files and not self.files[-1].is_full:
            return self.files[-1]
        return self._new_file()

    def _new_file(self) -> IndexFile:
        make_dirs(self.directory)
        ms = self.now_ms()
        while True:
            path = os.path.join(self.directory, _file_name(ms))
            if not os.path.exists(path):
                break
            ms += 1
        f = IndexFile(path, self.slots, self.max_index, create=True)
        self.files.append(f)
        return f

    def build(self, topic: str, properties: Dict[str, str], phy: int, store_timestamp: int) -> None:
        """Index a message's UNIQ_KEY and each KEYS token as ``topic#key``."""
        if phy > self.indexed_until:
            if _KEYS not in properties:  # the usual message: its UNIQ_KEY at most, one entry, no lists
                uniq = properties.get(_UNIQ)
                if uniq:
                    files = self.files
                    f = files[-1] if files and not files[-1].is_full else self._writable()
                    f.put_hash(self._uniq_hash(topic, uniq), phy, store_timestamp)
                self.indexed_until = phy
                return
            keys: List[Tuple[int, int]] = []
            self._message_keys(topic, properties, phy, keys)
            self._put(keys, store_timestamp)
            self.indexed_until = phy

    def build_batch(
        self, topic: str, properties: Sequence[Dict[str, str]], phy: int, sizes: Sequence[int], store_timestamp: int
    ) -> None:
        """``build`` for consecutive messages (the first at ``phy``, then ``sizes`` apart) stored at one time."""
        keys: List[Tuple[int, int]] = []
        until = self.indexed_until
        last = until
        uniq_hash = self._uniq_hash
        for props, size in zip(properties, sizes):
            if phy > until:
                if _KEYS in props:
                    self._message_keys(topic, props, phy, keys)
                else:  # the usual member: its UNIQ_KEY only
                    uniq = props.get(_UNIQ)
                    if uniq:
                        keys.append((uniq_hash(topic, uniq), phy))
                last = phy
            phy += size
        if last != until:
            self._put(keys, store_timestamp)
            self.indexed_until = last

    def build_uniq(self, topic: str, uniq_keys: Sequence[str], phy: int, sizes: Sequence[int], store_timestamp: int) -> None:
        """``build_batch`` for members whose only key is a non-empty UNIQ_KEY (the broker's one-pass batches)."""
        keys: List[Tuple[int, int]] = []
        until = self.indexed_until
        last = until
        uniq_hash = self._uniq_hash
        add = keys.append
        for uniq, size in zip(uniq_keys, sizes):
            if phy > until:
                add((uniq_hash(topic, uniq), phy))
                last = phy
            phy += size
        if last != until:
            self._put(keys, store_timestamp)
            self.indexed_until = last

    def _message_keys(self, topic: str, properties: Dict[str, str], phy: int, out: List[Tuple[int, int]]) -> None:
        """Append (key hash, ``phy``) for the message's UNIQ_KEY and each KEYS token.

        ``topic#`` is hashed once per topic, and so is ``topic#`` + the first 20 characters of a UNIQ_KEY (a
        producer's fixed address/pid/loader part): only the varying rest of a key is hashed per message. KEYS
        tokens of a UNIQ_KEY's length are hashed the same way: a trace message's keys are the ids of the
        messages it traces (a quarter of the cost of hashing each whole).
        """
        uniq = properties.get(_UNIQ)
        if uniq:
            out.append((self._uniq_hash(topic, uniq), phy))
        user_keys = properties.get(_KEYS)
        if user_keys:
            topic_hash = self._topic_cache(topic)[""]
            uniq_hash = self._uniq_hash
            for k in user_keys.split(_KEY_SEPARATOR):
                if len(k) == _UNIQ_LENGTH:  # a message id (a trace message's keys are hundreds of them)
                    out.append((uniq_hash(topic, k), phy))
                elif k:
                    out.append((index_key_hash(k, topic_hash), phy))

    def _topic_cache(self, topic: str) -> Dict[str, int]:
        """{"": hash of ``topic#``, UNIQ_KEY head: hash of ``topic#head``} for one topic."""
        cache = self._prefix_hashes.get(topic)
        if cache is None:
            if len(self._prefix_hashes) > 1024:
                self._prefix_hashes.clear()
            cache = self._prefix_hashes[topic] = {"": java_unsigned_hash(topic + "#")}
        return cache

    def _uniq_hash(self, topic: str, uniq: str) -> int:
        """``index_key_hash("topic#" + uniq)``, with ``topic#`` + the key's 20-character head hashed once, and
        ``topic#`` + its first 28 characters (head and time) remembered for the next key: the members of a batch,
        made in the same millisecond, differ only in their last 4 (MessageClientIDSetter's counter)."""
        mid = uniq[:_UNIQ_TIMED]
        memo = self._last_mid
        if memo[1] == mid and memo[0] == topic:
            prefix_hash = memo[2]
            tail = uniq[_UNIQ_TIMED:]
        else:
            cache = self._prefix_hashes.get(topic) or self._topic_cache(topic)
            head = uniq[:_UNIQ_FIXED]
            prefix_hash = cache.get(head)
            if prefix_hash is None:
                if len(cache) > 4096:
                    topic_hash = cache[""]
                    cache.clear()
                    cache[""] = topic_hash
                prefix_hash = cache[head] = java_unsigned_hash(head, cache[""])
            tail = uniq[_UNIQ_FIXED:]
            if len(mid) == _UNIQ_TIMED and mid.isascii():
                prefix_hash = java_unsigned_hash(mid[_UNIQ_FIXED:], prefix_hash)
                self._last_mid = (topic, mid, prefix_hash)
                tail = uniq[_UNIQ_TIMED:]
        n = len(tail)
        if n == _TAIL:  # the producer's counter: its own Horner sum looked up, not recomputed
            own = _TAIL_SUMS.get(tail)
            if own is None:
                if not tail.isascii():
                    return index_key_hash(tail, prefix_hash)
                own = sum(map(mul, tail.encode("ascii"), HORNER_POWERS[n]))
                if len(_TAIL_SUMS) < _TAIL_SUMS_MAX:
                    _TAIL_SUMS[tail] = own
            h = (own + prefix_hash * _POW31_TAIL) & 0xFFFFFFFF
        elif n == 4 and PYPY and tail.isascii():  # the counter under PyPy's JIT: four ord()s cost ~10 ns, map/sum ~150
            h = (ord(tail[0]) * 29791 + ord(tail[1]) * 961 + ord(tail[2]) * 31 + ord(tail[3])
                 + prefix_hash * _POW31_TAIL) & 0xFFFFFFFF
        elif n > MAX_FAST or not tail.isascii():
            return index_key_hash(tail, prefix_hash)
        else:  # index_key_hash inlined: Java's hash of an ASCII tail continued from the prefix's, then abs().
            h = (sum(map(mul, tail.encode("ascii"), HORNER_POWERS[n])) + prefix_hash * POW31[n]) & 0xFFFFFFFF
        if h & 0x80000000:
            h = 0x100000000 - h
            return 0 if h > 0x7FFFFFFF else h
        return h

    def _put(self, keys: List[Tuple[int, int]], store_timestamp: int) -> None:
        done = 0
        while done < len(keys):
            f = self.files[-1] if self.files and not self.files[-1].is_full else self._writable()
            done += f.put_hashes(keys, store_timestamp, done)

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
