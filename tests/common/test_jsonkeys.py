"""The reader of fastjson's object-keyed maps (TopicStatsTable, ConsumeStats, ResetOffsetBody)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mq.admin.values import MessageQueue, queue_map
from mq.common import fastjson, jsonkeys


def test_object_keys_become_pairs_in_order():
    body = ('{"offsetTable":{{"brokerName":"b","queueId":1,"topic":"T"}:{"maxOffset":5,"minOffset":0},'
            '{"brokerName":"a","queueId":0,"topic":"T"}:{"maxOffset":7,"minOffset":2}}}')
    table = jsonkeys.loads(body)["offsetTable"]
    assert isinstance(table, jsonkeys.ObjectKeyMap)
    assert table == [({"brokerName": "b", "queueId": 1, "topic": "T"}, {"maxOffset": 5, "minOffset": 0}),
                     ({"brokerName": "a", "queueId": 0, "topic": "T"}, {"maxOffset": 7, "minOffset": 2})]
    assert queue_map(table) == {MessageQueue("T", "b", 1): {"maxOffset": 5, "minOffset": 0},
                                MessageQueue("T", "a", 0): {"maxOffset": 7, "minOffset": 2}}


def test_what_the_broker_writes_reads_back():
    from mq.broker.processor.admin import MessageQueue as BrokerQueue

    body = fastjson.dumps_bytes({"consumeTps": 1.5, "offsetTable": {
        BrokerQueue("T", "b", 3): {"brokerOffset": 9, "consumerOffset": 4, "lastTimestamp": 0}}})
    data = jsonkeys.loads(body)
    assert data["consumeTps"] == 1.5
    assert queue_map(data["offsetTable"]) == {
        MessageQueue("T", "b", 3): {"brokerOffset": 9, "consumerOffset": 4, "lastTimestamp": 0}}


def test_unquoted_integer_keys_whitespace_and_literals():
    text = '{ "brokerAddrs" : {0:"a:1", 1 : "b:2"}, "x": [true, false, null, -1.5e3, ""], "e": {}, "l": [] }'
    assert jsonkeys.loads(text) == {"brokerAddrs": {"0": "a:1", "1": "b:2"}, "x": [True, False, None, -1500.0, ""],
                                    "e": {}, "l": []}


def test_empty_object_keyed_map_is_a_dict_and_queue_map_accepts_it():
    assert queue_map(jsonkeys.loads('{"offsetTable":{}}')["offsetTable"]) == {}


def test_c_plus_plus_reset_body_list_form():
    body = '{"offsetTable":[{"brokerName":"b","offset":12,"queueId":0,"topic":"T"}]}'
    assert queue_map(jsonkeys.loads(body)["offsetTable"]) == {MessageQueue("T", "b", 0): 12}


@pytest.mark.parametrize("bad", ['{"a":1', '{"a" 1}', "[1 2]", '{"a":1} x', "{:1}", "", "[" * 100_000,
                                 '{"a":' * 50_000, "{{" * 50_000])
def test_malformed_input_is_a_value_error(bad):
    with pytest.raises(ValueError):
        jsonkeys.loads(bad)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_standard_json_reads_like_the_json_module(value):
    text = json.dumps(value)
    assert jsonkeys.loads(text) == json.loads(text)
    assert jsonkeys.loads(json.dumps(value, indent=2).encode()) == json.loads(text)
