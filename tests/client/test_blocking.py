"""The blocking facade, from a plain Python program (a subprocess: no reactor of its own)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.processes import REPO, child_env


def test_blocking_producer_push_and_lite_pull_in_a_plain_program(cluster, unique):
    topic = f"T_{unique}"
    cluster.create_topic(topic, brokers=["broker-a"])
    result = subprocess.run([sys.executable, str(Path(__file__).with_name("blocking_program.py")),
                             cluster.namesrv_addr, topic, f"G_{unique}"], capture_output=True, timeout=150,
                            env=child_env(), cwd=str(REPO))
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    lines = {k: v for line in result.stdout.decode().splitlines() for k, v in json.loads(line).items()}
    assert lines["sent"] == ["SEND_OK"] * 10
    assert lines["batch_ids"] == 5
    expected = sorted([f"m{i}" for i in range(10)] + [f"b{i}" for i in range(5)] + ["oneway"])
    assert lines["pushed"] == expected
    assert lines["reactor_thread_used"] is False
    assert lines["polled"] == sorted(f"m{i}" for i in range(10))
