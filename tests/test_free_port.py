"""The test processes' port picker: a whole suite's worth of ports, none handed out twice in a row."""

from __future__ import annotations

from tests.support import processes


def test_a_whole_suites_worth_of_ports_never_runs_out():
    """A suite picks a couple of thousand ports (a broker takes three). With a thousand remembered picks each
    keeping seven ports out, a slice of about 2,800 had none left, and a suite's last tests failed."""
    picked = [processes.free_port() for _ in range(3000)]
    assert len(picked) == 3000 and all(p in processes._service_ports() for p in picked)
    recent = picked[-16:]  # the picks a test makes before binding any are kept apart
    assert all(abs(a - b) > 3 for i, a in enumerate(recent) for b in recent[i + 1:])
