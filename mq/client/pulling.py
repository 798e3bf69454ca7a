"""``QueuePuller``: the pull loop of every queue a consumer owns, shared by push and lite pull consumers.

Each owned queue has one long-polling pull in flight at a time: the next one is sent as soon as an answer
arrives (after ``pull_interval`` if set), 50 ms later while the queue's process queue is over its flow
control limits, and 3 s later after an error (with a route refresh, in case the broker went away).
"""

from __future__ import annotations

from typing import Dict, List, Optional

from twisted.logger import Logger

from mq.acl.signing import Credentials
from mq.client.consumer_stats import ConsumerStats
from mq.client.instance import make_client_config
from mq.client.model import ConsumeFromWhere, MessageModel, MessageQueue, PullStatus
from mq.client.offset_store import LocalFileOffsetStore, OffsetStore, RemoteOffsetStore
from mq.client.process_queue import ProcessQueue
from mq.common.broker_headers import PullMessageRequestHeader
from mq.common.heartbeat import SubscriptionData
from mq.common.message import MessageExt, PullSysFlag
from mq.remoting.protocol import RemotingError

log = Logger()

PULL_DELAY_ON_ERROR = 3.0
PULL_DELAY_ON_FLOW_CONTROL = 0.05
BROKER_SUSPEND_MAX = 15.0
PULL_TIMEOUT = 30.0


def pull_header(group: str, mq: MessageQueue, offset: int, sub: SubscriptionData, batch: int, commit: int = 0,
                lite: bool = False) -> PullMessageRequestHeader:
    """A long-polling pull (held up to 15 s) that carries the subscription and, if > 0, the offset to commit."""
    return PullMessageRequestHeader(
        consumer_group=group, topic=mq.topic, queue_id=mq.queue_id, queue_offset=offset, max_msg_nums=batch,
        sys_flag=PullSysFlag.build(commit > 0, True, True, False, lite), commit_offset=commit,
        suspend_timeout_millis=int(BROKER_SUSPEND_MAX * 1000), subscription=sub.sub_string,
        sub_version=sub.sub_version, expression_type=sub.expression_type)


