"""``mqadmin`` end to end against a real ``twistd namesrv`` and ``twistd broker``: output and exit codes."""

from __future__ import annotations

import re
import socket
import struct
import threading
import time

import pytest

from mq.admin.values import MessageQueue
from mq.client.simple import heartbeat_request, update_offset_request
from mq.common import fastjson
from mq.remoting.codes import RequestCode
from mq.remoting.command import RemotingCommand
from mq.remoting.serialization import decode_command, encode_command
from tests.admin.conftest import adm
from tests.broker.wire import Wire, call
from tests.support.processes import wait_until


def create_topic(broker, topic, queues=2):
    r = adm(broker, "updateTopic", "-c", broker.cluster, "-t", topic, "-r", str(queues), "-w", str(queues))
    assert r.code == 0, r.err
    return r


def send(broker, topic, body, *extra):
    r = adm(broker, "sendMessage", "-t", topic, "-p", body, "--json", *extra)
    assert r.code == 0, r.err
    return r.json()


# --------------------------------------------------------------------------------------------- topics


def test_update_topic_then_route_and_status(broker):
    r = create_topic(broker, "AdmTopic1", 3)
    assert r.out.splitlines()[0] == f"create topic to {broker.addr} success."
    assert "TopicConfig [topicName=AdmTopic1, readQueueNums=3, writeQueueNums=3, perm=RW-" in r.out
    route = adm(broker, "topicRoute", "-t", "AdmTopic1", "--json").json()
    assert route["queueDatas"] == [{"brokerName": broker.name, "perm": 6, "readQueueNums": 3, "topicSysFlag": 0,
                                    "writeQueueNums": 3}]
    assert route["brokerDatas"][0]["brokerAddrs"] == {"0": broker.addr}
    r = adm(broker, "topicStatus", "-t", "AdmTopic1")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["#Broker", "Name", "#QID", "#Min", "Offset", "#Max", "Offset", "#Last", "Updated"]
    assert [line.split() for line in lines[1:]] == [[broker.name, str(q), "0", "0"] for q in range(3)]
    assert adm(broker, "topicList").out.split().count("AdmTopic1") == 1
    assert adm(broker, "topicClusterList", "-t", "AdmTopic1").out == f"{broker.cluster}\n"


def test_update_topic_by_broker_addr_with_order_sets_the_order_conf(broker):
    r = adm(broker, "updateTopic", "-b", broker.addr, "-t", "AdmOrdered", "-w", "2", "-r", "2", "-o", "true",
            "-p", "4", "--json")
    assert r.code == 0, r.err
    data = r.json()
    assert data["brokers"] == [broker.addr] and data["orderConf"] == f"{broker.name}:2"
    assert data["topicConfig"]["order"] is True and data["topicConfig"]["perm"] == 4
    with Wire(broker.namesrv) as w:
        kv = w.call(RemotingCommand.request(RequestCode.GET_KV_CONFIG,
                                            {"namespace": "ORDER_TOPIC_CONFIG", "key": "AdmOrdered"}))
    assert kv.ext_fields["value"] == f"{broker.name}:2"


def test_update_topic_refuses_bad_names_and_perm(broker):
    r = adm(broker, "updateTopic", "-c", broker.cluster, "-t", "bad topic!")
    assert r.code == 2 and r.err.startswith("mqadmin updateTopic: invalid topic name 'bad topic!'")
    r = adm(broker, "updateTopic", "-c", broker.cluster, "-t", "Ok", "-p", "5")
    assert r.code == 2 and "invalid perm 5" in r.err


def test_delete_topic(broker):
    create_topic(broker, "AdmDoomed")
    r = adm(broker, "deleteTopic", "-c", broker.cluster, "-t", "AdmDoomed")
    assert r.code == 0, r.err
    assert r.out == (f"delete topic [AdmDoomed] from cluster [{broker.cluster}] success.\n"
                     "delete topic [AdmDoomed] from NameServer success.\n")
    r = adm(broker, "topicRoute", "-t", "AdmDoomed")
    assert r.code == 1 and "topic route not found" in r.err


