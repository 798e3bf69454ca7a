"""``TransactionProducer``: half messages, a local transaction, then commit or rollback (Java
``TransactionMQProducer``).

``send_message_in_transaction(msg, arg)`` sends ``msg`` as a half message (invisible to consumers), runs
``local_transaction(msg, arg)`` and ends the transaction with its answer: ``COMMIT_MESSAGE`` makes the
message visible, ``ROLLBACK_MESSAGE`` discards it, ``UNKNOW`` leaves it to the broker's check: the broker
later sends CHECK_TRANSACTION_STATE and ``check_listener(msg)`` answers. Both callables may return a
Deferred; an exception counts as UNKNOW.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.internet import defer
from twisted.logger import Logger

from mq.client.headers import CheckTransactionStateRequestHeader, EndTransactionRequestHeader
from mq.client.model import LocalTransactionState, MQClientError, SendStatus, TransactionSendResult
from mq.client.producer import Producer
from mq.common.message import Message, MessageConst, MessageExt, MessageSysFlag, decode_offset_msg_id
from mq.remoting.codes import RequestCode
from mq.remoting.command import RemotingCommand

log = Logger()

LocalTransaction = Callable[[Message, Any], Any]
CheckListener = Callable[[MessageExt], Any]

_STATE_FLAG = {
    LocalTransactionState.COMMIT_MESSAGE: MessageSysFlag.TRANSACTION_COMMIT_TYPE,
    LocalTransactionState.ROLLBACK_MESSAGE: MessageSysFlag.TRANSACTION_ROLLBACK_TYPE,
    LocalTransactionState.UNKNOW: MessageSysFlag.TRANSACTION_NOT_TYPE,
}


def _state(value) -> LocalTransactionState:
    if value is None:
        return LocalTransactionState.UNKNOW
    return LocalTransactionState(value)


class TransactionProducer(Producer):
    """A producer whose ``send_message_in_transaction`` runs a local transaction between send and commit."""

    def __init__(self, group: str, namesrv_addr=None, *, local_transaction: Optional[LocalTransaction] = None,
                 check_listener: Optional[CheckListener] = None, **kwargs) -> None:
        super().__init__(group, namesrv_addr, **kwargs)
        self.local_transaction = local_transaction
        self.check_listener = check_listener

    @defer.inlineCallbacks
    def send_message_in_transaction(self, msg: Message, arg: Any = None, timeout: Optional[float] = None):
        """A Deferred of a ``TransactionSendResult`` once the transaction is ended (or left to the check)."""
        if self.local_transaction is None:
            raise MQClientError("set local_transaction before sending transaction messages")
        msg.delay_time_level = 0
        msg.properties[MessageConst.PROPERTY_TRANSACTION_PREPARED] = "true"
        msg.properties[MessageConst.PROPERTY_PRODUCER_GROUP] = self.group
        result = yield self.send(msg, timeout)
        state = LocalTransactionState.ROLLBACK_MESSAGE
        if result.status is SendStatus.SEND_OK:
            try:
                state = _state((yield defer.maybeDeferred(self.local_transaction, msg, arg)))
            except Exception as e:
                log.warn("the local transaction of {id} raised: {e}", id=result.msg_id, e=e)
                state = LocalTransactionState.UNKNOW
        addr = self.instance.master_addr(result.message_queue.broker_name)
        if addr is not None:
            header = self._end_header(result.offset_msg_id, result.queue_offset, state, result.msg_id,
                                      result.transaction_id, False)
            try:
                yield self.instance.api.end_transaction(addr, header)
            except Exception as e:  # the broker's check will ask again
                log.warn("END_TRANSACTION for {id} failed: {e}", id=result.msg_id, e=e)
            if self.tracer is not None:
                self.tracer.ended(msg, result.msg_id, addr, state.value, result.transaction_id, result.region_id,
                                  False)
        out = TransactionSendResult(result.status, result.msg_id, result.offset_msg_id, result.message_queue,
                                    result.queue_offset, result.transaction_id or result.msg_id, result.region_id,
                                    result.trace_on)
        out.local_transaction_state = state
        return out

    def _end_header(self, offset_msg_id: str, queue_offset: int, state: LocalTransactionState, msg_id: str,
                    transaction_id: Optional[str], from_check: bool) -> EndTransactionRequestHeader:
        _, commit_log_offset = decode_offset_msg_id(offset_msg_id)
        return EndTransactionRequestHeader(
            producer_group=self.group, tran_state_table_offset=queue_offset, commit_log_offset=commit_log_offset,
            commit_or_rollback=_STATE_FLAG[state], from_transaction_check=from_check, msg_id=msg_id,
            transaction_id=transaction_id)

    def check_transaction_state(self, channel, header: CheckTransactionStateRequestHeader, msg: MessageExt) -> None:
        """CHECK_TRANSACTION_STATE from a broker: ask ``check_listener`` and answer on the same connection."""
        if self.check_listener is None:
            log.warn("a transaction check arrived but {group} has no check_listener", group=self.group)
            return
        uniq = msg.properties.get(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX) or msg.msg_id

        def answer(state) -> None:
            remark = None
            if not isinstance(state, LocalTransactionState):
                remark = f"check listener failed: {getattr(state, 'value', state)}"
                state = LocalTransactionState.UNKNOW
            end = EndTransactionRequestHeader(
                producer_group=self.group, tran_state_table_offset=header.tran_state_table_offset,
                commit_log_offset=header.commit_log_offset, commit_or_rollback=_STATE_FLAG[state],
                from_transaction_check=True, msg_id=uniq, transaction_id=header.transaction_id)
            request = RemotingCommand.request(RequestCode.END_TRANSACTION, end.encode())
            request.remark = remark
            if channel.connected:
                channel.send_oneway(request)
            if self.tracer is not None:
                self.tracer.ended(msg, uniq, getattr(channel, "peer", None), state.value, header.transaction_id,
                                  msg.properties.get(MessageConst.PROPERTY_MSG_REGION), True)

        d = defer.maybeDeferred(self.check_listener, msg).addCallback(_state)
        d.addBoth(answer)
        d.addErrback(lambda f: log.failure("answering a transaction check", f))
