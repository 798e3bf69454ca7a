"""Result types of the store API, with RocketMQ's status names (the broker maps them to response codes)."""

from __future__ import annotations

import enum
import struct
from typing import Dict, List, Optional, Tuple

import attrs

from mq.common.hotcache import PYPY, hot_cache
from mq.common.message import create_offset_msg_id, host_bytes


class PutMessageStatus(enum.Enum):
    PUT_OK = "PUT_OK"
    FLUSH_DISK_TIMEOUT = "FLUSH_DISK_TIMEOUT"
    FLUSH_SLAVE_TIMEOUT = "FLUSH_SLAVE_TIMEOUT"
    SLAVE_NOT_AVAILABLE = "SLAVE_NOT_AVAILABLE"
    SERVICE_NOT_AVAILABLE = "SERVICE_NOT_AVAILABLE"
    CREATE_MAPEDFILE_FAILED = "CREATE_MAPEDFILE_FAILED"
    MESSAGE_ILLEGAL = "MESSAGE_ILLEGAL"
    PROPERTIES_SIZE_EXCEEDED = "PROPERTIES_SIZE_EXCEEDED"
    OS_PAGECACHE_BUSY = "OS_PAGECACHE_BUSY"
    UNKNOWN_ERROR = "UNKNOWN_ERROR"


class AppendMessageStatus(enum.Enum):
    PUT_OK = "PUT_OK"
    END_OF_FILE = "END_OF_FILE"
    MESSAGE_SIZE_EXCEEDED = "MESSAGE_SIZE_EXCEEDED"
    PROPERTIES_SIZE_EXCEEDED = "PROPERTIES_SIZE_EXCEEDED"
    UNKNOWN_ERROR = "UNKNOWN_ERROR"


class GetMessageStatus(enum.Enum):
    FOUND = "FOUND"
    NO_MATCHED_MESSAGE = "NO_MATCHED_MESSAGE"
    MESSAGE_WAS_REMOVING = "MESSAGE_WAS_REMOVING"
    OFFSET_FOUND_NULL = "OFFSET_FOUND_NULL"
    OFFSET_OVERFLOW_BADLY = "OFFSET_OVERFLOW_BADLY"
    OFFSET_OVERFLOW_ONE = "OFFSET_OVERFLOW_ONE"
    OFFSET_TOO_SMALL = "OFFSET_TOO_SMALL"
    NO_MATCHED_LOGIC_QUEUE = "NO_MATCHED_LOGIC_QUEUE"
    NO_MESSAGE_IN_QUEUE = "NO_MESSAGE_IN_QUEUE"


#: store host → the hex of its address and port, the fixed head of its offset msgIds (a store has one or two).
_HOST_HEX: Dict[Tuple[str, int], str] = {}
_OFFSET = struct.Struct(">q").pack


@hot_cache(64)
def _ids_struct(host: bytes, count: int) -> struct.Struct:
    """``count`` offset msgIds' bytes (host address and port, then the offset) in one pack."""
    return struct.Struct(">" + ("%dsq" % len(host)) * count)


def batch_msg_ids(host: Tuple[str, int], offsets: Tuple[int, ...]) -> str:
    """``create_offset_msg_id`` of each offset, comma-joined: the bytes of all in one buffer, hex-encoded with a
    comma every id by one call (CPython packs them with one struct, PyPy joins them: each is faster there)."""
    raw_host = host_bytes(host)
    if PYPY:
        raw = b"".join([raw_host + _OFFSET(o) for o in offsets])
    else:
        args = [raw_host] * (2 * len(offsets))
        args[1::2] = offsets
        raw = _ids_struct(raw_host, len(offsets)).pack(*args)
    return raw.hex(",", len(raw_host) + 8).upper()


