"""The rest of RocketMQ 4.9.8's ``mqadmin`` commands end to end against a real ``twistd namesrv`` and broker."""

from __future__ import annotations

import json

import pytest

from tests.admin.conftest import adm


def ok(r):
    assert r.code == 0, r.err
    return r


def make_topic(broker, topic, queues=4):
    ok(adm(broker, "updateTopic", "-c", broker.cluster, "-t", topic, "-r", str(queues), "-w", str(queues)))


def send(broker, topic, *extra):
    return ok(adm(broker, "sendMessage", "-t", topic, "-p", "body", "--json", *extra)).json()


# --------------------------------------------------------------------------------------------- topics


def test_update_topic_perm(broker):
    make_topic(broker, "PermTopic", 2)
    r = ok(adm(broker, "updateTopicPerm", "-b", broker.addr, "-t", "PermTopic", "-p", "4"))
    assert r.out.splitlines() == [f"update topic perm from 6 to 4 in {broker.addr} success.",
                                  "TopicConfig [topicName=PermTopic, readQueueNums=2, writeQueueNums=2, perm=R--, "
                                  "topicFilterType=SINGLE_TAG, topicSysFlag=0, order=false]"]
    route = ok(adm(broker, "topicRoute", "-t", "PermTopic", "--json")).json()
    assert route["queueDatas"][0]["perm"] == 4 and route["queueDatas"][0]["readQueueNums"] == 2
    r = ok(adm(broker, "updateTopicPerm", "-c", broker.cluster, "-t", "PermTopic", "-p", "4", "--json"))
    assert r.json()["brokers"][0]["changed"] is False
    r = adm(broker, "updateTopicPerm", "-c", broker.cluster, "-t", "PermTopic", "-p", "3")
    assert r.code == 2 and "invalid perm 3" in r.err
    assert adm(broker, "updateTopicPerm", "-c", broker.cluster, "-t", "NoSuchTopic", "-p", "6").code == 1
    assert adm(broker, "updateTopicPerm", "-t", "PermTopic", "-p", "6").code == 2  # neither -b nor -c


def test_update_order_conf_put_get_delete(broker):
    conf = f"{broker.name}:4"
    r = ok(adm(broker, "updateOrderConf", "-t", "OrderT", "-m", "put", "-v", conf))
    assert r.out == f"update orderConf success. topic=[OrderT], orderConf=[{conf}]\n"
    r = ok(adm(broker, "updateOrderConf", "-t", "OrderT", "-m", "get", "--json"))
    assert r.json() == {"topic": "OrderT", "orderConf": conf}
    ok(adm(broker, "updateOrderConf", "-t", "OrderT", "-m", "delete"))
    r = adm(broker, "updateOrderConf", "-t", "OrderT", "-m", "get")
    assert r.code == 1 and "no orderConf" in r.err
    for bad in ("", "broker-a", "broker-a:x", "broker-a:0", ":3"):
        r = adm(broker, "updateOrderConf", "-t", "OrderT", "-m", "put", "-v", bad)
        assert r.code == 2, (bad, r.err)
    assert adm(broker, "updateOrderConf", "-t", "OrderT", "-m", "list").code == 2


def test_allocate_mq_shares_the_queues_averagely(broker):
    make_topic(broker, "AllocT", 5)
    data = ok(adm(broker, "allocateMQ", "-t", "AllocT", "-i", "10.0.0.1,10.0.0.2", "--json")).json()["result"]
    assert [q["queueId"] for q in data["10.0.0.1"]] == [0, 1, 2]
    assert [q["queueId"] for q in data["10.0.0.2"]] == [3, 4]
    r = ok(adm(broker, "allocateMQ", "-t", "AllocT", "-i", "10.0.0.1,10.0.0.2"))
    assert r.out.splitlines()[0].split() == ["#IP", "#Broker", "Name", "#QID"]
    assert len(r.out.splitlines()) == 6
    assert adm(broker, "allocateMQ", "-t", "AllocT", "-i", ",").code == 2


# --------------------------------------------------------------------------------------------- NameServer


