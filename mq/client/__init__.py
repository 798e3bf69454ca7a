"""The RocketMQ 4.x client library on Twisted, and a blocking facade (``mq.client.blocking``).

``Producer`` and ``TransactionProducer`` send; ``PushConsumer`` calls a listener for each message;
``LitePullConsumer`` lets the application poll. Every network call returns a Deferred. ``SimpleClient`` is
the small request-per-call layer that tests, benchmarks and tools use directly.
"""

from mq.acl.signing import Credentials
from mq.client.allocate import (
    ConsistentHashAllocator,
    allocate_averagely,
    allocate_averagely_by_circle,
    allocate_consistent_hash,
)
from mq.client.instance import ClientConfig
from mq.client.model import (
    ConsumeConcurrentlyStatus,
    ConsumeFromWhere,
    ConsumeOrderlyStatus,
    LocalTransactionState,
    MessageModel,
    MessageQueue,
    MQBrokerError,
    MQClientError,
    PullResult,
    PullStatus,
    RequestTimeoutError,
    SendResult,
    SendStatus,
)
from mq.client.producer import Producer, make_message
from mq.client.request_reply import create_reply
from mq.client.selector import select_by_hash, select_by_random
from mq.client.simple import SimpleClient, new_unique_key
from mq.common.message import Message, MessageExt

__all__ = [
    "ClientConfig", "ConsistentHashAllocator", "Credentials", "ConsumeConcurrentlyStatus", "ConsumeFromWhere",
    "ConsumeOrderlyStatus", "LocalTransactionState", "MQBrokerError", "MQClientError", "Message", "MessageExt",
    "MessageModel", "MessageQueue", "Producer", "PullResult", "PullStatus", "RequestTimeoutError", "SendResult",
    "SendStatus", "SimpleClient", "allocate_averagely", "allocate_averagely_by_circle", "allocate_consistent_hash",
    "create_reply", "make_message", "new_unique_key", "select_by_hash", "select_by_random",
]

from mq.client.push_consumer import ConsumeConcurrentlyContext, ConsumeOrderlyContext, PushConsumer  # noqa: E402

__all__ += ["ConsumeConcurrentlyContext", "ConsumeOrderlyContext", "PushConsumer"]

from mq.client.lite_pull import LitePullConsumer  # noqa: E402

__all__ += ["LitePullConsumer"]

from mq.client.transaction import TransactionProducer  # noqa: E402

__all__ += ["TransactionProducer"]
