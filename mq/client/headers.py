"""Custom headers of client-side requests; those the broker declares too come from ``broker_headers``."""

from __future__ import annotations

import attr

from mq.common.broker_headers import (  # noqa: F401 - re-exported for the client modules
    CheckTransactionStateRequestHeader,
    ConsumerSendMsgBackRequestHeader,
    EndTransactionRequestHeader,
)
from mq.remoting.header import CommandHeader, hfield


@attr.s(slots=True)
class ResetOffsetRequestHeader(CommandHeader):
    topic: str = hfield("topic", required=True)
    group: str = hfield("group", required=True)
    timestamp: int = hfield("timestamp", int, required=True)
    is_force: bool = hfield("isForce", bool, default=False)