def test_get_and_update_namesrv_config(broker):
    data = ok(adm(broker, "getNamesrvConfig", "--json")).json()
    assert list(data) == [broker.namesrv] and data[broker.namesrv]["orderMessageEnable"] == "false"
    r = ok(adm(broker, "updateNamesrvConfig", "-k", "orderMessageEnable", "-v", "true"))
    assert r.out.splitlines() == [f"update name server config success![{broker.namesrv!r}]",
                                  "orderMessageEnable : true"]
    r = ok(adm(broker, "getNamesrvConfig"))
    assert r.out.splitlines()[0] == f"============{broker.namesrv}============"
    assert any(line.split() == ["orderMessageEnable", "=", "true"] for line in r.out.splitlines())
    ok(adm(broker, "updateNamesrvConfig", "-k", "orderMessageEnable", "-v", "false"))
    r = adm(broker, "updateNamesrvConfig", "-k", "noSuchSetting", "-v", "1")
    assert r.code == 1 and "SYSTEM_ERROR" in r.err
    assert adm(broker, "updateNamesrvConfig", "-k", "a=b", "-v", "1").code == 2


# --------------------------------------------------------------------------------------------- offsets


def _offsets(broker, group):
    data = ok(adm(broker, "consumerProgress", "-g", group, "--json")).json()
    return {(q["topic"], q["queueId"]): (q["brokerOffset"], q["consumerOffset"]) for q in data["queues"]}


def test_skip_accumulated_then_clone_group_offset(broker):
    make_topic(broker, "SkipT", 2)
    for qid in (0, 0, 1):
        send(broker, "SkipT", "-b", broker.name, "-i", str(qid))
    ok(adm(broker, "updateSubGroup", "-c", broker.cluster, "-g", "SkipG"))
    r = ok(adm(broker, "skipAccumulatedMessage", "-g", "SkipG", "-t", "SkipT", "--json"))
    data = r.json()
    assert data["offsetsWrittenByTool"] is True  # no consumer online: the tool commits the offsets itself
    assert [(o["queueId"], o["offset"]) for o in data["offsets"]] == [(0, 2), (1, 1)]
    assert _offsets(broker, "SkipG") == {("SkipT", 0): (2, 2), ("SkipT", 1): (1, 1)}
    r = ok(adm(broker, "cloneGroupOffset", "-s", "SkipG", "-d", "CloneG", "-t", "SkipT"))
    assert r.out.splitlines()[0] == "clone group offset success. srcGroup[SkipG], destGroup=[CloneG], topic[SkipT]"
    assert _offsets(broker, "CloneG") == {("SkipT", 0): (2, 2), ("SkipT", 1): (1, 1)}
    assert adm(broker, "cloneGroupOffset", "-s", "SkipG", "-d", "SkipG", "-t", "SkipT").code == 2
    assert adm(broker, "cloneGroupOffset", "-s", "SkipG", "-d", "bad group!", "-t", "SkipT").code == 2


# --------------------------------------------------------------------------------------------- messages


def test_print_msg_by_queue_counts_tags(broker):
    make_topic(broker, "ByQueueT", 2)
    for tag in ("TagA", "TagB", "TagA"):
        send(broker, "ByQueueT", "-b", broker.name, "-i", "1", "-c", tag)
    send(broker, "ByQueueT", "-b", broker.name, "-i", "0", "-c", "TagC")
    data = ok(adm(broker, "printMsgByQueue", "-t", "ByQueueT", "-a", broker.name, "-i", "1", "-p", "true",
                  "-f", "true", "-d", "true", "--json")).json()
    assert (data["minOffset"], data["maxOffset"], data["messagesRead"]) == (0, 3, 3)
    assert data["tagCounts"] == {"TagA": 2, "TagB": 1}
    assert [m["tags"] for m in data["messages"]] == ["TagA", "TagB", "TagA"] and data["messages"][0]["body"] == "body"
    r = ok(adm(broker, "printMsgByQueue", "-t", "ByQueueT", "-a", broker.name, "-i", "1", "-f", "true",
               "-s", "TagB"))
    assert "1 message(s) read" in r.out.splitlines()[0]
    assert [line.split() for line in r.out.splitlines()[-2:]] == [["#Tag", "#Count"], ["TagB", "1"]]
    r = adm(broker, "printMsgByQueue", "-t", "ByQueueT", "-a", "no-such-broker", "-i", "0")
    assert r.code == 1 and "not in the route" in r.err