class AppendMessageResult:
    """Where a put landed. ``msg_id`` (offset ids, comma-joined for a batch) is built only when read."""

    __slots__ = (
        "status", "wrote_offset", "wrote_bytes", "store_timestamp", "logics_offset", "msg_num", "_host", "_offsets", "_msg_id",
    )  # fmt: skip

    def __init__(
        self,
        status: AppendMessageStatus,
        wrote_offset: int = 0,
        wrote_bytes: int = 0,
        store_timestamp: int = 0,
        logics_offset: int = 0,
        msg_num: int = 1,
        store_host: Optional[Tuple[str, int]] = None,
        offsets: Tuple[int, ...] = (),
    ) -> None:
        self.status = status
        self.wrote_offset = wrote_offset
        self.wrote_bytes = wrote_bytes
        self.store_timestamp = store_timestamp
        self.logics_offset = logics_offset
        self.msg_num = msg_num
        self._host = store_host
        self._offsets = offsets or (wrote_offset,)
        self._msg_id: Optional[str] = None

    @property
    def msg_id(self) -> str:
        if self._msg_id is None:
            host = self._host
            if host is None:
                self._msg_id = ""
            else:  # create_offset_msg_id: the host part (hex once per store host), then 16 hex digits per offset
                head = _HOST_HEX.get(host)
                if head is None:
                    if len(_HOST_HEX) >= 64:
                        _HOST_HEX.clear()
                    head = _HOST_HEX[host] = create_offset_msg_id(host, 0)[:-16]
                offsets = self._offsets
                if len(offsets) == 1:
                    self._msg_id = "%s%016X" % (head, offsets[0])
                else:
                    self._msg_id = batch_msg_ids(host, offsets)
        return self._msg_id

    def is_ok(self) -> bool:
        return self.status is AppendMessageStatus.PUT_OK

    def __repr__(self) -> str:
        return (
            f"AppendMessageResult({self.status.name}, wrote_offset={self.wrote_offset}, wrote_bytes={self.wrote_bytes},"
            f" logics_offset={self.logics_offset}, msg_num={self.msg_num})"
        )


#: Put outcomes that leave the message in the CommitLog.
STORED_STATUSES = frozenset({
    PutMessageStatus.PUT_OK,
    PutMessageStatus.FLUSH_DISK_TIMEOUT,
    PutMessageStatus.FLUSH_SLAVE_TIMEOUT,
    PutMessageStatus.SLAVE_NOT_AVAILABLE,
})


class PutMessageResult:
    __slots__ = ("status", "append_result", "reason")

    def __init__(self, status: PutMessageStatus, append_result: Optional[AppendMessageResult] = None, reason: str = ""):
        self.status = status
        self.append_result = append_result
        self.reason = reason

    def is_ok(self) -> bool:
        return self.status is PutMessageStatus.PUT_OK

    def is_stored(self) -> bool:
        """The put wrote the message (a flush or replication that did not finish in time still counts)."""
        return self.status in STORED_STATUSES

    def __repr__(self) -> str:
        return f"PutMessageResult({self.status.name}, {self.append_result!r}, reason={self.reason!r})"


@attrs.define
class GetMessageResult:
    status: GetMessageStatus
    next_begin_offset: int = 0
    min_offset: int = 0
    max_offset: int = 0
    message_buffers: List[bytes] = attrs.field(factory=list)
    message_queue_offsets: List[int] = attrs.field(factory=list)
    buffer_total_size: int = 0
    suggest_pulling_from_slave: bool = False
    #: Of the messages returned, how many (and their bytes) were past the page-cache window (the in-disk rule).
    disk_count: int = 0
    disk_bytes: int = 0

    @property
    def message_count(self) -> int:
        return len(self.message_buffers)

    def body(self) -> bytes:
        """The pull response body: every raw record, concatenated."""
        return b"".join(self.message_buffers)


@attrs.define
class QueryMessageResult:
    message_buffers: List[bytes] = attrs.field(factory=list)
    index_last_update_timestamp: int = 0
    index_last_update_phyoffset: int = 0
    buffer_total_size: int = 0

    def body(self) -> bytes:
        return b"".join(self.message_buffers)


@attrs.define
class StoreStats:
    """Counters and gauges for metrics."""

    put_message_times_total: int = 0
    put_message_size_total: int = 0
    put_message_failures: int = 0
    get_message_times_total: int = 0
    #: gets that returned messages (Java's getMessageTimesTotalFound; the rest missed)
    get_message_found_total: int = 0
    get_message_transferred_total: int = 0
    corrupt_records_detected: int = 0
    commit_log_min_offset: int = 0
    commit_log_max_offset: int = 0
    dispatch_behind_bytes: int = 0
    flushed_offset: int = 0
    disk_used_ratio: float = 0.0
