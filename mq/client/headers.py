"""Custom headers of client-side requests; those the broker declares too come from ``broker_headers``."""

from __future__ import annotations

from mq.common.broker_headers import (  # noqa: F401 - re-exported for the client modules
    CheckTransactionStateRequestHeader,
    ConsumerSendMsgBackRequestHeader,
    EndTransactionRequestHeader,
    ResetOffsetRequestHeader,
)
