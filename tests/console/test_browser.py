"""The console in a real browser against real processes: a NameServer, a broker and ``twistd console``.

Every page is opened and must show the cluster's own data; a topic is created, a message sent and found again
by clicking; a group's lag changes on screen without a reload. ``MQ_CONSOLE_SCREENSHOTS=<dir>`` also saves a
screenshot of each page there (how docs/console.md's pictures are made).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.broker.cluster import broker_starter, processes, start_namesrv
from tests.console.client import Console, bench
from tests.support.processes import free_port, wait_until

SEED_TOPIC = "ConsoleSeed"
SEED_GROUP = "ConsoleGroup"
PRODUCER_GROUP = "ConsoleProducer"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console-cluster")
    with processes(tmp) as twistd:
        namesrv = start_namesrv(twistd, tmp)
        broker = broker_starter(twistd, tmp, namesrv)()
        port = free_port()
        twistd("console", "--namesrv", namesrv.addr, "--port", str(port), "--sample-interval", "1",
               "--history-step", "1", "--data-dir", str(tmp / "console-data")).wait_port(port)
        console = Console(port)
        users_file = tmp / "users.properties"
        users_file.write_text("admin=adminPass,1\nviewer=viewPass\n")
        users_port = free_port()
        twistd("console", "--namesrv", namesrv.addr, "--port", str(users_port), "--sample-interval", "30",
               "--users", str(users_file), "--data-dir", "").wait_port(users_port)
        wait_until(lambda: console.call("cluster")["brokers"], what="the broker in the console's cluster list")
        console.call("topic/create", {"topic": SEED_TOPIC, "readQueueNums": 4, "writeQueueNums": 4})
        ns = namesrv.addr
        # Real clients: a consumer group that has read everything so far, and a producer that stays online.
        assert bench("producer", "-n", ns, "-t", SEED_TOPIC, "-c", "40", "-w", "4").wait(60) == 0
        assert bench("consumer", "-n", ns, "-t", SEED_TOPIC, "-g", SEED_GROUP, "--from-first", "-c", "40").wait(60) == 0
        producer = bench("producer", "-n", ns, "-t", SEED_TOPIC, "-g", PRODUCER_GROUP, "-d", "600", "-w", "1",
                         "--mode", "sync")
        try:
            yield {"console": console, "url": console.base, "namesrv": namesrv, "broker": broker,
                   "users": Console(users_port)}
        finally:
            producer.kill()
            producer.wait()


def shoot(page, name: str) -> None:
    where = os.environ.get("MQ_CONSOLE_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(where) / f"console-{name}.png"), full_page=True)


def open_page(page, cluster, route: str) -> None:
    page.goto(f"{cluster['url']}/#/{route}")


def test_every_page_renders_with_real_data(page, cluster):
    from playwright.sync_api import expect

    open_page(page, cluster, "dashboard")
    # The sampler runs every second; the producer started by the fixture keeps the seed topic busy, so its
    # line soon ends at a rate above zero (the legend shows each line's last value).
    expect(page.locator(".legend", has_text=re.compile(SEED_TOPIC + r" [1-9]"))).to_be_visible(timeout=30_000)
    expect(page.locator(".legend", has_text=re.compile(r"it-broker/\S+ [1-9]")).first).to_be_visible()
    expect(page.locator("svg.chart polyline").first).to_be_attached()
    shoot(page, "dashboard")
    # Today as a kept day (rocketmq-dashboard's per-day view): the same lines, from the day's history.
    today = cluster["console"].call("dashboard")["days"][0]
    page.select_option("#dashboard-day", today)
    expect(page.locator("#sampling")).to_contain_text(f"one point every 1 s of {today}")
    expect(page.locator(".legend", has_text=re.compile(SEED_TOPIC + r" [1-9]"))).to_be_visible(timeout=30_000)
    expect(page.locator(".legend", has_text=re.compile(r"it-broker/\S+ "))).to_have_count(2)
    shoot(page, "dashboard-day")

    open_page(page, cluster, "cluster")
    expect(page.get_by_role("cell", name="it-broker", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="V4_9_8")).to_be_visible()
    shoot(page, "cluster")
    page.get_by_role("button", name="Status").click()
    expect(page.get_by_role("cell", name="brokerVersionDesc")).to_be_visible()
    page.get_by_role("button", name="Config").click()
    expect(page.get_by_role("cell", name="brokerClusterName", exact=True)).to_be_visible()
    page.select_option("#config-key", "defaultTopicQueueNums")
    page.fill("#config-value", "6")
    page.click("#config-save")
    expect(page.locator("#flash")).to_contain_text("defaultTopicQueueNums of 127.0.0.1:")
    expect(page.locator("#flash")).to_contain_text("is now 6")
    page.select_option("#config-key", "listenPort")  # fixed while running: the broker's refusal is shown
    page.fill("#config-value", "1")
    page.click("#config-save")
    expect(page.locator("#flash .error")).to_contain_text("listenPort")

    open_page(page, cluster, "topics")
    page.select_option("#topic-kind", "normal")
    expect(page.get_by_role("link", name=SEED_TOPIC, exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="TBW102")).to_have_count(0)
    shoot(page, "topics")

    page.get_by_role("link", name=SEED_TOPIC, exact=True).click()
    expect(page.locator("h1")).to_have_text(f"Topic {SEED_TOPIC}")
    expect(page.get_by_role("link", name=SEED_GROUP)).to_be_visible()
    expect(page.get_by_role("cell", name="it-broker").first).to_be_visible()
    shoot(page, "topic")

    open_page(page, cluster, "consumers")
    expect(page.get_by_role("link", name=SEED_GROUP)).to_be_visible()
    shoot(page, "consumers")
    page.get_by_role("link", name=SEED_GROUP).click()
    expect(page.locator("#lag-total")).to_have_text(re.compile(r"^\d+$"))
    expect(page.get_by_role("cell", name=SEED_TOPIC).first).to_be_visible()
    shoot(page, "consumer")

    open_page(page, cluster, "producers")
    page.fill("#producer-group", PRODUCER_GROUP)
    page.fill("#producer-topic", SEED_TOPIC)
    page.get_by_role("button", name="Show connections").click()
    expect(page.get_by_role("cell", name="PYTHON").or_(page.get_by_role("cell", name="JAVA")).first).to_be_visible()

    open_page(page, cluster, "messages")
    page.fill("#msg-topic", SEED_TOPIC)
    page.click("#search-by-topic")
    expect(page.locator("#message-results")).to_contain_text("message(s)")
    expect(page.locator("#message-results tbody tr").first).to_contain_text("it-broker")

    open_page(page, cluster, "replication")
    expect(page.get_by_text("ASYNC_MASTER")).to_be_visible()
    shoot(page, "replication")
    assert page.page_errors == []


def test_create_a_topic_send_and_find_the_message_by_clicking(page, cluster):
    from playwright.sync_api import expect

    open_page(page, cluster, "topics")
    page.fill("#new-topic", "ClickedTopic")
    page.fill("#new-topic-writes", "2")
    page.fill("#new-topic-reads", "2")
    page.click("#create-topic")
    expect(page.locator("#flash")).to_contain_text("Topic ClickedTopic created")
    link = page.get_by_role("link", name="ClickedTopic", exact=True)
    expect(link).to_be_visible()
    link.click()
    expect(page.locator("h1")).to_have_text("Topic ClickedTopic")
    expect(page.get_by_role("cell", name="1", exact=True).first).to_be_visible()  # queue 1 of 2 in its status

    page.fill("#send-tags", "TagB")
    page.fill("#send-keys", "clicked-key")
    page.fill("#send-body", "hello from a browser")
    page.click("#send-message")
    expect(page.locator("#send-result")).to_contain_text("SEND_OK")
    msg_id = page.locator("#send-result tr", has_text="msgId").locator("td").nth(1).inner_text()

    page.get_by_role("link", name="Messages").click()
    page.fill("#key-topic", "ClickedTopic")
    page.fill("#msg-key", "clicked-key")
    page.click("#search-by-key")
    found = page.get_by_role("link", name=msg_id)
    expect(found).to_be_visible()
    shoot(page, "messages")
    found.click()
    expect(page.locator("#message-body")).to_have_text("hello from a browser")
    expect(page.get_by_role("cell", name="TAGS", exact=True)).to_be_visible()
    shoot(page, "message")

    page.get_by_role("link", name="Messages").click()
    page.fill("#msg-id", msg_id)
    page.fill("#id-topic", "ClickedTopic")
    page.click("#search-by-id")
    expect(page.get_by_role("link", name=msg_id)).to_be_visible()
    assert page.page_errors == []


def test_messages_of_a_time_range_are_paged_through(page, cluster):
    """rocketmq-dashboard 2.x's paged query by topic: every message once, a page at a time, by clicking too."""
    from playwright.sync_api import expect

    console = cluster["console"]
    console.call("topic/create", {"topic": "PagedT", "readQueueNums": 2, "writeQueueNums": 2})
    sent = {console.call("topic/send", {"topic": "PagedT", "body": f"m{i}"})["msgId"] for i in range(45)}
    pages = [console.call(f"messages/page?topic=PagedT&begin=0&size=20&page={n}") for n in range(4)]
    assert [(p["total"], p["pages"], len(p["messages"])) for p in pages] == [(45, 3, 20), (45, 3, 20), (45, 3, 5),
                                                                             (45, 3, 0)]
    seen = [m["msgId"] for p in pages for m in p["messages"]]
    assert len(seen) == 45 and set(seen) == sent
    open_page(page, cluster, "messages")
    page.fill("#msg-topic", "PagedT")
    page.click("#page-by-topic")
    expect(page.locator("#page-at")).to_have_text("page 1 of 3 (45 message(s))")
    page.click("#page-next")
    expect(page.locator("#page-at")).to_have_text("page 2 of 3 (45 message(s))")
    expect(page.locator("#message-results tbody tr")).to_have_count(20)
    page.click("#page-next")
    expect(page.locator("#message-results tbody tr")).to_have_count(5)
    expect(page.locator("#page-next")).to_be_disabled()