# --------------------------------------------------------------------------------------------- broker


def test_cluster_list_and_broker_status(broker):
    r = adm(broker, "clusterList")
    assert r.code == 0, r.err
    assert r.out.splitlines()[0].split() == ["#Cluster", "Name", "#Broker", "Name", "#BID", "#Addr", "#Version",
                                              "#InTPS(LOAD)", "#OutTPS(LOAD)", "#PCWait(ms)", "#Hour", "#SPACE"]
    row = [line.split() for line in r.out.splitlines() if broker.addr in line][0]
    assert row[:5] == [broker.cluster, broker.name, "0", broker.addr, "V4_9_8"]
    assert re.fullmatch(r"\d+\.\d\d\(0,0ms\)", row[5]) and re.fullmatch(r"\d+\.\d\d\(0,0ms\)", row[6])
    assert row[7] == "0" and 0 <= float(row[9]) <= 1  # no page-cache wait; the disk ratio
    entry = [e for e in adm(broker, "clusterList", "--json").json() if e["addr"] == broker.addr][0]
    assert entry["role"] == "ASYNC_MASTER" and entry["inTps"] >= 0 and entry["pcWaitMs"] == 0
    r = adm(broker, "brokerStatus", "-b", broker.addr)
    assert r.code == 0, r.err
    assert any(line.split() == ["brokerVersionDesc", ":", "V4_9_8"] for line in r.out.splitlines())
    data = adm(broker, "brokerStatus", "-c", broker.cluster, "--json").json()
    assert data[broker.addr]["brokerVersion"] == "409"


def test_get_and_update_broker_config(broker):
    r = adm(broker, "getBrokerConfig", "-b", broker.addr)
    assert r.code == 0, r.err
    assert r.out.splitlines()[0] == f"============{broker.addr}============"
    assert any(line.split() == ["brokerName", "=", broker.name] for line in r.out.splitlines())
    r = adm(broker, "updateBrokerConfig", "-c", broker.cluster, "-k", "regionId", "-v", "AdmRegion")
    assert (r.code, r.out) == (0, f"update broker config success, {broker.addr}\n"), r.err
    assert adm(broker, "getBrokerConfig", "-c", broker.cluster, "--json").json()[broker.addr]["regionId"] == "AdmRegion"
    r = adm(broker, "updateBrokerConfig", "-b", broker.addr, "-k", "listenPort", "-v", "1")
    assert r.code == 1 and r.err.startswith(
        f"mqadmin updateBrokerConfig: update broker config on broker {broker.addr}: SYSTEM_ERROR: ")


def _groups(broker):
    body = call(broker.addr, RemotingCommand.request(RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG)).body
    return fastjson.loads(body)["subscriptionGroupTable"]


def test_update_and_delete_sub_group(broker):
    r = adm(broker, "updateSubGroup", "-c", broker.cluster, "-g", "AdmSubGroup", "-r", "3", "-q", "2", "-m", "true")
    assert r.code == 0, r.err
    assert r.out.splitlines()[0] == f"create subscription group to {broker.addr} success."
    group = _groups(broker)["AdmSubGroup"]
    assert (group["retryMaxTimes"], group["retryQueueNums"], group["consumeFromMinEnable"]) == (3, 2, True)
    r = adm(broker, "deleteSubGroup", "-b", broker.addr, "-g", "AdmSubGroup")
    assert r.out == f"delete subscription group [AdmSubGroup] from broker [{broker.addr}] success.\n"
    assert "AdmSubGroup" not in _groups(broker)


