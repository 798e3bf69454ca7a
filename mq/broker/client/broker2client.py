"""Broker → client requests: NOTIFY_CONSUMER_IDS_CHANGED and RESET_CONSUMER_CLIENT_OFFSET (oneway),
GET_CONSUMER_STATUS_FROM_CLIENT, relayed admin calls (GET_CONSUMER_RUNNING_INFO, CONSUME_MESSAGE_DIRECTLY).

Relays to one client are bounded (``clientRelayMaxInFlight``): each one makes a consumer run its listener or
build its running info, and an admin tool in a loop must not pile those up on one client (or the requests and
their message bodies up in the broker) while earlier ones are still waiting for their answer.

Nothing is sent to a client that is not reading: its connection's unsent output is over the transport's
buffer size (``not_reading``). Requests with a body (relays, pushed replies) are refused with SYSTEM_BUSY, a
status request leaves the client out, and a oneway push is not sent. Netty's broker would buffer them all
without a bound, for as long as the connection lives."""

from __future__ import annotations

from typing import Dict, Iterable, Mapping, Optional

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from mq.common import fastjson
from mq.common.broker_headers import (
    ConsumerGroupRequestHeader,
    GetConsumerStatusRequestHeader,
    ResetOffsetRequestHeader,
)
from mq.common.consumer_status import GetConsumerStatusBody
from mq.remoting.codes import LanguageCode, RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand
from mq.remoting.protocol import RemotingConnectionError, RemotingTimeoutError

log = Logger()

#: The largest GET_CONSUMER_STATUS_FROM_CLIENT answer the broker reads. Its queue keys are JSON objects, which
#: only ``jsonkeys``'s Python reader takes (2.5 s per MiB, on the reactor); one topic's table is at most 1,024
#: queues, about 72 KiB.
MAX_STATUS_REPLY = 256 * 1024


def not_reading(channel, who: str) -> Optional[str]:
    """Why nothing more should be pushed to ``channel`` (``who``, for the remark) now, or None."""
    if getattr(channel, "output_paused", False):
        return (f"{who} does not read what the broker already sent it (over 64 KiB unsent): "
                f"nothing more is sent to it until it does")
    return None


