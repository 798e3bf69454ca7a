"""Value types of the client API: message queues, send results, pull results, consume statuses and errors."""

from __future__ import annotations

import enum
from typing import List, Optional

import attr

from mq.common.message import MessageExt


@attr.s(frozen=True, slots=True, order=True, repr=False)
class MessageQueue:
    """One queue of one topic on one broker (``brokerName``), the unit of sending, allocation and offsets."""

    topic: str = attr.ib()
    broker_name: str = attr.ib()
    queue_id: int = attr.ib()

    def __repr__(self) -> str:
        # Java's MessageQueue.toString(): the consistent-hash strategy hashes exactly this text.
        return f"MessageQueue [topic={self.topic}, brokerName={self.broker_name}, queueId={self.queue_id}]"

    def to_json(self) -> dict:
        return {"brokerName": self.broker_name, "queueId": self.queue_id, "topic": self.topic}

    @classmethod
    def from_json(cls, data: dict) -> "MessageQueue":
        return cls(str(data["topic"]), str(data["brokerName"]), int(data["queueId"]))


class SendStatus(str, enum.Enum):
    """How a broker stored a message; anything but SEND_OK still means the message is stored."""

    SEND_OK = "SEND_OK"
    FLUSH_DISK_TIMEOUT = "FLUSH_DISK_TIMEOUT"
    FLUSH_SLAVE_TIMEOUT = "FLUSH_SLAVE_TIMEOUT"
    SLAVE_NOT_AVAILABLE = "SLAVE_NOT_AVAILABLE"


@attr.s(slots=True)
class SendResult:
    """What a send returns: ``msg_id`` is the client id (UNIQ_KEY, comma-joined for a batch)."""

    status: SendStatus = attr.ib()
    msg_id: str = attr.ib()
    offset_msg_id: str = attr.ib()
    message_queue: MessageQueue = attr.ib()
    queue_offset: int = attr.ib()
    transaction_id: Optional[str] = attr.ib(default=None)
    region_id: Optional[str] = attr.ib(default=None)
    trace_on: bool = attr.ib(default=True)


class LocalTransactionState(str, enum.Enum):
    COMMIT_MESSAGE = "COMMIT_MESSAGE"
    ROLLBACK_MESSAGE = "ROLLBACK_MESSAGE"
    UNKNOW = "UNKNOW"


@attr.s(slots=True)
class TransactionSendResult(SendResult):
    local_transaction_state: LocalTransactionState = attr.ib(default=LocalTransactionState.UNKNOW)


class PullStatus(str, enum.Enum):
    FOUND = "FOUND"
    NO_NEW_MSG = "NO_NEW_MSG"
    NO_MATCHED_MSG = "NO_MATCHED_MSG"
    OFFSET_ILLEGAL = "OFFSET_ILLEGAL"


@attr.s(slots=True)
class PullResult:
    status: PullStatus = attr.ib()
    next_begin_offset: int = attr.ib()
    min_offset: int = attr.ib()
    max_offset: int = attr.ib()
    messages: List[MessageExt] = attr.ib(factory=list)
    suggest_which_broker_id: int = attr.ib(default=0)


class ConsumeConcurrentlyStatus(str, enum.Enum):
    """What a concurrent listener returns: success, or consume the message again later (with a delay)."""

    CONSUME_SUCCESS = "CONSUME_SUCCESS"
    RECONSUME_LATER = "RECONSUME_LATER"


class ConsumeOrderlyStatus(str, enum.Enum):
    """What an orderly listener returns; SUSPEND_CURRENT_QUEUE_A_MOMENT retries the same messages locally."""

    SUCCESS = "SUCCESS"
    SUSPEND_CURRENT_QUEUE_A_MOMENT = "SUSPEND_CURRENT_QUEUE_A_MOMENT"


class MessageModel(str, enum.Enum):
    CLUSTERING = "CLUSTERING"
    BROADCASTING = "BROADCASTING"


class ConsumeFromWhere(str, enum.Enum):
    CONSUME_FROM_LAST_OFFSET = "CONSUME_FROM_LAST_OFFSET"
    CONSUME_FROM_FIRST_OFFSET = "CONSUME_FROM_FIRST_OFFSET"
    CONSUME_FROM_TIMESTAMP = "CONSUME_FROM_TIMESTAMP"


class MQClientError(Exception):
    """A request the client could not complete; ``code`` is the broker's response code when there was one."""

    def __init__(self, message: str, code: Optional[int] = None, remark: Optional[str] = None) -> None:
        super().__init__(message)
        self.code = code
        self.remark = remark


class MQBrokerError(MQClientError):
    """The broker (or NameServer) answered with an error code."""


class NoRouteError(MQClientError):
    """No route for the topic (the NameServer does not know it and auto-creation is not possible)."""


class RequestTimeoutError(MQClientError):
    """``Producer.request``: no reply arrived within the timeout (Java ``RequestTimeoutException``)."""