def test_check_msg_send_rt(broker):
    make_topic(broker, "RtT", 2)
    data = ok(adm(broker, "checkMsgSendRT", "-t", "RtT", "-a", "4", "-s", "10", "--json")).json()
    assert [(s["queueId"], s["sendOk"]) for s in data["sends"]] == [(0, True), (1, True), (0, True), (1, True)]
    assert data["avgRtMs"] >= 0
    r = ok(adm(broker, "checkMsgSendRT", "-t", "RtT", "-a", "2"))
    assert r.out.splitlines()[0].split() == ["#Broker", "Name", "#QID", "#Send", "Result", "#RT"]
    assert r.out.splitlines()[-1].startswith("Avg RT: ")
    for bad in (("-a", "0"), ("-s", "0"), ("-s", str(4 * 1024 * 1024 + 1)), ("-a", "100001")):
        assert adm(broker, "checkMsgSendRT", "-t", "RtT", *bad).code == 2, bad


def test_send_msg_status_and_cluster_rt(broker):
    r = ok(adm(broker, "sendMsgStatus", "-b", broker.name, "-c", "2", "-s", "20"))
    lines = r.out.splitlines()
    assert len(lines) == 2 and all(line.startswith("rt:") and "SendResult [sendStatus=SEND_OK" in line
                                   for line in lines)
    assert f"messageQueue=MessageQueue [topic={broker.name}, brokerName={broker.name}" in lines[0]
    assert adm(broker, "sendMsgStatus", "-b", "no-such-broker").code == 1
    data = ok(adm(broker, "clusterRT", "-a", "3", "--json")).json()
    assert [(e["clusterName"], e["brokerName"], e["successCount"], e["failCount"]) for e in data] == [
        (broker.cluster, broker.name, 3, 0)]
    r = ok(adm(broker, "clusterRT", "-a", "2", "-p", "true", "-m", "room1", "-c", broker.cluster))
    fields = r.out.strip().split("|")
    assert fields[1:4] == ["room1", broker.cluster, broker.name] and fields[4].isdigit()
    r = ok(adm(broker, "clusterRT", "-a", "1", "-i", "0.1", "--count", "2"))
    assert r.out.count("#Cluster Name") == 2
    r = adm(broker, "clusterRT", "-c", "NoCluster")
    assert r.code == 1 and "cluster [NoCluster] not exist" in r.err


# --------------------------------------------------------------------------------------------- groups and export


def test_get_consumer_config(broker):
    ok(adm(broker, "updateSubGroup", "-c", broker.cluster, "-g", "CfgG", "-r", "5"))
    data = ok(adm(broker, "getConsumerConfig", "-g", "CfgG", "--json")).json()
    assert [(d["clusterName"], d["brokerName"], d["subscriptionGroupConfig"]["retryMaxTimes"]) for d in data] == [
        (broker.cluster, broker.name, 5)]
    r = ok(adm(broker, "getConsumerConfig", "-g", "CfgG"))
    assert any(line.split() == ["retryMaxTimes", ":", "5"] for line in r.out.splitlines())
    r = adm(broker, "getConsumerConfig", "-g", "NoSuchGroup")
    assert r.code == 1 and "not found on any master" in r.err