def test_a_transactional_test_message_is_committed_and_found(page, cluster):
    """rocketmq-dashboard 2.x's transactional send: a half message, then its commit; only the committed message
    is in the topic (the half one waits in the broker's half topic)."""
    from playwright.sync_api import expect

    console = cluster["console"]
    console.call("topic/create", {"topic": "TxTopic", "readQueueNums": 1, "writeQueueNums": 1})
    open_page(page, cluster, "topic/TxTopic")
    page.fill("#send-keys", "tx-key")
    page.fill("#send-body", "committed from a browser")
    page.check("#send-transactional")
    page.click("#send-message")
    expect(page.locator("#send-result")).to_contain_text("COMMIT_MESSAGE")
    msg_id = page.locator("#send-result tr", has_text="msgId").locator("td").nth(1).inner_text()
    wait_until(lambda: console.call("messages/by-key?topic=TxTopic&key=tx-key"), what="the committed message")
    (found,) = console.call("messages/by-key?topic=TxTopic&key=tx-key")
    assert found["msgId"] == msg_id
    message = console.call(f"messages/by-id?id={found['offsetMsgId']}")
    assert message["body"] == "committed from a browser" and message["properties"]["PGROUP"]


def test_lag_changes_on_screen_without_a_reload(page, cluster):
    from playwright.sync_api import expect

    console = cluster["console"]
    console.call("topic/create", {"topic": "LagTopic", "readQueueNums": 2, "writeQueueNums": 2})
    console.call("topic/send", {"topic": "LagTopic", "body": "first"})
    ns = cluster["namesrv"].addr
    assert bench("consumer", "-n", ns, "-t", "LagTopic", "-g", "LagGroup", "--from-first", "-c", "1").wait(60) == 0
    open_page(page, cluster, "consumer/LagGroup")
    expect(page.locator("#lag-total")).to_have_text("0")
    page.evaluate("window.notReloaded = true")
    for i in range(3):
        console.call("topic/send", {"topic": "LagTopic", "body": f"behind {i}"})
    expect(page.locator("#lag-total")).to_have_text("3", timeout=20_000)
    assert page.evaluate("window.notReloaded") is True


