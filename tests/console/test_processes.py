"""The console in real processes without a browser: beside ``twistd mq``, and signing under ACL."""

from __future__ import annotations

import urllib.request

import pytest

from mq.console.history import read_day_file
from tests.acl.test_acl_process import start_acl_cluster
from tests.broker.cluster import broker_starter, processes, start_namesrv
from tests.console.client import Console, refusal
from tests.support.processes import free_port, wait_until


def test_twistd_mq_serves_the_console_beside_its_broker(twistd, tmp_path):
    ns_port, broker_port, console_port = free_port(), free_port(), free_port()
    proc = twistd("mq", "--namesrv-port", str(ns_port), "--port", str(broker_port), "--ip", "127.0.0.1",
                  "--store", str(tmp_path / "store"), "--kv-config", str(tmp_path / "kv.json"),
                  "--console-port", str(console_port))
    proc.wait_port(console_port)
    console = Console(console_port)
    wait_until(lambda: console.call("cluster")["brokers"], what="the broker in the console")
    brokers = console.call("cluster")["brokers"]
    assert [(b["brokerName"], b["addr"], b["role"]) for b in brokers] == [
        ("broker-a", f"127.0.0.1:{broker_port}", "ASYNC_MASTER")]
    with urllib.request.urlopen(f"{console.base}/", timeout=10) as resp:
        assert b"mq console" in resp.read()
    assert f"console on http://127.0.0.1:{console_port}/" in proc.log_text()
    assert (tmp_path / "store" / "console" / "dashboard").is_dir()  # where its per-day history is kept


def test_the_dashboards_day_is_kept_across_a_console_restart(tmp_path):
    """A real ``twistd console`` samples a real broker, is stopped and started again: the day's lines from
    before the restart are read back from its data directory and new points join them."""
    with processes(tmp_path) as twistd:
        namesrv = start_namesrv(twistd, tmp_path)
        broker_starter(twistd, tmp_path, namesrv)()
        data = tmp_path / "console-data"

        def console_process():
            port = free_port()
            proc = twistd("console", "--namesrv", namesrv.addr, "--port", str(port), "--sample-interval", "1",
                          "--history-step", "1", "--data-dir", str(data))
            proc.wait_port(port)
            return proc, Console(port)

        proc, console = console_process()
        today = console.call("dashboard")["days"][0]

        def broker_line(c):
            lines = c.call(f"dashboard/day?date={today}")["brokers"]
            return next(iter(lines.values()), [])

        wait_until(lambda: len(broker_line(console)) >= 3, what="three kept points of the broker's line")
        proc.stop()  # SIGTERM: a graceful stop, which writes the day
        (kept,) = read_day_file(str(data / "dashboard" / f"{today}.jsonl"), 1000, 10, 10)[0].values()
        assert len(kept) >= 3
        proc, console = console_process()
        # read back at start (a first new sample may replace the last kept point, being in its 1 s step)
        assert [p[0] for p in broker_line(console)[: len(kept) - 1]] == [p[0] for p in kept[:-1]]
        wait_until(lambda: broker_line(console)[-1][0] > kept[-1][0], what="a new point after the restart")
        assert console.call("dashboard")["days"] == [today]


@pytest.fixture(scope="module")
def acl_cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console-acl")
    with processes(tmp) as twistd:
        namesrv, _, _ = start_acl_cluster(twistd, tmp)
        consoles = {}
        for name, keys in (("admin", ["--access-key", "adminAccount", "--secret-key", "adminSecret1"]),
                           ("anonymous", []),
                           ("login", ["--access-key", "adminAccount", "--secret-key", "adminSecret1", "--login"])):
            port = free_port()
            twistd("console", "--namesrv", namesrv.addr, "--port", str(port), "--data-dir", "", *keys).wait_port(port)
            consoles[name] = Console(port)
        wait_until(lambda: consoles["admin"].call("cluster")["brokers"], what="the broker in the console")
        yield consoles


