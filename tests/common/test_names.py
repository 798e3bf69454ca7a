"""Topic and group names: RocketMQ's rule, matched whole, and the one helper that makes a path of a name."""

from __future__ import annotations

import os

import pytest

from mq.common.names import IllegalName, group_error, path_under, retry_group_error, topic_error

HOSTILE = ["", ".", "..", "../x", "../../etc", "/", "/tmp/x", "a/b", "a\\b", "a\x00b", "T\n", "T\r", "\nT",
           "T ", "é", "漢字", "T\u2028", "%RETRY%bad/group", "a.b", "~root", "$HOME", "*", "a:b"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_neither_topics_nor_groups(name):
    assert topic_error(name) and group_error(name)


def test_the_whole_name_must_match():
    # ``re.match`` with ``$`` took "T\n" (``$`` matches before a final newline).
    assert "characters outside" in topic_error("TopicTest\n")
    assert "characters outside" in group_error("G\n")
    assert topic_error("%RETRY%group_1|x-y") is None and group_error("CID_a-b|c%") is None


def test_lengths_are_rocketmqs():
    assert topic_error("t" * 127) is None and "longer than 127" in topic_error("t" * 128)
    assert group_error("g" * 255) is None and "longer than 255" in group_error("g" * 256)
    assert retry_group_error("g" * 120) is None
    assert "too long for its retry topic" in retry_group_error("g" * 121)
    assert "characters outside" in retry_group_error("bad/group")


def test_path_under_keeps_legal_names_inside_their_root(tmp_path):
    root = str(tmp_path / "cq")
    assert path_under(root, "TopicTest", "0") == os.path.join(root, "TopicTest", "0")
    assert path_under(root + "/", "%DLQ%G", "-1") == os.path.join(root, "%DLQ%G", "-1")


@pytest.mark.parametrize("parts", [("..",), ("../x",), ("/etc",), (".",), ("",), ("T", ".."), ("T", "../../x"),
                                   ("T", "/abs"), ("T\n",), ("a\x00",), ("T", "")])
def test_path_under_refuses_what_could_leave_the_root(tmp_path, parts):
    with pytest.raises(IllegalName):
        path_under(str(tmp_path / "cq"), *parts)