class QueuePuller:
    """Mixin: needs ``reactor``, ``instance``, ``group``, ``running``, ``subscriptions``, ``pull_batch_size``,
    ``pull_threshold_for_queue``, ``pull_threshold_size_for_queue``, ``pull_interval`` and the hooks below."""

    _lite = False
    _suggested: Dict[MessageQueue, int]

    def _init_consumer(self, group: str, namesrv_addr, reactor, config, instance_name, message_model,
                       consume_from_where, consume_timestamp_ms, allocate, pull_batch_size: int,
                       pull_threshold_for_queue: int, pull_threshold_size_for_queue: int, pull_interval: float,
                       offset_store_dir, credentials: Optional[Credentials] = None) -> None:
        """The settings push and lite pull consumers share."""
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.group = group
        self.reactor = reactor
        self.config = make_client_config(config, namesrv_addr, instance_name, credentials)
        self.message_model = MessageModel(message_model)
        self.consume_from_where = ConsumeFromWhere(consume_from_where)
        self.consume_timestamp_ms = consume_timestamp_ms
        self.allocate = allocate
        self.pull_batch_size = pull_batch_size
        self.pull_threshold_for_queue = pull_threshold_for_queue
        self.pull_threshold_size_for_queue = pull_threshold_size_for_queue
        self.pull_interval = pull_interval
        self.offset_store_dir = offset_store_dir
        self._suggested = {}
        #: the running info's statusTable figures (pull and consume RT and TPS by topic)
        self.consume_stats = ConsumerStats(reactor.seconds, lambda: self.subscriptions)

    def _make_offset_store(self, instance) -> OffsetStore:
        """Offsets in the broker for clustering, in a local file for broadcasting."""
        if self.message_model is MessageModel.CLUSTERING:
            return RemoteOffsetStore(instance, self.group)
        return LocalFileOffsetStore(instance.client_id, self.group, self.offset_store_dir)

    def _may_pull(self, mq: MessageQueue, pq: ProcessQueue) -> bool:
        return True

    def _commit_offset_for_pull(self, mq: MessageQueue) -> int:
        return 0

    def _on_messages(self, mq: MessageQueue, pq: ProcessQueue, msgs: List[MessageExt]) -> None:
        raise NotImplementedError

    def _idle_offset(self, mq: MessageQueue, offset: int) -> None:
        """Nothing is held for ``mq`` and the broker says the next offset is ``offset``."""
        self.offsets.update(mq, offset, True)

    def _moved_offset(self, mq: MessageQueue, offset: int) -> None:
        self.offsets.update(mq, offset)

    def _later(self, delay: float, mq: MessageQueue, pq: ProcessQueue, offset: int) -> None:
        self.reactor.callLater(delay, self._pull, mq, pq, offset)

    def _pull(self, mq: MessageQueue, pq: ProcessQueue, offset: int) -> None:
        if pq.dropped or not self.running:
            return
        pq.last_pull_time = self.reactor.seconds()
        if (pq.count > self.pull_threshold_for_queue or pq.size > self.pull_threshold_size_for_queue
                or not self._may_pull(mq, pq)):
            self._later(PULL_DELAY_ON_FLOW_CONTROL, mq, pq, offset)
            return
        sub = self.subscriptions.get(mq.topic)
        if sub is None:
            return
        header = pull_header(self.group, mq, offset, sub, self.pull_batch_size, self._commit_offset_for_pull(mq),
                             self._lite)
        addr = self.instance.subscribe_addr(mq.broker_name, self._suggested.get(mq, 0))
        if addr is None:
            self.instance.update_route(mq.topic).addErrback(lambda f: None)
            self._later(PULL_DELAY_ON_ERROR, mq, pq, offset)
            return
        if header.sys_flag & PullSysFlag.FLAG_COMMIT_OFFSET and addr != self.instance.master_addr(mq.broker_name):
            # As the Java client: a slave discards offset commits, so a pull sent to one carries none.
            header.sys_flag = PullSysFlag.clear_commit_offset_flag(header.sys_flag)
        d = self.instance.api.pull(addr, header, sub, PULL_TIMEOUT)
        d.addCallbacks(self._pulled, self._pull_failed, callbackArgs=(mq, pq, offset),
                       errbackArgs=(mq, pq, offset))
        d.addErrback(lambda f: log.failure("handling a pull of {mq}", f, mq=mq))

    def _pulled(self, result, mq: MessageQueue, pq: ProcessQueue, offset: int) -> None:
        if pq.dropped or not self.running:
            return
        self._suggested[mq] = result.suggest_which_broker_id
        nxt = result.next_begin_offset
        found = result.status is PullStatus.FOUND and result.messages
        self.consume_stats.pulled(mq.topic, self.reactor.seconds() - pq.last_pull_time,
                                  len(result.messages) if found else 0)
        if found:
            pq.put(result.messages)
            self._on_messages(mq, pq, result.messages)
        elif result.status is PullStatus.OFFSET_ILLEGAL:
            log.warn("offset {offset} of {mq} is illegal; continuing at {nxt}", offset=offset, mq=mq, nxt=nxt)
            self._moved_offset(mq, nxt)
        elif pq.count == 0:
            self._idle_offset(mq, nxt)
        if self.pull_interval > 0:
            self._later(self.pull_interval, mq, pq, nxt)
        else:
            self._pull(mq, pq, nxt)

    def _pull_failed(self, failure, mq: MessageQueue, pq: ProcessQueue, offset: int) -> None:
        if pq.dropped or not self.running:
            return
        # the broker the master suggested (a slave) may be gone: the next attempt goes to the master
        self._suggested.pop(mq, None)
        if failure.check(RemotingError):
            self.instance.update_route(mq.topic).addErrback(lambda f: None)
        log.info("pull of {mq} failed: {e}", mq=mq, e=failure.getErrorMessage())
        self._later(PULL_DELAY_ON_ERROR, mq, pq, offset)
