"""rocketmq-exporter's ``rocketmq_client_*`` figures: what each online consumer says of itself.

The exporter asks every online consumer for its running info (GET_CONSUMER_RUNNING_INFO, 307) once a minute
and reads ``statusTable``: per subscribed topic the consumer's pull RT and TPS, consume RT, OK and failed
TPS, and failed messages over the last hour. The broker does the same here every ``clientMetricsInterval``
seconds and keeps the last answers for the scrape, so a scrape never waits on a client. Bounds: at most
``metricsMaxSeries`` consumers are asked per round, each answer's topics are cut at the same number, a
consumer that does not answer within 3 s is left out of that round, and a round's answers replace the last.
"""

from __future__ import annotations

import json
import re
from typing import Dict, Optional, Tuple

from twisted.internet import defer
from twisted.logger import Logger

from mq.common import mixall
from mq.common.broker_headers import GetConsumerRunningInfoRequestHeader
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand

log = Logger()

LABELS = ("clientAddr", "clientId", "group", "topic")
#: exporter family → (statusTable field, meaning)
FAMILIES = {
    "rocketmq_client_consume_fail_msg_count": ("consumeFailedMsgs", "Messages the consumer failed to consume "
                                                                    "in the last hour"),
    "rocketmq_client_consume_fail_msg_tps": ("consumeFailedTPS", "Messages failed per second"),
    "rocketmq_client_consume_ok_msg_tps": ("consumeOKTPS", "Messages consumed per second"),
    "rocketmq_client_consume_rt": ("consumeRT", "Average ms to consume a message"),
    "rocketmq_client_consumer_pull_rt": ("pullRT", "Average ms of a pull"),
    "rocketmq_client_consumer_pull_tps": ("pullTPS", "Messages pulled per second"),
}
TIMEOUT = 3.0

Key = Tuple[str, str, str, str]


_STATUS_KEY = re.compile(r'"statusTable"\s*:\s*')
_DECODER = json.JSONDecoder()
#: Places a running-info body may name ``statusTable`` before the reader gives up on it.
MAX_STATUS_KEYS = 8


def status_table(body: bytes) -> Optional[dict]:
    """The ``statusTable`` of a running-info body, or None: found by a search and read by the C decoder.

    The rest of the body is never parsed. Its ``mqTable`` is keyed by objects, which only ``jsonkeys``'s
    Python reader takes, at 2.5 s per MiB: a consumer answering with a 16 MiB body would have held the
    reactor for most of a minute, every round. Its keys are topic names, so the table is plain JSON; a
    ``statusTable`` key elsewhere (a property) is passed over for the next one that holds an object."""
    text = body.decode("utf-8", "replace")
    for n, found in enumerate(_STATUS_KEY.finditer(text)):
        if n >= MAX_STATUS_KEYS:
            break
        try:
            value, _ = _DECODER.raw_decode(text, found.end())
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    return None


def _number(value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if number == number and abs(number) != float("inf") else 0.0


class ClientMetrics:
    def __init__(self, broker) -> None:
        self.broker = broker
        #: (clientAddr, clientId, group, topic) → {statusTable field: value}, from the last round
        self.table: Dict[Key, Dict[str, float]] = {}
        self._round: defer.Deferred | None = None

    def poll(self) -> defer.Deferred:
        """Ask every online consumer (up to the cap) once; the answers replace the table when all are in."""
        if self._round is not None:  # the last round is still waiting for its answers
            return self._round
        limit = self.broker.config.metrics_max_series
        asked = []
        fresh: Dict[Key, Dict[str, float]] = {}
        for group, info in list(self.broker.consumer_manager.table.items()):
            for client in list(info.channels.values()):
                if len(asked) >= limit:
                    break
                if client.version < mixall.MIN_VERSION_CONSUMER_RUNNING_INFO:
                    continue
                asked.append(self._ask(group, client, fresh, limit))

        def done(_):
            self.table = fresh
            self._round = None

        round_ = defer.gatherResults(asked, consumeErrors=True)
        self._round = round_
        round_.addBoth(done)  # may fire at once (nobody to ask): then _round is None again already
        return round_

    def _ask(self, group: str, client, fresh: Dict[Key, Dict[str, float]], limit: int) -> defer.Deferred:
        ext = GetConsumerRunningInfoRequestHeader(consumer_group=group, client_id=client.client_id,
                                                  jstack_enable=False).encode()
        request = RemotingCommand.request(RequestCode.GET_CONSUMER_RUNNING_INFO, ext)
        d = defer.maybeDeferred(client.channel.send_request, request, TIMEOUT)

        def answered(reply: RemotingCommand) -> None:
            if reply.code != ResponseCode.SUCCESS or not reply.body:
                return
            status = status_table(reply.body)
            if status is None:
                log.info("running info of {cid} has no readable statusTable", cid=client.client_id)
                return
            for topic, figures in list(status.items())[:limit]:
                if isinstance(figures, dict):
                    fresh[(client.client_addr, client.client_id, group, str(topic))] = {
                        field: _number(figures.get(field)) for field, _ in FAMILIES.values()}

        def failed(failure) -> None:
            log.debug("running info of {cid} not had: {e}", cid=client.client_id, e=failure.getErrorMessage())

        return d.addCallbacks(answered, failed)

    def add_to(self, out) -> None:
        """Add the last round's figures to the scrape's exporter families (``exporter.Families``)."""
        for name, (field, doc) in FAMILIES.items():
            out.family(name, doc, LABELS)
            for key, figures in list(self.table.items()):
                out.add(name, key, figures[field])