def test_export_metadata_and_configs(broker, tmp_path):
    make_topic(broker, "ExportT", 3)
    ok(adm(broker, "updateSubGroup", "-c", broker.cluster, "-g", "ExportG"))
    r = ok(adm(broker, "exportMetadata", "-c", broker.cluster, "-f", str(tmp_path)))
    assert r.out == f"export {tmp_path / 'metadata.json'} success\n"
    doc = json.loads((tmp_path / "metadata.json").read_text())
    assert doc["topicConfigTable"]["ExportT"]["readQueueNums"] == 3
    assert "TBW102" not in doc["topicConfigTable"] and "SCHEDULE_TOPIC_XXXX" not in doc["topicConfigTable"]
    assert "ExportG" in doc["subscriptionGroupTable"] and doc["exportTime"] > 0
    assert not any(t.startswith("%RETRY%") for t in doc["topicConfigTable"])
    ok(adm(broker, "exportMetadata", "-b", broker.addr, "-f", str(tmp_path / "sub"), "-t"))
    assert set(json.loads((tmp_path / "sub" / "topic.json").read_text())) == {"exportTime", "topicConfigTable"}
    ok(adm(broker, "exportConfigs", "-c", broker.cluster, "-f", str(tmp_path)))
    doc = json.loads((tmp_path / "configs.json").read_text())
    assert doc["clusterScale"] == {"namesrvSize": 1, "masterBrokerSize": 1, "slaveBrokerSize": 0}
    assert doc["brokerConfigs"][broker.name]["brokerClusterName"] == broker.cluster
    assert adm(broker, "exportConfigs", "-c", "NoCluster", "-f", str(tmp_path)).code == 1
    r = ok(adm(broker, "exportMetrics", "-c", broker.cluster, "-f", str(tmp_path)))
    assert r.out == f"export {tmp_path / 'metrics.json'} success\n"
    doc = json.loads((tmp_path / "metrics.json").read_text())
    quota = doc["evaluateReport"][broker.name]["runtimeQuota"]
    assert quota["topicSize"] >= 1 and quota["groupSize"] >= 1 and quota["tps"]["normalInTps"] >= 0
    assert set(quota["oneDayNum"]) == {"normalOneDayInNum", "normalOneDayOutNum", "transOneDayInNum",
                                       "scheduleOneDayInNum"}
    assert doc["evaluateReport"][broker.name]["runtimeVersion"]["rocketmqVersion"] == "V4_9_8"
    assert set(doc["totalData"]["totalTps"]) == {"totalNormalInTps", "totalNormalOutTps", "totalTransInTps",
                                                 "totalScheduleInTps"}
    assert adm(broker, "exportMetrics", "-c", "NoCluster", "-f", str(tmp_path)).code == 1
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = adm(broker, "exportConfigs", "-c", broker.cluster, "-f", str(blocker))
    assert r.code == 1 and "cannot write" in r.err
    assert adm(broker, "exportMetadata", "-c", broker.cluster, "-t", "-g", "-f", str(tmp_path)).code == 2


@pytest.mark.parametrize("argv", [
    ["skipAccumulatedMessage", "-g", "G"], ["cloneGroupOffset", "-s", "A", "-t", "T"],
    ["printMsgByQueue", "-t", "T", "-a", "b"], ["exportConfigs"], ["updateOrderConf", "-t", "T"],
])
def test_missing_required_flags_are_usage_errors(broker, argv):
    assert adm(broker, *argv).code == 2


# --------------------------------------------------------------------------------------------- store inspection


def test_query_cq(broker):
    make_topic(broker, "CqT", 2)
    for tag in ("A", "B", "C"):
        send(broker, "CqT", "-b", broker.name, "-i", "0", "-c", tag)
    data = ok(adm(broker, "queryCq", "-t", "CqT", "-q", "0", "-i", "1", "-c", "5", "--json")).json()
    assert (data["minQueueIndex"], data["maxQueueIndex"], data["brokerAddr"]) == (0, 3, broker.addr)
    entries = data["queueData"]
    assert len(entries) == 2 and all(e["physicSize"] > 0 and e["eval"] is True for e in entries)
    assert "topic=CqT" in entries[0]["msg"] and "tags=B" in entries[0]["msg"]
    assert entries[1]["physicOffset"] > entries[0]["physicOffset"]
    r = ok(adm(broker, "queryCq", "-t", "CqT", "-q", "0", "-i", "0", "-b", broker.addr))
    assert "max: 3, min: 0" in r.out and r.out.count("MessageExt [topic=CqT") == 3
    data = ok(adm(broker, "queryCq", "-t", "CqT", "-q", "0", "-i", "9", "--json")).json()
    assert data["queueData"] == [] and data["remark"] == "Index 9 of 0@CqT is not exist!"
    r = adm(broker, "queryCq", "-t", "CqT", "-q", "1", "-i", "0")
    assert r.code == 1 and "1@CqT is not exist!" in r.err  # no message yet: no queue
    r = adm(broker, "queryCq", "-t", "CqT", "-q", "0", "-i", "0", "-g", "NobodyG")
    assert r.code == 1 and "NobodyG@CqT is not online!" in r.err
    assert adm(broker, "queryCq", "-t", "CqT", "-q", "0", "-i", "0", "-c", "1001").code == 2
    assert adm(broker, "queryCq", "-t", "CqT", "-q", "-1", "-i", "0").code == 2


