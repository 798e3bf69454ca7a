"""MessageStoreConfig: the store's settings, with RocketMQ's ``broker.conf`` key names as aliases."""

from __future__ import annotations

import enum
import os
from typing import Any, Dict, Mapping

import attrs

from mq.common.config import PERCENT, convert_value, key_aliases, tunable, within


class FlushDiskType(str, enum.Enum):
    ASYNC_FLUSH = "ASYNC_FLUSH"
    SYNC_FLUSH = "SYNC_FLUSH"


class BrokerRole(str, enum.Enum):
    ASYNC_MASTER = "ASYNC_MASTER"
    SYNC_MASTER = "SYNC_MASTER"
    SLAVE = "SLAVE"


_UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


#: Largest message body a broker may be configured to take (messageSize's range, shared by broker and store).
MESSAGE_SIZE = within(1024, 64 << 20, "bytes")
#: ms a SYNC_FLUSH put (or a SYNC_MASTER put, for its slave) may wait.
SYNC_FLUSH_TIMEOUT = within(100, 600_000, "ms")
#: Delay levels: how many (RocketMQ's clients ask for levels 1..18) and the longest delay.
MAX_DELAY_LEVELS = 64
MAX_DELAY_MS = 7 * 86_400_000


def parse_delay_levels(text: str) -> Dict[int, int]:
    """``"1s 5s 10s ..."`` to {level: delay ms}, levels from 1; ValueError for anything else."""
    table = {}
    for level, item in enumerate(text.split(), start=1):
        unit = _UNITS_MS.get(item[-1:])
        if unit is None or not item[:-1].isdecimal():
            raise ValueError(f"{item!r} is not a delay such as 5s, 10m, 2h or 1d")
        table[level] = int(item[:-1]) * unit
        if not 0 < table[level] <= MAX_DELAY_MS:
            raise ValueError(f"{item!r} is outside 1s..7d")
    if not 0 < len(table) <= MAX_DELAY_LEVELS:
        raise ValueError(f"{len(table)} levels is outside 1..{MAX_DELAY_LEVELS}")
    return table


def _check_delay_levels(value: str) -> None:
    parse_delay_levels(value)


def _check_hours(value: str) -> None:
    """``deleteWhen``: hours of the day, ``;``-separated (``04``, ``04;16``)."""
    for hour in value.split(";"):
        if not (hour.strip().isdecimal() and 0 <= int(hour) <= 23):
            raise ValueError(f"{hour!r} is not an hour 0..23 (hours are ;-separated)")


@attrs.define
class MessageStoreConfig:
    """Store settings. Defaults are RocketMQ 4.9's; tests shrink the file sizes."""

    store_path_root_dir: str = attrs.field(factory=lambda: os.path.join(os.path.expanduser("~"), "store"))
    mapped_file_size_commit_log: int = tunable(1024 * 1024 * 1024, within(4096, 2**31 - 1, "bytes"))
    # bytes, rounded up to whole 20-byte entries (RocketMQ's 300000 entries); earlier mq versions read entries
    mapped_file_size_consume_queue: int = tunable(300_000 * 20, within(200, 2**31 - 1, "bytes"))
    max_message_size: int = tunable(4 * 1024 * 1024, MESSAGE_SIZE)
    flush_disk_type: FlushDiskType = FlushDiskType.ASYNC_FLUSH
    broker_role: BrokerRole = BrokerRole.ASYNC_MASTER
    flush_interval_commit_log: int = tunable(500, within(10, 60_000, "ms"))
    flush_interval_consume_queue: int = tunable(1000, within(10, 60_000, "ms"))
    # a queue is flushed once it has this many dirty pages, and every queue at the thorough interval (RocketMQ's)
    flush_consume_queue_least_pages: int = tunable(2, within(0, 1_000_000, "pages"))
    flush_consume_queue_thorough_interval: int = tunable(60_000, within(0, 3_600_000, "ms"))
    sync_flush_timeout: int = tunable(5000, SYNC_FLUSH_TIMEOUT)
    check_crc_on_recover: bool = True
    check_crc_on_read: bool = True
    file_reserved_time: int = tunable(72, within(1, 87_600, "hours"))
    delete_when: str = tunable("04", check=_check_hours)  # hours of day, ';'-separated
    # percent: delete expired files at any hour above this (RocketMQ clamps it to 10..95)
    disk_max_used_space_ratio: int = tunable(75, within(10, 95, "%"))
    disk_space_clean_forcibly_ratio: int = tunable(85, within(10, 99, "%"))  # delete the oldest files even if not expired
    disk_space_warning_level_ratio: int = tunable(90, within(10, 99, "%"))  # refuse puts above this
    # ms: disk use is read at most this often on the put path
    disk_space_check_interval: int = tunable(100, within(1, 60_000, "ms"))
    clean_resource_interval: int = tunable(10_000, within(100, 3_600_000, "ms"))
    delete_commit_log_files_max: int = tunable(10, within(1, 1000, "files per cleanup run"))
    max_hash_slot_num: int = tunable(5_000_000, within(16, 50_000_000))
    max_index_num: int = tunable(20_000_000, within(16, 100_000_000))
    message_index_enable: bool = True
    max_transfer_bytes_on_message_in_memory: int = tunable(256 * 1024, within(1024, 64 << 20, "bytes"))
    max_transfer_count_on_message_in_memory: int = tunable(32, within(1, 10_000))
    max_transfer_bytes_on_message_in_disk: int = tunable(64 * 1024, within(1024, 64 << 20, "bytes"))
    max_transfer_count_on_message_in_disk: int = tunable(8, within(1, 10_000))
    access_message_in_memory_max_ratio: int = tunable(40, PERCENT)  # percent of RAM
    default_query_max_num: int = tunable(32, within(1, 10_000))
    max_msgs_num_batch: int = tunable(64, within(1, 10_000))  # messages one QUERY_MESSAGE answers, at most
    message_delay_level: str = tunable("1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h",
                                       check=_check_delay_levels)
    offset_check_in_slave: bool = False
    # Bytes of CommitLog pages mapped ahead of the writer by a background thread (0: off); RocketMQ's
    # warmMapedFileEnable does the same for a whole file at creation.
    commit_log_prefault_ahead: int = tunable(8 * 1024 * 1024, within(0, 1 << 30, "bytes"))

    @property
    def commit_log_dir(self) -> str:
        return os.path.join(self.store_path_root_dir, "commitlog")

    @property
    def consume_queue_dir(self) -> str:
        return os.path.join(self.store_path_root_dir, "consumequeue")

    @property
    def index_dir(self) -> str:
        return os.path.join(self.store_path_root_dir, "index")

    @classmethod
    def from_properties(cls, props: Mapping[str, Any]) -> "MessageStoreConfig":
        """Build from ``broker.conf``-style keys (``storePathRootDir``, ``flushDiskType``...) or field names.

        Keys that are not store settings are ignored (the broker hands over its whole file); a value that
        does not parse raises ValueError naming its key.
        """
        fields = attrs.fields_dict(cls)
        kwargs: Dict[str, Any] = {}
        for key, value in props.items():
            name = ALIASES.get(key, key)
            if name in fields:
                kwargs[name] = convert_value(fields[name], value, key)
        return cls(**kwargs)


ALIASES: Dict[str, str] = key_aliases(MessageStoreConfig, {"check_crc_on_recover": "checkCRCOnRecover"})
