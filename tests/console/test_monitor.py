"""Consumer monitors (mq.console.monitor): bounds per group, the alarms they raise, kept in a file, bounded."""

from __future__ import annotations

import json

import pytest

from mq.console import monitor as mon
from mq.console.monitor import Monitors


def test_bounds_raise_alarms_and_survive_a_restart(tmp_path):
    path = str(tmp_path / "console" / "monitor.json")
    m = Monitors(path)
    m.load()
    m.set("G1", 2, 100)
    assert m.alarms({"group": "G1", "count": 1, "diffTotal": 101}) == ["1 online, fewer than 2",
                                                                       "lag 101, more than 100"]
    assert m.alarms({"group": "G1", "count": 2, "diffTotal": 100}) == []
    assert m.alarms({"group": "Other", "count": 0, "diffTotal": 10**9}) == []  # not monitored
    again = Monitors(path)
    again.load()
    assert again.table == {"G1": {"minCount": 2, "maxDiffTotal": 100}}
    assert again.delete("G1") and not again.delete("G1")
    third = Monitors(path)
    third.load()
    assert third.table == {}


@pytest.mark.parametrize("content", ["[1]", "{bad", '{"G": {"minCount": -1, "maxDiffTotal": 1}}',
                                     '{"G": {"minCount": 1}}', '{"G": {"minCount": true, "maxDiffTotal": 1}}',
                                     "[" * 200_000])  # the last: nested past the parser's stack
def test_a_file_not_in_shape_is_not_read_and_kept_aside(tmp_path, content):
    """Not read, and not saved over by the next change: the operator's file is moved beside, as it was."""
    path = tmp_path / "monitor.json"
    path.write_text(content)
    m = Monitors(str(path))
    m.load()
    assert m.table == {}
    m.set("New", 1, 1)
    assert (tmp_path / "monitor.json.unreadable").read_text() == content
    assert json.loads(path.read_text()) == {"New": {"minCount": 1, "maxDiffTotal": 1}}


def test_the_number_of_monitored_groups_and_the_file_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(mon, "MAX_MONITORS", 2)
    m = Monitors(None)
    m.set("A", 1, 1)
    m.set("B", 1, 1)
    m.set("A", 2, 2)  # a change of a monitored group is always taken
    with pytest.raises(ValueError, match="2 groups are monitored already"):
        m.set("C", 1, 1)
    path = tmp_path / "monitor.json"
    path.write_text(json.dumps({"A": {"minCount": 1, "maxDiffTotal": 1}}) + " " * mon.MAX_FILE_BYTES)
    big = Monitors(str(path))
    big.load()
    assert big.table == {}
