"""PULL_MESSAGE (11): checks, the store read, status → response code, long polling, offset commits.

A pull that finds nothing new and may be suspended (sysFlag bit 0x2) is held by the
``PullRequestHoldService``: the processor returns a Deferred that fires when a message arrives for the
queue or the client's suspend time runs out. The response header always carries all four fields, as the
C++ client needs them even for PULL_NOT_FOUND.
"""

from __future__ import annotations

import time

from twisted.logger import Logger

from mq.broker.subscription import expression_filter as subscription_filter
from mq.common import fastjson
from mq.common.broker_headers import PullMessageRequestHeader
from mq.common.heartbeat import SubscriptionData
from mq.common.message import MessageConst, MessageExtBrokerInner, PullSysFlag, properties_to_string
from mq.common.mixall import FAQ_URL
from mq.common.route import PERM_READ
from mq.common.topic import OFFSET_MOVED_EVENT
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand
from mq.store.results import GetMessageStatus

log = Logger()
RC = ResponseCode
S = GetMessageStatus
_COMMIT = PullSysFlag.FLAG_COMMIT_OFFSET
_SUSPEND = PullSysFlag.FLAG_SUSPEND
_SUBSCRIPTION = PullSysFlag.FLAG_SUBSCRIPTION

#: Store status → response code (NO_MESSAGE_IN_QUEUE and NO_MATCHED_LOGIC_QUEUE depend on the offset).
STATUS_CODE = {
    S.FOUND: RC.SUCCESS,
    S.NO_MATCHED_MESSAGE: RC.PULL_RETRY_IMMEDIATELY,
    S.MESSAGE_WAS_REMOVING: RC.PULL_RETRY_IMMEDIATELY,
    S.OFFSET_TOO_SMALL: RC.PULL_OFFSET_MOVED,
    S.OFFSET_OVERFLOW_ONE: RC.PULL_NOT_FOUND,
    S.OFFSET_OVERFLOW_BADLY: RC.PULL_OFFSET_MOVED,
    S.OFFSET_FOUND_NULL: RC.PULL_NOT_FOUND,
}


