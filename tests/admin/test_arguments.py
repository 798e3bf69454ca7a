"""Argument parsing: every command of the issue with the original tool's flag letters, and the checks."""

from __future__ import annotations

import argparse
import io
import time

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from mq.admin import cli
from mq.admin.api import EXIT_USAGE
from mq.admin.values import parse_timestamp

REQUIRED = [
    "updateTopic", "deleteTopic", "topicList", "topicRoute", "topicStatus", "topicClusterList", "clusterList",
    "brokerStatus", "getBrokerConfig", "updateBrokerConfig", "updateSubGroup", "deleteSubGroup",
    "consumerProgress", "consumerConnection", "producerConnection", "consumerStatus", "queryMsgById",
    "queryMsgByKey", "queryMsgByUniqueKey", "queryMsgByOffset", "printMsg", "sendMessage", "consumeMessage",
    "resetOffsetByTime", "updateKvConfig", "deleteKvConfig", "wipeWritePerm", "addWritePerm",
    "updateAclConfig", "deleteAclConfig", "updateGlobalWhiteAddr", "clusterAclConfigVersion",
    # the rest of RocketMQ 4.9.8's list
    "updateTopicPerm", "updateOrderConf", "allocateMQ", "getNamesrvConfig", "updateNamesrvConfig",
    "skipAccumulatedMessage", "cloneGroupOffset", "printMsgByQueue", "checkMsgSendRT", "sendMsgStatus", "clusterRT",
    "getConsumerConfig", "exportMetadata", "exportConfigs", "queryCq", "cleanExpiredCQ", "cleanUnusedTopic",
    "exportMetrics", "startMonitoring", "producer", "deleteExpiredCommitLog",
]

#: RocketMQ 4.9.8's MQAdminStartup registers these 56 commands, in this order (docs/admin.md compares).
ROCKETMQ_498 = """updateTopic deleteTopic updateSubGroup deleteSubGroup updateBrokerConfig updateTopicPerm topicRoute
topicStatus topicClusterList brokerStatus queryMsgById queryMsgByKey queryMsgByUniqueKey queryMsgByOffset
queryMsgTraceById printMsg printMsgByQueue sendMsgStatus brokerConsumeStats producerConnection consumerConnection
consumerProgress consumerStatus cloneGroupOffset producer clusterList topicList updateKvConfig deleteKvConfig
wipeWritePerm addWritePerm resetOffsetByTime skipAccumulatedMessage updateOrderConf cleanExpiredCQ
deleteExpiredCommitLog cleanUnusedTopic startMonitoring statsAll allocateMQ checkMsgSendRT clusterRT getNamesrvConfig
updateNamesrvConfig getBrokerConfig getConsumerConfig queryCq sendMessage consumeMessage updateAclConfig
deleteAclConfig clusterAclConfigVersion updateGlobalWhiteAddr exportMetadata exportConfigs exportMetrics""".split()

