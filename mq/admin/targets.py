"""Which brokers an ``mqadmin`` command asks: ``-b``/``-c`` targets, a topic's masters, a group's brokers."""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

from twisted.internet import defer

from mq.admin.api import AdminError, MQAdminAPI, ResponseError
from mq.admin.values import MessageQueue, route_masters
from mq.common import mixall
from mq.common.route import TopicRouteData
from mq.remoting.codes import ResponseCode as RC


@defer.inlineCallbacks
def target_brokers(api: MQAdminAPI, args) -> defer.Deferred:
    """[(label, addr)] from ``-b addr`` or ``-c cluster`` (the cluster's masters)."""
    if getattr(args, "brokerAddr", None):
        return [(args.brokerAddr, args.brokerAddr)]
    cluster = args.clusterName
    info = yield api.cluster_info()
    masters = info.master_addrs(cluster)
    if cluster not in info.cluster_addr_table:
        raise AdminError(f"cluster '{cluster}' not found on the NameServer")
    if not masters:
        raise AdminError(f"cluster '{cluster}' has no master broker")
    return masters


@defer.inlineCallbacks
def topic_brokers(api: MQAdminAPI, topic: str) -> defer.Deferred:
    """(route, {broker name: master addr}) of a topic; the route error if the NameServer has none."""
    route = yield api.topic_route(topic)
    masters = route_masters(route)
    if not masters:
        raise AdminError(f"topic '{topic}' has no master broker in its route")
    return route, masters


@defer.inlineCallbacks
def group_brokers(api: MQAdminAPI, group: str) -> defer.Deferred:
    """The masters to ask about a consumer group: those of its retry topic, else every master known."""
    try:
        _, masters = yield topic_brokers(api, mixall.retry_topic(group))
        return sorted(masters.items())
    except ResponseError as e:
        if e.code != RC.TOPIC_NOT_EXIST:
            raise
    info = yield api.cluster_info()
    out = []
    for cluster in sorted(info.cluster_addr_table):
        out.extend(info.master_addrs(cluster))
    if not out:
        raise AdminError("the NameServer knows no broker")
    return out


@defer.inlineCallbacks
def first_success(brokers: Sequence[Tuple[str, str]], fn: Callable) -> defer.Deferred:
    """``fn(addr)`` on each broker in turn; the first result, or the last error if every broker fails."""
    error: Optional[Exception] = None
    for _, addr in brokers:
        try:
            result = yield fn(addr)
            return addr, result
        except ResponseError as e:
            error = e
    raise error if error is not None else AdminError("no broker to ask")


def queues_of(route: TopicRouteData, masters: Dict[str, str], readable: bool = True) -> List[Tuple[MessageQueue, str]]:
    """(queue, master addr) of every read (or write) queue of the route, sorted."""
    out = []
    for q in route.queue_datas:
        addr = masters.get(q.broker_name)
        if addr is None:
            continue
        count = q.read_queue_nums if readable else q.write_queue_nums
        out.extend((MessageQueue("", q.broker_name, i), addr) for i in range(count))
    return sorted(out)


def with_topic(queues: List[Tuple[MessageQueue, str]], topic: str) -> List[Tuple[MessageQueue, str]]:
    return [(MessageQueue(topic, mq.broker_name, mq.queue_id), addr) for mq, addr in queues]


@defer.inlineCallbacks
def consumer_connection_of(api: MQAdminAPI, group: str, broker_addr: Optional[str]):
    brokers = [(broker_addr, broker_addr)] if broker_addr else (yield group_brokers(api, group))
    addr, conn = yield first_success(brokers, lambda a: api.consumer_connection(a, group))
    return addr, conn


@defer.inlineCallbacks
def broker_of(api: MQAdminAPI, topic: str, broker_name: str):
    route, masters = yield topic_brokers(api, topic)
    addr = masters.get(broker_name)
    if addr is None:
        raise AdminError(f"broker '{broker_name}' is not in the route of topic '{topic}' "
                         f"(brokers: {', '.join(sorted(masters)) or 'none'})")
    return route, addr
