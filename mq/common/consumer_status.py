"""``GetConsumerStatusBody``: the body of GET_CONSUMER_STATUS_FROM_CLIENT (client → broker) and of
INVOKE_BROKER_TO_GET_CONSUMER_STATUS (broker → admin).

Java's class has two maps, both always written (fastjson, fields in name order)::

    {"consumerTable":{"<clientId>":{{"brokerName":"b","queueId":0,"topic":"T"}:12,...}},
     "messageQueueTable":{{"brokerName":"b","queueId":0,"topic":"T"}:12,...}}

A client fills ``messageQueueTable`` with the offsets it holds for the topic's queues; the broker answers the
admin with ``consumerTable`` (client id → that client's table) and an empty ``messageQueueTable``. The
``MessageQueue`` keys are JSON objects, as fastjson writes ``Map<MessageQueue, Long>``.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping

import attr

from mq.common import fastjson, jsonkeys

#: Builds a queue key from (topic, brokerName, queueId); each layer passes its own ``MessageQueue`` class.
QueueFactory = Callable[[str, str, int], Any]


def _sorted(table: Mapping) -> dict:
    return dict(sorted(table.items(), key=lambda item: (item[0].topic, item[0].broker_name, item[0].queue_id)))


def _queue_table(value: Any, queue: QueueFactory) -> dict:
    """A ``Map<MessageQueue, Long>`` as ``jsonkeys`` reads it (an ``ObjectKeyMap``, or ``{}`` when empty)."""
    if isinstance(value, dict) and not value:
        return {}
    if not isinstance(value, jsonkeys.ObjectKeyMap):
        raise ValueError(f"not a map keyed by message queues: {value!r:.80}")
    return {queue(str(k["topic"]), str(k["brokerName"]), int(k["queueId"])): int(v) for k, v in value}


@attr.s(slots=True)
class GetConsumerStatusBody:
    message_queue_table: Dict[Any, int] = attr.ib(factory=dict)
    consumer_table: Dict[str, Dict[Any, int]] = attr.ib(factory=dict)

    def encode(self) -> bytes:
        """Queue keys need ``topic``, ``broker_name``, ``queue_id`` and ``to_json()``; maps come out sorted."""
        return fastjson.dumps_bytes({
            "consumerTable": {cid: _sorted(table) for cid, table in sorted(self.consumer_table.items())},
            "messageQueueTable": _sorted(self.message_queue_table),
        })

    @classmethod
    def decode(cls, body: bytes, queue: QueueFactory) -> "GetConsumerStatusBody":
        """Read a body (either direction); ``ValueError`` when it is not one. Missing maps are empty."""
        data = jsonkeys.loads(body or b"{}")
        if not isinstance(data, dict):
            raise ValueError("a GetConsumerStatusBody is a JSON object")
        try:
            consumers = data.get("consumerTable") or {}
            if not isinstance(consumers, dict):
                raise ValueError("consumerTable is not a map of client ids")
            return cls({} if data.get("messageQueueTable") is None else
                       _queue_table(data["messageQueueTable"], queue),
                       {str(cid): _queue_table(table, queue) for cid, table in consumers.items()})
        except (KeyError, TypeError) as e:
            raise ValueError(f"not a GetConsumerStatusBody: {e!r}") from None
