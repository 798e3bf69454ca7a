"""The rules a write must pass on its topic: shared by SEND_MESSAGE and by a transaction's commit.

A commit writes where the half message's REAL_TOPIC says, and the topic may have been deleted, made read-only
or renamed out of reach since the half was sent; so the commit asks the same question a send does, in one place,
and neither can drift from the other.
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

from mq.common import mixall
from mq.common.names import topic_error
from mq.common.route import PERM_READ, PERM_WRITE, TopicConfig
from mq.common.topic import DLQ_GROUP_TOPIC_PREFIX, NOT_ALLOWED_SEND_TOPICS, RETRY_GROUP_TOPIC_PREFIX
from mq.remoting.codes import ResponseCode as RC

Refusal = Tuple[int, str]


def topic_for_send(topics, topic: str, default_topic: str, default_queue_nums: int, sys_flag: int = 0,
                   subject: str = "The specified topic") -> Union[TopicConfig, Refusal]:
    """The config of ``topic`` to write into (created on demand from ``default_topic`` as RocketMQ does, a group's
    retry or dead-letter topic as the broker's own), or a refusal (code, remark): a bad or forbidden name, or no
    such topic and none may be created. ``topics``: the broker's TopicConfigManager; ``subject`` names the topic
    in remarks."""
    why = topic_error(topic)
    if why is not None:
        return RC.SYSTEM_ERROR, f"{subject} is not valid: {why}."
    if topic in NOT_ALLOWED_SEND_TOPICS:
        return RC.NO_PERMISSION, f"Sending message to topic[{topic}] is forbidden."
    tc = topics.table.get(topic)
    if tc is None:
        group = group_of(topic)
        if group is None:
            tc = topics.create_in_send(topic, default_topic, default_queue_nums, sys_flag)
        elif topics.known_group(group):  # a group's own topic (one queue), never one from TBW102
            tc = topics.create_system(topic, 1, PERM_READ | PERM_WRITE, sys_flag)
        if tc is None:
            config = topics.config
            if group is not None:
                why = f"no subscription group {group} for its retry or dead-letter topic"
            elif config.auto_create_topic_enable and topics.plain_topics() >= config.max_topic_nums:
                why = f"the broker holds {topics.plain_topics()} topics (maxTopicNums={config.max_topic_nums})"
            else:
                why = f"auto-creation from {default_topic} is {'on' if config.auto_create_topic_enable else 'off'}"
            return RC.TOPIC_NOT_EXIST, f"topic[{topic}] not exist, apply first please! ({why}) {mixall.FAQ_URL}"
    return tc


def group_of(topic: str) -> Optional[str]:
    """The group a ``%RETRY%`` or ``%DLQ%`` topic belongs to, or None for any other topic. A send creates such a
    topic only for a subscription group that exists: made-up groups would grow the topic table without end, past
    ``maxTopicNums`` (which does not count them) and the groups' own bound."""
    for prefix in (RETRY_GROUP_TOPIC_PREFIX, DLQ_GROUP_TOPIC_PREFIX):
        if topic.startswith(prefix):
            return topic[len(prefix):]
    return None


def write_refusal(tc: TopicConfig) -> Union[Refusal, None]:
    """NO_PERMISSION when the topic takes no writes, else None."""
    if tc.perm & PERM_WRITE:
        return None
    return RC.NO_PERMISSION, f"the topic[{tc.topic_name}] sending message is forbidden"
