"""Broker → client requests: NOTIFY_CONSUMER_IDS_CHANGED (oneway) and relayed admin calls."""

from __future__ import annotations

from typing import Iterable

from twisted.internet import defer
from twisted.logger import Logger

from mq.common.broker_headers import ConsumerGroupRequestHeader
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand
from mq.remoting.protocol import RemotingConnectionError, RemotingTimeoutError

log = Logger()


class Broker2Client:
    def notify_consumer_ids_changed(self, group: str, clients: Iterable) -> None:
        """Tell every member of ``group`` to rebalance now (oneway; a closed channel is skipped)."""
        ext = ConsumerGroupRequestHeader(consumer_group=group).encode()
        for client in clients:
            channel = client.channel
            if not getattr(channel, "connected", False):
                continue
            try:
                channel.send_oneway(RemotingCommand.request(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, dict(ext)))
            except RemotingConnectionError:
                continue
            log.debug("notified {cid} that group {group} changed", cid=client.client_id, group=group)

    def relay(self, request: RemotingCommand, channel, timeout: float = 5.0) -> defer.Deferred:
        """Send a copy of an admin request to a client channel; a Deferred of the response to give back.

        A timeout answers CONSUME_MSG_TIMEOUT, a lost connection SYSTEM_ERROR, both with a remark.
        """
        forward = RemotingCommand.request(request.code, dict(request.ext_fields or {}), request.body)
        d = channel.send_request(forward, timeout)

        def answered(reply: RemotingCommand) -> RemotingCommand:
            return request.response(reply.code, reply.remark, reply.ext_fields, reply.body)

        def failed(failure):
            if failure.check(RemotingTimeoutError):
                return request.response(ResponseCode.CONSUME_MSG_TIMEOUT,
                                        f"the client at {channel.peer} did not answer within {timeout:g} s")
            return request.response(ResponseCode.SYSTEM_ERROR,
                                    f"relaying to the client at {channel.peer} failed: {failure.getErrorMessage()}")

        return d.addCallbacks(answered, failed)