def test_under_acl_the_console_signs_with_its_account(acl_cluster):
    status, error = refusal(acl_cluster["anonymous"], "topic/create", {"topic": "ConsoleAcl"})
    assert status == 409 and "create topic 'ConsoleAcl'" in error
    assert acl_cluster["admin"].call("topic/create", {"topic": "ConsoleAcl"})["topicConfig"]["topicName"] == "ConsoleAcl"
    accounts = acl_cluster["admin"].call("acl")["brokers"]
    (listed,) = accounts.values()
    keys = {a["accessKey"]: a["secretKey"] for a in listed["plainAccessConfigs"]}
    assert set(keys) == {"adminAccount", "userAccount", "whiteAccount"}
    assert "adminSecret1" not in keys.values()  # secrets never leave masked


def test_acl_accounts_are_created_and_deleted_from_the_console(acl_cluster):
    admin = acl_cluster["admin"]
    saved = admin.call("acl/account", {"accessKey": "consoleUser", "secretKey": "consoleSecret1",
                                       "defaultTopicPerm": "PUB", "topicPerms": "ConsoleAcl=SUB"})
    assert saved["accessConfig"]["accessKey"] == "consoleUser" and "secretKey" not in saved["accessConfig"]

    def account():
        (listed,) = admin.call("acl")["brokers"].values()
        return {a["accessKey"]: a for a in listed["plainAccessConfigs"]}.get("consoleUser")

    assert account()["defaultTopicPerm"] == "PUB" and account()["topicPerms"] == ["ConsoleAcl=SUB"]
    admin.call("acl/account/delete", {"accessKey": "consoleUser"})
    assert account() is None
    status, error = refusal(admin, "acl/account", {"accessKey": "short", "secretKey": "consoleSecret1"})
    assert status == 400 and "accessKey: give 7 to 128 characters" in error
    status, error = refusal(acl_cluster["anonymous"], "acl/account/delete", {"accessKey": "userAccount"})
    assert status == 409


def test_acl_page_edits_accounts_by_clicking(page, acl_cluster):
    from playwright.sync_api import expect

    from tests.console.test_browser import shoot

    page.goto(f"{acl_cluster['admin'].base}/#/acl")
    expect(page.get_by_role("cell", name="adminAccount")).to_be_visible()
    page.fill("#acl-access-key", "clickedUser")
    page.fill("#acl-secret-key", "clickedSecret1")
    page.select_option("#acl-topic-default", "SUB")
    page.click("#acl-save")
    row = page.get_by_role("row").filter(has_text="clickedUser")
    expect(row).to_contain_text("SUB")
    expect(page.get_by_text("clickedSecret1")).to_have_count(0)
    shoot(page, "acl")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    expect(page.locator("#flash")).to_contain_text("Account clickedUser deleted")
    expect(page.get_by_role("cell", name="clickedUser")).to_have_count(0)
    assert page.page_errors == []


def test_with_login_each_user_acts_with_their_own_account(acl_cluster):
    console = acl_cluster["login"]
    status, error = refusal(console, "topics")
    assert status == 401
    status, error = refusal(console, "login", {"accessKey": "userAccount", "secretKey": "wrongSecret1"})
    assert status == 403 and "refused account 'userAccount'" in error
    assert console.call("login", {"accessKey": "userAccount", "secretKey": "userSecret1"})["user"] == "userAccount"
    assert console.call("topics")["topics"]  # reads need no admin account
    status, error = refusal(console, "topic/create", {"topic": "UserMadeTopic"})
    assert status == 409  # not an admin account: the broker refuses, the console does not decide
    console.call("logout", {})
    console.call("login", {"accessKey": "adminAccount", "secretKey": "adminSecret1"})
    assert console.call("topic/create", {"topic": "AdminMadeTopic"})["brokers"]


def test_logging_in_by_clicking(page, acl_cluster):
    from playwright.sync_api import expect

    page.goto(f"{acl_cluster['login'].base}/#/topics")
    expect(page.locator("h1")).to_have_text("Log in")
    page.fill("#login-access-key", "adminAccount")
    page.fill("#login-secret-key", "adminSecret1")
    page.click("#login")
    expect(page.locator("h1")).to_have_text("Topics")
    expect(page.locator("#namesrv")).to_contain_text("adminAccount")
    expect(page.locator("#topic-list")).to_contain_text("topic(s)")
    page.click("#logout")
    expect(page.locator("h1")).to_have_text("Log in")
    assert page.page_errors == []


