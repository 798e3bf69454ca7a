"""The Raft core's timing and bounds, checked once so the core can trust them.

Defaults are faster than DLedger's (heartbeat 2 s, election after 6 s): a heartbeat every 300 ms and an
election after a random 1.0-2.0 s of silence. Safety never depends on timing; liveness needs an election
timeout well above the time a heartbeat round takes (a LAN round trip plus an fsync, a few ms, plus a reactor
stall of a few hundred ms at worst), and three heartbeats fit in the shortest timeout, so one lost heartbeat
never starts an election. docs/dledger.md gives the reasoning and the measured failover time.
"""

from __future__ import annotations

import attrs


def _positive_ms(low: int, high: int):
    def check(_inst, attribute, value) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{attribute.name}: {value!r} is outside {low}..{high}")

    return check


@attrs.frozen
class RaftConfig:
    heartbeat_ms: int = attrs.field(default=300, validator=_positive_ms(1, 60_000))
    election_min_ms: int = attrs.field(default=1_000, validator=_positive_ms(2, 600_000))
    election_max_ms: int = attrs.field(default=2_000, validator=_positive_ms(3, 600_000))
    #: Bounds of one AppendRequest (a single larger entry still goes, alone).
    max_batch_entries: int = attrs.field(default=256, validator=_positive_ms(1, 65_536))
    max_batch_bytes: int = attrs.field(default=1 << 20, validator=_positive_ms(1, 64 << 20))
    #: Entries a leader holds uncommitted before it refuses proposals (DLedger's maxPendingRequestsNum).
    max_pending: int = attrs.field(default=10_000, validator=_positive_ms(1, 1_000_000))
    #: The largest entry body (a RocketMQ batch is at most 4 MiB by default).
    max_entry_bytes: int = attrs.field(default=8 << 20, validator=_positive_ms(1, 256 << 20))

    def __attrs_post_init__(self) -> None:
        if self.election_max_ms <= self.election_min_ms:
            raise ValueError(f"election_max_ms {self.election_max_ms} must exceed election_min_ms {self.election_min_ms}")
        if self.election_min_ms < 2 * self.heartbeat_ms:
            raise ValueError(f"election_min_ms {self.election_min_ms} must be at least two heartbeats "
                             f"({2 * self.heartbeat_ms})")
