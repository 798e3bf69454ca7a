"""The Java-benchmark load generator: its frames are what the Java 4.9 client writes, and against a real broker
it reports sane figures and stores what it claims."""

from __future__ import annotations

import json
import subprocess
import sys

from mq.bench.java_load import PROPERTY_ORDER, JavaFrames, UniqIds, java_string_hash, proc_cpu_seconds
from mq.client.simple import max_offset_request, pull_request
from mq.common.message_batch import decode_batch
from mq.common.message_record import decode_messages
from mq.remoting.serialization import decode_command
from tests.broker.wire import call
from tests.support.processes import REPO, child_env


def test_single_send_frame_is_the_java_clients():
    frame = JavaFrames("T1", 128, ids=UniqIds(pid=0x1234)).frame(7, 3, 1_700_000_000_123)
    header = frame[8:8 + (int.from_bytes(frame[4:8], "big") & 0xFFFFFF)]
    # fastjson: top-level keys alphabetical, extFields one-letter keys a..m (l is null, left out), all strings.
    assert header.startswith(b'{"code":310,"extFields":{"a":"benchmark_producer","b":"T1","c":"TBW102","d":"4",'
                             b'"e":"3","f":"0","g":"1700000000123","h":"0","i":"UNIQ_KEY\\u0001')
    assert header.endswith(b'WAIT\\u0001true\\u0002","j":"0","k":"false","m":"false"},"flag":0,"language":"JAVA",'
                           b'"opaque":7,"serializeTypeCurrentRPC":"JSON","version":409}')
    cmd = decode_command(frame)
    assert (cmd.code, cmd.opaque, cmd.flag, cmd.body) == (310, 7, 0, b"x" * 128)
    uniq = cmd.ext_fields["i"].split("\x01")[1].split("\x02")[0]
    assert len(uniq) == 32 and uniq == uniq.upper() and uniq[8:12] == "1234"


def test_property_order_is_javas_hashmap_order():
    assert java_string_hash("UNIQ_KEY") & 15 == 12 and java_string_hash("WAIT") & 15 == 13
    assert PROPERTY_ORDER == ["UNIQ_KEY", "WAIT"]


def test_batch_frame_has_a_uniq_key_per_member():
    frames = JavaFrames("T1", 128, batch=32)
    cmd = decode_command(frames.frame(1, 0, 1_700_000_000_000))
    assert cmd.code == 320 and cmd.ext_fields["m"] == "true" and cmd.ext_fields["i"] == "WAIT\x01true\x02"
    members = decode_batch(cmd.body)
    keys = {props.split("\x01")[1].split("\x02")[0] for _, _, props in members}
    assert len(members) == 32 and len(keys) == 32 and all(body == b"x" * 128 for _, body, _ in members)


def stored(addr, topic, queues=4):
    return sum(int(call(addr, max_offset_request(topic, q)).ext_fields["offset"]) for q in range(queues))


def test_load_against_a_broker(cluster, unique):
    topic = f"J_{unique}"
    cluster.create_topic(topic, brokers=["broker-a"])
    broker = cluster.brokers["broker-a"]
    cpu_before = proc_cpu_seconds(broker.proc.pid)
    out = subprocess.run([sys.executable, "-m", "mq.bench.java_load", "--addr", broker.addr, "--topic", topic,
                          "--workers", "4", "--queues", "4", "--warmup", "0.3", "--seconds", "1",
                          "--broker-pid", str(broker.proc.pid)],
                         capture_output=True, timeout=120, env=child_env(), cwd=str(REPO))
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-2000:]
    r = json.loads(out.stdout)
    assert r["errors"] == 0 and r["messages"] > 0 and r["tps"] > 0
    assert 0 < r["rt_avg_ms"] <= r["rt_p99_ms"] <= r["rt_max_ms"]
    assert r["broker_cpu_us_per_msg"] > 0 and r["generator_cpu_us_per_msg"] > 0
    assert 0 <= r["broker_sys_us_per_msg"] <= r["broker_cpu_us_per_msg"]
    assert proc_cpu_seconds(broker.proc.pid) > cpu_before
    # The warm-up's and the window's sends are all stored, as the Java client's messages would be.
    assert stored(broker.addr, topic) >= r["messages"]
    pulled = call(broker.addr, pull_request("g_java_load", topic, 0, 0, max_nums=1))
    msg = decode_messages(pulled.body)[0]
    assert len(msg.properties["UNIQ_KEY"]) == 32 and "WAIT" not in msg.properties


def test_paced_load_and_resident_memory(cluster, unique):
    """``--rate`` holds the workers to that many sends a second (slots catch up on at most a second of lag, so
    a window of 1 s after 0.3 s sees at most rate x 2.3 + workers); ``--rss-every`` samples the broker's RSS."""
    topic = f"JP_{unique}"
    cluster.create_topic(topic, brokers=["broker-a"])
    broker = cluster.brokers["broker-a"]
    out = subprocess.run([sys.executable, "-m", "mq.bench.java_load", "--addr", broker.addr, "--topic", topic,
                          "--workers", "4", "--queues", "4", "--warmup", "0.3", "--seconds", "1", "--rate", "20",
                          "--rss-every", "0.25", "--broker-pid", str(broker.proc.pid)],
                         capture_output=True, timeout=120, env=child_env(), cwd=str(REPO))
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-2000:]
    r = json.loads(out.stdout)
    assert r["errors"] == 0 and 0 < r["sends"] <= 20 * 2.3 + 4 and r["paced_sends_per_s"] == 20
    rss = r["broker_rss_mib"]
    assert len(rss["samples"]) >= 1 and 0 < rss["min"] <= rss["max"]
    assert all(0 < anon <= total for _, total, anon in rss["samples"])  # RssAnon is part of VmRSS
    refused = subprocess.run([sys.executable, "-m", "mq.bench.java_load", "--addr", broker.addr, "--topic", topic,
                              "--rate", "-1"], capture_output=True, timeout=60, env=child_env(), cwd=str(REPO))
    assert refused.returncode == 2 and b"must not be negative" in refused.stderr


def test_mq_bench_java_load(cluster, unique):
    topic = f"JB_{unique}"
    cluster.create_topic(topic, brokers=["broker-b"])
    out = subprocess.run([sys.executable, "-m", "mq.bench.cli", "producer", "-n", cluster.namesrv_addr, "-t", topic,
                          "--java-load", "-w", "2", "-b", "4", "-d", "1", "--warmup", "0.2", "--json"],
                         capture_output=True, timeout=120, env=child_env(), cwd=str(REPO))
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-2000:]
    r = json.loads(out.stdout)
    assert r["mode"] == "java-load" and r["broker"] == cluster.addr("broker-b")
    assert r["failures"] == 0 and r["messages"] > 0 and r["messages"] % 4 == 0 and r["code"] == 320
    assert stored(cluster.addr("broker-b"), topic) >= r["messages"]