def test_delete_a_topic_by_clicking(page, cluster):
    from playwright.sync_api import expect

    console = cluster["console"]
    console.call("topic/create", {"topic": "DoomedTopic", "readQueueNums": 1, "writeQueueNums": 1})
    open_page(page, cluster, "topic/DoomedTopic")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-topic")
    expect(page.locator("#flash")).to_contain_text("Topic DoomedTopic deleted")
    expect(page.locator("h1")).to_have_text("Topics")
    names = [t["topic"] for t in console.call("topics")["topics"]]
    assert "DoomedTopic" not in names and SEED_TOPIC in names


def test_a_topics_config_is_shown_and_it_is_deleted_on_one_broker_by_clicking(page, cluster):
    """rocketmq-dashboard's topic config and "delete on one broker": the row goes, the NameServer's route keeps
    the topic until the broker registers again."""
    from playwright.sync_api import expect

    console = cluster["console"]
    console.call("topic/create", {"topic": "OneBrokerTopic", "readQueueNums": 3, "writeQueueNums": 2})
    open_page(page, cluster, "topic/OneBrokerTopic")
    row = page.locator("tr", has=page.get_by_role("button", name="Delete on this broker"))
    expect(row).to_contain_text("it-broker")
    expect(row).to_contain_text("SINGLE_TAG")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete on this broker").click()
    expect(page.locator("#flash")).to_contain_text("Topic OneBrokerTopic deleted on it-broker")
    expect(page.get_by_text("no master broker holds this topic")).to_be_visible()
    assert console.call("topic/config?topic=OneBrokerTopic") == []


