"""What clients tell the broker in HEART_BEAT (wire doc §3.7), read leniently across the client variants.

Java and Go send enum names, C++ sends ordinals (and ``subVersion`` as a string, and leaves out the empty
``consumerDataSet``/``producerDataSet``), Node sends names and numbers. Everything is normalised here to
the Java shape, which is also what the admin bodies (consumer connection lists) send back out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attr

from mq.common.hashing import tag_hash_code

SUB_ALL = "*"
EXPRESSION_TAG = "TAG"
EXPRESSION_SQL92 = "SQL92"

CONSUME_TYPES = ("CONSUME_ACTIVELY", "CONSUME_PASSIVELY")
MESSAGE_MODELS = ("BROADCASTING", "CLUSTERING")
CONSUME_FROM_WHERE = (
    "CONSUME_FROM_LAST_OFFSET",
    "CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST",
    "CONSUME_FROM_MIN_OFFSET",
    "CONSUME_FROM_MAX_OFFSET",
    "CONSUME_FROM_FIRST_OFFSET",
    "CONSUME_FROM_TIMESTAMP",
)


def enum_name(value: Any, names: Sequence[str], default: str) -> str:
    """An enum sent as its name (Java, Go, Node) or its ordinal (C++), as the name."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return names[value] if 0 <= value < len(names) else default
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return enum_name(int(text), names, default)
        upper = text.upper()
        return upper if upper in names else default
    return default


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def parse_tags(sub_string: str | None) -> list[str]:
    """The tags of a TAG expression (``a || b``); empty for ``*`` or an empty expression."""
    if not sub_string or sub_string.strip() in ("", SUB_ALL):
        return []
    return [t.strip() for t in sub_string.split("||") if t.strip()]


@attr.s(slots=True, eq=True)
class SubscriptionData:
    topic: str = attr.ib()
    sub_string: str = attr.ib(default=SUB_ALL)
    tags_set: list[str] = attr.ib(factory=list)
    code_set: list[int] = attr.ib(factory=list)
    sub_version: int = attr.ib(default=0)
    expression_type: str = attr.ib(default=EXPRESSION_TAG)
    class_filter_mode: bool = attr.ib(default=False)

    @classmethod
    def build(cls, topic: str, sub_string: str | None, sub_version: int = 0,
              expression_type: str | None = None) -> SubscriptionData:
        """A subscription from an expression, as FilterAPI.build does (tags and their hash codes)."""
        expr_type = (expression_type or EXPRESSION_TAG).upper()
        text = (sub_string or "").strip() or SUB_ALL
        tags = parse_tags(text) if expr_type == EXPRESSION_TAG else []
        return cls(topic, text, tags, [tag_hash_code(t) for t in tags], sub_version, expr_type)

    @property
    def is_all(self) -> bool:
        return self.expression_type == EXPRESSION_TAG and not self.tags_set

    def to_json(self) -> dict[str, Any]:
        return {
            "classFilterMode": self.class_filter_mode,
            "codeSet": list(self.code_set),
            "expressionType": self.expression_type,
            "subString": self.sub_string,
            "subVersion": self.sub_version,
            "tagsSet": list(self.tags_set),
            "topic": self.topic,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SubscriptionData:
        sub = cls.build(
            str(data.get("topic", "")),
            data.get("subString"),
            _int(data.get("subVersion"), 0),
            data.get("expressionType"),
        )
        tags = data.get("tagsSet")
        if tags and sub.expression_type == EXPRESSION_TAG:
            sub.tags_set = [str(t) for t in tags]
            sub.code_set = [tag_hash_code(t) for t in sub.tags_set]
        sub.class_filter_mode = bool(data.get("classFilterMode", False))
        return sub


@attr.s(slots=True, eq=True)
class ConsumerData:
    group_name: str = attr.ib()
    consume_type: str = attr.ib(default="CONSUME_PASSIVELY")
    message_model: str = attr.ib(default="CLUSTERING")
    consume_from_where: str = attr.ib(default="CONSUME_FROM_LAST_OFFSET")
    subscription_data_set: list[SubscriptionData] = attr.ib(factory=list)
    unit_mode: bool = attr.ib(default=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "consumeFromWhere": self.consume_from_where,
            "consumeType": self.consume_type,
            "groupName": self.group_name,
            "messageModel": self.message_model,
            "subscriptionDataSet": [s.to_json() for s in self.subscription_data_set],
            "unitMode": self.unit_mode,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConsumerData:
        return cls(
            str(data.get("groupName", "")),
            enum_name(data.get("consumeType"), CONSUME_TYPES, "CONSUME_PASSIVELY"),
            enum_name(data.get("messageModel"), MESSAGE_MODELS, "CLUSTERING"),
            enum_name(data.get("consumeFromWhere"), CONSUME_FROM_WHERE, "CONSUME_FROM_LAST_OFFSET"),
            [SubscriptionData.from_json(s) for s in data.get("subscriptionDataSet") or [] if isinstance(s, dict)],
            data.get("unitMode") in (True, "true", "1", 1),
        )


@attr.s(slots=True, eq=True)
class HeartbeatData:
    client_id: str = attr.ib()
    producer_groups: list[str] = attr.ib(factory=list)
    consumers: list[ConsumerData] = attr.ib(factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "clientID": self.client_id,
            "consumerDataSet": [c.to_json() for c in self.consumers],
            "producerDataSet": [{"groupName": g} for g in self.producer_groups],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HeartbeatData:
        if not isinstance(data, dict):
            raise ValueError("the heartbeat body is not a JSON object")  # noqa: TRY004 - bad input, not a bug
        return cls(
            str(data.get("clientID", data.get("clientId", ""))),
            [str(p.get("groupName", "")) for p in data.get("producerDataSet") or [] if isinstance(p, dict)],
            [ConsumerData.from_json(c) for c in data.get("consumerDataSet") or [] if isinstance(c, dict)],
        )
