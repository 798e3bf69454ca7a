"""The store's replication side: what a slave (``append_raw``) and a DLedger node (``_propose``,
``append_committed``) write into the CommitLog besides the put path, and ``truncate``.

Kept apart from the put path in ``mq.store.store``; mixed into ``MessageStore``.
"""

from __future__ import annotations

import struct
from typing import Callable, Dict, List, Optional, Protocol, Tuple

from twisted.internet import defer
from twisted.logger import Logger

from mq.common.message import MessageSysFlag
from mq.store.commitlog import END_FILE_MIN_BLANK_LENGTH
from mq.store.mappedfile import DiskFullError, StoreError
from mq.store.results import AppendMessageResult, AppendMessageStatus, PutMessageResult

log = Logger()

_PREPARED = MessageSysFlag.TRANSACTION_PREPARED_TYPE
_ROLLBACK = MessageSysFlag.TRANSACTION_ROLLBACK_TYPE
_TRAN_MASK = MessageSysFlag.TRANSACTION_ROLLBACK_TYPE


def next_position(end: int, size: int, file_size: int) -> int:
    """Where ``size`` bytes appended at ``end`` land: the next file's start when the current file cannot hold them
    and the end-of-file blank (``CommitLog.position_for``'s rule, for files ``file_size`` long from offset 0)."""
    used = end % file_size
    if used and used + size + END_FILE_MIN_BLANK_LENGTH > file_size:
        return end - used + file_size
    return end


class Replicator(Protocol):
    """What ``MessageStore`` needs of DLedger mode's put path (``mq.broker.dledger.group``)."""

    end: int  # the CommitLog end once every proposed entry is applied
    queue_offsets: Dict[Tuple[str, int], int]  # the queues' next offsets, likewise

    def refusal(self) -> Optional[PutMessageResult]: ...

    def propose(self, data: bytes, result: AppendMessageResult, local: Optional[tuple] = None) -> defer.Deferred: ...


#: PHYSICALOFFSET of a stored record: after TOTALSIZE, MAGICCODE, BODYCRC, QUEUEID, FLAG and QUEUEOFFSET.
_RECORD_PHY_AT = 28
RECORD_PHY = struct.Struct(">q")