def test_query_cq_refuses_a_count_out_of_range_on_the_wire(broker):
    from mq.remoting.codes import RequestCode
    from mq.remoting.command import RemotingCommand
    from tests.broker.wire import call

    for count in ("0", "1001", "-5"):
        r = call(broker.addr, RemotingCommand.request(RequestCode.QUERY_CONSUME_QUEUE, {
            "topic": "CqT", "queueId": "0", "index": "0", "count": count}))
        assert r.code == 1 and "out of range 1..1000" in r.remark, count


def test_clean_expired_cq_and_clean_unused_topic(tmp_path):
    from tests.admin.conftest import mqadmin, start_broker, start_namesrv
    from tests.support.processes import wait_until

    ns = start_namesrv(tmp_path / "ns")
    orphan = tmp_path / "b" / "store" / "consumequeue" / "Orphan" / "0"
    orphan.mkdir(parents=True)  # a queue of a topic the broker has no config for (its topic deleted offline)
    system = tmp_path / "b" / "store" / "consumequeue" / "RMQ_SYS_TRANS_HALF_TOPIC" / "0"
    system.mkdir(parents=True)  # no config either, but a system topic: kept
    slave_orphan = tmp_path / "s" / "store" / "consumequeue" / "Orphan" / "0"
    slave_orphan.mkdir(parents=True)
    proc = start_broker(tmp_path / "b", ns.addr, name="clean-broker", cluster="CleanCluster")
    slave = start_broker(tmp_path / "s", ns.addr, name="clean-broker", cluster="CleanCluster",
                         conf_extra="brokerId=1\nbrokerRole=SLAVE\n")
    try:
        wait_until(lambda: mqadmin("topicRoute", "-t", "TBW102", namesrv=ns.addr).code == 0, 20,
                   what="the broker registered")
        wait_until(lambda: slave.addr in mqadmin("clusterList", namesrv=ns.addr).out, 20, what="the slave registered")
        r = mqadmin("updateTopic", "-c", "CleanCluster", "-t", "KeptT", namesrv=ns.addr)
        assert r.code == 0, r.err
        r = mqadmin("sendMessage", "-t", "KeptT", "-p", "x", namesrv=ns.addr)
        assert r.code == 0, r.err
        # as the original: every broker of the cluster, the slave too (each cleans its own store)
        r = mqadmin("cleanExpiredCQ", "-c", "CleanCluster", namesrv=ns.addr)
        assert (r.code, r.out) == (0, f"{proc.addr}: success\n{slave.addr}: success\n"), r.err
        r = mqadmin("cleanUnusedTopic", "--json", namesrv=ns.addr)  # no -b/-c: every broker of every cluster
        assert r.code == 0 and r.json() == {"brokers": [proc.addr, slave.addr]}, r.err
        assert not orphan.parent.exists() and not slave_orphan.parent.exists()
        assert (tmp_path / "b" / "store" / "consumequeue" / "KeptT").exists() and system.exists()
        assert mqadmin("cleanUnusedTopic", "-b", proc.addr, namesrv=ns.addr).code == 0
        r = mqadmin("cleanExpiredCQ", "-c", "NoSuchCluster", namesrv=ns.addr)
        assert r.code != 0 and "cluster 'NoSuchCluster' not found" in r.err, (r.out, r.err)
    finally:
        slave.stop(timeout=15)
        proc.stop(timeout=15)
        ns.stop(timeout=15)


def test_query_commands_find_a_message_by_id_key_and_unique_key(broker):
    make_topic(broker, "QueryT", 2)
    sent = send(broker, "QueryT", "-k", "order-42", "-c", "TagQ")
    r = ok(adm(broker, "queryMsgByKey", "-t", "QueryT", "-k", "order-42", "--json"))
    assert [(m["msgId"], m["offsetMsgId"], m["keys"]) for m in r.json()] == [
        (sent["msgId"], sent["offsetMsgId"], "order-42")]
    r = ok(adm(broker, "queryMsgByKey", "-t", "QueryT", "-k", "order-42"))
    assert r.out.splitlines()[0].split()[:3] == ["#Message", "ID", "#Offset"] and sent["msgId"] in r.out
    data = ok(adm(broker, "queryMsgByUniqueKey", "-t", "QueryT", "-i", sent["msgId"], "--json")).json()
    assert (data["offsetMsgId"], data["tags"], data["body"]) == (sent["offsetMsgId"], "TagQ", "body")
    data = ok(adm(broker, "queryMsgById", "-i", sent["offsetMsgId"], "--json")).json()
    assert (data["msgId"], data["topic"], data["keys"]) == (sent["msgId"], "QueryT", "order-42")
    r = ok(adm(broker, "queryMsgById", "-i", sent["offsetMsgId"]))
    assert any(line.split() == ["Topic", ":", "QueryT"] for line in r.out.splitlines())
    r = adm(broker, "queryMsgByKey", "-t", "QueryT", "-k", "no-such-key")
    assert r.code == 1
    assert adm(broker, "queryMsgById", "-i", "not-an-id").code == 2