class Broker2Client:
    def __init__(self) -> None:
        #: relays waiting for their answer, by client channel
        self.relaying: Dict[object, int] = {}

    def notify_consumer_ids_changed(self, group: str, clients: Iterable) -> None:
        """Tell every member of ``group`` to rebalance now (oneway; a closed channel is skipped)."""
        ext = ConsumerGroupRequestHeader(consumer_group=group).encode()
        for client in clients:  # no log line per member: a group of thousands changes often
            self._oneway(client, RemotingCommand.request(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, dict(ext)))

    def reset_offset(self, header: ResetOffsetRequestHeader, table: Mapping, clients: Iterable,
                     c_form_for_all: bool = False) -> None:
        """RESET_CONSUMER_CLIENT_OFFSET (oneway) to each client: ``table`` ({MessageQueue: offset}) as a
        ``ResetOffsetBody`` (object keys), or as a ``ResetOffsetBodyForC`` list for C++ clients (and for every
        client when ``c_form_for_all``, RocketMQ's rule when a C++ admin asks)."""
        ext = dict(header.encode())
        bodies = {
            False: fastjson.dumps_bytes({"offsetTable": dict(table)}),
            True: fastjson.dumps_bytes({"offsetTable": [
                {"brokerName": mq.broker_name, "offset": offset, "queueId": mq.queue_id, "topic": mq.topic}
                for mq, offset in sorted(table.items(), key=lambda item: item[0].queue_id)]}),
        }
        for client in clients:
            c_form = c_form_for_all or client.language == LanguageCode.CPP
            request = RemotingCommand.request(RequestCode.RESET_CONSUMER_CLIENT_OFFSET, dict(ext), bodies[c_form])
            if self._oneway(client, request):
                log.info("asked {cid} to reset the offsets of {group} on {topic}", cid=client.client_id,
                         group=header.group, topic=header.topic)
            else:
                log.warn("could not ask {cid} to reset the offsets of {group} on {topic}: closed or not reading",
                         cid=client.client_id, group=header.group, topic=header.topic)

    def consumer_status(self, topic: str, group: str, clients: Iterable, queue,
                        timeout: float = 5.0) -> defer.Deferred:
        """Ask each client for the offsets it holds for ``topic`` (GET_CONSUMER_STATUS_FROM_CLIENT), all at
        once; a Deferred of {client id: {queue: offset}}. A client that fails, does not answer within
        ``timeout`` or answers something else than a ``GetConsumerStatusBody`` is left out (RocketMQ logs it
        and goes on); ``queue`` builds the table's keys."""
        ext = GetConsumerStatusRequestHeader(topic=topic, group=group).encode()
        table: dict = {}

        def answered(reply: RemotingCommand, client) -> None:
            if reply.code != ResponseCode.SUCCESS or reply.body is None:
                log.info("[get-consumer-status] {cid} answered {code}: {remark}", cid=client.client_id,
                         code=reply.code, remark=reply.remark)
                return
            if len(reply.body) > MAX_STATUS_REPLY:
                log.warn("[get-consumer-status] {cid} answered {n} bytes, over the {limit} read: left out",
                         cid=client.client_id, n=len(reply.body), limit=MAX_STATUS_REPLY)
                return
            try:
                table[client.client_id] = GetConsumerStatusBody.decode(reply.body, queue).message_queue_table
            except ValueError as e:
                log.warn("[get-consumer-status] {cid} answered an unreadable body: {e}", cid=client.client_id, e=e)

        def failed(failure, client) -> None:
            log.warn("[get-consumer-status] {cid} of {group} did not answer: {e}", cid=client.client_id, group=group,
                     e=failure.getErrorMessage())

        calls = []
        for client in clients:
            busy = not_reading(client.channel, client.client_id)
            if busy is not None:
                failed(Failure(RemotingConnectionError(busy)), client)
                continue
            request = RemotingCommand.request(RequestCode.GET_CONSUMER_STATUS_FROM_CLIENT, dict(ext))
            d = defer.maybeDeferred(client.channel.send_request, request, timeout)
            calls.append(d.addCallbacks(answered, failed, (client,), None, (client,)))
        return defer.gatherResults(calls, consumeErrors=True).addCallback(lambda _: table)

    def _oneway(self, client, request: RemotingCommand) -> bool:
        """Send without waiting; False (not sent) to a closed channel or one not reading. The pushes are
        small, but a member that never reads would otherwise keep every group change's push for as long as the
        idle limit lets it live; what they say (rebalance, reset) is asked again or kept by the broker."""
        channel = client.channel
        if not getattr(channel, "connected", False) or getattr(channel, "output_paused", False):
            return False
        try:
            channel.send_oneway(request)
        except RemotingConnectionError:
            return False
        return True

    def relay(self, request: RemotingCommand, channel, timeout: float = 5.0, limit: int = 0,
              body: bytes = b"") -> defer.Deferred:
        """Send a copy of an admin request's header, with ``body`` (the caller's body is never forwarded: only
        the broker knows what the client needs), to a client channel; a Deferred of the response to give back.

        A timeout answers CONSUME_MSG_TIMEOUT, a lost connection SYSTEM_ERROR, both with a remark; with
        ``limit`` relays to this channel already waiting, or a client not reading, SYSTEM_BUSY at once.
        """
        waiting = self.relaying.get(channel, 0)
        if limit and waiting >= limit:
            return defer.succeed(request.response(
                ResponseCode.SYSTEM_BUSY, f"the client at {channel.peer} is still answering {waiting} relayed "
                                          f"requests (clientRelayMaxInFlight {limit}): try again later"))
        busy = not_reading(channel, f"the client at {channel.peer}")
        if busy is not None:
            return defer.succeed(request.response(ResponseCode.SYSTEM_BUSY, busy))
        forward = RemotingCommand.request(request.code, dict(request.ext_fields or {}), body)
        self.relaying[channel] = waiting + 1

        def settled(result):
            left = self.relaying.pop(channel, 1) - 1
            if left > 0:
                self.relaying[channel] = left
            return result

        d = defer.maybeDeferred(channel.send_request, forward, timeout).addBoth(settled)

        def answered(reply: RemotingCommand) -> RemotingCommand:
            return request.response(reply.code, reply.remark, reply.ext_fields, reply.body)

        def failed(failure):
            if failure.check(RemotingTimeoutError):
                return request.response(ResponseCode.CONSUME_MSG_TIMEOUT,
                                        f"the client at {channel.peer} did not answer within {timeout:g} s")
            return request.response(ResponseCode.SYSTEM_ERROR,
                                    f"relaying to the client at {channel.peer} failed: {failure.getErrorMessage()}")

        return d.addCallbacks(answered, failed)

