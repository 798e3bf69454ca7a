"""Tables, key/value blocks, times and the --json rendering of command results."""

from __future__ import annotations

import json
import time

from mq.admin import output
from mq.admin.output import Result, format_time, key_values, message_json, message_text, table, to_json
from mq.common.message import MessageExt


def test_table_aligns_columns_and_marks_headers():
    text = table(["Broker Name", "QID", "Last"], [["broker-a", 0, ""], ["b", 12, "x"]])
    assert text.splitlines() == [
        "#Broker Name  #QID  #Last",
        "broker-a      0",
        "b             12    x",
    ]


def test_table_without_rows_is_the_header_line():
    assert table(["Group", "TPS"], []) == "#Group  #TPS"


def test_table_cells_none_and_booleans():
    assert table(["a", "b"], [[None, True]]).splitlines()[1].rstrip() == "    true"


def test_key_values_pads_keys():
    assert key_values({"a": 1, "long key": "v"}) == "a        : 1\nlong key : v"
    assert key_values({"k": "v"}, " = ") == "k = v"
    assert key_values({}) == ""


def test_format_time_is_local_time_with_millis():
    ms = int(time.mktime((2024, 5, 1, 12, 30, 45, 0, 0, -1))) * 1000 + 7
    assert format_time(ms) == "2024-05-01 12:30:45,007"
    assert format_time(0) == "" and format_time(None) == "" and format_time(-1) == ""


def test_result_renders_text_or_json():
    r = Result({"b": [1, 2], "a": "é"}, "human text")
    assert r.render(False) == "human text"
    assert json.loads(r.render(True)) == {"b": [1, 2], "a": "é"}
    assert "é" in to_json({"a": "é"})  # readable, not \u escaped
    assert list(json.loads(r.render(True))) == ["b", "a"]  # keys keep their order


def _message() -> MessageExt:
    return MessageExt(topic="T", body="héllo".encode(), properties={"TAGS": "tagA", "KEYS": "k1 k2",
                                                                     "UNIQ_KEY": "ABC"},
                      queue_id=2, queue_offset=5, born_host=("10.0.0.1", 1234), store_host=("10.0.0.2", 10911),
                      msg_id="0A00000200002AAF0000000000000010", commit_log_offset=16, born_timestamp=1,
                      store_timestamp=2)


def test_message_json_and_text_agree():
    m = _message()
    data = message_json(m, "broker-a")
    assert data["msgId"] == "ABC" and data["offsetMsgId"] == m.msg_id and data["keys"] == "k1 k2"
    assert data["body"] == "héllo" and data["storeHost"] == "10.0.0.2:10911" and data["brokerName"] == "broker-a"
    text = message_text(m, "broker-a")
    assert "MsgId           : ABC" in text
    assert "Tags            : [tagA]" in text
    assert "Properties      : {KEYS=k1 k2, TAGS=tagA, UNIQ_KEY=ABC}" in text
    assert text.rstrip().endswith("Message Body    : héllo")
    assert "Message Body" not in message_text(m, with_body=False)
    assert "body" not in message_json(m, with_body=False)


def test_undecodable_body_is_replaced_not_fatal():
    m = _message()
    m.body = b"\xff\xfe"
    assert message_json(m)["body"] == "\ufffd\ufffd"
    assert "Message Body" in message_text(m, charset="no-such-charset")


# --------------------------------------------------------------------------------------------- rich layout


def test_plain_table_keeps_cells_literal_and_unwrapped():
    long = "x" * 500
    text = table(["Name", "Value"], [["[bold]a[/bold]", long], ["b", ":smile:"]])
    assert text.splitlines() == [
        "#Name           #Value",
        f"[bold]a[/bold]  {long}",
        "b               :smile:",
    ]
    assert "\x1b" not in text


def test_plain_key_values_keep_brackets_and_long_values():
    assert key_values({"k": "[red]" + "v" * 300}) == "k : [red]" + "v" * 300


def test_terminal_tables_have_rules_and_bold_headers():
    output.use_terminal(True)
    try:
        text = table(["Broker Name", "QID"], [["broker-a", 0]])
        kv = key_values({"key": "value"})
    finally:
        output.use_terminal(False)
    assert "\x1b[1m" in text and "─" in text  # bold header, a rule under it
    assert "broker-a" in text and "value" in kv
    assert table(["A"], [["b"]]) == "#A\nb"  # back to plain
