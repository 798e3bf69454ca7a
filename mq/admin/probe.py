"""Timed probe sends for the response-time commands (checkMsgSendRT, sendMsgStatus, clusterRT)."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from twisted.internet import defer

from mq.admin.api import AdminError, MQAdminAPI
from mq.admin.targets import queues_of, topic_brokers

#: Producer group of the probes (the original's sendMsgStatus uses this one).
PROBE_PRODUCER_GROUP = "PID_SMSC"
#: Bounds of one run: at most this many messages, of at most this many bytes each (the broker's default
#: maxMessageSize).
MAX_PROBES = 100_000
MAX_PROBE_SIZE = 4 * 1024 * 1024


def filler(size: int, pattern: bytes = b"a") -> bytes:
    """A body of exactly ``size`` bytes."""
    return (pattern * (size // len(pattern) + 1))[:size]


@defer.inlineCallbacks
def timed_send(api: MQAdminAPI, addr: str, broker_name: str, topic: str, queue_id: int, body: bytes):
    """(send result or None, error text or None, milliseconds taken); a refused or failed send is not an
    error of the command, it is what is measured."""
    start = api.reactor.seconds()
    result: Optional[Dict[str, Any]] = None
    error: Optional[str] = None
    try:
        result = yield api.send_message(addr, broker_name, topic, queue_id, body, group=PROBE_PRODUCER_GROUP)
    except AdminError as e:
        error = str(e)
    return result, error, (api.reactor.seconds() - start) * 1000.0


def average_after_first(times_ms: Tuple[float, ...]) -> float:
    """The mean time leaving out the first send (it also sets up the connection), as the original tools do."""
    rest = times_ms[1:]
    return sum(rest) / len(rest) if rest else 0.0


@defer.inlineCallbacks
def broker_topic_queues(api: MQAdminAPI, broker_name: str):
    """(master addr, writable queue ids) of the topic named after the broker (every broker serves one, as
    RocketMQ's brokerTopicEnable does), which the probes of one broker are sent to."""
    route, masters = yield topic_brokers(api, broker_name)
    addr = masters.get(broker_name)
    if addr is None:
        raise AdminError(f"broker '{broker_name}' does not serve the topic named after it")
    ids = [mq.queue_id for mq, _ in queues_of(route, {broker_name: addr}, readable=False)]
    if not ids:
        raise AdminError(f"topic '{broker_name}' has no writable queue on broker '{broker_name}'")
    return addr, ids
