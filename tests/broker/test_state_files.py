"""The broker's state files (topics, subscription groups, offsets) at start: a file that is there but cannot be
used stops the start with one line and is left as it was (it was once ignored and then saved over, every topic
gone); what a hand edit can put in topics.json that no request may (a million queues, a bad name) is clamped or
left out with a warning; a slave keeps its topics when its master's table does not decode."""

from __future__ import annotations

import json
import os

import pytest
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import formatEvent

from mq.broker import tap
from mq.broker.ha.slave_sync import SlaveSynchronize
from mq.broker.service import make_broker_service
from mq.broker.state_file import StateFileError
from mq.broker.topic.manager import TopicConfigManager
from mq.common import mixall
from tests.broker.conftest import broker_config
from tests.support.processes import free_port


def topics_file(config) -> str:
    path = os.path.join(config.config_dir, "topics.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def topic(name, read=8, write=8, perm=6, **more):
    return {"topicName": name, "readQueueNums": read, "writeQueueNums": write, "perm": perm, **more}


def write_topics(path, *configs):
    with open(path, "w") as f:
        json.dump({"topicConfigTable": {c["topicName"]: c for c in configs}}, f)


@pytest.mark.parametrize("name, content", [
    ("not JSON", '{"topicConfigTable": {"Orders": {"topicName": "Orders",'),
    ("a field of the wrong type", json.dumps({"topicConfigTable": {"Orders": topic("Orders", read="eight")}})),
    ("no topicName", json.dumps({"topicConfigTable": {"Orders": {"readQueueNums": 8}}})),
])
def test_a_topics_file_that_cannot_be_used_stops_the_start_and_is_kept(tmp_path, name, content):
    config = broker_config(tmp_path)
    path = topics_file(config)
    with open(path, "w") as f:
        f.write(content)
    with pytest.raises(StateFileError, match="topics.json"):
        make_broker_service(config, MemoryReactorClock())
    with open(path) as f:
        assert f.read() == content, name  # nothing saved over it
    assert not os.path.exists(path + ".bak")


def test_twistd_broker_says_so_in_one_line(tmp_path):
    store = tmp_path / "store"
    (store / "config").mkdir(parents=True)
    (store / "config" / "consumerOffset.json").write_text('{"offsetTable": {"T@g": {"zero": 5}}}')
    options = tap.Options()
    options.parseOptions(["--store", str(store), "--port", str(free_port()), "--namesrv", "127.0.0.1:1",
                          "--metrics-port", "0"])
    with pytest.raises(SystemExit) as raised:
        tap.makeService(options)
    message = str(raised.value)
    assert "\n" not in message and "consumerOffset.json does not decode" in message and "move it away" in message


def test_a_bad_main_file_with_a_good_backup_starts_from_the_backup(tmp_path):
    config = broker_config(tmp_path)
    path = topics_file(config)
    write_topics(path + ".bak", topic("FromBackup"))
    with open(path, "w") as f:
        f.write("{ half a file")
    broker = make_broker_service(config, MemoryReactorClock())
    assert "FromBackup" in broker.topic_config_manager.table


def test_an_empty_or_missing_file_is_a_new_broker(tmp_path):
    config = broker_config(tmp_path)
    path = topics_file(config)
    open(path, "w").close()
    broker = make_broker_service(config, MemoryReactorClock())
    assert set(broker.topic_config_manager.table) == broker.topic_config_manager.system_topics


def test_hand_edited_topics_are_clamped_or_left_out_with_a_warning(tmp_path, log_events):
    config = broker_config(tmp_path)
    path = topics_file(config)
    write_topics(path, topic("Huge", read=10**9, write=10**9), topic("Negative", read=-3, write=2),
                 topic("AllBits", perm=255), topic("bad name!"), topic("Fine", read=4, write=4))
    broker = make_broker_service(config, MemoryReactorClock())
    table = broker.topic_config_manager.table
    top = mixall.MAX_TOPIC_QUEUE_NUMS
    assert (table["Huge"].read_queue_nums, table["Huge"].write_queue_nums) == (top, top)
    assert (table["Negative"].read_queue_nums, table["Negative"].write_queue_nums) == (0, 2)
    assert table["AllBits"].perm == 0xF
    assert "bad name!" not in table
    assert (table["Fine"].read_queue_nums, table["Fine"].perm) == (4, 6)
    text = "\n".join(formatEvent(e) for e in log_events)
    assert f"topic Huge out of range, clamped: readQueueNums 1000000000 -> {top}" in text
    assert "topic 'bad name!' left out" in text
    assert "Fine" not in text


def test_a_slave_keeps_its_topics_when_its_masters_table_does_not_decode(tmp_path):
    manager = TopicConfigManager(broker_config(tmp_path), lambda: 1)
    write_topics(topics_file(manager.config), topic("Kept"))
    manager.load(strict=True)
    before = dict(manager.table)
    bad = {"dataVersion": {"timestamp": 5, "counter": 9}, "topicConfigTable": {"X": topic("X", read="many")}}
    with pytest.raises(ValueError):
        SlaveSynchronize._replace(manager, bad)
    assert manager.table == before
    good = {"dataVersion": {"timestamp": 5, "counter": 9}, "topicConfigTable": {"New": topic("New")}}
    assert SlaveSynchronize._replace(manager, good) and set(manager.table) == {"New"}


def test_delay_offsets_that_do_not_decode_stop_the_start_too(tmp_path):
    """Taken as empty, every delay level would start again from its first message: all delivered twice."""
    config = broker_config(tmp_path)
    path = os.path.join(os.path.dirname(topics_file(config)), "delayOffset.json")
    with open(path, "w") as f:
        f.write('{"offsetTable": {"3": "many"}}')
    with pytest.raises(StateFileError, match="delayOffset.json does not decode"):
        make_broker_service(config, MemoryReactorClock())
    with open(path, "w") as f:
        f.write('{"offsetTable": {"3": 17}}')
    assert make_broker_service(config, MemoryReactorClock()).schedule_service.offsets == {3: 17}