class PullMessageProcessor:
    def __init__(self, broker) -> None:
        self.broker = broker
        self.config = broker.config
        self.store = broker.store
        self.stats = broker.stats

    def register(self, dispatcher) -> None:
        dispatcher.register(RequestCode.PULL_MESSAGE, self.process)

    def process(self, request: RemotingCommand, channel):
        return self.pull(request, channel, True)

    def rerun(self, held) -> RemotingCommand:
        """A held pull, run again without the right to suspend (long-poll wake-up or timeout)."""
        return self.pull(held.request, held.channel, False)

    def _error(self, request: RemotingCommand, code: int, remark: str) -> RemotingCommand:
        return request.response(code, remark)

    def pull(self, request: RemotingCommand, channel, allow_suspend: bool):
        started = time.perf_counter()
        b = self.broker
        config = self.config
        h = PullMessageRequestHeader.decode(request.ext_fields)
        if not config.broker_permission & PERM_READ:
            return self._error(request, RC.NO_PERMISSION, f"the broker[{config.broker_ip1}] pulling message is forbidden")
        group_config = b.subscription_group_manager.find(h.consumer_group)
        if group_config is None:
            return self._error(request, RC.SUBSCRIPTION_GROUP_NOT_EXIST,
                               f"subscription group [{h.consumer_group}] does not exist, {FAQ_URL}")
        if not group_config.consume_enable:
            return self._error(request, RC.NO_PERMISSION, f"subscription group no permission, {h.consumer_group}")
        tc = b.topic_config_manager.table.get(h.topic)
        if tc is None:
            return self._error(request, RC.TOPIC_NOT_EXIST,
                               f"topic[{h.topic}] not exist, apply first please! {FAQ_URL}")
        if not tc.perm & PERM_READ:
            return self._error(request, RC.NO_PERMISSION, f"the topic[{h.topic}] pulling message is forbidden")
        if h.queue_id < 0 or h.queue_id >= tc.read_queue_nums:
            return self._error(
                request, RC.SYSTEM_ERROR,
                f"queueId[{h.queue_id}] is illegal, topic:[{h.topic}] topicConfig.readQueueNums:"
                f"[{tc.read_queue_nums}] consumer:[{channel.peer}]")
        sys_flag = h.sys_flag
        if sys_flag & _SUBSCRIPTION:
            sub = SubscriptionData.build(h.topic, h.subscription, h.sub_version, h.expression_type)
        else:
            group = b.consumer_manager.get(h.consumer_group)
            if group is None:
                return self._error(request, RC.SUBSCRIPTION_NOT_EXIST,
                                   f"the consumer's group info not exist: {h.consumer_group} {FAQ_URL}")
            if group.message_model == "BROADCASTING" and not group_config.consume_broadcast_enable:
                return self._error(request, RC.NO_PERMISSION,
                                   f"the consumer group[{h.consumer_group}] can not consume by broadcast way")
            sub = group.subscriptions.get(h.topic)
            if sub is None:
                return self._error(request, RC.SUBSCRIPTION_NOT_EXIST,
                                   f"the consumer's subscription not exist: group {h.consumer_group} topic {h.topic}")
            if sub.sub_version < h.sub_version:
                return self._error(request, RC.SUBSCRIPTION_NOT_LATEST,
                                   f"the consumer's subscription not latest: heartbeat subVersion {sub.sub_version} "
                                   f"< pull subVersion {h.sub_version}")
        refused = subscription_filter.refusal(sub.expression_type, sub.sub_string, config.enable_property_filter)
        if refused is not None:
            return self._error(request, refused[0], f"{refused[1]} (group {h.consumer_group}, topic {h.topic})")
        mfilter = subscription_filter.message_filter(sub)
        result = self.store.get_message(h.consumer_group, h.topic, h.queue_id, h.queue_offset, h.max_msg_nums,
                                        message_filter=mfilter)
        status = result.status
        code = STATUS_CODE.get(status)
        if code is None:  # NO_MESSAGE_IN_QUEUE, NO_MATCHED_LOGIC_QUEUE
            code = RC.PULL_OFFSET_MOVED if h.queue_offset != 0 else RC.PULL_NOT_FOUND
        suggest = 0
        if result.suggest_pulling_from_slave and config.slave_read_enable and b.ha.slave_can_serve():
            suggest = group_config.which_broker_when_consume_slowly
        if code == RC.PULL_OFFSET_MOVED and config.is_slave and not self.store.config.offset_check_in_slave:
            code = RC.PULL_RETRY_IMMEDIATELY
            suggest = group_config.broker_id
        if (code == RC.PULL_NOT_FOUND and allow_suspend and sys_flag & _SUSPEND):
            return self._suspend(request, channel, h, mfilter)
        ext = {
            "suggestWhichBrokerId": str(suggest),
            "nextBeginOffset": str(result.next_begin_offset),
            "minOffset": str(result.min_offset),
            "maxOffset": str(result.max_offset),
        }
        body = b""
        if code == RC.SUCCESS:
            body = result.body()
            if not body:  # a SUCCESS pull must carry messages (Java and C++ fail on an empty body)
                code = RC.PULL_RETRY_IMMEDIATELY
            else:
                self.stats.message_out(h.topic, result.message_count, len(body), h.consumer_group, h.queue_id,
                                       int((time.perf_counter() - started) * 1000))
                if result.disk_count:
                    self.stats.items.get_from_disk(h.consumer_group, h.topic, result.disk_count, result.disk_bytes)
        if code == RC.PULL_OFFSET_MOVED and not config.is_slave:
            self._offset_moved_event(h, result.next_begin_offset)
        self._commit(h, sys_flag, allow_suspend)
        if allow_suspend:
            self.stats.pull_latency.observe(time.perf_counter() - started)
        return request.response(code, status.name, ext, body)

    def _suspend(self, request: RemotingCommand, channel, h: PullMessageRequestHeader, mfilter):
        """Hold the pull: for the client's suspend time clamped to ``pullHoldMaxTimeMills``, keeping only the
        header fields the re-run reads (a pull has no body; a client may still send one, or extra fields).

        Past the connection's bound the pull is answered SYSTEM_BUSY at once, not PULL_NOT_FOUND: a Java push
        consumer re-pulls at once after PULL_NOT_FOUND, which would make a hot loop of pulls refused at once,
        while an answer it does not know makes it (and the Go and C++ clients) pull again after a delay (3 s).
        """
        config = self.config
        hold = self.broker.pull_hold_service
        if config.long_polling_enable:
            timeout_ms = max(0, min(h.suspend_timeout_millis, config.pull_hold_max_time_mills))
        else:
            timeout_ms = config.short_polling_time_mills
        self._commit(h, h.sys_flag, True)
        # the dispatcher keeps ``request`` until it answers: what it holds is freed here
        request.body = b""
        request.ext_fields = ext = h.encode()
        size = sum(len(k) + len(v) for k, v in ext.items())
        busy = hold.refusal(channel, size)
        if busy is not None:
            return self._error(request, RC.SYSTEM_BUSY, busy)
        return hold.suspend(h.topic, h.queue_id, h.queue_offset, request, channel, timeout_ms / 1000.0, mfilter,
                            size)

    def _commit(self, h: PullMessageRequestHeader, sys_flag: int, allow_suspend: bool) -> None:
        if allow_suspend and sys_flag & _COMMIT and not self.config.is_slave:
            self.broker.consumer_offset_manager.commit(h.consumer_group, h.topic, h.queue_id, h.commit_offset)

    def _offset_moved_event(self, h: PullMessageRequestHeader, offset_new: int) -> None:
        """An ``OffsetMovedEvent`` in OFFSET_MOVED_EVENT queue 0 (tag and key = the group), as RocketMQ writes on
        a master for every PULL_OFFSET_MOVED; the pull's answer does not wait for it."""
        log.warn("PULL_OFFSET_MOVED: correction offset. topic={topic}, groupId={group}, requestOffset={old}, "
                 "newOffset={new}", topic=h.topic, group=h.consumer_group, old=h.queue_offset, new=offset_new)
        event = {
            "consumerGroup": h.consumer_group,
            "messageQueue": {"brokerName": self.config.broker_name, "queueId": h.queue_id, "topic": h.topic},
            "offsetNew": offset_new,
            "offsetRequest": h.queue_offset,
        }
        props = {MessageConst.PROPERTY_TAGS: h.consumer_group, MessageConst.PROPERTY_KEYS: h.consumer_group}
        host = self.config.store_host
        inner = MessageExtBrokerInner(
            topic=OFFSET_MOVED_EVENT, body=fastjson.dumps_bytes(event), properties=dict(props, WAIT="false"),
            queue_id=0, born_timestamp=self.broker.now_ms(), born_host=host, store_host=host,
            properties_string=properties_to_string(props),
        )

        def failed(failure):
            log.failure("writing the offset moved event of {group} failed", failure, group=h.consumer_group)

        self.store.put_message(inner).addErrback(failed)