def test_a_bad_name_typed_into_a_form_is_refused_with_the_reason(page, cluster):
    from playwright.sync_api import expect

    open_page(page, cluster, "topics")
    page.fill("#new-topic", "bad/name")
    page.click("#create-topic")
    expect(page.locator("#flash .error")).to_contain_text("contains characters outside")


def test_create_and_delete_a_consumer_group_by_clicking(page, cluster):
    from playwright.sync_api import expect

    open_page(page, cluster, "consumers")
    page.fill("#new-group", "ClickedGroup")
    page.fill("#new-group-retries", "3")
    page.fill("#new-group-brokers", "it-broker")  # rocketmq-dashboard's broker choice (here, the only one)
    expect(page.locator("#new-group-cluster option")).to_have_count(1)
    page.click("#create-group")
    expect(page.locator("#flash")).to_contain_text(f"Group ClickedGroup saved on {cluster['broker'].addr}")
    assert [r["retryMaxTimes"] for r in cluster["console"].call("consumer/config?group=ClickedGroup")] == [3]
    page.goto(f"{cluster['url']}/#/consumer/ClickedGroup")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-group")
    expect(page.locator("#flash")).to_contain_text("Group ClickedGroup deleted")
    expect(page.locator("h1")).to_have_text("Consumers")


def test_a_group_is_monitored_by_clicking(page, cluster):
    """rocketmq-dashboard's consumer monitor: the seed group has no consumer online any more."""
    from playwright.sync_api import expect

    open_page(page, cluster, "consumers")
    page.fill("#monitor-group", SEED_GROUP)
    page.fill("#monitor-min", "1")
    page.fill("#monitor-max", "1000000000000")  # its lag grows with the fixture's producer: not what is checked
    page.click("#monitor-save")
    expect(page.locator("#flash")).to_contain_text(f"Monitoring {SEED_GROUP}")
    row = page.locator("tr", has=page.get_by_role("link", name=SEED_GROUP, exact=True))
    expect(row.locator(".pill.alarm")).to_have_text("0 online, fewer than 1")
    page.locator("#monitor-list tr", has_text=SEED_GROUP).get_by_role("button", name="Stop monitoring").click()
    expect(row.locator(".pill.alarm")).to_have_count(0)
    assert cluster["console"].call("monitor") == {}


