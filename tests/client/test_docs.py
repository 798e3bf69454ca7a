"""The examples of docs/client.md run as they are written (NAMESRV_ADDR set, ExampleTopic created)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support.processes import REPO, child_env

DOC = (REPO / "docs" / "client.md").read_text()
EXAMPLES = dict(re.findall(r"```python\n# example: (\S+)\n(.*?)```", DOC, re.S))


def test_every_example_is_found():
    assert set(EXAMPLES) == {"blocking", "producer", "push", "lite-pull", "transaction",
                              "request-reply"}


@pytest.fixture(scope="module")
def example_cluster(cluster):
    cluster.create_topic("ExampleTopic")
    return cluster


@pytest.mark.parametrize("name", ["blocking", "producer", "push", "lite-pull", "transaction",
                                  "request-reply"])
def test_example_runs(example_cluster, name, tmp_path):
    out = subprocess.run([sys.executable, "-c", EXAMPLES[name]], capture_output=True, timeout=120, cwd=str(tmp_path),
                         env=child_env({"NAMESRV_ADDR": example_cluster.namesrv_addr}))
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-3000:]
