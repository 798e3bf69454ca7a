"""ConsumeQueues: per topic and queue id, 20-byte entries (CommitLog offset, size, tags code).

Entry N of a queue lives at byte N*20 of the queue's file chain, so a logical offset is a position. Entries
are written by the dispatcher that follows the CommitLog, which is why they can always be rebuilt from it.

A queue's files are reserved on disk ``RESERVE_AHEAD`` bytes ahead of its writer, not whole: a file is 5.7 MiB
at RocketMQ's default size, so a broker with 8,000 queues reserved 46 GB of disk before a message was in most
of them (RocketMQ's files are sparse, and fill as written).
"""

from __future__ import annotations

import os
import shutil
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import construct as c
from twisted.logger import Logger

from mq.common.layout import FixedLayout
from mq.common.names import path_under, topic_error
from mq.store.mappedfile import PAGE, MappedFile, MappedFileQueue, files_in

log = Logger()

CQ_ENTRY = FixedLayout(("commit_log_offset", c.Int64sb), ("size", c.Int32sb), ("tags_code", c.Int64sb))
ENTRY_SIZE = CQ_ENTRY.size  # 20
_pack_into = CQ_ENTRY.pack_into
_unpack_from = CQ_ENTRY.unpack_from
PAD_SIZE = 0x7FFFFFFF  # (0, Integer.MAX_VALUE, 0): filler before a queue's first real entry
RESERVE_AHEAD = 4096 * ENTRY_SIZE  # 80 KiB: disk reserved past an entry about to be written, a multiple of both


