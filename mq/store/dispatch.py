"""The dispatcher: turns CommitLog records into ConsumeQueue entries, index entries and arrival events.

The put path calls ``dispatch`` with the fields it already has (nothing is parsed twice); recovery and raw
(replicated) appends go through ``reput``, which parses records from a CommitLog offset. Either way the
queues and the index are a function of the CommitLog alone.
"""

from __future__ import annotations

import struct
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

from twisted.logger import Logger

from mq.common.hashing import tag_hash_code
from mq.common.message import MessageConst, MessageSysFlag, string_to_properties
from mq.common.message_record import record_tail_positions
from mq.common.names import IllegalName
from mq.common.topic import SCHEDULE_TOPIC, TIMER_TOPIC
from mq.store.commitlog import CommitLog
from mq.store.consumequeue import ConsumeQueueTable
from mq.store.index import IndexService

log = Logger()
#: Records between two calls of reput's progress callback (a clock read per call, not per record).
PROGRESS_EVERY = 4096

_PREPARED = MessageSysFlag.TRANSACTION_PREPARED_TYPE
_ROLLBACK = MessageSysFlag.TRANSACTION_ROLLBACK_TYPE
_TRAN_MASK = MessageSysFlag.TRANSACTION_ROLLBACK_TYPE
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_Q_FIELDS = struct.Struct(">iiq")  # queue id, flag, queue offset at +12
_UNIQ = MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX

ArrivalListener = Callable[[str, int, int, int, int, Dict[str, str]], None]
TagsCodeFn = Callable[[str, Dict[str, str], int], int]


def make_tags_code_fn(delay_levels: Dict[int, int]) -> TagsCodeFn:
    """Default tagsCode: the TAGS hash; in SCHEDULE_TOPIC_XXXX the delivery time (store time + delay), in
    rmq_sys_wheel_timer the due time (``TIMER_OUT_MS``, set by the broker when it parked the timer), negated
    for a cancellation (``TIMER_DEL_UNIQKEY``)."""
    max_level = max(delay_levels) if delay_levels else 0

    def tags_code(topic: str, properties: Dict[str, str], store_timestamp: int) -> int:
        if topic == SCHEDULE_TOPIC:
            raw = properties.get(MessageConst.PROPERTY_DELAY_TIME_LEVEL)
            if raw and raw.isdigit() and max_level:
                level = min(max(int(raw), 1), max_level)
                return store_timestamp + delay_levels[level]
        elif topic == TIMER_TOPIC:
            raw = properties.get(MessageConst.PROPERTY_TIMER_OUT_MS, "")
            if raw.isdigit() and len(raw) <= 18:
                # a cancellation's is negated (mq.broker.schedule.timer_cancel.cancel_tags_code)
                return -int(raw) if MessageConst.PROPERTY_TIMER_DEL_UNIQKEY in properties else int(raw)
        return tag_hash_code(properties.get(MessageConst.PROPERTY_TAGS))

    return tags_code


def _unqueued(topic: str, phy: int, why: IllegalName) -> None:
    """A record whose topic is no legal name (written before names were checked, or by a peer that does
    not check) stays in the CommitLog but gets no queue: it never becomes a directory."""
    log.warn("the record at {phy} has topic {topic!r}, not a legal name ({why}): not queued", phy=phy,
             topic=topic, why=str(why))