def console_with_one_message(twistd, namesrv: str, cluster_name: str) -> Console:
    """A ``twistd console`` on the NameServer, which has made a topic on the cluster and sent it a message."""
    port = free_port()
    twistd("console", "--namesrv", namesrv, "--port", str(port), "--data-dir", "").wait_port(port)
    console = Console(port)
    console.call("topic/create", {"topic": "ReplT", "cluster": cluster_name, "readQueueNums": 1, "writeQueueNums": 1})
    console.call("topic/send", {"topic": "ReplT", "body": "to every replica"})
    return console


def replication_members(console: Console, broker_name: str) -> dict:
    """The console's replication figures of one broker group, by broker id."""
    (found,) = [g for g in console.call("replication") if g["brokerName"] == broker_name]
    return {m["brokerId"]: m for m in found["members"]}


def test_the_replication_page_shows_a_real_slave_catching_up(twistd, tmp_path):
    """A master and a slave ``twistd broker``: the console's replication figures list both with their roles,
    and the slave's bytes behind reach 0 once it has the message the console sent."""
    from tests.broker.test_ha_integration import HaCluster

    ha = HaCluster(twistd, tmp_path, role="ASYNC_MASTER").start_both()
    console = console_with_one_message(twistd, ha.namesrv.addr, "HaCluster")

    def group():
        return replication_members(console, "ha-a")

    def caught_up():
        members = group()
        return (len(members) == 2 and members[1]["behindBytes"] == 0
                and members[0]["commitLogMaxOffset"] == members[1]["commitLogMaxOffset"] > 0)

    wait_until(caught_up, 30, what="the slave caught up in the console's replication figures")
    members = group()
    assert (members[0]["role"], members[0]["addr"], members[0]["behindBytes"]) == ("ASYNC_MASTER", ha.addr("master"),
                                                                                  None)
    assert (members[1]["role"], members[1]["addr"]) == ("SLAVE", ha.addr("slave"))


@pytest.fixture(scope="module")
def two_brokers(tmp_path_factory):
    """A NameServer, two brokers of one cluster (the second without a VIP port) and a console."""
    tmp = tmp_path_factory.mktemp("console-two")
    with processes(tmp) as twistd:
        namesrv = start_namesrv(twistd, tmp)
        (tmp / "vip").mkdir()
        (tmp / "plain").mkdir()
        vip_broker = broker_starter(twistd, tmp / "vip", namesrv)(name="vip-broker")
        plain = broker_starter(twistd, tmp / "plain", namesrv, "fastListenEnable=false\n")(name="plain-broker")
        port = free_port()
        twistd("console", "--namesrv", namesrv.addr, "--port", str(port), "--data-dir", "").wait_port(port)
        console = Console(port)
        wait_until(lambda: len(console.call("cluster")["brokers"]) == 2, what="both brokers in the console")
        yield {"console": console, "vip": vip_broker, "plain": plain}


def test_the_vip_channel_switch_sends_to_the_brokers_port_minus_2(two_brokers):
    """rocketmq-dashboard's isVIPChannel: a broker serving its VIP port answers the console either way; one
    that does not (fastListenEnable=false) cannot be reached while the switch is on."""
    console, vip_broker, plain = two_brokers["console"], two_brokers["vip"], two_brokers["plain"]
    assert console.call("ops")["vipChannel"] is False
    try:
        assert console.call("ops/vip", {"enabled": True}) == {"vipChannel": True}
        assert console.call(f"broker?addr={vip_broker.addr}")["runtime"]["brokerVersionDesc"] == "V4_9_8"
        host, _, main_port = plain.addr.rpartition(":")
        status, error = refusal(console, f"broker?addr={plain.addr}")
        assert status == 502 and f"{host}:{int(main_port) - 2}" in error
    finally:
        console.call("ops/vip", {"enabled": False})
    assert console.call(f"broker?addr={plain.addr}")["runtime"]["brokerVersionDesc"] == "V4_9_8"
    assert refusal(console, "ops/vip", {})[0] == 400


