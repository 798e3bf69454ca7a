"""Interop: the Node client ali-ons (version 121, unquoted route keys, JSON2 parser) through our services."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor, utils

from mq.client.simple import SimpleClient
from mq.remoting.codes import ResponseCode
from tests.support.processes import free_port

HERE = Path(__file__).resolve().parent
NODE_PACKAGES = ["ali-ons@3.12", "urllib@2"]


def node_modules() -> Path:
    """ali-ons installed once per machine under a cache directory (npm registry); skip when impossible."""
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("node and npm are not installed")
    root = Path(os.environ.get("MQ_INTEROP_CACHE", Path.home() / ".cache" / "mq-interop")) / "node"
    root.mkdir(parents=True, exist_ok=True)
    # npm makes node_modules/ali-ons before it has unpacked the rest: a marker written after it finished says
    # the install is whole, and a lock makes the other suites CI runs at once (one HOME) wait for it
    marker, wanted = root / "installed", " ".join(NODE_PACKAGES)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists() or marker.read_text() != wanted:
            shutil.rmtree(root / "node_modules", ignore_errors=True)  # an interrupted install's leftovers
            try:
                done = subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix",
                                       str(root), *NODE_PACKAGES], capture_output=True, text=True, timeout=300)
            except subprocess.TimeoutExpired:
                pytest.skip(f"npm did not install {NODE_PACKAGES} within 300 s")
            if done.returncode != 0:
                pytest.skip(f"npm could not install {NODE_PACKAGES}: {done.stderr.strip()[-300:]}")
            marker.write_text(wanted)
    return root / "node_modules"


@pytest_twisted.inlineCallbacks
def test_ali_ons_produces_and_consumes(twistd, tmp_path):
    modules = node_modules()
    ns_port, broker_port = free_port(), free_port()
    proc = twistd("mq", "--namesrv-port", str(ns_port), "--port", str(broker_port), "--ip", "127.0.0.1",
                  "--store", str(tmp_path / "store"), "--kv-config", str(tmp_path / "kv.json"))
    proc.wait_port(ns_port)
    proc.wait_port(broker_port)
    client = SimpleClient(reactor)
    try:  # ali-ons does not create topics through TBW102: create it first, as admin tools do
        created = yield client.create_topic(f"127.0.0.1:{broker_port}", "NodeTopic")
        assert created.code == ResponseCode.SUCCESS
    finally:
        yield client.close()
    env = dict(os.environ, NODE_PATH=str(modules))
    # Run node without blocking the reactor: the services live in another process, but the test's
    # reactor must stay free for pytest-twisted.
    out, err, code = yield utils.getProcessOutputAndValue(
        shutil.which("node"), [str(HERE / "ali_ons_roundtrip.js"), f"127.0.0.1:{ns_port}", "NodeTopic"],
        env=env, reactor=reactor)
    lines = out.decode().strip().splitlines()
    assert lines, f"node printed nothing (exit {code}): {err.decode()[-2000:]}"
    result = json.loads(lines[-1])
    assert "error" not in result, result.get("error")
    assert result["sendStatus"] == "SEND_OK"
    assert result["received"][0] == {"body": "hello from node", "tags": "NodeTag", "topic": "NodeTopic"}
