"""Message filters for reads: a cheap check on the ConsumeQueue tags code, an exact one on the record."""

from __future__ import annotations

from typing import FrozenSet, Iterable, Protocol

from mq.common.hashing import tag_hash_code
from mq.common.message import MessageConst
from mq.common.message_record import record_properties


class MessageFilter(Protocol):
    def is_matched_by_consume_queue(self, tags_code: int) -> bool: ...

    def is_matched_by_commit_log(self, record: bytes) -> bool: ...


class TagFilter:
    """A tag subscription (``a || b``): hash codes at the queue, then the exact TAGS string on the record
    (two tags can share a hash code)."""

    def __init__(self, tags: Iterable[str]) -> None:
        self.tags: FrozenSet[str] = frozenset(t.strip() for t in tags if t.strip())
        self.match_all = not self.tags or "*" in self.tags
        self.codes = frozenset(tag_hash_code(t) for t in self.tags)

    @classmethod
    def from_expression(cls, expression: str) -> "TagFilter":
        return cls(expression.split("||") if expression else [])

    def is_matched_by_consume_queue(self, tags_code: int) -> bool:
        return self.match_all or tags_code in self.codes

    def is_matched_by_commit_log(self, record: bytes) -> bool:
        if self.match_all:
            return True
        return record_properties(record).get(MessageConst.PROPERTY_TAGS) in self.tags