class StoreReplication:
    """Mixed into ``MessageStore``; uses its ``commitlog``, ``queues``, ``index``, ``dispatcher``, ``space``,
    ``queue_flush``, ``queue_offsets``, ``reput_offset``, ``stats_counters`` and ``store_host``."""

    def _propose(self, rep: Replicator, data: bytes, sizes: List[int], encode: Callable[[int], Tuple[bytes, List[int]]],
                 key: Tuple[str, int], visible: bool, queue_offset: int, store_ts: int,
                 local: Optional[tuple] = None) -> defer.Deferred:
        """DLedger mode: hand records encoded at the replicator's end to it, where they will land once committed
        (after the file-end padding ``CommitLog.position_for`` would add), and advance its end and offsets.
        ``local``: a single record's dispatch fields (``append_committed_local``)."""
        size = len(data)
        at = next_position(rep.end, size, self.commitlog.file_size)
        if at != rep.end:
            data, sizes = encode(at)
        rep.end = at + size
        n = len(sizes)
        if visible:
            rep.queue_offsets[key] = queue_offset + n
        self._last_store_ts = store_ts
        counters = self.stats_counters
        counters.put_message_times_total += n
        counters.put_message_size_total += size
        offsets = []
        phy = at
        for rec_size in sizes:
            offsets.append(phy)
            phy += rec_size
        result = AppendMessageResult(AppendMessageStatus.PUT_OK, at, size, store_ts, queue_offset, n, self.store_host,
                                     tuple(offsets))
        if local is not None:
            return rep.propose(data, result, local)
        return rep.propose(data, result)

    def append_committed(self, data: bytes, dispatch: bool = True) -> None:
        """DLedger mode: records of a committed entry (encoded by the leader at their offsets) into the CommitLog,
        then (``dispatch``; else at the caller's next ``dispatch_appended``, once for a batch of entries) into
        the queues and the index. StoreError if they do not land where the leader put them (a group whose nodes
        differ in ``mappedFileSizeCommitLog``)."""
        self._write_committed(data)
        if dispatch:
            self.dispatch_appended(check_crc=False)  # the Raft entry's own body CRC covered these bytes

    def append_committed_local(self, data: bytes, local: tuple) -> bool:
        """``append_committed`` of one record this node encoded as leader, dispatched from the fields its put had
        (``local``: topic, queue id, tags code or None, store time, queue offset, sys flag, properties), as a
        lone master dispatches, instead of parsing the record again. Only when every record before it is
        dispatched (queue entries go in CommitLog order); otherwise it is written only and False returned: the
        next ``dispatch_appended`` parses it with the others."""
        at = self._write_committed(data)
        if self.reput_offset != at:
            return False
        topic, queue_id, tags_code, store_ts, queue_offset, sys_flag, properties = local
        dispatcher = self.dispatcher
        if tags_code is None:
            tags_code = dispatcher.tags_code_fn(topic, properties, store_ts)
        size = len(data)
        dispatcher.dispatch(topic, queue_id, at, size, tags_code, store_ts, queue_offset, sys_flag, properties)
        tran = sys_flag & _TRAN_MASK
        if tran != _PREPARED and tran != _ROLLBACK:  # as ``Dispatcher.dispatch_record`` keeps them
            key = (topic, queue_id)
            if self.queue_offsets.get(key, 0) <= queue_offset:
                self.queue_offsets[key] = queue_offset + 1
        self.reput_offset = at + size
        return True

    def _write_committed(self, data: bytes) -> int:
        """Write committed records where the leader put them (their PHYSICALOFFSET); StoreError if they would
        land elsewhere (a group whose nodes differ in ``mappedFileSizeCommitLog``). Where they start."""
        phy = RECORD_PHY.unpack_from(data, _RECORD_PHY_AT)[0]
        cl = self.commitlog
        at = cl.position_for(len(data))
        if at != phy:
            raise StoreError(f"committed records for CommitLog offset {phy} would land at {at}: do the group's nodes "
                             "share mappedFileSizeCommitLog?")
        cl.write(at, data)
        return at

    def append_raw(self, phy_offset: int, data: bytes) -> bool:
        """Append the master's bytes at the master's offset, then dispatch every whole record they complete.
        False if the bytes do not fit here; DiskFullError if the disk has no room for them or their entries.

        A CommitLog that holds no data starts at the first file-aligned offset it is given (an empty slave
        starts where its master's last file starts)."""
        cl = self.commitlog
        if phy_offset != cl.max_offset:
            if cl.max_offset != cl.min_offset or phy_offset % cl.file_size:
                return False
            self.truncate(cl.min_offset)
            cl.files.wrote = cl.files.flushed = phy_offset
            self.reput_offset = phy_offset
        try:
            self.commitlog.append_raw(phy_offset, data)
        except DiskFullError as e:
            self.space.no_space(str(e))
            raise
        except StoreError as e:
            log.error("raw append refused: {e}", e=e)
            return False
        self.dispatch_appended()
        return True

    def dispatch_appended(self, check_crc: bool = True) -> None:
        """Build queue and index entries for every whole record appended by ``append_raw`` and not yet
        dispatched. DiskFullError (a queue or index file could not be created) stops at the record that
        needed it; a later call takes up from there (dispatching a record again is harmless)."""
        cl = self.commitlog
        try:
            self.reput_offset = self.dispatcher.reput(cl, self.reput_offset, cl.max_offset, check_crc, self.reput_offset)
        except DiskFullError as e:
            self.reput_offset = cl.last_scan_end
            self.space.no_space(str(e))
            raise

    def get_commit_log_data(self, offset: int, max_bytes: int = 32 * 1024) -> Optional[bytes]:
        return self.commitlog.read_upto(offset, max_bytes)

    def truncate(self, phy_offset: int) -> None:
        """Drop everything from ``phy_offset`` (a record boundary) on: CommitLog, queue and index entries."""
        self.commitlog.truncate(phy_offset)
        self.queue_flush.abandon()
        self.queue_offsets.clear()
        for cq in self.queues.all():
            cq.truncate_dirty(phy_offset)
            if cq.max_offset:
                self.queue_offsets[(cq.topic, cq.queue_id)] = cq.max_offset
        if self.index is not None:
            self.index.truncate(phy_offset)
        self.reput_offset = min(self.reput_offset, phy_offset)
