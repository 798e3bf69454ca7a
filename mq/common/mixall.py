"""Names and defaults shared by broker, clients and tools (Java ``MixAll`` and friends)."""

from __future__ import annotations

from mq.common.topic import (  # noqa: F401 - re-exported: the system topic names live in mq.common.topic
    BENCHMARK_TOPIC,
    DEFAULT_TOPIC,
    DLQ_GROUP_TOPIC_PREFIX,
    NOT_ALLOWED_SEND_TOPICS,
    OFFSET_MOVED_EVENT,
    RETRY_GROUP_TOPIC_PREFIX,
    SCHEDULE_TOPIC,
    SELF_TEST_TOPIC,
    dlq_topic,
    retry_topic,
)

MASTER_ID = 0
#: The most read or write queues a topic may have (UPDATE_AND_CREATE_TOPIC's bound; also a group's retry queues).
MAX_TOPIC_QUEUE_NUMS = 1024
DEFAULT_CLUSTER = "DefaultCluster"
DEFAULT_REGION = "DefaultRegion"
DEFAULT_NAMESRV_PORT = 9876
DEFAULT_BROKER_PORT = 10911
REPLY_TOPIC_POSTFIX = "REPLY_TOPIC"

DEFAULT_PRODUCER_GROUP = "DEFAULT_PRODUCER"
DEFAULT_CONSUMER_GROUP = "DEFAULT_CONSUMER"
TOOLS_CONSUMER_GROUP = "TOOLS_CONSUMER"
FILTERSRV_CONSUMER_GROUP = "FILTERSRV_CONSUMER"
MONITOR_CONSUMER_GROUP = "__MONITOR_CONSUMER"
CLIENT_INNER_PRODUCER_GROUP = "CLIENT_INNER_PRODUCER"
SELF_TEST_PRODUCER_GROUP = "SELF_TEST_P_GROUP"
SELF_TEST_CONSUMER_GROUP = "SELF_TEST_C_GROUP"
ONS_HTTP_PROXY_GROUP = "CID_ONS-HTTP-PROXY"
CID_ONSAPI_PERMISSION_GROUP = "CID_ONSAPI_PERMISSION"
CID_ONSAPI_OWNER_GROUP = "CID_ONSAPI_OWNER"
CID_ONSAPI_PULL_GROUP = "CID_ONSAPI_PULL"
CID_RMQ_SYS_PREFIX = "CID_RMQ_SYS_"
CID_SYS_RMQ_TRANS = "CID_RMQ_SYS_TRANS"

#: Subscription groups every broker has from its first start (SubscriptionGroupManager.init).
PRESET_SUBSCRIPTION_GROUPS = (
    TOOLS_CONSUMER_GROUP,
    FILTERSRV_CONSUMER_GROUP,
    SELF_TEST_CONSUMER_GROUP,
    ONS_HTTP_PROXY_GROUP,
    CID_ONSAPI_PULL_GROUP,
    CID_ONSAPI_PERMISSION_GROUP,
    CID_ONSAPI_OWNER_GROUP,
)

#: The FAQ link RocketMQ appends to some remarks (clients print the remark as is).
FAQ_URL = "http://rocketmq.apache.org/docs/faq/"

#: Clients older than this cannot answer GET_CONSUMER_RUNNING_INFO / CONSUME_MESSAGE_DIRECTLY (V3_1_8_SNAPSHOT).
MIN_VERSION_CONSUMER_RUNNING_INFO = 62
#: V3_0_7_SNAPSHOT: clients older than this cannot take RESET_CONSUMER_CLIENT_OFFSET.
MIN_VERSION_RESET_OFFSET = 28


def is_retry_topic(topic: str) -> bool:
    return topic.startswith(RETRY_GROUP_TOPIC_PREFIX)


def is_dlq_topic(topic: str) -> bool:
    return topic.startswith(DLQ_GROUP_TOPIC_PREFIX)


def is_sys_consumer_group(group: str) -> bool:
    return group.startswith(CID_RMQ_SYS_PREFIX)


def reply_topic(cluster: str) -> str:
    return f"{cluster}_{REPLY_TOPIC_POSTFIX}"


def topic_queue_key(topic: str, group: str) -> str:
    """The consumer offset table key, ``topic@group``."""
    return f"{topic}@{group}"
