"""Topic names: validation rules and the well-known system topics."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Optional

TOPIC_MAX_LENGTH = 127
_VALID = re.compile(r"^[%|a-zA-Z0-9_-]+$")

DEFAULT_TOPIC = "TBW102"
SELF_TEST_TOPIC = "SELF_TEST_TOPIC"
BENCHMARK_TOPIC = "BenchmarkTest"
OFFSET_MOVED_EVENT = "OFFSET_MOVED_EVENT"
SCHEDULE_TOPIC = "SCHEDULE_TOPIC_XXXX"
TRANS_HALF_TOPIC = "RMQ_SYS_TRANS_HALF_TOPIC"
TRANS_OP_HALF_TOPIC = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
TRANS_CHECK_MAX_TIME_TOPIC = "TRANS_CHECK_MAX_TIME_TOPIC"
TRACE_TOPIC = "RMQ_SYS_TRACE_TOPIC"
RETRY_GROUP_TOPIC_PREFIX = "%RETRY%"
DLQ_GROUP_TOPIC_PREFIX = "%DLQ%"
SYSTEM_TOPIC_PREFIX = "rmq_sys_"

# Topics a producer may not send to directly (the broker writes them itself).
NOT_ALLOWED_SEND_TOPICS = frozenset(
    {SCHEDULE_TOPIC, TRANS_HALF_TOPIC, TRANS_OP_HALF_TOPIC, TRANS_CHECK_MAX_TIME_TOPIC, SELF_TEST_TOPIC, OFFSET_MOVED_EVENT}
)


@lru_cache(maxsize=4096)
def topic_error(topic: str) -> Optional[str]:
    """Why ``topic`` is not a legal topic name, or None if it is (cached: the same topics come back)."""
    if not topic:
        return "the topic is empty"
    if len(topic) > TOPIC_MAX_LENGTH:
        return f"the topic is longer than {TOPIC_MAX_LENGTH} characters"
    if not _VALID.match(topic):
        return "the topic contains characters outside [%|a-zA-Z0-9_-]"
    return None


def is_valid_topic(topic: str) -> bool:
    return topic_error(topic) is None


def retry_topic(group: str) -> str:
    return RETRY_GROUP_TOPIC_PREFIX + group


def dlq_topic(group: str) -> str:
    return DLQ_GROUP_TOPIC_PREFIX + group