def test_running_info_of_an_online_consumer(page, cluster):
    from playwright.sync_api import expect

    consumer = bench("consumer", "-n", cluster["namesrv"].addr, "-t", SEED_TOPIC, "-g", "OnlineGroup", "-d", "120")
    try:  # online before the page loads its connections (once, then every 10 s)
        wait_until(lambda: cluster["console"].call("consumer/connection?group=OnlineGroup")["connectionSet"], 60,
                   what="the bench consumer online")
        open_page(page, cluster, "consumer/OnlineGroup")
        button = page.get_by_role("button", name="Running info")
        expect(button).to_be_visible(timeout=30_000)  # the page polls its progress; connections load once
        button.first.click()
        expect(page.locator("#running-info pre").first).to_contain_text(SEED_TOPIC)
        shoot(page, "consumer-running")
        page.click("#running-jstack")  # rocketmq-dashboard's running info with jstack: the client's threads
        expect(page.locator("#running-stacks")).to_contain_text("Thread: MainThread RUNNABLE")
        expect(page.locator("#running-stacks")).to_contain_text("\tat ")
        # its subscription config on the broker (made when the consumer first registered), as the page shows it
        wait_until(lambda: cluster["console"].call("consumer/config?group=OnlineGroup"), what="the group's config")
        page.reload()
        expect(page.locator("#group-config tr", has_text="it-broker")).to_contain_text("true")
    finally:
        consumer.kill()
        consumer.wait()


def test_dlq_and_acl_pages_answer(page, cluster):
    from playwright.sync_api import expect

    open_page(page, cluster, f"dlq/{SEED_GROUP}")
    # No message of the seed group ever failed: its DLQ topic does not exist, which the page says.
    expect(page.locator("#dlq-results")).to_contain_text(re.compile("dead-letter message|no route for topic"))
    open_page(page, cluster, "acl")
    expect(page.locator("#acl-results")).not_to_contain_text("Loading")
    assert page.page_errors == []


def test_a_traced_message_shows_its_trace(page, cluster):
    """Trace records as a tracing client writes them (sent on the wire to the trace topic, keyed by the
    message id), found from the message's page."""
    from playwright.sync_api import expect

    from mq.client.simple import send_request
    from mq.remoting.codes import ResponseCode
    from tests.broker.wire import call
    from tests.console.test_trace import record

    console = cluster["console"]
    console.call("topic/create", {"topic": "RMQ_SYS_TRACE_TOPIC", "readQueueNums": 1, "writeQueueNums": 1})
    sent = console.call("topic/send", {"topic": SEED_TOPIC, "body": "traced", "keys": "traced-key"})
    msg_id = sent["msgId"]
    body = (record("Pub", 1700000000000, "DefaultRegion", PRODUCER_GROUP, SEED_TOPIC, msg_id, "", "traced-key",
                   cluster["broker"].addr, 6, 2, 0, sent["offsetMsgId"], "true")
            + record("SubBefore", 1700000000100, "DefaultRegion", "TracedGroup", "req-1", msg_id, 0, "traced-key")
            + record("SubAfter", "req-1", msg_id, 4, "true", "traced-key", 0, 1700000000104, "TracedGroup"))
    response = call(cluster["broker"].addr, send_request("RMQ_SYS_TRACE_TOPIC", body.encode(), keys=msg_id))
    assert response.code == ResponseCode.SUCCESS

    open_page(page, cluster, f"message/{sent['offsetMsgId']}/{SEED_TOPIC}")
    page.get_by_role("link", name="Trace of this message").click()
    expect(page.get_by_role("heading", name="Consumed by TracedGroup")).to_be_visible()
    expect(page.locator("#trace-results")).to_contain_text("SUCCESS")
    expect(page.locator("#trace-results")).to_contain_text("Normal_Msg")  # the send's message type, named
    expect(page.get_by_role("cell", name=PRODUCER_GROUP)).to_be_visible()
    timeline = page.locator("#trace-timeline")
    expect(timeline).to_be_visible()
    expect(timeline.locator("rect.trace-bar.ok")).to_have_count(2)  # the send and the consumption, both fine
    expect(timeline).to_contain_text("TracedGroup")
    assert "4 ms: SUCCESS" in timeline.locator("rect.trace-bar >> nth=1").locator("title").text_content()
    shoot(page, "trace")

    open_page(page, cluster, "trace")  # rocketmq-dashboard's query by topic and key, then the trace
    page.fill("#trace-key-topic", SEED_TOPIC)
    page.fill("#trace-key", "traced-key")
    page.click("#search-trace-key")
    page.locator("#trace-key-results tr", has_text=msg_id).get_by_role("button", name="Show trace").click()
    expect(page.get_by_role("heading", name="Consumed by TracedGroup")).to_be_visible()
    expect(page.locator("#trace-id")).to_have_value(msg_id)


