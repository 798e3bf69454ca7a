"""``twistd mq``, the README's quick start: a NameServer and a broker in one process serve a client."""

from __future__ import annotations

import platform

import pytest_twisted
from twisted.internet import reactor

from mq.client.simple import SimpleClient
from mq.common.message_record import decode_messages
from mq.remoting.codes import ResponseCode
from tests.support.polling import poll
from tests.support.processes import free_port


@pytest_twisted.inlineCallbacks
def test_quick_start_serves_send_and_pull(twistd, tmp_path):
    ns_port, broker_port = free_port(), free_port()
    proc = twistd("mq", "--namesrv-port", str(ns_port), "--port", str(broker_port), "--ip", "127.0.0.1",
                  "--store", str(tmp_path / "store"), "--kv-config", str(tmp_path / "kv.json"))
    proc.wait_port(ns_port)
    proc.wait_port(broker_port)
    namesrv, broker = f"127.0.0.1:{ns_port}", f"127.0.0.1:{broker_port}"
    client = SimpleClient(reactor)
    try:
        # The broker registers right after start.
        route = yield poll(lambda: client.route(namesrv, "TBW102"), lambda r: r is not None, what="TBW102 route")
        assert route.broker_datas[0].broker_addrs[0] == broker
        sent = yield client.send(broker, "QuickStart", b"hello", tags="TagA", keys="k1", queue_id=0)
        assert sent.code == ResponseCode.SUCCESS, sent.remark
        assert sent.ext_fields["queueOffset"] == "0"
        # Auto-created, and registered at once (a oneway REGISTER_BROKER, so poll briefly).
        route = yield poll(lambda: client.route(namesrv, "QuickStart"), lambda r: r is not None, 5, what="route")
        assert route.queue_datas[0].write_queue_nums == 4
        pulled = yield client.pull(broker, "QuickStartGroup", "QuickStart", 0, 0)
        assert pulled.code == ResponseCode.SUCCESS, pulled.remark
        [message] = decode_messages(pulled.body)
        assert message.body == b"hello" and message.topic == "QuickStart"
    finally:
        yield client.close()
    assert proc.stop() in (0, -15)
    text = proc.log_text()
    assert "broker broker-a stopped" in text and "NameServer stopped" in text
    # the broker stops first: its unregistration still finds the NameServer listening
    assert "unregistering from" not in text and text.index("broker broker-a stopped") < text.index("NameServer stopped")


@pytest_twisted.inlineCallbacks
def test_quick_start_takes_a_broker_conf(twistd, tmp_path):
    ns_port, broker_port = free_port(), free_port()
    conf = tmp_path / "broker.conf"
    conf.write_text(f"brokerName=from-file\nbrokerClusterName=FileCluster\nlistenPort={broker_port}\n"
                    f"storePathRootDir={tmp_path / 'store'}\nbrokerIP1=127.0.0.1\n")
    proc = twistd("mq", "--namesrv-port", str(ns_port), "--config", str(conf), "--kv-config", str(tmp_path / "kv.json"))
    proc.wait_port(broker_port)
    if platform.python_implementation() == "CPython":
        proc.wait_log("GC: thresholds 50000,20,100")  # mq.common.gc_tuning, applied once everything started
    client = SimpleClient(reactor)
    try:
        route = yield poll(lambda: client.route(f"127.0.0.1:{ns_port}", "TBW102"), lambda r: r is not None,
                           what="TBW102 route")
    finally:
        yield client.close()
    assert [(b.broker_name, b.cluster) for b in route.broker_datas] == [("from-file", "FileCluster")]
    assert (tmp_path / "store" / "config" / "topics.json").exists()  # the store path came from the file
