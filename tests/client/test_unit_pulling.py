"""QueuePuller without a network: which broker a pull goes to, and what it carries there."""

from __future__ import annotations

from twisted.internet import defer, task

from mq.client.instance import ClientInstance
from mq.client.model import MessageQueue
from mq.client.process_queue import ProcessQueue
from mq.client.pulling import QueuePuller
from mq.common.heartbeat import SubscriptionData
from mq.common.message import PullSysFlag


class _Api:
    def __init__(self) -> None:
        self.pulls = []

    def pull(self, addr, header, sub, timeout):
        self.pulls.append((addr, header))
        return defer.Deferred()  # never answered: only the request matters here


class _Instance:
    """The two address lookups of a real ClientInstance over a fixed table."""

    master_addr = ClientInstance.master_addr
    subscribe_addr = ClientInstance.subscribe_addr

    def __init__(self, addrs) -> None:
        self.broker_addrs = {"broker-a": addrs}
        self.api = _Api()


class _Puller(QueuePuller):
    def __init__(self, instance) -> None:
        self.reactor = task.Clock()
        self.instance = instance
        self.group = "g"
        self.running = True
        self.subscriptions = {"T": SubscriptionData.build("T", "*")}
        self.pull_batch_size = 32
        self.pull_threshold_for_queue = 1000
        self.pull_threshold_size_for_queue = 100 << 20
        self._suggested = {}

    def _commit_offset_for_pull(self, mq):
        return 42


MQ = MessageQueue("T", "broker-a", 0)


def _pull_to(addrs, suggested=None):
    puller = _Puller(_Instance(addrs))
    if suggested is not None:
        puller._suggested[MQ] = suggested
    puller._pull(MQ, ProcessQueue(), 7)
    [(addr, header)] = puller.instance.api.pulls
    return addr, header


def test_a_pull_to_the_master_carries_the_offset_to_commit():
    addr, header = _pull_to({0: "m:10911", 1: "s:10911"})
    assert addr == "m:10911" and header.sys_flag & PullSysFlag.FLAG_COMMIT_OFFSET and header.commit_offset == 42


def test_a_pull_to_a_slave_carries_no_commit():
    for addrs, suggested in (({0: "m:10911", 1: "s:10911"}, 1), ({1: "s:10911"}, None)):  # suggested; master gone
        addr, header = _pull_to(addrs, suggested)
        assert addr == "s:10911"
        assert not header.sys_flag & PullSysFlag.FLAG_COMMIT_OFFSET
        assert header.sys_flag & PullSysFlag.FLAG_SUSPEND and header.sys_flag & PullSysFlag.FLAG_SUBSCRIPTION
