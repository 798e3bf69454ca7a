"""``mqadmin clusterList -m`` (yesterday's and today's in/out totals) and ``-i`` (print again every interval):
the parser, the totals, and end to end against real ``twistd namesrv`` and ``twistd broker`` processes."""

from __future__ import annotations

import argparse
import io
import json
import queue
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import attr
import pytest
from twisted.internet import defer, task

from mq.admin import cli
from tests.admin.conftest import mqadmin, start_broker
from tests.support.processes import child_env, wait_until

HEADER = "#Cluster Name"
MORE_HEADERS = ["#Cluster", "Name", "#Broker", "Name", "#InTotalYest", "#OutTotalYest", "#InTotalToday",
                "#OutTotalToday"]


@pytest.fixture(scope="module")
def broker(namesrv, tmp_path_factory):
    proc = start_broker(tmp_path_factory.mktemp("broker"), namesrv.addr, name="cl-broker", cluster="ClCluster")
    proc.namesrv = namesrv.addr
    wait_until(lambda: mqadmin("topicRoute", "-t", "TBW102", namesrv=namesrv.addr).code == 0, 20,
               what="the broker registered with the NameServer")
    yield proc
    proc.stop(timeout=15)


def json_documents(text: str) -> list:
    """The JSON documents printed one after another."""
    decoder, docs, pos, text = json.JSONDecoder(), [], 0, text.strip()
    while pos < len(text):
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return docs


def test_flags_are_the_originals_and_count_is_hidden():
    parser = cli.build_parser().subparsers["clusterList"]
    flags = {o: a.dest for a in parser._actions for o in a.option_strings}
    assert flags["-m"] == "moreStats" and flags["--moreStats"] == "moreStats"
    assert flags["-i"] == "interval" and flags["--interval"] == "interval"
    assert flags["--count"] == "count"
    assert "--count" not in parser.format_help()
    args = parser.parse_args(["-i", "2", "-m"])
    assert (args.interval, args.moreStats, args.count) == (2.0, True, None)


@pytest.mark.parametrize("text", ["0", "-1", "x", "inf"])
def test_interval_must_be_a_positive_number(text):
    with pytest.raises(argparse.ArgumentTypeError):
        cli.positive_seconds(text)


def test_interval_is_the_time_between_rounds(monkeypatch):
    """``-i 1``: a round at once, the next one second later, not sooner (the reactor's clock, task.Clock)."""
    rounds = []

    def one_round(api, args):
        rounds.append(clock.seconds())
        return defer.succeed(SimpleNamespace(render=lambda as_json: f"round {len(rounds)}"))

    clock = task.Clock()
    monkeypatch.setitem(cli.COMMANDS, "clusterList", attr.evolve(cli.COMMANDS["clusterList"], run=one_round))
    args = cli.build_parser().parse_args(["clusterList", "-n", "127.0.0.1:1", "-i", "1", "--count", "3"])
    out = io.StringIO()
    done = cli.run_command(clock, args, out, io.StringIO())
    assert rounds == [0]
    clock.advance(0.999)
    assert rounds == [0]
    clock.advance(0.001)
    assert rounds == [0, 1]
    clock.advance(1)
    assert rounds == [0, 1, 2] and out.getvalue() == "round 1\nround 2\nround 3\n"
    assert done.called and done.result == 0


def test_only_commands_registered_as_repeating_take_interval():
    assert sorted(name for name, cmd in cli.COMMANDS.items() if cmd.repeats) == ["clusterList", "clusterRT", "startMonitoring"]


def test_day_totals_from_the_morning_snapshots_as_the_original():
    status = {"msgPutTotalYesterdayMorning": "100", "msgPutTotalTodayMorning": "250", "msgPutTotalTodayNow": "300",
              "msgGetTotalYesterdayMorning": "10", "msgGetTotalTodayMorning": "40", "msgGetTotalTodayNow": "41"}
    assert cli.day_totals(status, "Put") == (150, 50)
    assert cli.day_totals(status, "Get") == (30, 1)
    # mq's broker keeps no snapshots: today is the count since it started, yesterday unknown
    assert cli.day_totals({"msgPutTotalTodayNow": 7}, "Put") == (None, 7)
    assert cli.day_totals({}, "Get") == (None, None)


def test_more_stats_shows_the_put_and_get_totals(broker):
    r = mqadmin("updateTopic", "-c", broker.cluster, "-t", "ClTopic", "-r", "1", "-w", "1", namesrv=broker.namesrv)
    assert r.code == 0, r.err
    for i in range(3):
        r = mqadmin("sendMessage", "-t", "ClTopic", "-p", f"m{i}", namesrv=broker.namesrv)
        assert r.code == 0, r.err
    r = mqadmin("clusterList", "-m", namesrv=broker.namesrv)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == MORE_HEADERS
    row = [line.split() for line in lines if line.startswith(broker.cluster)][0]
    assert row[:4] == [broker.cluster, broker.name, "0", "0"]  # started today: both mornings are 0
    assert int(row[4]) >= 3 and int(row[5]) >= 0
    entry = [e for e in mqadmin("clusterList", "-m", "--json", namesrv=broker.namesrv).json()
             if e["brokerName"] == broker.name][0]
    assert entry["inTotalToday"] >= 3 and entry["inTotalYest"] == 0 and entry["outTotalYest"] == 0
    assert entry["addr"] == broker.addr and entry["version"] == "V4_9_8"


def test_interval_prints_again_until_the_count(broker):
    r = mqadmin("clusterList", "-i", "0.2", "--count", "3", namesrv=broker.namesrv)
    assert r.code == 0, r.err
    assert [line for line in r.out.splitlines() if line.startswith(HEADER)] == [r.out.splitlines()[0]] * 3
    assert sum(broker.addr in line for line in r.out.splitlines()) == 3
    r = mqadmin("clusterList", "-m", "-i", "0.2", "--count", "2", "--json", namesrv=broker.namesrv)
    assert r.code == 0, r.err
    docs = json_documents(r.out)
    assert len(docs) == 2 and all(any(e["addr"] == broker.addr for e in doc) for doc in docs)


def test_interval_prints_until_terminated(broker):
    proc = subprocess.Popen([sys.executable, "-m", "mq.admin.cli", "clusterList", "-i", "1"],
                            env=child_env({"NAMESRV_ADDR": broker.namesrv}), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: "queue.Queue[str]" = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)
    reader.start()
    try:
        seen, deadline = 0, time.monotonic() + 60
        while seen < 2:  # two tables (how far apart is test_interval_is_the_time_between_rounds's, task.Clock)
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            seen += line.startswith(HEADER)
        assert proc.poll() is None  # still printing
    finally:
        proc.terminate()
        code = proc.wait(timeout=30)
    assert code == 0, proc.stderr.read()
