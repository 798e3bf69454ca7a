"""Transactions: half messages, END_TRANSACTION (37) and the check-back (CHECK_TRANSACTION_STATE, 39).

Storage is RocketMQ's (wire doc §3.10–§3.12), so a store written here reads the same there:

* A send with ``TRAN_MSG=true`` is a *half message*: stored in ``RMQ_SYS_TRANS_HALF_TOPIC`` queue 0 with its
  real topic and queue in ``REAL_TOPIC``/``REAL_QID`` and the transaction bits of its sysFlag reset, so no
  consumer of the real topic sees it. The send answer is the usual one (offset id, half queue offset).
* END_TRANSACTION commit stores the message in its real topic and queue (sysFlag COMMIT, prepared
  transaction offset = the half message's CommitLog offset, ``TRAN_MSG`` removed); rollback stores
  nothing. Either way an *op message* goes to ``RMQ_SYS_TRANS_OP_HALF_TOPIC`` (tag ``d``, body = the half
  message's queue offset). A second end of the same half message (say a commit arriving after a check
  already committed it) changes nothing: ends of one transaction (its original half message and the copies
  the checker made of it) run one at a time, each deciding only once the one before it has stored its op
  message (or failed), and a commit whose op message the store refused is remembered as ended and its op
  message written again by the next check round. A commit of a transaction whose half message and copies the
  checker has all moved past, without discarding it or giving it up (mostly an end the memory no longer
  recalls), first looks for the committed record in the message index (``committed.py``). The half message
  is the record at ``commitLogOffset`` only if the half queue holds it, at ``tranStateTableOffset`` (a
  message body can look like a whole half record); a commit goes only where a send could (REAL_TOPIC not
  forbidden, existing or creatable, writable, REAL_QID within its queues).
* The checker runs every ``transactionCheckInterval``. Each half message without an op that is older than
  ``transactionTimeOut`` (or its ``CHECK_IMMUNITY_TIME_IN_SECONDS``) is appended again to the half queue with
  ``TRANSACTION_CHECK_TIMES`` + 1 and ``TRAN_PREPARED_QUEUE_OFFSET`` = its first queue offset, and
  CHECK_TRANSACTION_STATE (oneway) goes to one live producer connection of its ``PGROUP`` for the copy. A
  producer that answers UNKNOW (or nothing) leaves it for the next round; after ``transactionCheckMax``
  checks it is discarded into ``TRANS_CHECK_MAX_TIME_TOPIC``. A message due by ``transactionTimeOut`` but
  held by a longer immunity is appended again unchecked, so that it holds back no other message.

Progress is two offsets kept under the internal group ``CID_RMQ_SYS_TRANS`` in ``consumerOffset.json`` (as
RocketMQ does): the next half message to look at and the first op message still needed. Everything
else is read back from the store, so all of it survives a restart.
"""

from __future__ import annotations

import collections
import random
from typing import Deque, Dict, List, Optional, Tuple

from twisted.internet import defer, task
from twisted.logger import Logger

from mq.broker.schedule.delay_level import STORE_WIDE, stored_properties_string
from mq.broker.transaction.committed import commit_stored
from mq.broker.transaction.end_checks import commit_refusal, requested_half
from mq.broker.transaction.end_checks import int_property as _int
from mq.common import mixall
from mq.common.broker_headers import CheckTransactionStateRequestHeader, EndTransactionRequestHeader
from mq.common.message import MessageConst, MessageExt, MessageExtBrokerInner, MessageSysFlag, create_offset_msg_id
from mq.common.message_record import decode_message_ext, encode_message_ext
from mq.common.route import PERM_READ, PERM_WRITE
from mq.common.topic import (
    TRANS_CHECK_MAX_TIME_TOPIC,
    TRANS_HALF_TOPIC,
    TRANS_OP_HALF_TOPIC,
)
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand
from mq.remoting.protocol import RemotingConnectionError

log = Logger()
RC = ResponseCode
PERM_RW = PERM_READ | PERM_WRITE
SYS_GROUP = mixall.CID_SYS_RMQ_TRANS
OP_TAG = "d"
#: Ended transactions remembered after the checker is done with them (``ended``, also read back from the op
#: queue at start), and transactions it gave up (``given_up``); an older end is found in the message index.
ENDED_MEMORY = 65536
_C = MessageConst
_COMMIT = MessageSysFlag.TRANSACTION_COMMIT_TYPE
_ROLLBACK = MessageSysFlag.TRANSACTION_ROLLBACK_TYPE