def test_delete_sub_group_by_cluster_also_deletes_its_retry_and_dlq_topics(broker):
    assert adm(broker, "updateSubGroup", "-b", broker.addr, "-g", "AdmSubGroup2").code == 0
    r = adm(broker, "deleteSubGroup", "-c", broker.cluster, "-g", "AdmSubGroup2", "-r", "true", "--json")
    assert r.code == 0, r.err
    assert r.json() == {"group": "AdmSubGroup2", "brokers": [broker.addr],
                        "deletedTopics": ["%RETRY%AdmSubGroup2", "%DLQ%AdmSubGroup2"]}
    assert "AdmSubGroup2" not in _groups(broker)


# --------------------------------------------------------------------------------------------- messages


@pytest.fixture(scope="module")
def sent(broker):
    """Three messages in AdmMsgTopic queue 1 (tags a, b, a; keys k0..k2), sent through mqadmin."""
    create_topic(broker, "AdmMsgTopic", 2)
    results = [send(broker, "AdmMsgTopic", f"body-{i}", "-b", broker.name, "-i", "1", "-c", "ab"[i % 2 == 1],
                    "-k", f"k{i}") for i in range(3)]
    return results


def test_send_message_table_and_json(broker, sent):
    assert [s["queueOffset"] for s in sent] == [0, 1, 2]
    assert all(s["sendStatus"] == "SEND_OK" and s["queueId"] == 1 and s["brokerName"] == broker.name for s in sent)
    r = adm(broker, "sendMessage", "-t", "AdmMsgTopic", "-p", "plain", "-b", broker.name, "-i", "0")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["#Broker", "Name", "#QID", "#Send", "Result", "#MsgId", "#OffsetMsgId"]
    assert lines[1].split()[:3] == [broker.name, "0", "SEND_OK"]


def test_send_message_to_a_new_topic_auto_creates_it(broker):
    data = send(broker, "AdmAutoTopic", "x")
    assert data["sendStatus"] == "SEND_OK" and 0 <= data["queueId"] < 4
    wait_until(lambda: adm(broker, "topicRoute", "-t", "AdmAutoTopic").code == 0, 10, what="AdmAutoTopic route")


def test_send_message_errors(broker):
    r = adm(broker, "sendMessage", "-t", "AdmMsgTopic", "-p", "x", "-b", "no-such-broker")
    assert r.code == 1 and "broker 'no-such-broker' is not in the route" in r.err
    r = adm(broker, "sendMessage", "-t", "AdmMsgTopic", "-p", "x", "-i", "0")
    assert r.code == 2 and "-i/--qid needs -b/--broker" in r.err


def test_query_msg_by_offset(broker, sent):
    r = adm(broker, "queryMsgByOffset", "-t", "AdmMsgTopic", "-b", broker.name, "-i", "1", "-o", "1")
    assert r.code == 0, r.err
    fields = dict(line.split(": ", 1) for line in r.out.splitlines())
    assert fields["MsgId           "].strip() == sent[1]["msgId"]
    assert fields["OffsetID        "].strip() == sent[1]["offsetMsgId"]
    assert fields["Message Body    "] == "body-1" and fields["Tags            "] == "[b]"
    data = adm(broker, "queryMsgByOffset", "-t", "AdmMsgTopic", "-b", broker.name, "-i", "1", "-o", "2",
               "--json").json()
    assert (data["body"], data["keys"], data["queueOffset"], data["storeHost"]) == ("body-2", "k2", 2, broker.addr)
    r = adm(broker, "queryMsgByOffset", "-t", "AdmMsgTopic", "-b", broker.name, "-i", "1", "-o", "99")
    assert (r.code, r.err) == (1, f"mqadmin queryMsgByOffset: no message at offset 99 of AdmMsgTopic:{broker.name}:1\n")


