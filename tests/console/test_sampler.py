"""The dashboard's sampler on a ``task.Clock``: rates from offsets, bounded history, one round at a time."""

from __future__ import annotations

from twisted.internet import defer, task

from mq.admin.values import ClusterInfo, MessageQueue
from mq.common.route import BrokerData, QueueData, TopicRouteData
from mq.console.sampler import TpsSampler, topic_kind

ADDR = "10.0.0.5:10911"


class Cluster:
    """A one-broker cluster whose figures the test moves."""

    def __init__(self) -> None:
        self.topics = {"Orders": 0, "Pay": 0}
        self.put_tps = "12.5 10.0 9.0"
        self.gate = None

    def cluster_info(self):
        if self.gate is not None:
            return self.gate
        data = BrokerData("C", "broker-a", {0: ADDR})
        return defer.succeed(ClusterInfo({"broker-a": data}, {"C": ["broker-a"]}))

    def broker_runtime_info(self, addr):
        return defer.succeed({"putTps": self.put_tps, "getTransferedTps": "3.0 2.0 1.0"})

    def all_topics(self):
        return defer.succeed(sorted(self.topics) + ["TBW102", "%RETRY%g"])

    def topic_route(self, topic):
        return defer.succeed(TopicRouteData([QueueData("broker-a", 2, 2, 6)], [BrokerData("C", "broker-a", {0: ADDR})]))

    def topic_stats(self, addr, topic):
        end = self.topics[topic]
        return defer.succeed({MessageQueue(topic, "broker-a", 0): {"maxOffset": end},
                              MessageQueue(topic, "broker-a", 1): {"maxOffset": end}})


def test_rates_come_from_offset_growth_and_history_is_bounded():
    clock, cluster = task.Clock(), Cluster()
    sampler = TpsSampler(cluster, clock, interval=5, points=3, max_topics=10)
    sampler.start()  # first round now: a baseline, no topic rate yet
    assert sampler.snapshot()["topics"] == {}
    assert sampler.snapshot()["brokers"] == {f"broker-a/{ADDR}": [[0.0, 12.5, 3.0]]}
    for step in range(1, 6):
        cluster.topics["Orders"] += 50 * step  # two queues: 100 * step messages in 5 s
        clock.advance(5)
    snap = sampler.snapshot()
    assert [p[1] for p in snap["topics"]["Orders"]] == [60.0, 80.0, 100.0]  # the last 3 of 20, 40, ... 100
    assert len(snap["brokers"][f"broker-a/{ADDR}"]) == 3
    assert list(snap["topics"]) == ["Orders", "Pay"]  # busiest first; system and retry topics not sampled
    assert snap["rounds"] == 6


def test_vanished_topics_are_dropped_and_only_the_first_topics_are_followed():
    clock, cluster = task.Clock(), Cluster()
    sampler = TpsSampler(cluster, clock, interval=5, points=10, max_topics=1)
    sampler.start()
    clock.advance(5)
    assert set(sampler.topics) == {"Orders"}
    del cluster.topics["Orders"]
    clock.advance(5)
    clock.advance(5)
    assert set(sampler.topics) == {"Pay"} and "Orders" not in sampler._last_offsets


def test_a_slow_round_delays_the_next_instead_of_overlapping_it():
    clock, cluster = task.Clock(), Cluster()
    cluster.gate = defer.Deferred()
    asked = []
    info = cluster.cluster_info
    cluster.cluster_info = lambda: asked.append(clock.seconds()) or info()
    sampler = TpsSampler(cluster, clock, interval=5, points=10, max_topics=10)
    sampler.start()
    clock.advance(5)
    clock.advance(5)
    assert asked == [0] and sampler.rounds == 0
    gate, cluster.gate = cluster.gate, None
    gate.callback(ClusterInfo({}, {}))
    assert sampler.rounds == 1
    clock.advance(5)
    assert asked == [0, 15] and sampler.rounds == 2
    sampler.stop()


def test_a_failed_round_is_reported_and_the_next_runs():
    from mq.admin.api import UnreachableError

    clock, cluster = task.Clock(), Cluster()
    cluster.gate = defer.fail(UnreachableError("NameServer", "127.0.0.1:9876", "connection refused"))
    sampler = TpsSampler(cluster, clock, interval=5, points=10, max_topics=10)
    sampler.start()
    assert "cannot reach NameServer" in sampler.snapshot()["error"]
    cluster.gate = None
    clock.advance(5)
    assert sampler.snapshot()["error"] is None and sampler.rounds == 1


def test_topic_kinds():
    names = frozenset({"DefaultCluster", "broker-a"})
    assert [topic_kind(t, names) for t in ("Orders", "%RETRY%g", "%DLQ%g", "TBW102", "rmq_sys_x", "broker-a",
                                           "DefaultCluster_REPLY_TOPIC")] == \
        ["normal", "retry", "dlq", "system", "system", "system", "system"]


def test_each_round_also_goes_to_the_kept_day_and_a_day_is_answered_busiest_first(tmp_path):
    from mq.console.history import DayHistory, day_of

    clock, cluster = task.Clock(), Cluster()
    clock.advance(1_800_000_000)
    history = DayHistory(str(tmp_path), clock, 5, 3, 4, 10)
    sampler = TpsSampler(cluster, clock, interval=5, points=2, max_topics=10, history=history)
    sampler.start()
    for _ in range(4):
        cluster.topics["Pay"] += 10
        clock.advance(5)
    sampler.stop()  # writes the day
    today = day_of(clock.seconds() * 1000)
    day = sampler.day(today, top=1).result
    assert len(day["brokers"][f"broker-a/{ADDR}"]) == 5  # every round kept (5 s steps), not just the last 2
    assert list(day["topics"]) == ["Pay"] and day["days"] == [today] and day["step"] == 5
    assert (tmp_path / f"{today}.jsonl").exists() and sampler.snapshot()["days"] == [today]
