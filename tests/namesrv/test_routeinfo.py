"""RouteInfoManager: registration, expiry, connection close, master/slave results, route pick-up."""

from __future__ import annotations

from twisted.internet import task

from mq.common.route import PERM_READ, PERM_WRITE, DataVersion, TopicConfig
from mq.namesrv.routeinfo import RouteInfoManager


class FakeChannel:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def make(clock: task.Clock) -> RouteInfoManager:
    return RouteInfoManager(lambda: int(clock.seconds() * 1000), broker_expiry_ms=120_000)


def topics(*names: str, queues: int = 4, perm: int = 6) -> dict:
    return {n: TopicConfig(n, queues, queues, perm) for n in names}


def register(routes, name="broker-a", addr="10.0.0.1:10911", broker_id=0, version=DataVersion(1, 1),
             configs=None, cluster="DefaultCluster", channel=None, ha="10.0.0.1:10912"):
    return routes.register_broker(cluster, addr, name, broker_id, ha, version,
                                  configs if configs is not None else topics("T"), [], channel or FakeChannel())


def test_register_creates_route_with_master_and_queues():
    routes = make(task.Clock())
    result = register(routes)
    assert result.master_addr is None and result.ha_server_addr is None
    route = routes.pickup_topic_route_data("T")
    assert [q.broker_name for q in route.queue_datas] == ["broker-a"]
    assert route.queue_datas[0].write_queue_nums == 4
    assert route.broker_datas[0].broker_addrs == {0: "10.0.0.1:10911"}
    assert route.broker_datas[0].cluster == "DefaultCluster"
    assert routes.cluster_addr_table == {"DefaultCluster": {"broker-a"}}


def test_unknown_topic_has_no_route():
    routes = make(task.Clock())
    register(routes)
    assert routes.pickup_topic_route_data("nope") is None


def test_same_data_version_takes_only_the_topics_the_broker_has_no_queues_for():
    routes = make(task.Clock())
    register(routes, version=DataVersion(1, 1), configs=topics("T", "X"))
    # Same version: a changed topic is ignored (the broker says nothing changed), a topic it has no queues
    # for yet is taken (RocketMQ 5's per-topic check).
    register(routes, version=DataVersion(1, 1), configs=topics("T", "X", "U", queues=8))
    assert routes.pickup_topic_route_data("T").queue_datas[0].read_queue_nums == 4
    assert routes.pickup_topic_route_data("U").queue_datas[0].read_queue_nums == 8
    # New version: taken.
    register(routes, version=DataVersion(2, 2), configs=topics("T", "U", queues=16))
    assert routes.pickup_topic_route_data("U").queue_datas[0].read_queue_nums == 16
    assert routes.pickup_topic_route_data("T").queue_datas[0].read_queue_nums == 16


def test_a_partial_first_registration_does_not_hide_the_rest_of_the_table():
    routes = make(task.Clock())
    register(routes, version=DataVersion(1, 1), configs=topics("T", "U", "V"))
    routes.unregister_broker("DefaultCluster", "10.0.0.1:10911", "broker-a", 0)  # or expired, or a restart
    assert routes.pickup_topic_route_data("T") is None
    # First again, with only the topic created meanwhile, announced alone at the broker's current version:
    register(routes, version=DataVersion(2, 2), configs=topics("W"))
    assert routes.pickup_topic_route_data("W") is not None and routes.pickup_topic_route_data("T") is None
    # then with some more of them: still not taken for the whole table (nothing removed)
    register(routes, version=DataVersion(2, 2), configs=topics("W", "X"))
    assert routes.pickup_topic_route_data("W") is not None and routes.pickup_topic_route_data("X") is not None
    # the next whole registration, at that same version, routes every topic.
    register(routes, version=DataVersion(2, 2), configs=topics("T", "U", "V", "W", "X"))
    assert all(routes.pickup_topic_route_data(t) is not None for t in "TUVWX")


def test_registration_never_removes_topics():
    routes = make(task.Clock())
    register(routes, version=DataVersion(1, 1), configs=topics("T", "U"))
    register(routes, version=DataVersion(2, 2), configs=topics("T"))
    assert routes.pickup_topic_route_data("U") is not None


def test_slave_topic_configs_ignored_and_result_names_master():
    routes = make(task.Clock())
    register(routes, configs=topics("T"))
    result = register(routes, addr="10.0.0.2:10911", broker_id=1, configs=topics("SLAVE_ONLY"), ha="10.0.0.2:10912")
    assert result.master_addr == "10.0.0.1:10911"
    assert result.ha_server_addr == "10.0.0.1:10912"
    assert routes.pickup_topic_route_data("SLAVE_ONLY") is None
    assert routes.pickup_topic_route_data("T").broker_datas[0].broker_addrs == {
        0: "10.0.0.1:10911",
        1: "10.0.0.2:10911",
    }


def test_slave_without_live_master_gets_no_master():
    routes = make(task.Clock())
    result = register(routes, addr="10.0.0.2:10911", broker_id=1)
    assert result.master_addr is None and result.ha_server_addr is None


def test_slave_promoted_to_master_replaces_its_old_id():
    routes = make(task.Clock())
    register(routes, addr="10.0.0.2:10911", broker_id=1)
    register(routes, addr="10.0.0.2:10911", broker_id=0)
    assert routes.broker_addr_table["broker-a"].broker_addrs == {0: "10.0.0.2:10911"}