class Dispatcher:
    def __init__(self, queues: ConsumeQueueTable, index: Optional[IndexService], tags_code_fn: TagsCodeFn) -> None:
        self.queues = queues
        self.index = index
        self.tags_code_fn = tags_code_fn
        self.listener: Optional[ArrivalListener] = None
        self.last_store_timestamp = 0
        self.queue_offsets: Optional[Dict[Tuple[str, int], int]] = None  # kept current by ``dispatch_record``

    def dispatch(
        self,
        topic: str,
        queue_id: int,
        phy: int,
        size: int,
        tags_code: int,
        store_timestamp: int,
        queue_offset: int,
        sys_flag: int,
        properties: Dict[str, str],
    ) -> None:
        tran = sys_flag & _TRAN_MASK
        visible = tran != _PREPARED and tran != _ROLLBACK
        if visible:
            try:
                self.queues.find_or_create(topic, queue_id).put(queue_offset, phy, size, tags_code)
            except IllegalName as e:
                _unqueued(topic, phy, e)
        if self.index is not None and tran != _ROLLBACK:
            self.index.build(topic, properties, phy, store_timestamp)
        self.last_store_timestamp = store_timestamp
        if self.listener is not None and visible:
            try:
                self.listener(topic, queue_id, queue_offset, tags_code, store_timestamp, properties)
            except Exception:
                log.failure("message arriving listener failed")

    def dispatch_batch(
        self,
        topic: str,
        queue_id: int,
        phy: int,
        sizes: Sequence[int],
        tags_codes: Sequence[int],
        store_timestamp: int,
        queue_offset: int,
        sys_flag: int,
        properties: Union[Sequence[Dict[str, str]], Dict[str, str]],
        uniq_keys: Optional[Sequence[str]] = None,
    ) -> None:
        """Consecutive records of one queue, the first at ``phy`` with ``queue_offset``, stored at one time:
        queue entries and index keys in one pass each, then one arrival event per distinct tags code.

        With ``uniq_keys`` (a ``UniformBatch``), ``properties`` is what every member has (no KEYS) but for its
        UNIQ_KEY, and the one tags code's event carries the last member's."""
        tran = sys_flag & _TRAN_MASK
        visible = tran != _PREPARED and tran != _ROLLBACK
        if visible:
            try:
                self.queues.find_or_create(topic, queue_id).put_batch(queue_offset, phy, sizes, tags_codes)
            except IllegalName as e:
                _unqueued(topic, phy, e)
        if self.index is not None and tran != _ROLLBACK:
            if uniq_keys is None:
                self.index.build_batch(topic, properties, phy, sizes, store_timestamp)  # type: ignore[arg-type]
            else:
                self.index.build_uniq(topic, uniq_keys, phy, sizes, store_timestamp)
        self.last_store_timestamp = store_timestamp
        listener = self.listener
        if listener is not None and visible:
            # Held pulls filter by tag: one event per distinct tags code, each naming the batch's last offset.
            last = queue_offset + len(sizes) - 1
            if uniq_keys is not None:
                events = {tags_codes[0]: dict(properties)}
                events[tags_codes[0]][_UNIQ] = uniq_keys[-1]
            else:
                events = dict(zip(tags_codes, properties))
            try:
                for tags_code, props in events.items():
                    listener(topic, queue_id, last, tags_code, store_timestamp, props)
            except Exception:
                log.failure("message arriving listener failed")

    def dispatch_record(self, buf, rel: int, phy: int, size: int) -> None:
        """Parse the (already validated) record at ``buf[rel:]`` and dispatch it."""
        queue_id, _flag, queue_offset = _Q_FIELDS.unpack_from(buf, rel + 12)
        sys_flag = _I32.unpack_from(buf, rel + 36)[0]
        store_ts = _I64.unpack_from(buf, rel + (68 if sys_flag & 0x10 else 56))[0]
        _b, _bl, t_start, t_len, p_start, p_len = record_tail_positions(buf, rel, size, sys_flag)
        topic = bytes(buf[t_start : t_start + t_len]).decode("utf-8", "replace")
        props = string_to_properties(bytes(buf[p_start : p_start + p_len]).decode("utf-8", "replace"))
        tags_code = self.tags_code_fn(topic, props, store_ts)
        self.dispatch(topic, queue_id, phy, size, tags_code, store_ts, queue_offset, sys_flag, props)
        tran = sys_flag & _TRAN_MASK
        if self.queue_offsets is not None and tran != _PREPARED and tran != _ROLLBACK:
            key = (topic, queue_id)
            if self.queue_offsets.get(key, 0) <= queue_offset:
                self.queue_offsets[key] = queue_offset + 1

    def reput(self, commitlog: CommitLog, start: int, end: Optional[int], check_crc: bool, dispatch_from: int,
              progress: Optional[Callable[[int], None]] = None) -> int:
        """Dispatch every valid record from ``start`` (only those at or after ``dispatch_from``); returns
        where valid data ends. With ``end`` None, scans until the first invalid record (recovery).
        ``progress`` is called with the offset reached every ``PROGRESS_EVERY`` records."""
        count = 0
        for f, rel, size in commitlog.scan(start, check_crc, end):
            phy = f.start + rel
            if phy >= dispatch_from:
                self.dispatch_record(f.mm, rel, phy, size)
            if progress is not None:
                count += 1
                if count % PROGRESS_EVERY == 0:
                    progress(phy + size)
        return commitlog.last_scan_end
