"""The official C++ client (rocketmq 0.4.4) sending synchronously to a DLedger group of three ``twistd broker``
processes while the leader is killed with SIGKILL: no acknowledged message is lost. The client finds the new
master in the NameServer's route by itself (its route poll, 30 s in the C++ client), unchanged."""

from __future__ import annotations

import json
import subprocess
import threading

from mq.client.simple import create_topic_request
from mq.remoting.codes import ResponseCode as RC
from tests.broker.dledger.group_support import DLedgerCluster
from tests.broker.test_ha_integration import drain
from tests.broker.wire import call
from tests.interop.test_cpp_client import CPP_PYTHON, SCRIPT, pytestmark  # noqa: F401 - skip without the C++ client
from tests.support.processes import REPO, child_env, wait_until

TOPIC = "CppDl"


def test_cpp_sync_sends_across_a_leader_kill_lose_nothing_acknowledged(twistd, tmp_path):
    group = DLedgerCluster(twistd, tmp_path).start_all()
    master = group.wait_master()
    assert call(master, create_topic_request(TOPIC, queues=4)).code == RC.SUCCESS
    # ~70 s of sends, 25 ms apart: well past the C++ client's 30 s route poll after the kill, even on a loaded
    # machine (45 s once ended before the client's poll under CI-like load)
    specs = tmp_path / "specs.json"
    specs.write_text(json.dumps([{"body": f"cpp-dl-{i:05d}", "tags": "t", "sleep_ms": 25} for i in range(2800)]))
    proc = subprocess.Popen([CPP_PYTHON, str(SCRIPT), "produce", group.namesrv.addr, TOPIC, "sync_each",
                             f"@{specs}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=child_env(), cwd=str(REPO))
    results = []
    def read() -> None:
        for line in proc.stdout:
            if line.startswith("{"):
                results.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_until(lambda: sum(r["status"] == "OK" for r in results) >= 100, 60, 0.05,
                   what="the C++ client's first acknowledged sends")
        at_kill = len(results)
        group.procs[group.node_of(master)].kill()
        new = group.wait_master(30, other_than=master)
        assert proc.wait(420) == 0  # 2,800 sends of a 25 ms pause and a quorum round each: 100-150 s, more loaded
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    acked = [r["body"] for r in results if r["status"] == "OK"]
    # acknowledged after the kill: by the new master (the client's own retry may hide the failure altogether)
    after = [r for r in results[at_kill:] if r["status"] == "OK"]
    got = {b.decode() for b in drain(new, TOPIC, 4)[0]}
    print(f"\nC++ client across a leader kill: {len(acked)} acknowledged, "
          f"{sum(r['status'] == 'ERROR' for r in results)} failed, {len(set(acked) - got)} acknowledged lost")
    assert not set(acked) - got
    assert len(after) > 1, "the C++ client never sent to the new master"  # one may have been in flight