#: (command, flags of the original tool): letter → long name.
FLAGS = {
    "updateTopic": {"b": "brokerAddr", "c": "clusterName", "t": "topic", "r": "readQueueNums",
                    "w": "writeQueueNums", "p": "perm", "o": "order", "u": "unit", "s": "hasUnitSub"},
    "deleteTopic": {"t": "topic", "c": "clusterName"},
    "topicList": {"c": "clusterModel"},
    "topicRoute": {"t": "topic", "l": "list"},
    "topicStatus": {"t": "topic"},
    "topicClusterList": {"t": "topic"},
    "clusterList": {"m": "moreStats"},
    "brokerStatus": {"b": "brokerAddr", "c": "clusterName"},
    "getBrokerConfig": {"b": "brokerAddr", "c": "clusterName"},
    "updateBrokerConfig": {"b": "brokerAddr", "c": "clusterName", "k": "key", "v": "value"},
    "updateSubGroup": {"b": "brokerAddr", "c": "clusterName", "g": "groupName", "s": "consumeEnable",
                       "m": "consumeFromMinEnable", "d": "consumeBroadcastEnable", "q": "retryQueueNums",
                       "r": "retryMaxTimes", "i": "brokerId", "w": "whichBrokerWhenConsumeSlowly",
                       "a": "notifyConsumerIdsChanged"},
    "deleteSubGroup": {"b": "brokerAddr", "c": "clusterName", "g": "groupName", "r": "removeOffset"},
    "consumerProgress": {"g": "groupName", "s": "showClientIP"},
    "consumerConnection": {"g": "consumerGroup", "b": "brokerAddr"},
    "producerConnection": {"g": "producerGroup", "t": "topic"},
    "consumerStatus": {"g": "consumerGroup", "i": "clientId", "b": "brokerAddr", "s": "jstack"},
    "queryMsgById": {"i": "msgId"},
    "queryMsgByKey": {"t": "topic", "k": "msgKey"},
    "queryMsgByUniqueKey": {"i": "msgId", "t": "topic", "a": "showAll"},
    "queryMsgByOffset": {"t": "topic", "b": "brokerName", "i": "queueId", "o": "offset"},
    "printMsg": {"t": "topic", "c": "charsetName", "s": "subExpression", "b": "beginTimestamp",
                 "e": "endTimestamp", "d": "printBody"},
    "sendMessage": {"t": "topic", "p": "body", "k": "key", "c": "tags", "b": "broker", "i": "qid"},
    "consumeMessage": {"t": "topic", "b": "brokerName", "i": "queueId", "o": "offset", "g": "consumerGroup",
                       "s": "beginTimestamp", "e": "endTimestamp", "c": "MessageNumber"},
    "resetOffsetByTime": {"g": "group", "t": "topic", "s": "timestamp", "f": "force", "c": "cplus"},
    "updateKvConfig": {"s": "namespace", "k": "key", "v": "value"},
    "deleteKvConfig": {"s": "namespace", "k": "key"},
    "wipeWritePerm": {"b": "brokerName"},
    "addWritePerm": {"b": "brokerName"},
    # RocketMQ 4.9.8's ACL commands.
    "updateAclConfig": {"a": "accessKey", "s": "secretKey", "b": "brokerAddr", "c": "clusterName",
                        "w": "whiteRemoteAddress", "i": "defaultTopicPerm", "u": "defaultGroupPerm", "t": "topicPerms",
                        "g": "groupPerms", "m": "admin"},
    "deleteAclConfig": {"a": "accessKey", "b": "brokerAddr", "c": "clusterName"},
    "updateGlobalWhiteAddr": {"g": "globalWhiteRemoteAddresses", "p": "aclFileFullPath", "b": "brokerAddr",
                              "c": "clusterName"},
    "clusterAclConfigVersion": {"b": "brokerAddr", "c": "clusterName"},
    "updateTopicPerm": {"b": "brokerAddr", "c": "clusterName", "t": "topic", "p": "perm"},
    "updateOrderConf": {"t": "topic", "v": "orderConf", "m": "method"},
    "allocateMQ": {"t": "topic", "i": "ipList"},
    "getNamesrvConfig": {},
    "updateNamesrvConfig": {"k": "key", "v": "value"},
    "skipAccumulatedMessage": {"g": "group", "t": "topic", "f": "force"},
    "cloneGroupOffset": {"s": "srcGroup", "d": "destGroup", "t": "topic", "o": "offline"},
    "printMsgByQueue": {"t": "topic", "a": "brokerName", "i": "queueId", "c": "charsetName", "s": "subExpression",
                        "b": "beginTimestamp", "e": "endTimestamp", "p": "printMsg", "d": "printBody", "f": "calculate"},
    "checkMsgSendRT": {"t": "topic", "a": "amount", "s": "size"},
    "sendMsgStatus": {"b": "brokerName", "s": "messageSize", "c": "count"},
    "clusterRT": {"a": "amount", "s": "size", "c": "cluster", "p": "printLog", "m": "machineRoom", "i": "interval"},
    "getConsumerConfig": {"g": "groupName"},
    "exportMetadata": {"c": "clusterName", "b": "brokerAddr", "f": "filePath", "t": "topic", "g": "subscriptionGroup",
                       "s": "specialTopic"},
    "exportConfigs": {"c": "clusterName", "f": "filePath"},
    "queryCq": {"t": "topic", "q": "queue", "i": "index", "c": "count", "b": "broker", "g": "consumer"},
    "cleanExpiredCQ": {"b": "brokerAddr", "c": "cluster"},
    "cleanUnusedTopic": {"b": "brokerAddr", "c": "cluster"},
    "deleteExpiredCommitLog": {"b": "brokerAddr", "c": "cluster"},
    "producer": {"b": "broker"},
    "exportMetrics": {"c": "clusterName", "f": "filePath"},
    "startMonitoring": {},  # the original takes only -n; -i (round interval, default 60 s) is mq's
}


