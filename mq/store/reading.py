"""The read side of the message store (RocketMQ's getMessage and the lookups around it), kept apart from
the write path in ``mq.store.store``: a pull, an offset query or an index search only reads what the put path
and the dispatcher have made visible."""

from __future__ import annotations

from typing import Any, List, Optional

from mq.common.message import MessageConst, MessageExt
from mq.common.message_record import decode_message_ext, record_properties
from mq.store.config import BrokerRole
from mq.store.consumequeue import CQ_ENTRY, ENTRY_SIZE, PAD_SIZE
from mq.store.results import GetMessageResult, GetMessageStatus, QueryMessageResult

_iter_entries = CQ_ENTRY.fast.iter_unpack


class StoreReading:
    """Mixed into ``MessageStore``; uses its ``queues``, ``commitlog``, ``index``, ``config``,
    ``stats_counters`` and ``_memory_limit``."""


    def get_message(
        self,
        group: str,
        topic: str,
        queue_id: int,
        offset: int,
        max_msg_nums: int,
        max_total_bytes: Optional[int] = None,
        message_filter: Any = None,
    ) -> GetMessageResult:
        """RocketMQ's getMessage: statuses and next begin offset as in wire doc §3.4."""
        counters = self.stats_counters
        counters.get_message_times_total += 1
        cq = self.queues.find(topic, queue_id)
        if cq is None:
            return GetMessageResult(GetMessageStatus.NO_MATCHED_LOGIC_QUEUE, self._correct(offset, 0))
        min_off, max_off = cq.min_offset, cq.max_offset
        if max_off == 0:
            return GetMessageResult(GetMessageStatus.NO_MESSAGE_IN_QUEUE, self._correct(offset, 0), min_off, max_off)
        if offset < min_off:
            return GetMessageResult(GetMessageStatus.OFFSET_TOO_SMALL, self._correct(offset, min_off), min_off, max_off)
        if offset == max_off:
            return GetMessageResult(GetMessageStatus.OFFSET_OVERFLOW_ONE, offset, min_off, max_off)
        if offset > max_off:
            nxt = self._correct(offset, min_off if min_off == 0 else max_off)
            return GetMessageResult(GetMessageStatus.OFFSET_OVERFLOW_BADLY, nxt, min_off, max_off)
        span = cq.entries_from(offset)
        if span is None:
            return GetMessageResult(GetMessageStatus.OFFSET_FOUND_NULL, cq.roll_next_file(offset), min_off, max_off)
        f, start, end = span
        max_scan = max(16000, max_msg_nums * ENTRY_SIZE)
        end = min(end, start + max_scan - max_scan % ENTRY_SIZE)
        cfg = self.config
        cl = self.commitlog
        max_phy = cl.max_offset
        min_phy = cl.min_offset
        mem_bytes, mem_count = cfg.max_transfer_bytes_on_message_in_memory, cfg.max_transfer_count_on_message_in_memory
        disk_bytes, disk_count = cfg.max_transfer_bytes_on_message_in_disk, cfg.max_transfer_count_on_message_in_disk
        limit_total = max_total_bytes if max_total_bytes is not None else 1 << 62
        status = GetMessageStatus.NO_MATCHED_MESSAGE
        buffers: List[bytes] = []
        queue_offsets: List[int] = []
        total = 0
        scanned = 0
        max_phy_pulling = 0
        next_phy_file_start = -1
        cf = message_filter
        memory = self._memory_limit
        on_disk = on_disk_bytes = 0
        for phy, size, tags_code in _iter_entries(f.mm[start:end]):
            logic = offset + scanned
            if buffers:
                in_disk = max_phy - phy > memory
                n = len(buffers)
                if (
                    n >= max_msg_nums
                    or total + size > limit_total
                    or (in_disk and (total + size > disk_bytes or n > disk_count - 1))
                    or (not in_disk and (total + size > mem_bytes or n > mem_count - 1))
                ):
                    break
            scanned += 1
            max_phy_pulling = phy
            if size == PAD_SIZE or (next_phy_file_start != -1 and phy < next_phy_file_start):
                continue
            if cf is not None and not cf.is_matched_by_consume_queue(tags_code):
                if not buffers:
                    status = GetMessageStatus.NO_MATCHED_MESSAGE
                continue
            if phy < min_phy:
                if not buffers:
                    status = GetMessageStatus.MESSAGE_WAS_REMOVING
                next_phy_file_start = phy - phy % cl.file_size + cl.file_size
                continue
            rec = cl.read_record(phy, size)
            if rec is None:  # corrupt (logged and counted) or gone: never served
                if not buffers:
                    status = GetMessageStatus.NO_MATCHED_MESSAGE
                continue
            if cf is not None and not cf.is_matched_by_commit_log(rec):
                if not buffers:
                    status = GetMessageStatus.NO_MATCHED_MESSAGE
                continue
            buffers.append(rec)
            queue_offsets.append(logic)
            total += size
            if max_phy - phy > memory:
                on_disk += 1
                on_disk_bytes += size
            status = GetMessageStatus.FOUND
        counters.get_message_transferred_total += len(buffers)
        if buffers:
            counters.get_message_found_total += 1
        return GetMessageResult(
            status,
            offset + scanned,
            min_off,
            max_off,
            buffers,
            queue_offsets,
            total,
            max_phy - max_phy_pulling > memory,
            on_disk,
            on_disk_bytes,
        )

    def _correct(self, old: int, new: int) -> int:
        """nextOffsetCorrection: a slave keeps the client's offset unless offsetCheckInSlave."""
        if self.config.broker_role != BrokerRole.SLAVE or self.config.offset_check_in_slave:
            return new
        return old

    def get_max_offset_in_queue(self, topic: str, queue_id: int) -> int:
        cq = self.queues.find(topic, queue_id)
        return cq.max_offset if cq else 0

    def get_min_offset_in_queue(self, topic: str, queue_id: int) -> int:
        cq = self.queues.find(topic, queue_id)
        return cq.min_offset if cq else 0

    def get_commit_log_offset_in_queue(self, topic: str, queue_id: int, offset: int) -> int:
        cq = self.queues.find(topic, queue_id)
        e = cq.entry(offset) if cq else None
        return e[0] if e else 0

    def get_message_store_timestamp(self, topic: str, queue_id: int, offset: int) -> int:
        cq = self.queues.find(topic, queue_id)
        e = cq.entry(offset) if cq else None
        if e is None or e[1] == PAD_SIZE or e[0] < self.commitlog.min_offset:
            return -1
        return self.commitlog.read_store_timestamp(e[0])

    def get_offset_in_queue_by_time(self, topic: str, queue_id: int, timestamp: int) -> int:
        """The first offset whose message was stored at or after ``timestamp``; the max offset if none."""
        cq = self.queues.find(topic, queue_id)
        if cq is None:
            return 0
        lo, hi = cq.min_offset, cq.max_offset
        while lo < hi:
            mid = (lo + hi) // 2
            ts = self.get_message_store_timestamp(topic, queue_id, mid)
            if ts != -1 and ts >= timestamp:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def get_earliest_message_time(self, topic: Optional[str] = None, queue_id: Optional[int] = None) -> int:
        if topic is None:
            return self.commitlog.read_store_timestamp(self.commitlog.min_offset) if self.commitlog.max_offset else -1
        cq = self.queues.find(topic, queue_id or 0)
        if cq is None:
            return -1
        return self.get_message_store_timestamp(topic, queue_id or 0, cq.min_offset)

    def get_max_phy_offset(self) -> int:
        return self.commitlog.max_offset

    def get_min_phy_offset(self) -> int:
        return self.commitlog.min_offset

    def look_message_by_offset(self, phy_offset: int, size: Optional[int] = None,
                               requested: bool = False) -> Optional[bytes]:
        """The raw record at ``phy_offset``, or None if absent or corrupt. ``requested``: the offset comes
        from a request (VIEW_MESSAGE_BY_ID, a send-back...), so a bad one is not found, not corruption."""
        if phy_offset < self.commitlog.min_offset:
            return None
        return self.commitlog.read_record(phy_offset, size, requested)

    def look_message_ext_by_offset(self, phy_offset: int) -> Optional[MessageExt]:
        raw = self.look_message_by_offset(phy_offset)
        return decode_message_ext(raw) if raw is not None else None

    def query_message(self, topic: str, key: str, max_num: int, begin: int, end: int,
                      max_bytes: Optional[int] = None) -> QueryMessageResult:
        """Messages of ``topic`` whose KEYS or UNIQ_KEY equals ``key``, stored within [begin, end]; with
        ``max_bytes``, no more once they would pass it (the first one is always answered)."""
        result = QueryMessageResult()
        if self.index is None:
            return result
        offsets, last_ts, last_phy = self.index.query(topic, key, max_num, begin, end)
        result.index_last_update_timestamp = last_ts
        result.index_last_update_phyoffset = last_phy
        for phy in offsets:
            raw = self.look_message_by_offset(phy)
            if raw is None or not _has_key(raw, topic, key):
                continue
            if max_bytes is not None and result.message_buffers and result.buffer_total_size + len(raw) > max_bytes:
                break
            result.message_buffers.append(raw)
            result.buffer_total_size += len(raw)
        return result


def _has_key(raw: bytes, topic: str, key: str) -> bool:
    """The exact check behind an index hit (hashes collide, and truncated offsets may hold other records)."""
    props = record_properties(raw)
    if props.get(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX) != key:
        if key not in props.get(MessageConst.PROPERTY_KEYS, "").split(MessageConst.KEY_SEPARATOR):
            return False
    return decode_message_ext(raw, with_body=False).topic == topic