def test_print_msg(broker, sent):
    r = adm(broker, "printMsg", "-t", "AdmMsgTopic", "-s", "a", "--json")
    assert r.code == 0, r.err
    by_queue = {q["queue"]["queueId"]: q for q in r.json()}
    assert by_queue[1]["minOffset"] == 0 and by_queue[1]["maxOffset"] >= 3
    assert [m["body"] for m in by_queue[1]["messages"]] == ["body-0", "body-2"]  # tag a only
    r = adm(broker, "printMsg", "-t", "AdmMsgTopic", "-d", "false")
    assert f"minOffset=0, maxOffset=3, MessageQueue [topic=AdmMsgTopic, brokerName={broker.name}, queueId=1]" in r.out
    assert "Message Body" not in r.out and r.out.count("OffsetID") >= 3


def test_consume_message(broker, sent):
    r = adm(broker, "consumeMessage", "-t", "AdmMsgTopic", "-b", broker.name, "-i", "1", "-o", "1", "--json")
    assert r.code == 0, r.err
    assert [m["body"] for m in r.json()] == ["body-1", "body-2"]
    r = adm(broker, "consumeMessage", "-t", "AdmMsgTopic", "-b", broker.name, "-i", "1", "-c", "1")
    assert r.out.count("Message Body    : body-0") == 1 and r.out.rstrip().endswith("Consumed 1 message(s).")
    r = adm(broker, "consumeMessage", "-t", "AdmMsgTopic", "-o", "1")
    assert r.code == 2 and "-o/--offset needs -i/--queueId" in r.err


def test_query_msg_by_id(broker, sent):
    r = adm(broker, "queryMsgById", "-i", sent[0]["offsetMsgId"])
    assert r.code == 0, r.err
    assert "Message Body    : body-0" in r.out


def test_query_msg_by_key(broker, sent):
    r = adm(broker, "queryMsgByKey", "-t", "AdmMsgTopic", "-k", "k2", "--json")
    assert r.code == 0, r.err
    assert [m["msgId"] for m in r.json()] == [sent[2]["msgId"]]


def test_query_msg_by_unique_key(broker, sent):
    r = adm(broker, "queryMsgByUniqueKey", "-t", "AdmMsgTopic", "-i", sent[1]["msgId"], "--json")
    assert r.code == 0, r.err
    assert r.json()["body"] == "body-1"


def test_query_msg_by_id_refuses_what_is_not_an_offset_id(broker):
    r = adm(broker, "queryMsgById", "-i", "nothex")
    assert r.code == 2 and "is not an offset message id" in r.err


# --------------------------------------------------------------------------------------------- clients


class OnlineClient:
    """A client connection that heartbeats as producer AdmProducer and consumer AdmGroup, then answers
    GET_CONSUMER_RUNNING_INFO (what the broker relays for consumerStatus) from a thread."""

    client_id = "127.0.0.1@adm-test"

    def __init__(self, broker_addr: str, topic: str) -> None:
        self.topic = topic
        self.wire = Wire(broker_addr)
        r = self.wire.call(heartbeat_request(self.client_id, ["AdmProducer"], [("AdmGroup", [topic], "CLUSTERING")]))
        assert r.code == 0, r.remark
        self.wire.sock.settimeout(None)
        self.running_info_requests = 0
        self.resets = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        buf = b""
        sock = self.wire.sock
        try:
            while True:
                while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                n = 4 + struct.unpack(">i", buf[:4])[0]
                cmd, buf = decode_command(buf[:n]), buf[n:]
                if cmd.code == RequestCode.RESET_CONSUMER_CLIENT_OFFSET and not cmd.is_response:
                    self.resets.append(cmd)
                if cmd.code == RequestCode.GET_CONSUMER_RUNNING_INFO and not cmd.is_response:
                    self.running_info_requests += 1
                    body = fastjson.dumps_bytes({
                        "mqTable": {MessageQueue(self.topic, "x", 0): {"cachedMsgCount": 0}},
                        "properties": {"consumeType": "CONSUME_PASSIVELY"}, "statusTable": {},
                        "subscriptionSet": [],
                    })
                    sock.sendall(encode_command(cmd.response(0, None, None, body)))
        except OSError:
            return

    def close(self) -> None:
        try:
            self.wire.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.wire.close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def online(broker, sent):
    client = OnlineClient(broker.addr, "AdmMsgTopic")
    # the consumer committed offset 1 of queue 1 (of 3 messages there)
    assert call(broker.addr, update_offset_request("AdmGroup", "AdmMsgTopic", 1, 1)).code == 0
    yield client
    client.close()