def test_delete_expired_commit_log_deletes_them_outside_the_delete_hour(tmp_path):
    import os
    import time

    from tests.admin.conftest import mqadmin, start_broker, start_namesrv
    from tests.broker.wire import Wire
    from tests.support.processes import wait_until

    ns = start_namesrv(tmp_path / "ns")
    (tmp_path / "b").mkdir()
    other_hour = f"{(time.localtime().tm_hour + 12) % 24:02d}"  # retention's own run deletes nothing meanwhile
    proc = start_broker(tmp_path / "b", ns.addr, name="del-broker", cluster="DelCluster",
                        conf_extra=f"mappedFileSizeCommitLog=65536\nfileReservedTime=1\ndeleteWhen={other_hour}\n"
                                   "diskMaxUsedSpaceRatio=95\ncleanResourceInterval=500\n")
    commitlog = tmp_path / "b" / "store" / "commitlog"
    try:
        wait_until(lambda: mqadmin("topicRoute", "-t", "TBW102", namesrv=ns.addr).code == 0, 20,
                   what="the broker registered")
        assert mqadmin("updateTopic", "-c", "DelCluster", "-t", "DelT", namesrv=ns.addr).code == 0
        with Wire(proc.addr) as w:  # ~200 KB: four 64 KiB CommitLog files
            w.send_each("DelT", (b"d-%04d" % i + b"." * 1000 for i in range(200)))
        files = sorted(commitlog.iterdir())
        assert len(files) >= 4
        for path in files[:2]:  # as if written three hours ago: past fileReservedTime
            os.utime(path, (time.time() - 3 * 3600,) * 2)
        r = mqadmin("deleteExpiredCommitLog", "-c", "DelCluster", namesrv=ns.addr)
        assert (r.code, r.out) == (0, f"{proc.addr}: success\n"), r.err
        assert sorted(commitlog.iterdir()) == files[2:]  # the two old ones gone, the young ones kept
        r = mqadmin("deleteExpiredCommitLog", "-b", proc.addr, "--json", namesrv=ns.addr)
        assert r.code == 0 and r.json() == {"brokers": [proc.addr]}, r.err
        assert sorted(commitlog.iterdir()) == files[2:]
        assert "DELETE_EXPIRED_COMMITLOG" in proc.log_text()
    finally:
        proc.stop(timeout=15)
        ns.stop(timeout=15)


def test_producer_lists_every_group_and_instance_the_broker_holds(broker):
    import pytest_twisted

    from mq.client import Producer, make_message

    producers = [Producer("ProdListG", broker.namesrv, instance_name=f"pl-{i}") for i in range(2)]
    for p in producers:
        p.start()
    try:
        make_topic(broker, "ProdListT", 1)
        for p in producers:  # a send reaches the broker, whose heartbeat registers the producer
            pytest_twisted.blockon(p.send(make_message("ProdListT", "x")))
        data = ok(adm(broker, "producer", "-b", broker.addr, "--json")).json()["data"]
        ours = sorted(data["ProdListG"], key=lambda p: p["clientId"])
        assert len(ours) == 2 and all(p["language"] == "PYTHON" and p["remoteIP"].startswith("/127.0.0.1:")
                                      for p in ours)
        text = ok(adm(broker, "producer", "-b", broker.addr)).out.splitlines()
        mine = [line for line in text if line.startswith("producer group (ProdListG) instance : clientId=")]
        assert len(mine) == 2 and ", language=PYTHON, version=" in mine[0]
    finally:
        for p in producers:
            pytest_twisted.blockon(p.shutdown())
    assert adm(broker, "producer").code == 2  # -b is required