def test_topics_and_groups_are_made_and_deleted_on_chosen_brokers(two_brokers):
    """rocketmq-dashboard's broker choice: a topic or a group on some brokers of the cluster only."""
    console = two_brokers["console"]
    made = console.call("topic/create", {"topic": "ChosenT", "brokers": ["vip-broker"], "writeQueueNums": 2})
    assert made["brokers"] == [two_brokers["vip"].addr]
    wait_until(lambda: [r["brokerName"] for r in console.call("topic/config?topic=ChosenT")] == ["vip-broker"],
               what="the topic on the chosen broker only")
    console.call("consumer/create", {"group": "ChosenG", "brokers": ["plain-broker"]})
    assert [r["brokerName"] for r in console.call("consumer/config?group=ChosenG")] == ["plain-broker"]
    console.call("consumer/create", {"group": "ChosenG"})  # the whole cluster
    assert len(console.call("consumer/config?group=ChosenG")) == 2
    deleted = console.call("consumer/delete", {"group": "ChosenG", "brokers": ["vip-broker"]})
    assert deleted["brokers"] == [two_brokers["vip"].addr]
    assert [r["brokerName"] for r in console.call("consumer/config?group=ChosenG")] == ["plain-broker"]
    for fields, why in (({"brokers": ["no-such-broker"]}, "'no-such-broker' is not a broker of"),
                        ({"brokers": "vip-broker"}, "brokers: a list of broker names"),
                        ({"brokers": []}, "brokers: a list of broker names")):
        status, error = refusal(console, "consumer/create", {"group": "ChosenG2", **fields})
        assert status == 400 and why in error, error
    assert console.call("consumer/config?group=ChosenG2") == []


def test_the_replication_page_shows_dledger_followers_catching_up(twistd, tmp_path):
    """A DLedger group of three ``twistd broker``: the console lists the leader and both followers with their
    roles, and each follower's bytes behind reach 0 once it has the message the console sent."""
    from tests.broker.dledger.group_support import DLedgerCluster

    group = DLedgerCluster(twistd, tmp_path).start_all()
    group.wait_master()
    console = console_with_one_message(twistd, group.namesrv.addr, "DlCluster")

    def members():
        return replication_members(console, "dl-a")

    def caught_up():
        found = members()
        ends = {m["commitLogMaxOffset"] for m in found.values()}
        return (len(found) == 3 and len(ends) == 1 and ends.pop() > 0
                and all(m["behindBytes"] == 0 for bid, m in found.items() if bid != 0))

    wait_until(caught_up, 30, what="both followers caught up in the console's replication figures")
    found = members()
    # the master now (a stalled leader may have lost an election since the start): the page shows the route's
    assert found[0]["addr"] == group.master() and found[0]["behindBytes"] is None
    assert {m["addr"] for m in found.values()} == {group.addr(n) for n in group.ids}
    assert {m["role"] for bid, m in found.items() if bid != 0} == {"SLAVE"}


def test_a_monitored_group_past_its_bounds_is_marked_in_the_list(two_brokers):
    """rocketmq-dashboard's consumer monitor: a group with no consumer online, monitored for at least one."""
    console = two_brokers["console"]
    console.call("consumer/create", {"group": "MonitoredG"})
    console.call("topic/create", {"topic": "%RETRY%MonitoredG", "writeQueueNums": 1, "readQueueNums": 1})  # listed

    def row():
        return next(g for g in console.call("consumers") if g["group"] == "MonitoredG")

    wait_until(lambda: any(g["group"] == "MonitoredG" for g in console.call("consumers")), what="the group listed")
    assert row()["alarm"] == []
    assert console.call("monitor/set", {"group": "MonitoredG", "minCount": 1, "maxDiffTotal": 0})["minCount"] == 1
    assert row()["alarm"] == ["0 online, fewer than 1"]
    assert console.call("monitor") == {"MonitoredG": {"minCount": 1, "maxDiffTotal": 0}}
    status, error = refusal(console, "monitor/set", {"group": "MonitoredG", "minCount": -1})
    assert status == 400 and "minCount" in error
    assert console.call("monitor/delete", {"group": "MonitoredG"}) == {"group": "MonitoredG", "deleted": True}
    assert row()["alarm"] == []
