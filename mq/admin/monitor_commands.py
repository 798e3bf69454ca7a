"""``mqadmin startMonitoring`` (Apache's tools ``MonitorService``): every round, each consumer group's undone
messages per topic and whether its online clients subscribe alike, until interrupted."""

from __future__ import annotations

from typing import Dict, List, Tuple

from twisted.internet import defer

from mq.admin.api import AdminError, MQAdminAPI
from mq.admin.output import Result, join, table
from mq.admin.registry import command
from mq.admin.targets import consumer_connection_of, group_brokers
from mq.admin.values import MessageQueue
from mq.common import mixall

#: Seconds between rounds, as the original's MonitorConfig.roundInterval (60 s); ``-i`` changes it.
ROUND_INTERVAL = 60.0


@defer.inlineCallbacks
def _undone(api: MQAdminAPI, group: str):
    """[(topic, total, single queue max, delay ms)] of one group: the original's UndoneMsgs per topic. The delay
    of a queue is the store time of its last message minus the time of the group's last consumed one."""
    brokers = yield group_brokers(api, group)
    by_topic: Dict[str, List[Tuple[str, MessageQueue, dict]]] = {}
    for _, addr in brokers:
        _, stats = yield api.consume_stats(addr, group)
        for mq, s in stats.items():
            by_topic.setdefault(mq.topic, []).append((addr, mq, s))
    out = []
    for topic in sorted(by_topic):
        total = single = delay = 0
        for addr, mq, s in by_topic[topic]:
            diff = s.get("brokerOffset", 0) - s.get("consumerOffset", 0)
            single = max(single, diff)
            total += max(0, diff)
            last, end = s.get("lastTimestamp", 0), s.get("brokerOffset", 0)
            if last > 0 and end > 0:
                try:
                    _, _, messages = yield api.pull(addr, mixall.TOOLS_CONSUMER_GROUP, topic, mq.queue_id, end - 1, 1)
                except AdminError:
                    messages = []
                if messages:
                    delay = max(delay, messages[0].store_timestamp - last)
        out.append((topic, total, single, delay))
    return out


@defer.inlineCallbacks
def _subscription_differs(api: MQAdminAPI, group: str) -> defer.Deferred:
    """Whether the group's online clients report different subscriptions (the original's analyzeSubscription);
    False when fewer than two of them answer."""
    addr, conn = yield consumer_connection_of(api, group, None)
    seen = set()
    for c in conn.get("connectionSet") or []:
        try:
            info = yield api.consumer_running_info(addr, group, c.get("clientId", ""))
        except AdminError:
            continue
        seen.add(frozenset((s.get("topic"), s.get("subString")) for s in info.get("subscriptionSet") or []))
    return len(seen) > 1


@command(
    "startMonitoring", "Start Monitoring",
    repeats=True, every=ROUND_INTERVAL,
)
@defer.inlineCallbacks
def start_monitoring(api: MQAdminAPI, args):
    """One round: the groups are those with a retry topic, as in the original; a group whose stats cannot be
    read is left out of the round."""
    topics = yield api.all_topics()
    groups = sorted(t[len(mixall.RETRY_GROUP_TOPIC_PREFIX):] for t in topics if mixall.is_retry_topic(t))
    api.progress.begin("startMonitoring: groups", len(groups))
    rows, undone, notify = [], [], []
    for group in groups:
        try:
            per_topic = yield _undone(api, group)
        except AdminError:
            per_topic = []
        for topic, total, single, delay in per_topic:
            rows.append([group, topic, total, single, delay])
            undone.append({"consumerGroup": group, "topic": topic, "undoneMsgsTotal": total,
                           "undoneMsgsSingleMQ": single, "undoneMsgsDelayTimeMills": delay})
        try:
            differs = yield _subscription_differs(api, group)
        except AdminError:
            differs = False
        if differs:
            notify.append(f"ConsumerGroup: {group}, Subscription different")
        api.progress.advance()
    text = join(table(["Consumer Group", "Topic", "Undone Total", "Undone Single MQ", "Undone Delay ms"], rows),
                *notify)
    return Result({"undoneMsgs": undone, "notify": notify}, text)
