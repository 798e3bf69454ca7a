"""Custom headers of the client-side requests that ``mq.common.broker_headers`` does not declare (yet)."""

from __future__ import annotations

import attr

from mq.remoting.header import CommandHeader, hfield


@attr.s(slots=True)
class ConsumerSendMsgBackRequestHeader(CommandHeader):
    offset: int = hfield("offset", int, required=True)
    group: str = hfield("group", required=True)
    delay_level: int = hfield("delayLevel", int, required=True)
    origin_msg_id: str = hfield("originMsgId")
    origin_topic: str = hfield("originTopic")
    unit_mode: bool = hfield("unitMode", bool, default=False)
    max_reconsume_times: int = hfield("maxReconsumeTimes", int)


@attr.s(slots=True)
class EndTransactionRequestHeader(CommandHeader):
    producer_group: str = hfield("producerGroup", required=True)
    tran_state_table_offset: int = hfield("tranStateTableOffset", int, required=True)
    commit_log_offset: int = hfield("commitLogOffset", int, required=True)
    commit_or_rollback: int = hfield("commitOrRollback", int, required=True)
    from_transaction_check: bool = hfield("fromTransactionCheck", bool, default=False)
    msg_id: str = hfield("msgId", required=True)
    transaction_id: str = hfield("transactionId")


@attr.s(slots=True)
class CheckTransactionStateRequestHeader(CommandHeader):
    tran_state_table_offset: int = hfield("tranStateTableOffset", int, required=True)
    commit_log_offset: int = hfield("commitLogOffset", int, required=True)
    msg_id: str = hfield("msgId")
    transaction_id: str = hfield("transactionId")
    offset_msg_id: str = hfield("offsetMsgId")


@attr.s(slots=True)
class ResetOffsetRequestHeader(CommandHeader):
    topic: str = hfield("topic", required=True)
    group: str = hfield("group", required=True)
    timestamp: int = hfield("timestamp", int, required=True)
    is_force: bool = hfield("isForce", bool, default=False)