def test_a_dead_letter_message_is_sent_back_to_its_group_by_clicking(page, cluster):
    from playwright.sync_api import expect

    from mq.client.simple import send_request
    from mq.remoting.codes import ResponseCode
    from tests.broker.wire import call

    console = cluster["console"]
    for topic in ("%DLQ%DeadGroup", "%RETRY%DeadGroup"):
        console.call("topic/create", {"topic": topic, "readQueueNums": 1, "writeQueueNums": 1})
    dead = send_request("%DLQ%DeadGroup", b"gave up", tags="TagD", keys="dead-key", queue_id=0,
                        properties={"RETRY_TOPIC": SEED_TOPIC, "ORIGIN_MESSAGE_ID": "X" * 32, "custom": "kept"})
    assert call(cluster["broker"].addr, dead).code == ResponseCode.SUCCESS

    open_page(page, cluster, "dlq/DeadGroup")
    row = page.locator("#dlq-results tbody tr").filter(has_text="dead-key")
    expect(row).to_be_visible()
    row.get_by_role("button", name="Resend").click()
    expect(page.locator("#flash")).to_contain_text(f"as a message of {SEED_TOPIC}: SEND_OK")

    (back,) = console.call("messages/by-key?topic=%25RETRY%25DeadGroup&key=dead-key")
    detail = console.call(f"messages/by-id?id={back['offsetMsgId']}")
    assert detail["properties"]["RETRY_TOPIC"] == SEED_TOPIC and detail["properties"]["custom"] == "kept"
    assert detail["tags"] == "TagD" and detail["body"] == "gave up"
    (original,) = console.call("messages/by-key?topic=%25DLQ%25DeadGroup&key=dead-key")
    assert back["msgId"] == original["msgId"]  # the same message id: consumers can tell it is the same message

    # a second one, then both at once: selected, sent back, exported
    second = send_request("%DLQ%DeadGroup", b'=1+2, "quoted"', keys="dead-two", queue_id=0,
                          properties={"RETRY_TOPIC": SEED_TOPIC})
    assert call(cluster["broker"].addr, second).code == ResponseCode.SUCCESS
    page.click("#search-dlq")
    expect(page.locator("#dlq-results tbody tr").filter(has_text="dead-two")).to_be_visible()
    page.check("#dlq-select-all")
    shoot(page, "dlq")
    page.click("#dlq-resend-selected")
    expect(page.locator("#flash")).to_contain_text("2 of 2 sent back to DeadGroup")
    assert len(console.call("messages/by-key?topic=%25RETRY%25DeadGroup&key=dead-key")) == 2
    with page.expect_download() as info:
        page.click("#dlq-export-selected")
    text = Path(info.value.path()).read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0].startswith('"msgId","offsetMsgId","topic","tags","keys"') and len(lines) == 3
    assert "dead-key" in text and '"\'=1+2, ""quoted"""' in text  # quoted, and not a formula for a spreadsheet
    with page.expect_download() as info:
        page.click("#dlq-export-json")
    exported = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
    assert exported["group"] == "DeadGroup" and {m["keys"] for m in exported["messages"]} == {"dead-key", "dead-two"}
    assert page.page_errors == []


