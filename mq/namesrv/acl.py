"""Signed writes on the NameServer (beyond RocketMQ 4.x, whose NameServer checks nothing; off by default).

With ``aclEnable=true`` every request that changes what the NameServer holds (a broker's registration, its
keepalive, write permissions, topic deletion, KV config, settings) must pass the broker's access check against
the NameServer's own ``plain_acl.yml`` (same format, same places under ``rocketmqHome``, same hot reload): a
white-listed address, or a valid signature of an ``admin`` account. A stranger can then neither register a
fake broker to take over a topic's route, nor keep a dead broker alive, nor wipe write permissions. Reads
(routes, cluster info, KV reads) stay open, so unsigned clients keep working.
"""

from __future__ import annotations

from typing import Callable, Optional

from twisted.logger import Logger

from mq.acl.resources import NAMESRV_WRITE_CODES
from mq.remoting.command import RemotingCommand

log = Logger()


class NamesrvAccessCheck:
    """The dispatcher's ``access_check`` for a NameServer: ``validator`` on the write codes only."""

    def __init__(self, validator: Callable[[RemotingCommand, object], Optional[str]]) -> None:
        self.validator = validator

    def __call__(self, request: RemotingCommand, channel) -> Optional[str]:
        if request.code not in NAMESRV_WRITE_CODES:
            return None
        denied = self.validator(request, channel)
        if denied is not None:
            log.warn("NameServer refused {code} from {peer}: {denied}", code=request.code, peer=channel.peer,
                     denied=denied)
        return denied