def test_expiry_at_120_seconds_and_not_before():
    clock = task.Clock()
    routes = make(clock)
    channel = FakeChannel()
    register(routes, channel=channel)
    clock.advance(120)
    assert routes.scan_not_active_brokers() == []
    assert routes.pickup_topic_route_data("T") is not None
    clock.advance(0.001)
    assert routes.scan_not_active_brokers() == ["10.0.0.1:10911"]
    assert channel.closed
    assert routes.pickup_topic_route_data("T") is None
    assert routes.broker_live_table == {} and routes.broker_addr_table == {} and routes.cluster_addr_table == {}


def test_reregistration_keeps_broker_alive():
    clock = task.Clock()
    routes = make(clock)
    register(routes)
    for _ in range(10):
        clock.advance(30)
        register(routes)
        assert routes.scan_not_active_brokers() == []
    assert routes.pickup_topic_route_data("T") is not None


def test_query_data_version_unchanged_counts_as_keepalive():
    clock = task.Clock()
    routes = make(clock)
    register(routes, version=DataVersion(5, 5))
    clock.advance(100)
    changed, stored = routes.query_data_version("10.0.0.1:10911", DataVersion(5, 5))
    assert not changed and stored == DataVersion(5, 5)
    clock.advance(100)
    assert routes.scan_not_active_brokers() == []
    changed, _ = routes.query_data_version("10.0.0.1:10911", DataVersion(6, 6))
    assert changed


def test_connection_close_cleans_every_table_at_once():
    routes = make(task.Clock())
    channel_a, channel_b = FakeChannel(), FakeChannel()
    register(routes, channel=channel_a, configs=topics("T", "ONLY_A"))
    register(routes, name="broker-b", addr="10.0.0.3:10911", channel=channel_b, configs=topics("T"))
    routes.filter_server_table["10.0.0.1:10911"] = ["10.0.0.1:9999"]
    assert routes.on_channel_closed(channel_a) == "10.0.0.1:10911"
    assert routes.pickup_topic_route_data("ONLY_A") is None
    route = routes.pickup_topic_route_data("T")
    assert [b.broker_name for b in route.broker_datas] == ["broker-b"]
    assert "10.0.0.1:10911" not in routes.broker_live_table
    assert "10.0.0.1:10911" not in routes.filter_server_table
    assert routes.cluster_addr_table == {"DefaultCluster": {"broker-b"}}
    # A connection that never registered a broker changes nothing.
    assert routes.on_channel_closed(FakeChannel()) is None


def test_unregister_removes_broker_and_its_topics():
    routes = make(task.Clock())
    register(routes, configs=topics("T"))
    register(routes, addr="10.0.0.2:10911", broker_id=1)
    routes.unregister_broker("DefaultCluster", "10.0.0.2:10911", "broker-a", 1)
    assert routes.pickup_topic_route_data("T").broker_datas[0].broker_addrs == {0: "10.0.0.1:10911"}
    routes.unregister_broker("DefaultCluster", "10.0.0.1:10911", "broker-a", 0)
    assert routes.pickup_topic_route_data("T") is None
    assert routes.cluster_addr_table == {}


def test_wipe_and_add_write_perm():
    routes = make(task.Clock())
    register(routes, configs=topics("T", "U"))
    register(routes, name="broker-b", addr="10.0.0.3:10911", configs=topics("T"))
    assert routes.wipe_write_perm("broker-a") == 2
    perms = {q.broker_name: q.perm for q in routes.pickup_topic_route_data("T").queue_datas}
    assert perms == {"broker-a": PERM_READ, "broker-b": PERM_READ | PERM_WRITE}
    assert routes.add_write_perm("broker-a") == 2
    assert routes.pickup_topic_route_data("U").queue_datas[0].perm == PERM_READ | PERM_WRITE
    assert routes.wipe_write_perm("no-such-broker") == 0


def test_topic_lists_by_cluster_and_delete():
    routes = make(task.Clock())
    register(routes, configs=topics("T", "U"), cluster="C1")
    register(routes, name="broker-b", addr="10.0.0.3:10911", configs=topics("T", "V"), cluster="C2")
    assert routes.all_topics() == ["T", "U", "V"]
    assert routes.topics_by_cluster("C1") == ["T", "U"]
    assert routes.topics_by_cluster("C2") == ["T", "V"]
    assert routes.delete_topic("T", "C1")
    assert [q.broker_name for q in routes.pickup_topic_route_data("T").queue_datas] == ["broker-b"]
    assert routes.delete_topic("T")
    assert routes.pickup_topic_route_data("T") is None
    assert not routes.delete_topic("T")


def test_system_and_unit_topic_lists():
    routes = make(task.Clock())
    configs = topics("T")
    configs["UNIT"] = TopicConfig("UNIT", 1, 1, 6, topic_sys_flag=0x1)
    configs["SUB"] = TopicConfig("SUB", 1, 1, 6, topic_sys_flag=0x2)
    register(routes, configs=configs)
    names, addr = routes.system_topics()
    assert names == ["DefaultCluster", "broker-a"] and addr == "10.0.0.1:10911"
    assert routes.unit_topics(True, None) == ["UNIT"]
    assert routes.unit_topics(None, True) == ["SUB"]
    assert routes.unit_topics(False, True) == ["SUB"]


def test_version_moves_only_on_visible_change():
    routes = make(task.Clock())
    register(routes)
    v = routes.version
    register(routes)  # a keepalive with nothing new
    assert routes.version == v
    register(routes, version=DataVersion(9, 9), configs=topics("T", queues=2))
    assert routes.version > v