def test_a_message_is_resent_to_one_online_consumer_by_clicking(page, cluster):
    """The dashboard's "Resend Message": the consumer runs its listener on the message (CONSUME_MESSAGE_DIRECTLY,
    relayed by the broker) and the page says how it went."""
    from playwright.sync_api import expect

    console = cluster["console"]
    sent = console.call("topic/send", {"topic": SEED_TOPIC, "body": "again please", "keys": "direct-key"})
    consumer = bench("consumer", "-n", cluster["namesrv"].addr, "-t", SEED_TOPIC, "-g", "DirectGroup", "-d", "120")
    try:
        wait_until(lambda: console.call("consumer/connection?group=DirectGroup")["connectionSet"], 60,
                   what="the bench consumer online")
        open_page(page, cluster, f"message/{sent['offsetMsgId']}/{SEED_TOPIC}")
        track = page.locator("#message-track")
        expect(track.get_by_role("row").filter(has_text=SEED_GROUP)).to_contain_text("NOT_ONLINE")  # it quit
        direct = track.get_by_role("row").filter(has_text="DirectGroup")
        expect(direct).to_contain_text(re.compile("CONSUMED|NOT_CONSUME_YET"))
        direct.get_by_role("button", name="Resend to a consumer").click()
        expect(page.locator("#direct-group")).to_have_value("DirectGroup")
        page.get_by_role("button", name="Consume it now").first.click()
        expect(page.locator("#flash")).to_contain_text("CR_SUCCESS")
        assert page.page_errors == []
    finally:
        consumer.kill()
        consumer.wait()


def test_a_console_user_who_may_only_look_logs_in_by_clicking(page, cluster):
    from playwright.sync_api import expect

    page.goto(f"{cluster['users'].base}/#/topics")
    expect(page.locator("h1")).to_have_text("Log in")
    expect(page.locator("main")).to_contain_text("User name")
    page.fill("#login-access-key", "viewer")
    page.fill("#login-secret-key", "wrongPass")
    page.click("#login")
    expect(page.locator("#flash")).to_contain_text("unknown user or wrong password")
    page.fill("#login-secret-key", "viewPass")
    page.click("#login")
    expect(page.locator("h1")).to_have_text("Topics")
    expect(page.locator("#namesrv")).to_contain_text("viewer (read only)")
    expect(page.locator("#topic-list")).to_contain_text(SEED_TOPIC)
    page.fill("#new-topic", "ViewerTopic")
    page.click("#create-topic")
    expect(page.locator("#flash")).to_contain_text("user viewer may only look")
    assert page.page_errors == []


def test_the_nameserver_is_switched_from_the_page(page, cluster):
    from playwright.sync_api import expect

    ns = cluster["namesrv"].addr
    other = "localhost:" + ns.rsplit(":", 1)[1]  # the same NameServer by another name
    open_page(page, cluster, "dashboard")
    page.click("#namesrv-link")
    expect(page.locator("#ops-current")).to_have_text(ns)
    status_row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=ns, exact=True))
    expect(status_row.filter(has_text="yes")).to_be_visible()  # rocketmq-dashboard's status check
    page.check("#ops-vip")  # its VIP channel switch: the broker still answers, on its port - 2
    expect(page.locator("#flash")).to_contain_text("VIP channel on")
    assert cluster["console"].call("ops")["vipChannel"] is True and cluster["console"].call("cluster")["brokers"]
    page.uncheck("#ops-vip")
    expect(page.locator("#flash")).to_contain_text("VIP channel off")
    page.fill("#ops-namesrv", f"127.0.0.1:{free_port()}")
    page.click("#ops-switch")
    expect(page.locator("#flash .error")).to_be_visible()
    expect(page.locator("#ops-current")).to_have_text(ns)  # nothing changed
    try:
        page.fill("#ops-namesrv", other)
        page.click("#ops-switch")
        expect(page.locator("#flash")).to_contain_text(f"Now asking {other}")
        expect(page.locator("#ops-current")).to_have_text(other)
        shoot(page, "ops")
        assert cluster["console"].call("session")["namesrv"] == [other]
        assert cluster["console"].call("cluster")["brokers"]
        page.get_by_role("row").filter(has_text=ns).get_by_role("button", name="Use").click()
        expect(page.locator("#ops-current")).to_have_text(ns)
        dead = f"127.0.0.1:{free_port()}"  # a list that still answers, one of whose NameServers does not
        cluster["console"].call("ops/namesrv", {"namesrvAddr": f"{ns};{dead}"})
        live, down = cluster["console"].call("ops/status")
        assert (live["addr"], live["ok"], live["brokers"]) == (ns, True, 1)
        assert (down["addr"], down["ok"], down["brokers"]) == (dead, False, 0) and down["error"]
    finally:
        cluster["console"].call("ops/namesrv", {"namesrvAddr": ns})
    assert page.page_errors == []
