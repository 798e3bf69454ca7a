"""Twisted dropin: ``twistd namesrv`` (and the other mq services). It only names the service makers."""

from twisted.application.service import ServiceMaker

namesrv = ServiceMaker(
    "mq NameServer",
    "mq.namesrv.tap",
    "RocketMQ-compatible NameServer: the stateless routing registry brokers and clients talk to.",
    "namesrv",
)
