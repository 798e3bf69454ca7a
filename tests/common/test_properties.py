"""Config files and config RPC bodies are read as java.util.Properties reads them (javaproperties), and a
file's keys are sorted out: used, RocketMQ's Java-only tuning ignored, anything else refused in one line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mq.broker.config import BrokerConfig, layered_config
from mq.common.config import split_settings, unknown_setting
from mq.common.properties import format_properties, parse_properties
from mq.common.rocketmq_keys import BROKER_IGNORED


def test_every_form_of_java_properties():
    text = (
        "# a comment\n"
        "! another comment\n"
        "brokerClusterName=C1\n"
        "brokerName : b1\n"
        "brokerId 0\n"
        "namesrvAddr=a:1;\\\n"
        "            b:2\n"
        "regionId=\\u0052egion\\tX\n"
        "key\\ with\\ spaces=v\n"
        "   \n"
        "empty\n"
        "brokerClusterName=C2\n"
    )
    assert parse_properties(text) == {
        "brokerClusterName": "C2", "brokerName": "b1", "brokerId": "0", "namesrvAddr": "a:1;b:2",
        "regionId": "Region\tX", "key with spaces": "v", "empty": "",
    }


def test_a_malformed_unicode_escape_is_a_value_error():
    with pytest.raises(ValueError, match="escape"):
        parse_properties("regionId=\\u12\n")


@given(st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=40), max_size=8))
def test_escaped_format_round_trips_any_value(values):
    assert parse_properties(format_properties(values, escaped=True)) == values


def test_plain_format_is_what_rocketmq_writes_in_a_config_body():
    assert format_properties({"b": True, "a": "x:1"}) == "a=x:1\nb=true\n"


def test_an_unknown_key_names_the_nearest_known_one():
    known = BrokerConfig.known_keys()
    assert unknown_setting("brokerNmae", known) == "unknown setting 'brokerNmae' (did you mean brokerName?)"
    assert "did you mean listenPort?" in unknown_setting("listenport", known)
    assert unknown_setting("zzzzzzzz", known) == "unknown setting 'zzzzzzzz'"


def test_split_settings_keeps_ignores_and_refuses():
    known = BrokerConfig.known_keys()
    used, ignored = split_settings({"brokerName": "b", "sendMessageThreadPoolNums": "64",
                                    "enableLmq": "false", "haListenPort": "0"}, known, BROKER_IGNORED)
    assert used == {"brokerName": "b", "haListenPort": "0"}
    assert sorted(ignored) == ["enableLmq", "sendMessageThreadPoolNums"]
    with pytest.raises(ValueError, match="does not implement a DLedger log outside"):
        split_settings({"storePathDLedgerCommitLog": "/x"}, known, BROKER_IGNORED)
    with pytest.raises(ValueError, match="did you mean fileReservedTime"):
        split_settings({"fileReserveTime": "48"}, known, BROKER_IGNORED)


def test_layered_config_refuses_an_unknown_file_key_and_drops_an_ignored_one(tmp_path):
    store = {"storePathRootDir": str(tmp_path)}
    with pytest.raises(ValueError, match=r"unknown setting 'deleteWhn' \(did you mean deleteWhen\?\) \(in x.conf\)"):
        layered_config({"deleteWhn": "04", **store}, {}, "x.conf")
    config, _ = layered_config({"serverWorkerThreads": "8", **store}, {}, "x.conf")
    assert "serverWorkerThreads" not in config.extra
