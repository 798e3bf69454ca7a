"""MessageStoreConfig: the store's settings, with RocketMQ's ``broker.conf`` key names as aliases."""

from __future__ import annotations

import enum
import os
from typing import Any, Dict, Mapping

import attrs

from mq.common.config import convert_value, key_aliases


class FlushDiskType(str, enum.Enum):
    ASYNC_FLUSH = "ASYNC_FLUSH"
    SYNC_FLUSH = "SYNC_FLUSH"


class BrokerRole(str, enum.Enum):
    ASYNC_MASTER = "ASYNC_MASTER"
    SYNC_MASTER = "SYNC_MASTER"
    SLAVE = "SLAVE"


_UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_delay_levels(text: str) -> Dict[int, int]:
    """``"1s 5s 10s ..."`` to {level: delay ms}, levels from 1."""
    table = {}
    for level, item in enumerate(text.split(), start=1):
        table[level] = int(item[:-1]) * _UNITS_MS[item[-1]]
    return table


@attrs.define
class MessageStoreConfig:
    """Store settings. Defaults are RocketMQ 4.9's; tests shrink the file sizes."""

    store_path_root_dir: str = attrs.field(factory=lambda: os.path.join(os.path.expanduser("~"), "store"))
    mapped_file_size_commit_log: int = 1024 * 1024 * 1024
    mapped_file_size_consume_queue: int = 300_000  # entries (RocketMQ: 300000 * 20 bytes)
    max_message_size: int = 4 * 1024 * 1024
    flush_disk_type: FlushDiskType = FlushDiskType.ASYNC_FLUSH
    broker_role: BrokerRole = BrokerRole.ASYNC_MASTER
    flush_interval_commit_log: int = 500  # ms
    flush_interval_consume_queue: int = 1000  # ms
    sync_flush_timeout: int = 5000  # ms
    check_crc_on_recover: bool = True
    check_crc_on_read: bool = True
    file_reserved_time: int = 72  # hours
    delete_when: str = "04"  # hours of day, ';'-separated
    disk_max_used_space_ratio: int = 75  # percent: delete expired files at any hour above this
    disk_space_clean_forcibly_ratio: int = 85  # percent: delete the oldest files even if not expired
    disk_space_warning_level_ratio: int = 90  # percent: refuse puts above this
    disk_space_check_interval: int = 100  # ms: disk use is read at most this often on the put path
    clean_resource_interval: int = 10_000  # ms
    delete_commit_log_files_max: int = 10  # files per cleanup run
    max_hash_slot_num: int = 5_000_000
    max_index_num: int = 20_000_000
    message_index_enable: bool = True
    max_transfer_bytes_on_message_in_memory: int = 256 * 1024
    max_transfer_count_on_message_in_memory: int = 32
    max_transfer_bytes_on_message_in_disk: int = 64 * 1024
    max_transfer_count_on_message_in_disk: int = 8
    access_message_in_memory_max_ratio: int = 40  # percent of RAM
    default_query_max_num: int = 32
    message_delay_level: str = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"
    offset_check_in_slave: bool = False
    # Bytes of CommitLog pages mapped ahead of the writer by a background thread (0: off); RocketMQ's
    # warmMapedFileEnable does the same for a whole file at creation.
    commit_log_prefault_ahead: int = 8 * 1024 * 1024

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
