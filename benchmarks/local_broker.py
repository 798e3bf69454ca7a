"""A ``twistd namesrv`` and one ``twistd broker`` on loopback for the benchmarks that drive real clients."""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

from tests.support.processes import TwistdProcess, free_port


def start_namesrv_and_broker(tmp: Path, conf: str, name: str = "bench") -> Tuple[List[TwistdProcess], str, str]:
    """(processes to stop, last first; NameServer address; broker address): the broker runs ``conf`` as its
    broker.conf, its store under ``tmp``."""
    ns_port, port = free_port(), free_port()
    procs = []
    ns = TwistdProcess("namesrv", ["--port", str(ns_port), "--kv-config", str(tmp / "kv.json")], tmp / "ns")
    procs.append(ns.start())
    ns.wait_port(ns_port)
    (tmp / "broker.conf").write_text(conf)
    broker = TwistdProcess("broker", ["--port", str(port), "--namesrv", f"127.0.0.1:{ns_port}", "--store",
                                      str(tmp / "store"), "--ip", "127.0.0.1", "--broker-name", name,
                                      "--config", str(tmp / "broker.conf")], tmp / "broker")
    procs.append(broker.start())
    broker.wait_port(port)
    return procs, f"127.0.0.1:{ns_port}", f"127.0.0.1:{port}"