def test_consumer_connection(broker, online):
    r = adm(broker, "consumerConnection", "-g", "AdmGroup")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["#", "#ClientId", "#ClientAddr", "#Language", "#Version"]
    assert lines[1].split()[:2] == ["1", OnlineClient.client_id]
    assert any(line.split() == ["1", "AdmMsgTopic", "*"] for line in lines)
    assert "MessageModel: CLUSTERING" in lines
    data = adm(broker, "consumerConnection", "-g", "AdmGroup", "-b", broker.addr, "--json").json()
    assert [c["clientId"] for c in data["connectionSet"]] == [OnlineClient.client_id]


def test_unknown_consumer_group_is_not_online(broker):
    for cmd in ("consumerConnection", "consumerStatus"):
        r = adm(broker, cmd, "-g", "NoSuchGroup")
        assert r.code == 1 and r.out == ""
        assert r.err == (f"mqadmin {cmd}: connections of consumer group 'NoSuchGroup' on broker {broker.addr}: "
                         "CONSUMER_NOT_ONLINE: the consumer group[NoSuchGroup] not online\n")


def test_producer_connection(broker, online):
    r = adm(broker, "producerConnection", "-g", "AdmProducer", "-t", "AdmMsgTopic")
    assert r.code == 0, r.err
    assert r.out.splitlines()[1].split()[:2] == ["1", OnlineClient.client_id]
    r = adm(broker, "producerConnection", "-g", "NoSuchProducer", "-t", "AdmMsgTopic")
    assert r.code == 1 and "the producer group[NoSuchProducer] not exist" in r.err


def test_consumer_progress(broker, online):
    r = adm(broker, "consumerProgress", "-g", "AdmGroup")
    assert r.code == 0, r.err
    rows = {tuple(line.split()[:3]): line.split() for line in r.out.splitlines() if line.startswith("AdmMsgTopic")}
    assert rows[("AdmMsgTopic", broker.name, "1")][3:6] == ["3", "1", "2"]  # broker, consumer offset, diff
    assert "Diff Total: " in r.out
    data = adm(broker, "consumerProgress", "-g", "AdmGroup", "-s", "true", "--json").json()
    queue1 = [q for q in data["queues"] if q["queueId"] == 1 and q["topic"] == "AdmMsgTopic"][0]
    assert (queue1["brokerOffset"], queue1["consumerOffset"], queue1["diff"]) == (3, 1, 2)
    # the group's retry topic reaches the NameServer, so the all-groups listing has it
    wait_until(lambda: "AdmGroup" in adm(broker, "consumerProgress").out, 15, what="AdmGroup in consumerProgress")
    row = [line.split() for line in adm(broker, "consumerProgress").out.splitlines() if line.startswith("AdmGroup")]
    assert row[0][1] == "1" and row[0][3:5] == ["CONSUME_ACTIVELY", "CLUSTERING"]


def test_consumer_status(broker, online):
    r = adm(broker, "consumerStatus", "-g", "AdmGroup")
    assert r.code == 0, r.err
    assert r.out.splitlines()[1].split() == [OnlineClient.client_id, r.out.splitlines()[1].split()[1], "OK"]
    data = adm(broker, "consumerStatus", "-g", "AdmGroup", "-i", OnlineClient.client_id, "--json").json()
    assert data["properties"] == {"consumeType": "CONSUME_PASSIVELY"}
    assert online.running_info_requests >= 2


