"""BrokerOuterAPI: the broker's requests to the NameServers (REGISTER_BROKER, UNREGISTER_BROKER)."""

from __future__ import annotations

import zlib
from typing import List, Optional, Tuple

from twisted.internet import defer
from twisted.logger import Logger

from mq.common.namesrv_headers import (
    RegisterBrokerRequestHeader,
    RegisterBrokerResponseHeader,
    UnregisterBrokerRequestHeader,
)
from mq.common.register_body import RegisterBrokerBody
from mq.remoting.client import RemotingClient
from mq.remoting.codes import RequestCode, ResponseCode
from mq.remoting.command import RemotingCommand

log = Logger()


class BrokerOuterAPI:
    def __init__(self, reactor, client: Optional[RemotingClient] = None) -> None:
        self.reactor = reactor
        self.client = client or RemotingClient(reactor)

    def register_broker_all(self, namesrv_addrs: List[str], config, body: RegisterBrokerBody, oneway: bool = False,
                            timeout: float = 6.0) -> defer.Deferred:
        """Register with every NameServer in parallel.

        Fires with a list of ``(addr, RegisterBrokerResponseHeader or None, error text or None)``; a
        NameServer that is down or slow is logged and does not hold up the others.
        """
        body = body.encode()
        header = RegisterBrokerRequestHeader(
            broker_name=config.broker_name,
            broker_addr=config.broker_addr,
            cluster_name=config.broker_cluster_name,
            ha_server_addr=config.ha_server_addr,
            broker_id=config.broker_id,
            compressed=False,
            body_crc32=zlib.crc32(body) & 0x7FFFFFFF,
        ).encode()
        calls = []
        for addr in namesrv_addrs:
            request = RemotingCommand.request(RequestCode.REGISTER_BROKER, dict(header), body, oneway=oneway)
            if oneway:
                d = self.client.invoke_oneway(addr, request)
                d.addCallback(lambda _, addr=addr: (addr, None, None))
            else:
                d = self.client.invoke(addr, request, timeout)
                d.addCallback(self._registered, addr)
            d.addErrback(lambda f, addr=addr: (addr, None, f.getErrorMessage()))
            calls.append(d)
        return defer.gatherResults(calls)

    @staticmethod
    def _registered(response: RemotingCommand, addr: str) -> Tuple[str, Optional[RegisterBrokerResponseHeader], Optional[str]]:
        if response.code != ResponseCode.SUCCESS:
            return addr, None, f"code {response.code}: {response.remark}"
        return addr, RegisterBrokerResponseHeader.decode(response.ext_fields), None

    def unregister_broker_all(self, namesrv_addrs: List[str], config, timeout: float = 3.0) -> defer.Deferred:
        header = UnregisterBrokerRequestHeader(
            broker_name=config.broker_name,
            broker_addr=config.broker_addr,
            cluster_name=config.broker_cluster_name,
            broker_id=config.broker_id,
        ).encode()
        calls = []
        for addr in namesrv_addrs:
            request = RemotingCommand.request(RequestCode.UNREGISTER_BROKER, dict(header))
            d = self.client.invoke(addr, request, timeout)
            d.addCallbacks(lambda r, addr=addr: (addr, r.code, r.remark),
                           lambda f, addr=addr: (addr, None, f.getErrorMessage()))
            calls.append(d)
        return defer.gatherResults(calls)

    def close(self) -> defer.Deferred:
        return self.client.close()