def is_half_send(inner: MessageExtBrokerInner) -> bool:
    return inner.properties.get(_C.PROPERTY_TRANSACTION_PREPARED, "").lower() == "true"


def _identity(msg: MessageExt) -> int:
    """The transaction a half message belongs to: the queue offset of its original (a check's copy names it)."""
    first = _int(msg.properties.get(_C.PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET))
    return first if first >= 0 else msg.queue_offset


class TransactionalMessageService:
    def __init__(self, broker) -> None:
        self.broker = broker
        self.store = broker.store
        self.config = broker.config
        self._random = random.Random()
        #: next half queue offset the checker looks at
        self.half_offset = 0
        #: op messages read so far and still needed, in op order: (op queue offset, the half queue offsets it
        #: ends: the one it names and, for a check's copy, the first one)
        self.ops: Deque[Tuple[int, Tuple[int, ...]]] = collections.deque()
        self.done: Dict[int, int] = {}  # half queue offset -> number of op messages ending it
        #: half queue offsets of ended transactions whose op messages the checker no longer needs (pruned),
        #: oldest first, at most ENDED_MEMORY: a producer's late END_TRANSACTION for one is still ignored
        self.ended: Dict[int, None] = {}
        self.op_read_to = 0
        #: copies appended by checks and not yet looked at: copy queue offset -> first queue offset
        self.pending_copies: Dict[int, int] = {}
        #: first queue offset -> its copies pending or still being appended (the transaction is open)
        self.open_copies: Dict[int, int] = {}
        #: half queue offset -> its copies still being appended
        self.copying_from: Dict[int, int] = {}
        #: transactions the checker moved past without an op message (discarded after transactionCheckMax
        #: checks, a copy refused, a record it could not read): a late end still commits them. Oldest first,
        #: at most ENDED_MEMORY; the discarded ones are read back from TRANS_CHECK_MAX_TIME_TOPIC at start.
        self.given_up: Dict[int, None] = {}
        #: transaction (first half queue offset) -> ends waiting for the one in progress (END_TRANSACTION)
        self.ending: Dict[int, List[defer.Deferred]] = {}
        #: committed transactions whose op message the store refused: first half queue offset -> the queue
        #: offset the op message names (written again by the next check round)
        self.unmarked: Dict[int, int] = {}
        #: transactions whose commit put failed without saying whether it will land (a DLedger quorum that
        #: timed out): first half queue offset -> the CommitLog end the outcome is known at
        self.uncertain: Dict[int, int] = {}
        #: the CommitLog end when the service started: a half message below it may have been committed by
        #: an end whose op message never made it (a crash between the two, a new DLedger leader)
        self.started_at = 0
        self.checks_sent = 0
        self.discarded = 0
        self._loop: Optional[task.LoopingCall] = None

    # -- life cycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        self.started_at = self.store.commitlog.max_offset
        # read back from the store (a new DLedger leader starts the same service again): nothing counted twice
        self.ops.clear()
        self.done.clear()
        self.pending_copies.clear()
        self.open_copies.clear()
        offsets = self.broker.consumer_offset_manager
        self.half_offset = max(0, offsets.query(SYS_GROUP, TRANS_HALF_TOPIC, 0))
        needed = max(0, offsets.query(SYS_GROUP, TRANS_OP_HALF_TOPIC, 0))
        cq = self.store.consume_queue(TRANS_HALF_TOPIC, 0)
        if cq is not None:  # copies appended before the restart and not looked at yet
            for off in range(max(self.half_offset, cq.min_offset), cq.max_offset):
                msg = self._load(cq, off)
                if msg is not None:
                    first = _int(msg.properties.get(_C.PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET))
                    if first >= 0:
                        self._pend(off, first)
        discarded = self.store.consume_queue(TRANS_CHECK_MAX_TIME_TOPIC, 0)
        if discarded is not None:
            for off in range(max(discarded.min_offset, discarded.max_offset - ENDED_MEMORY), discarded.max_offset):
                msg = self._load(discarded, off)
                if msg is not None:
                    self._give_up(_identity(msg))
        # The ends the checker had already pruned before the stop are read back too (the last ENDED_MEMORY op
        # messages before the first one still needed), so a late END_TRANSACTION after a restart is recognised.
        self.op_read_to = max(0, needed - ENDED_MEMORY)
        self.read_ops()
        self._prune_ops()
        if self.config.is_slave:
            return
        self._loop = task.LoopingCall(self.check)
        self._loop.clock = self.broker.reactor
        self._loop.start(self.config.transaction_check_interval / 1000.0, now=False).addErrback(
            lambda f: log.failure("transaction checker stopped", f))

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        self._save_offsets()

    def _save_offsets(self) -> None:
        offsets = self.broker.consumer_offset_manager
        # not past a message whose copy is still being appended (a DLedger quorum): if it never lands (this
        # leader dies), the next one looks at the message again instead of taking the transaction as ended
        offsets.commit(SYS_GROUP, TRANS_HALF_TOPIC, 0, min([self.half_offset, *self.copying_from]))
        offsets.commit(SYS_GROUP, TRANS_OP_HALF_TOPIC, 0, self.ops[0][0] if self.ops else self.op_read_to)

    # -- half messages ---------------------------------------------------------------------------------

    def prepare(self, inner: MessageExtBrokerInner, producer_group: str) -> MessageExtBrokerInner:
        """Turn a transactional send into its half message."""
        props = inner.properties
        props[_C.PROPERTY_REAL_TOPIC] = inner.topic
        props[_C.PROPERTY_REAL_QUEUE_ID] = str(inner.queue_id)
        props.setdefault(_C.PROPERTY_PRODUCER_GROUP, producer_group)
        tc = self.broker.topic_config_manager.create_system(TRANS_HALF_TOPIC, 1, PERM_RW)
        inner.topic = tc.topic_name
        inner.queue_id = 0
        inner.sys_flag = MessageSysFlag.reset_transaction_value(inner.sys_flag, MessageSysFlag.TRANSACTION_NOT_TYPE)
        inner.properties_string = stored_properties_string(props)
        inner.tags_code = None
        return inner

    def _load(self, cq, offset: int) -> Optional[MessageExt]:
        entry = cq.entry(offset)
        if entry is None:
            return None
        raw = self.store.look_message_by_offset(entry[0], entry[1])
        return decode_message_ext(raw) if raw is not None else None

    def _load_half(self, offset: int) -> Optional[MessageExt]:
        cq = self.store.consume_queue(TRANS_HALF_TOPIC, 0)
        return self._load(cq, offset) if cq is not None else None

    def _is_done(self, msg: MessageExt) -> bool:
        return self._is_done_by_op(msg) or _identity(msg) in self.unmarked

    def _is_done_by_op(self, msg: MessageExt) -> bool:
        first = _int(msg.properties.get(_C.PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET))
        done, ended = self.done, self.ended
        return (msg.queue_offset in done or msg.queue_offset in ended
                or (first >= 0 and (first in done or first in ended)))

    def _passed(self, key: int) -> bool:
        """Whether the checker has moved past transaction ``key`` and every copy of it without giving it up,
        which mostly means an op message it no longer recalls (ENDED_MEMORY): a commit then looks for the
        committed record first (a copy lost in a crash or with a DLedger leader leaves it open too)."""
        return key < self.half_offset and not self.open_copies.get(key) and key not in self.given_up

    def _pend(self, off: int, first: int) -> None:
        self.pending_copies[off] = first
        self.open_copies[first] = self.open_copies.get(first, 0) + 1

    def _unpend(self, off: int) -> None:
        first = self.pending_copies.pop(off, None)
        if first is not None:
            self._close_copy(first)

    def _close_copy(self, first: int) -> None:
        left = self.open_copies.get(first, 0) - 1
        if left > 0:
            self.open_copies[first] = left
        else:
            self.open_copies.pop(first, None)

    def _give_up(self, key: int) -> None:
        self.given_up[key] = None
        if len(self.given_up) > ENDED_MEMORY:
            del self.given_up[next(iter(self.given_up))]

    # -- op messages -----------------------------------------------------------------------------------

    def read_ops(self) -> None:
        """Take in the op messages written since the last read."""
        cq = self.store.consume_queue(TRANS_OP_HALF_TOPIC, 0)
        if cq is None:
            return
        off = max(self.op_read_to, cq.min_offset)
        while off < cq.max_offset:
            entry = cq.entry(off)
            raw = self.store.look_message_by_offset(entry[0], entry[1]) if entry is not None else None
            if raw is not None:
                half = _int(decode_message_ext(raw).body.decode("ascii", "replace"))
                if half >= 0:
                    ended = (half,)
                    msg = self._load_half(half)
                    first = _int(msg.properties.get(_C.PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET)) if msg else -1
                    if first >= 0 and first != half:
                        ended = (half, first)
                    self.ops.append((off, ended))
                    for h in ended:
                        self.done[h] = self.done.get(h, 0) + 1
                        self.given_up.pop(h, None)
            off += 1
        self.op_read_to = off

    def _prune_ops(self) -> None:
        """Forget op messages no half message still to be looked at can refer to."""
        floor = min([self.half_offset, *self.pending_copies.values()])
        while self.ops and max(self.ops[0][1]) < floor:
            for half in self.ops.popleft()[1]:
                left = self.done.get(half, 0) - 1
                if left > 0:
                    self.done[half] = left
                else:
                    self.done.pop(half, None)
                    self.ended[half] = None
                    if len(self.ended) > ENDED_MEMORY:
                        del self.ended[next(iter(self.ended))]

    def _write_op(self, half: int):
        """Write the op message that marks the half message at queue offset ``half`` ended; Deferred[bool]:
        whether the store took it."""
        tc = self.broker.topic_config_manager.create_system(TRANS_OP_HALF_TOPIC, 1, PERM_RW)
        props = {_C.PROPERTY_TAGS: OP_TAG}
        op = MessageExtBrokerInner(
            topic=tc.topic_name, body=str(half).encode(), properties=dict(props, WAIT="false"),
            queue_id=0, born_timestamp=self.broker.now_ms(), born_host=self.config.store_host,
            store_host=self.config.store_host, properties_string=stored_properties_string(props),
        )
        return self.store.put_message(op).addCallback(self._op_written)

    def _op_written(self, result) -> bool:
        self.read_ops()
        return bool(result.is_stored())

    def _mark_again(self) -> None:
        """Write the op messages the store refused after their commits were stored."""
        for key, half in list(self.unmarked.items()):
            if key in self.done or key in self.ended:
                self.unmarked.pop(key, None)
                continue

            def written(ok, key=key):
                if ok:
                    self.unmarked.pop(key, None)

            self._write_op(half).addCallback(written).addErrback(
                lambda f: log.failure("writing an op message again", f))

    # -- END_TRANSACTION -------------------------------------------------------------------------------

    def register(self, dispatcher) -> None:
        dispatcher.register(RequestCode.END_TRANSACTION, self.end_transaction)

    def end_transaction(self, request: RemotingCommand, channel):
        h = EndTransactionRequestHeader.decode(request.ext_fields)
        if self.config.is_slave:
            return request.response(RC.SLAVE_NOT_AVAILABLE, "the broker is a slave: end transactions on its master")
        kind = h.commit_or_rollback
        if kind == MessageSysFlag.TRANSACTION_NOT_TYPE:
            # The producer's UNKNOW: nothing to do; the checker asks again later. Java answers nothing, which
            # leaves a caller that did not send it oneway waiting for its timeout; oneway calls get no answer.
            log.debug("transaction {id} of {group} left open by its producer", id=h.msg_id, group=h.producer_group)
            return request.response(RC.SUCCESS, "transaction state unknown: left for the checker")
        if kind not in (_COMMIT, _ROLLBACK):
            return request.response(RC.SYSTEM_ERROR, f"commitOrRollback {kind} is not 0 (unknown), {_COMMIT} "
                                                     f"(commit) or {_ROLLBACK} (rollback)")
        half = requested_half(self.store, h)
        if half is None:
            return request.response(RC.SYSTEM_ERROR, f"Find prepared transaction message failed (commit log "
                                                     f"offset {h.commit_log_offset})")
        props = half.properties
        if props.get(_C.PROPERTY_PRODUCER_GROUP) != h.producer_group:
            return request.response(RC.SYSTEM_ERROR, f"The producer group wrong: the half message belongs to "
                                                     f"{props.get(_C.PROPERTY_PRODUCER_GROUP)!r}")
        if half.queue_offset != h.tran_state_table_offset:
            return request.response(RC.SYSTEM_ERROR, f"The transaction state table offset wrong: "
                                                     f"{h.tran_state_table_offset} != {half.queue_offset}")
        if kind == _COMMIT:
            refusal = commit_refusal(self.broker.topic_config_manager, self.config.default_topic_queue_nums, half)
            if refusal is not None:
                log.warn("commit of half message {off} refused: {why}", off=half.queue_offset, why=refusal[1])
                return request.response(*refusal)
        return self._end(request, h, half, kind)

    def _end(self, request: RemotingCommand, h: EndTransactionRequestHeader, half: MessageExt, kind: int):
        """Decide and apply one end, after any end of the same transaction still in progress: a commit's put
        and op message may be asynchronous (SYNC_FLUSH, DLedger), and a second end deciding meanwhile (the
        producer's own and a check's answer, or a retry) would find no op message and store it again."""
        key = _identity(half)
        waiting = self.ending.get(key)
        if waiting is not None:
            turn: defer.Deferred = defer.Deferred()
            waiting.append(turn)
            return turn.addCallback(lambda _: self._end(request, h, half, kind))
        self.read_ops()
        settle_at = self.uncertain.get(key)
        if settle_at is not None and self.store.commitlog.max_offset < settle_at:
            return request.response(RC.SYSTEM_ERROR, "an earlier commit of this transaction is still waiting for "
                                                     "its outcome: ask again later")
        stored = (not self._is_done(half) and kind == _COMMIT
                  and (settle_at is not None or half.commit_log_offset < self.started_at or self._passed(key))
                  and self._commit_stored(half, key))
        self.uncertain.pop(key, None)
        if self._is_done(half):
            log.info("transaction {id} of {group} already ended: {what} ignored", id=h.msg_id,
                     group=h.producer_group, what="commit" if kind == _COMMIT else "rollback")
            return request.response(RC.SUCCESS)
        self.ending[key] = []  # released whatever happens, so that the ends waiting behind it are answered
        return defer.maybeDeferred(self._apply, request, half, kind, key, stored).addBoth(self._next_end(key))

    def _apply(self, request: RemotingCommand, half: MessageExt, kind: int, key: int, stored: bool):
        if stored:
            # stored by an end that this memory no longer recalls or whose op message is missing: the op
            # message now (another one at worst), nothing stored again
            return self._write_op(half.queue_offset).addCallback(lambda ok: self._marked(ok, half, request))
        if kind == _ROLLBACK:
            return self._write_op(half.queue_offset).addCallback(
                lambda ok: request.response(RC.SUCCESS) if ok else
                request.response(RC.SYSTEM_ERROR, "writing the rollback's op message failed: ask again"))
        inner = self._committed(half)
        topic = inner.topic

        def put(result):
            if not result.is_stored():
                # under DLedger the record may still land: the next end looks for it first
                rep = self.store.replicator
                self.uncertain[key] = rep.end if rep is not None else self.store.commitlog.max_offset
                if len(self.uncertain) > ENDED_MEMORY:
                    del self.uncertain[next(iter(self.uncertain))]
                return request.response(RC.SYSTEM_ERROR,
                                        f"storing the committed message failed: {result.status.name}")
            self.broker.stats.message_in(topic, 1, result.append_result.wrote_bytes)
            return self._write_op(half.queue_offset).addCallback(lambda ok: self._marked(ok, half, request))

        return self.store.put_message(inner).addCallback(put)

    def _next_end(self, key: int):
        """The callback that lets the next waiting end of transaction ``key`` decide."""
        def next_end(result):
            for turn in self.ending.pop(key, ()):
                turn.callback(None)
            return result
        return next_end

    def _commit_stored(self, half: MessageExt, key: int) -> bool:
        original = half if half.queue_offset == key else self._load_half(key)
        return commit_stored(self.store, half, original, key)

    def _marked(self, ok: bool, half: MessageExt, request: RemotingCommand) -> RemotingCommand:
        """The answer to a commit that is stored: if its op message was refused it is remembered as ended
        (so nothing stores it again) and the op message is written again by the next check round."""
        if not ok:
            log.error("the op message of committed half message {off} was refused: written again later",
                      off=half.queue_offset)
            self.unmarked[_identity(half)] = half.queue_offset
        return request.response(RC.SUCCESS)

    def _committed(self, half: MessageExt) -> MessageExtBrokerInner:
        props = dict(half.properties)
        topic = props.pop(_C.PROPERTY_REAL_TOPIC, half.topic)
        queue_id = _int(props.pop(_C.PROPERTY_REAL_QUEUE_ID, "0"), 0)
        props.pop(_C.PROPERTY_TRANSACTION_PREPARED, None)
        text = stored_properties_string(props)
        props[_C.PROPERTY_WAIT_STORE_MSG_OK] = "false"
        inner = MessageExtBrokerInner(
            topic=topic, body=half.body, flag=half.flag, properties=props, queue_id=queue_id,
            sys_flag=MessageSysFlag.reset_transaction_value(half.sys_flag, _COMMIT),
            born_timestamp=half.born_timestamp, born_host=half.born_host, store_host=half.store_host,
            reconsume_times=half.reconsume_times, prepared_transaction_offset=half.commit_log_offset,
            body_crc=half.body_crc, properties_string=text,
        )
        parked = self.broker.park(inner)
        if isinstance(parked, MessageExtBrokerInner):
            return parked
        log.warn("the committed message of half {offset} is delivered now: {why}", offset=half.queue_offset,
                 why=parked.remark)  # timers turned off since the half message was stored
        return inner

    # -- the checker -----------------------------------------------------------------------------------

    def check(self) -> None:
        """One round: check every due half message without an op message, discard the exhausted ones."""
        self.read_ops()
        if self.unmarked:
            self._mark_again()
        cq = self.store.consume_queue(TRANS_HALF_TOPIC, 0)
        if cq is None:
            return
        now = self.broker.now_ms()
        end = cq.max_offset  # copies appended by this round are for the next one
        off = max(self.half_offset, cq.min_offset)
        while off < end:
            try:
                msg = self._load(cq, off)
            except Exception:  # a record that does not decode stops nothing: it is passed, once, with a log line
                log.failure("reading half message {off}: passed over", off=off)
                msg = None
            if msg is None:
                self._give_up(off)  # an end that can read it still may commit it
            if msg is not None and not self._is_done(msg):
                props = msg.properties
                immunity = _int(props.get(_C.PROPERTY_CHECK_IMMUNITY_TIME_IN_SECONDS), -1)
                wait_ms = immunity * 1000 if immunity >= 0 else self.config.transaction_time_out
                age = now - msg.born_timestamp
                if 0 <= age < wait_ms:
                    if age < self.config.transaction_time_out:
                        break  # not due yet, nor (mostly) anything after it
                    # Held only by the immunity its producer chose: waits at the tail, not in the way.
                    copied = self._append_copy(msg, _int(props.get(_C.PROPERTY_TRANSACTION_CHECK_TIMES), 0), False)
                else:
                    checks = _int(props.get(_C.PROPERTY_TRANSACTION_CHECK_TIMES), 0)
                    if checks >= self.config.transaction_check_max:
                        copied = self._discard(msg)
                    else:
                        copied = self._append_copy(msg, checks + 1, True)
                if not copied:
                    break  # the store takes no puts now: this message is looked at again next round
            self._unpend(off)
            off += 1
        self.half_offset = off
        self._prune_ops()
        self._save_offsets()

    def _append_copy(self, msg: MessageExt, checks: int, check: bool) -> bool:
        """Append ``msg`` again to the half queue with ``checks`` checks so far and, if ``check``, ask its
        producer about the copy. False if the store refused the copy for a reason of its own (not running,
        disk full): the caller stops there and tries again. A copy refused for what it is (too big for a
        lowered ``maxMessageSize``) would be refused every round: it is logged and given up."""
        props = dict(msg.properties)
        props[_C.PROPERTY_TRANSACTION_CHECK_TIMES] = str(checks)
        first = _int(props.get(_C.PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET))
        if first < 0:
            first = msg.queue_offset
            props[_C.PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET] = str(first)
        copy = MessageExtBrokerInner(
            topic=TRANS_HALF_TOPIC, body=msg.body, flag=msg.flag, properties=dict(props, WAIT="false"), queue_id=0,
            sys_flag=msg.sys_flag, born_timestamp=msg.born_timestamp, born_host=msg.born_host,
            store_host=msg.store_host, reconsume_times=msg.reconsume_times, body_crc=msg.body_crc,
            properties_string=stored_properties_string(props),
        )

        refused = []
        waiting = [True]  # the put has not answered yet within this call
        settled = []
        source = msg.queue_offset
        self.open_copies[first] = self.open_copies.get(first, 0) + 1  # open while the copy is being appended
        self.copying_from[source] = self.copying_from.get(source, 0) + 1

        def copied() -> None:
            self._close_copy(first)
            left = self.copying_from.pop(source, 1) - 1
            if left > 0:
                self.copying_from[source] = left

        def appended(result):
            settled.append(result)
            copied()
            if not result.is_stored():
                if result.status in STORE_WIDE and waiting[0]:
                    refused.append(result)  # the checker stops at this message and tries it again
                else:
                    self._give_up(first)  # passed already (or refused for what it is): a late end commits it
                log.warn("re-appending half message {off} for its check failed: {status} ({reason}){what}",
                         off=msg.queue_offset, status=result.status.name, reason=result.reason,
                         what="" if refused else ": given up")
                return
            ar = result.append_result
            self._pend(ar.logics_offset, first)
            if check:
                msg.properties = props
                msg.queue_offset = ar.logics_offset
                msg.commit_log_offset = ar.wrote_offset
                self._send_check(msg)

        def failed(f):
            if not settled:  # the put itself failed
                copied()
                self._give_up(first)
            log.failure("checking half message {off}", f, off=msg.queue_offset)

        self.store.put_message(copy).addCallback(appended).addErrback(failed)
        waiting[0] = False
        return not refused

    def _send_check(self, msg: MessageExt) -> None:
        props = msg.properties
        group = props.get(_C.PROPERTY_PRODUCER_GROUP, "")
        channels = [c for c in self.broker.producer_manager.connections(group)
                    if getattr(c.channel, "connected", False)]
        if not channels:
            log.info("no producer of group {group} online to check transaction {id}", group=group,
                     id=props.get(_C.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX))
            return
        client = self._random.choice(channels)
        uniq = props.get(_C.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
        offset_id = create_offset_msg_id(self.config.store_host, msg.commit_log_offset)
        header = CheckTransactionStateRequestHeader(
            tran_state_table_offset=msg.queue_offset, commit_log_offset=msg.commit_log_offset, msg_id=uniq,
            transaction_id=uniq, offset_msg_id=offset_id)
        shown = MessageExt(
            topic=props.get(_C.PROPERTY_REAL_TOPIC, msg.topic), body=msg.body, flag=msg.flag, properties=props,
            queue_id=_int(props.get(_C.PROPERTY_REAL_QUEUE_ID), 0), queue_offset=msg.queue_offset,
            sys_flag=msg.sys_flag, born_timestamp=msg.born_timestamp, born_host=msg.born_host,
            store_timestamp=msg.store_timestamp, store_host=msg.store_host, msg_id=offset_id,
            commit_log_offset=msg.commit_log_offset, reconsume_times=msg.reconsume_times,
        )
        request = RemotingCommand.request(RequestCode.CHECK_TRANSACTION_STATE, header.encode(),
                                          encode_message_ext(shown), oneway=True)
        try:
            client.channel.send_oneway(request)
        except RemotingConnectionError:
            return
        self.checks_sent += 1
        log.debug("asked {cid} about transaction {id}", cid=client.client_id, id=uniq)

    def _discard(self, msg: MessageExt) -> bool:
        """Move an exhausted half message to TRANS_CHECK_MAX_TIME_TOPIC; False if the store refused it for a
        reason of its own (tried again next round)."""
        log.warn("transaction {id} of {group} checked {n} times without an answer: discarded into {topic}",
                 id=msg.properties.get(_C.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX),
                 group=msg.properties.get(_C.PROPERTY_PRODUCER_GROUP), n=self.config.transaction_check_max,
                 topic=TRANS_CHECK_MAX_TIME_TOPIC)
        tc = self.broker.topic_config_manager.create_system(TRANS_CHECK_MAX_TIME_TOPIC, 1, PERM_RW)
        props = dict(msg.properties)
        # named, as a check's copy names it, so that a restart knows the transaction was given up
        props.setdefault(_C.PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET, str(msg.queue_offset))
        inner = MessageExtBrokerInner(
            topic=tc.topic_name, body=msg.body, flag=msg.flag, properties=dict(props, WAIT="false"), queue_id=0,
            sys_flag=msg.sys_flag, born_timestamp=msg.born_timestamp, born_host=msg.born_host,
            store_host=msg.store_host, reconsume_times=msg.reconsume_times, body_crc=msg.body_crc,
            properties_string=stored_properties_string(props),
        )
        outcome = []
        self.store.put_message(inner).addCallback(outcome.append).addErrback(
            lambda f: log.failure("discarding half message {off}", f, off=msg.queue_offset))
        if outcome and not outcome[0].is_stored() and outcome[0].status in STORE_WIDE:
            return False
        self.discarded += 1
        self._give_up(_identity(msg))  # a late end still commits it
        return True