def queue_file_size(configured: int) -> int:
    """``mappedFileSizeConsumeQueue`` (bytes, as in RocketMQ) rounded up to whole entries, as RocketMQ does."""
    return -(-configured // ENTRY_SIZE) * ENTRY_SIZE


class ConsumeQueue:
    """One topic/queue id. Offsets in the public methods are logical (entry numbers).

    ``file_size``: bytes per file, a multiple of ENTRY_SIZE, for the queue's new files; a queue whose files on
    disk have another size keeps theirs (``load``).
    """

    def __init__(self, topic: str, queue_id: int, root: str, file_size: int) -> None:
        self.topic = topic
        self.queue_id = queue_id
        self.directory = path_under(root, topic, str(queue_id))  # IllegalName for a topic that is no name
        self.files = MappedFileQueue(self.directory, file_size, reserve_whole=False)
        self.file_size = file_size
        self.min_logic_bytes = 0  # first usable entry position (after retention), bytes
        self.max_phy_end = -1  # end of the last dispatched record in the CommitLog
        self._cur: Optional[MappedFile] = None
        self._released_upto = 0  # pages before this absolute offset were given back (``release_pages``)

    # ------------------------------------------------------------------ bounds

    @property
    def max_offset(self) -> int:
        """The next logical offset to be written (= number of entries)."""
        return self.files.wrote // ENTRY_SIZE

    @property
    def min_offset(self) -> int:
        return self.min_logic_bytes // ENTRY_SIZE

    # ------------------------------------------------------------------ writing

    def put(self, queue_offset: int, phy: int, size: int, tags_code: int) -> None:
        pos = queue_offset * ENTRY_SIZE
        f = self._cur
        if f is None or not f.start <= pos < f.reserved_end:
            f = self._file_for(pos)
            if f is None:
                log.warn("{topic}/{qid}: entry {offset} is before the first file, dropped",
                         topic=self.topic, qid=self.queue_id, offset=queue_offset)  # fmt: skip
                return
        _pack_into(f.mm, pos - f.start, phy, size, tags_code)
        files = self.files
        if pos >= files.wrote:
            files.wrote = pos + ENTRY_SIZE
            self.max_phy_end = phy + size
        elif pos < files.flushed:
            files.flushed = pos

    def put_batch(self, queue_offset: int, phy: int, sizes: Sequence[int], tags_codes: Sequence[int]) -> None:
        """Entries for consecutive records (the first at ``phy``) from logical ``queue_offset`` on."""
        pos = queue_offset * ENTRY_SIZE
        end = pos + len(sizes) * ENTRY_SIZE
        f = self._cur
        if f is None or not f.start <= pos or end > f.reserved_end:  # not all in the current reserved part
            for size, tags_code in zip(sizes, tags_codes):
                self.put(queue_offset, phy, size, tags_code)
                queue_offset += 1
                phy += size
            return
        mm = f.mm
        rel = pos - f.start
        for size, tags_code in zip(sizes, tags_codes):
            _pack_into(mm, rel, phy, size, tags_code)
            rel += ENTRY_SIZE
            phy += size
        files = self.files
        if pos < files.wrote and pos < files.flushed:
            files.flushed = pos
        if end > files.wrote:
            files.wrote = end
            self.max_phy_end = phy

    def prepare(self, queue_offset: int, count: int = 1) -> None:
        """Create the files that ``count`` entries from ``queue_offset`` go into, before the put writes its
        record: a full disk then refuses the put (DiskFullError) instead of failing after it was stored."""
        pos = queue_offset * ENTRY_SIZE
        last = pos + (count - 1) * ENTRY_SIZE
        f = self._cur
        if f is None or not f.start <= pos or last >= f.reserved_end:
            self._file_for(pos)
            if last != pos:
                self._file_for(last)

    def _file_for(self, pos: int) -> Optional[MappedFile]:
        """The file entry position ``pos`` goes into, created if need be and reserved on disk past ``pos``."""
        files = self.files
        if not files.files:
            start = pos - pos % self.file_size
            f = files.create(start, reserve=min(self.file_size, pos - start + ENTRY_SIZE + RESERVE_AHEAD))
            f.advise_random()
            files.wrote = files.flushed = start
            if pos > start:  # the queue starts late: pad like RocketMQ so entry positions stay logical
                for p in range(0, pos - start, ENTRY_SIZE):
                    _pack_into(f.mm, p, 0, PAD_SIZE, 0)
                files.wrote = pos
            self.min_logic_bytes = pos
        elif pos < files.files[0].start:
            return None
        else:
            while pos >= files.files[-1].end:
                files.create(files.files[-1].end).advise_random()
        f = files.find(pos)
        if f is not None:
            f.reserve_upto(pos - f.start + ENTRY_SIZE + RESERVE_AHEAD)
        if f is files.files[-1]:
            self._cur = f
        return f

    def release_pages(self, sweep: bool) -> None:
        """Give back the resident pages behind the one being written, which stays mapped: released, each
        queue's next entry was a page fault (about 5 µs), and with thousands of queues taking a few entries a
        second each, most puts paid one. Without ``sweep`` only when the writer has moved to a new page since;
        a sweep (now and then) also gives back pages that reads brought in."""
        files = self.files
        keep = files.wrote
        f = files.find(keep)
        if f is not None:  # pages count from each file's start: files are whole entries, not whole pages
            keep -= (keep - f.start) % PAGE
        if not sweep and keep <= self._released_upto:
            return
        lo = 0 if sweep else self._released_upto
        for f in files.files:
            if f.end <= lo:
                continue
            if f.start >= keep:
                break
            start = max(lo, f.start) - f.start
            f.release_pages(start, min(f.end, keep) - f.start - start)
        self._released_upto = keep

    # ------------------------------------------------------------------ reading

    def _locate(self, offset: int) -> Optional[Tuple[MappedFile, int]]:
        pos = offset * ENTRY_SIZE
        if pos < self.min_logic_bytes or pos >= self.files.wrote:
            return None
        f = self.files.find(pos)
        return None if f is None else (f, pos - f.start)

    def entries_from(self, offset: int) -> Optional[Tuple[MappedFile, int, int]]:
        """(file, start, end) positions in one file of the entries from logical ``offset`` to the end of data
        in that file, or None if that file is gone."""
        loc = self._locate(offset)
        if loc is None:
            return None
        f, rel = loc
        return f, rel, min(f.end, self.files.wrote) - f.start

    def entry(self, offset: int) -> Optional[Tuple[int, int, int]]:
        """(commit log offset, size, tags code) at logical ``offset``, or None."""
        loc = self._locate(offset)
        return None if loc is None else _unpack_from(loc[0].mm, loc[1])

    def roll_next_file(self, offset: int) -> int:
        per = self.file_size // ENTRY_SIZE
        return offset + per - offset % per

    # ------------------------------------------------------------------ recovery and retention

    def load(self) -> None:
        names = files_in(self.directory)
        self._adopt_size_on_disk(names)
        self.files.load(names)
        if self.files.files:
            self.min_logic_bytes = self.files.files[0].start

    def _adopt_size_on_disk(self, names: List[str]) -> None:
        """Keep the size of the files this queue has: entry positions are file positions, so a queue cannot
        change its file size, and mappedFileSizeConsumeQueue changed since (or read as entries by earlier mq
        versions, as RocketMQ's bytes now) must not make its store unreadable. New queues take the configured size."""
        if not names:
            return
        size = os.stat(os.path.join(self.directory, names[0])).st_size
        if size != self.file_size and size > 0 and size % ENTRY_SIZE == 0:
            log.info("{topic}/{qid}: keeping the {size}-byte files on disk (mappedFileSizeConsumeQueue is {conf})",
                     topic=self.topic, qid=self.queue_id, size=size, conf=self.file_size)  # fmt: skip
            self.file_size = self.files.file_size = size

    def recover(self) -> None:
        """Find the end of the entries: the valid entries (size > 0) of the last file form a prefix."""
        last = self.files.last()
        if last is None:
            return
        lo, hi = 0, last.size // ENTRY_SIZE  # first invalid entry is in [lo, hi]
        while lo < hi:
            mid = (lo + hi) // 2
            if _unpack_from(last.mm, mid * ENTRY_SIZE)[1] > 0:
                lo = mid + 1
            else:
                hi = mid
        self.files.wrote = self.files.flushed = last.start + lo * ENTRY_SIZE
        self._cur = last
        rel = lo * ENTRY_SIZE
        last.advise_random(rel - rel % PAGE)
        self._skip_padding()
        self._refresh_max_phy()

    def _skip_padding(self) -> None:
        f = self.files.files[0]
        pos = max(self.min_logic_bytes, f.start)
        while pos < min(self.files.wrote, f.end) and _unpack_from(f.mm, pos - f.start)[1] == PAD_SIZE:
            pos += ENTRY_SIZE
        self.min_logic_bytes = pos

    def _refresh_max_phy(self) -> None:
        e = self.entry(self.max_offset - 1) if self.max_offset else None
        self.max_phy_end = e[0] + e[1] if e and e[1] != PAD_SIZE else -1

    def truncate_dirty(self, phy_end: int) -> None:
        """Drop trailing entries (and holes) that point at or past ``phy_end``, the end of the CommitLog."""
        pos = self.files.wrote
        changed = False
        while pos > self.min_logic_bytes:
            f = self.files.find(pos - ENTRY_SIZE)
            if f is None:
                break
            phy, size, _ = _unpack_from(f.mm, pos - ENTRY_SIZE - f.start)
            if size > 0 and size != PAD_SIZE and phy + size <= phy_end:
                break
            pos -= ENTRY_SIZE
            changed = True
        if changed or self.files.wrote != pos:
            self.files.truncate(pos)
            if not self.files.files:
                self.min_logic_bytes = pos
            self._cur = self.files.last()
        self._refresh_max_phy()

    def delete_expired_files(self, min_phy: int) -> int:
        """Delete whole files whose last entry points below ``min_phy`` (never the last file)."""
        deleted = 0
        files = self.files.files
        while len(files) > 1:
            f = files[0]
            phy, size, _ = _unpack_from(f.mm, f.size - ENTRY_SIZE)
            if phy + size > min_phy and size != PAD_SIZE:
                break
            self.files.delete_first()
            deleted += 1
        if files:
            self.min_logic_bytes = max(self.min_logic_bytes, files[0].start)
        return deleted

    def correct_min_offset(self, min_phy: int) -> None:
        """Move the min offset to the first entry whose record is still in the CommitLog."""
        if not self.files.files:
            return
        lo_pos = max(self.min_logic_bytes, self.files.files[0].start)
        hi_pos = self.files.wrote
        lo, hi = lo_pos // ENTRY_SIZE, hi_pos // ENTRY_SIZE
        while lo < hi:
            mid = (lo + hi) // 2
            e = self.entry(mid)
            if e is not None and e[1] != PAD_SIZE and e[0] >= min_phy:
                hi = mid
            else:
                lo = mid + 1
        self.min_logic_bytes = lo * ENTRY_SIZE

    def iter_entries(self, start: int = 0) -> Iterator[Tuple[int, int, int, int]]:
        """(logical offset, phy, size, tags code) of every entry from ``start`` (tests, tools)."""
        for off in range(max(start, self.min_offset), self.max_offset):
            e = self.entry(off)
            if e is not None:
                yield (off, *e)

    def destroy(self) -> None:
        self.files.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def close(self) -> None:
        self.files.close()
        self._cur = None


class ConsumeQueueTable:
    """Every ConsumeQueue, by topic then queue id; created on first dispatch."""

    def __init__(self, root: str, file_size: int) -> None:
        self.root = root
        self.file_size = queue_file_size(file_size)
        self.queues: Dict[str, Dict[int, ConsumeQueue]] = {}

    def find(self, topic: str, queue_id: int) -> Optional[ConsumeQueue]:
        per_topic = self.queues.get(topic)
        return per_topic.get(queue_id) if per_topic else None

    def find_or_create(self, topic: str, queue_id: int) -> ConsumeQueue:
        per_topic = self.queues.get(topic)
        if per_topic is None:
            per_topic = self.queues[topic] = {}
        cq = per_topic.get(queue_id)
        if cq is None:
            cq = per_topic[queue_id] = ConsumeQueue(topic, queue_id, self.root, self.file_size)
        return cq

    def all(self) -> Iterator[ConsumeQueue]:
        for per_topic in self.queues.values():
            yield from per_topic.values()

    def load(self) -> None:
        if not os.path.isdir(self.root):
            return
        for topic in sorted(os.listdir(self.root)):
            tdir = os.path.join(self.root, topic)
            if not os.path.isdir(tdir):
                continue
            if topic_error(topic) is not None:
                log.warn("ignoring {tdir}: {why}", tdir=tdir, why=topic_error(topic))
                continue
            for qid in sorted(os.listdir(tdir)):
                if qid.lstrip("-").isdigit():
                    self.find_or_create(topic, int(qid)).load()

    def delete_topic(self, topic: str) -> bool:
        """Remove the queues of a topic this table holds (and their directory); False for any other name,
        which touches nothing: a request's text never becomes a path here (RocketMQ removes only queues it
        knows too)."""
        per_topic = self.queues.pop(topic, None)
        if per_topic is None:
            return False
        for cq in per_topic.values():
            cq.destroy()
        shutil.rmtree(path_under(self.root, topic), ignore_errors=True)
        return True

    def delete_queue(self, topic: str, queue_id: int) -> bool:
        """Remove one queue this table holds (and the topic's directory once it has no queue left)."""
        per_topic = self.queues.get(topic)
        cq = per_topic.pop(queue_id, None) if per_topic else None
        if cq is None:
            return False
        cq.destroy()
        if not per_topic:
            self.delete_topic(topic)
        return True

    def close(self) -> None:
        for cq in self.all():
            cq.close()
