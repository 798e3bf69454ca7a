"""A real ``twistd broker``: DELETE_TOPIC_IN_BROKER with a topic that is a path deletes nothing, inside the
store or outside it, and the broker's data reads back after a restart."""

from __future__ import annotations

import os

from mq.client.simple import create_topic_request, send_request
from mq.remoting.codes import RequestCode
from mq.remoting.codes import ResponseCode as RC
from mq.remoting.command import RemotingCommand
from tests.broker.cluster import broker_starter, pull_all, start_namesrv
from tests.broker.wire import Wire, call


def delete_topic(addr: str, topic: str):
    return call(addr, RemotingCommand.request(RequestCode.DELETE_TOPIC_IN_BROKER, {"topic": topic}))


def test_delete_topic_with_paths_deletes_nothing_and_data_survives_a_restart(twistd, tmp_path):
    start = broker_starter(twistd, tmp_path, start_namesrv(twistd, tmp_path))
    broker = start()
    outside = tmp_path / "outside" / "victim"
    outside.mkdir(parents=True)
    (outside / "precious").write_text("still here")
    assert call(broker.addr, create_topic_request("PathT", queues=1)).code == RC.SUCCESS
    with Wire(broker.addr) as w:
        for i in range(5):
            assert w.call(send_request("PathT", b"m-%d" % i, queue_id=0)).code == RC.SUCCESS
    store = tmp_path / "store"
    queue_root = store / "consumequeue"
    assert (queue_root / "PathT" / "0").is_dir()
    hostile = [
        os.path.relpath(outside, queue_root),  # ../../outside/victim
        "../../outside",
        str(outside),  # absolute
        str(tmp_path / "outside"),
        "..",  # was: the whole store
        "../commitlog",
        "../config",
        ".",
        "PathT/../..",
        "PathT\n",
    ]
    for topic in hostile:
        r = delete_topic(broker.addr, topic)
        assert r.code == RC.SYSTEM_ERROR and "topic" in r.remark, (topic, r.code, r.remark)
    assert (outside / "precious").read_text() == "still here"
    for part in ("commitlog", "config", "consumequeue/PathT/0"):
        assert (store / part).is_dir(), part
    broker.stop()
    broker = start()
    assert [m.body for m in pull_all(broker.addr, "PathT")] == [b"m-%d" % i for i in range(5)]
    assert (outside / "precious").read_text() == "still here"
    # The topic itself can still be deleted.
    assert delete_topic(broker.addr, "PathT").code == RC.SUCCESS
    assert not (queue_root / "PathT").exists() and (store / "commitlog").is_dir()