def test_reset_offset_by_time(broker, online):
    before = int(time.time() * 1000) - 3600_000
    r = adm(broker, "resetOffsetByTime", "-g", "AdmGroup", "-t", "AdmMsgTopic", "-s", str(before))
    assert r.code == 0, r.err
    assert r.out.splitlines()[0] == ("rollback consumer offset by specified group[AdmGroup], topic[AdmMsgTopic], "
                                     f"force[true], timestamp(string)[{before}], timestamp(long)[{before}]")
    assert [broker.name, "1", "0"] in [line.split() for line in r.out.splitlines()]
    progress = adm(broker, "consumerProgress", "-g", "AdmGroup", "--json").json()
    assert [q["consumerOffset"] for q in progress["queues"] if q["queueId"] == 1] == [0]
    data = adm(broker, "resetOffsetByTime", "-g", "AdmGroup", "-t", "AdmMsgTopic", "-s", "now", "--json").json()
    assert {(o["queueId"], o["offset"]) for o in data["offsets"]} >= {(1, 3)}
    assert data["offsetsWrittenByTool"] is False  # the broker did it (INVOKE_BROKER_TO_RESET_OFFSET)
    wait_until(lambda: len(online.resets) >= 2, 10, what="the online client told to reset twice")
    assert online.resets[-1].ext_fields["group"] == "AdmGroup"
    # a group nobody runs: the broker answers CONSUMER_NOT_ONLINE and the tool writes the offsets itself
    assert call(broker.addr, update_offset_request("AdmOffline", "AdmMsgTopic", 1, 3)).code == 0
    data = adm(broker, "resetOffsetByTime", "-g", "AdmOffline", "-t", "AdmMsgTopic", "-s", str(before),
               "--json").json()
    assert data["offsetsWrittenByTool"] is True and {(o["queueId"], o["offset"]) for o in data["offsets"]} >= {(1, 0)}
    progress = adm(broker, "consumerProgress", "-g", "AdmOffline", "--json").json()
    assert [q["consumerOffset"] for q in progress["queues"] if q["queueId"] == 1] == [0]
    r = adm(broker, "resetOffsetByTime", "-g", "AdmGroup", "-t", "AdmMsgTopic", "-s", "someday")
    assert r.code == 2 and "not a timestamp" in r.err


def test_start_monitoring_reports_undone_messages_every_round(broker, online):
    """startMonitoring: per round, each group (found by its retry topic) with its undone messages per topic."""
    wait_until(lambda: "AdmGroup" in adm(broker, "consumerProgress").out, 15, what="AdmGroup's retry topic")
    # the figures consumerProgress gives (earlier tests of this module may have moved the group's offsets)
    diffs = [q["diff"] for q in adm(broker, "consumerProgress", "-g", "AdmGroup", "--json").json()["queues"]
             if q["topic"] == "AdmMsgTopic"]
    total, single = str(sum(d for d in diffs if d > 0)), str(max([0, *diffs]))
    r = adm(broker, "startMonitoring", "-i", "0.1", "--count", "2")
    assert r.code == 0, r.err
    rows = [line.split() for line in r.out.splitlines() if line.startswith("AdmGroup ")]
    assert [row[:4] for row in rows if row[1] == "AdmMsgTopic"] == [["AdmGroup", "AdmMsgTopic", total, single]] * 2
    assert r.out.count("#Consumer Group") == 2  # two rounds
    data = adm(broker, "startMonitoring", "--count", "1", "--json").json()
    [entry] = [e for e in data["undoneMsgs"] if (e["consumerGroup"], e["topic"]) == ("AdmGroup", "AdmMsgTopic")]
    assert (str(entry["undoneMsgsTotal"]), str(entry["undoneMsgsSingleMQ"])) == (total, single)
    assert entry["undoneMsgsDelayTimeMills"] >= 0 and data["notify"] == []