def test_every_command_of_the_issue_exists():
    assert set(REQUIRED) <= set(cli.COMMANDS)
    assert set(FLAGS) == set(REQUIRED)


def test_every_command_of_rocketmq_4_9_8_exists():
    assert len(ROCKETMQ_498) == len(set(ROCKETMQ_498)) == 56
    assert [name for name in ROCKETMQ_498 if name not in cli.COMMANDS] == []


@pytest.mark.parametrize("name", REQUIRED)
def test_flags_use_the_original_letters_and_names(name):
    parser = cli.build_parser().subparsers[name]
    by_short = {}
    for action in parser._actions:
        shorts = [o for o in action.option_strings if len(o) == 2]
        longs = [o for o in action.option_strings if o.startswith("--")]
        for s in shorts:
            by_short[s[1]] = longs[0][2:] if longs else None
    for letter, long_name in FLAGS[name].items():
        assert by_short.get(letter) == long_name, (name, letter)
    assert by_short["n"] == "namesrvAddr"  # every command takes -n


@pytest.mark.parametrize("name", REQUIRED)
def test_command_help_lists_flags_and_exits_0(name, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([name, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for letter, long_name in FLAGS[name].items():
        assert f"-{letter}" in out and f"--{long_name}" in out
    assert "--json" in out and "--namesrvAddr" in out


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in REQUIRED)


def test_help_command(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["help", "topicRoute"])
    assert e.value.code == 0
    assert "--topic" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["topicRoute"],                                   # -t is required
    ["updateTopic", "-t", "T"],                       # neither -b nor -c
    ["updateTopic", "-t", "T", "-b", "a:1", "-c", "C"],  # both
    ["updateTopic", "-t", "T", "-c", "C", "-o", "yes"],  # not true/false
    ["updateTopic", "-t", "T", "-c", "C", "-r", "0"],
    ["consumeMessage", "-t", "T", "-c", "-3"],
    ["printMsg", "-t", "T", "-b", "yesterday"],
    ["noSuchCommand"],
])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == EXIT_USAGE
    assert "error:" in capsys.readouterr().err


def test_defaults_follow_the_original():
    args = cli.build_parser().parse_args(["updateTopic", "-c", "C", "-t", "T"])
    assert (args.readQueueNums, args.writeQueueNums, args.perm, args.order) == (8, 8, 6, False)
    args = cli.build_parser().parse_args(["resetOffsetByTime", "-g", "G", "-t", "T", "-s", "now"])
    assert args.force is True
    args = cli.build_parser().parse_args(["consumeMessage", "-t", "T"])
    assert args.MessageNumber == 128 and args.consumerGroup == "TOOLS_CONSUMER"


def test_java_bool():
    assert cli.java_bool("TRUE") is True and cli.java_bool(" false ") is False
    with pytest.raises(argparse.ArgumentTypeError):
        cli.java_bool("1")


def test_parse_timestamp_forms():
    assert parse_timestamp("now", now_ms=42) == 42
    assert parse_timestamp("1700000000123") == 1700000000123
    expected = int(time.mktime((2024, 5, 1, 12, 30, 45, 0, 0, -1))) * 1000 + 123
    assert parse_timestamp("2024-05-01#12:30:45:123") == expected
    with pytest.raises(ValueError):
        parse_timestamp("2024/05/01")


@pytest_twisted.inlineCallbacks
def test_missing_namesrv_is_a_usage_error(monkeypatch):
    monkeypatch.delenv("NAMESRV_ADDR", raising=False)
    args = cli.build_parser().parse_args(["topicList"])
    out, err = io.StringIO(), io.StringIO()
    status = yield cli.run_command(reactor, args, out, err)
    assert status == EXIT_USAGE
    assert err.getvalue() == ("mqadmin topicList: no NameServer address: give -n host:port[;host:port] "
                              "or set NAMESRV_ADDR\n")


@pytest_twisted.inlineCallbacks
def test_unexpected_exceptions_are_one_line_failures(monkeypatch):
    def boom(api, args):
        return defer.fail(KeyError("x"))

    monkeypatch.setitem(cli.COMMANDS, "topicList", cli.COMMANDS["topicList"].__class__(
        "topicList", "", (), boom))
    args = cli.build_parser().parse_args(["topicList", "-n", "127.0.0.1:1"])
    err = io.StringIO()
    status = yield cli.run_command(reactor, args, io.StringIO(), err)
    assert status == 1 and err.getvalue() == "mqadmin topicList: unexpected error: KeyError: 'x'\n"
