"""The message store: CommitLog, ConsumeQueues, IndexFiles, flushing, recovery and retention (docs/store.md)."""

from mq.store.config import BrokerRole, FlushDiskType, MessageStoreConfig
from mq.store.filter import TagFilter
from mq.store.results import (
    AppendMessageResult,
    AppendMessageStatus,
    GetMessageResult,
    GetMessageStatus,
    PutMessageResult,
    PutMessageStatus,
    QueryMessageResult,
    StoreStats,
)
from mq.store.store import MessageStore

__all__ = [
    "AppendMessageResult",
    "AppendMessageStatus",
    "BrokerRole",
    "FlushDiskType",
    "GetMessageResult",
    "GetMessageStatus",
    "MessageStore",
    "MessageStoreConfig",
    "PutMessageResult",
    "PutMessageStatus",
    "QueryMessageResult",
    "StoreStats",
    "TagFilter",
]
