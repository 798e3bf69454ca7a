"""Twisted dropin for the mq services. It only names their service makers; the code lives in ``mq``."""

from twisted.application.service import ServiceMaker

namesrv = ServiceMaker(
    "mq NameServer",
    "mq.namesrv.tap",
    "RocketMQ-compatible NameServer: the stateless routing registry brokers and clients talk to.",
    "namesrv",
)

broker = ServiceMaker(
    "mq Broker",
    "mq.broker.tap",
    "RocketMQ-compatible broker: send, pull, store, consumer groups and offsets.",
    "broker",
)

standalone = ServiceMaker(
    "mq standalone",
    "mq.standalone",
    "A NameServer and a broker in one process on an embedded default store, ready for clients.",
    "mq",
)

console = ServiceMaker(
    "mq console",
    "mq.console.tap",
    "Web console for any RocketMQ 4.x cluster: dashboard, cluster, topics, consumers, messages, replication.",
    "console",
)
