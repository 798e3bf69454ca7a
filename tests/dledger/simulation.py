"""A deterministic simulation of a Raft group: N ``RaftNode``s in one process, one seeded RNG for everything.

Simulated time in ms; an event heap (time, sequence) so equal times run in a fixed order. The network drops,
delays, duplicates and reorders messages and partitions nodes (one-way cuts too); disks keep writes in a page
cache until an fsync completes, and a crash keeps only a random prefix of what was not yet synced (torn at
entry granularity); crashed nodes restart from what their disk holds. A client proposes to whoever says it
leads and sometimes asks a leader to transfer leadership.

After every event the invariants are checked (``Checker``); a failure raises ``SimulationFailure`` whose
message says how to replay the seed:

    python -m tests.dledger.simulation --seed 1234 --nodes 3 --trace

The run ends with a heal phase (every node up, no partition, no loss): a leader must appear and a new
proposal commit within ``LIVENESS_BOUND_MS``, and every node must then hold the same committed log.
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
from typing import Callable, Dict, List, Optional, Tuple

import attrs

from mq.dledger.config import RaftConfig
from mq.dledger.log import MemoryLog, RaftLog, TermRuns
from mq.dledger.messages import Append, Entry, HardState, Output, Proposed, Truncate
from mq.dledger.node import LEADER, RaftNode
from mq.dledger.store import Compact

#: The simulation's timing: the defaults scaled down ten times (only ratios matter to the protocol), so a
#: run covers many elections in few events.
SIM_CONFIG = RaftConfig(heartbeat_ms=30, election_min_ms=100, election_max_ms=200, max_batch_entries=16,
                        max_batch_bytes=4096, max_pending=200)
LIVENESS_BOUND_MS = 3_000


class SimulationFailure(AssertionError):
    pass


@attrs.define
class Disk:
    """What survives a crash (``entries``, ``hard_state``) and the writes still in the page cache."""

    hard_state: HardState = HardState(0, None)
    entries: List[Entry] = attrs.Factory(list)  # entries base+1.. (retention deleted those up to base)
    base: int = 0
    base_term: int = 0
    cache: List[object] = attrs.Factory(list)  # persist operations not yet synced
    syncing: int = 0  # how many of ``cache`` the fsync in flight covers (0: none in flight)

    def apply(self, ops, check: Callable[[Entry], None]) -> None:
        for op in ops:
            if isinstance(op, Truncate):
                if op.index <= self.base:
                    raise SimulationFailure(f"truncation at {op.index}, at or below the disk's base {self.base}")
                for e in self.entries[op.index - self.base - 1:]:
                    check(e)
                del self.entries[op.index - self.base - 1:]
            elif isinstance(op, Compact):
                k = op.index - self.base
                if k > len(self.entries):
                    raise SimulationFailure(f"retention up to {op.index}, beyond the disk's end")
                if k > 0:
                    self.base, self.base_term = op.index, self.entries[k - 1].term
                    del self.entries[:k]
            else:
                for e in op.entries:
                    if e.index != self.base + len(self.entries) + 1:
                        raise SimulationFailure(f"disk write of entry {e.index} after "
                                                f"{self.base + len(self.entries)}")
                    self.entries.append(e)

    def holds(self, e: Entry) -> bool:
        k = e.index - self.base - 1
        return 0 <= k < len(self.entries) and self.entries[k] == e

    # -- the store interface ``RaftLog`` reads evicted bodies through -----------------------------------

    def recover(self) -> int:
        return len(self.entries)

    @property
    def runs(self) -> TermRuns:
        runs = TermRuns(self.base, self.base_term)
        for e in self.entries:
            runs.append(e.index, e.term)
        return runs

    def read_range(self, first: int, last: int, max_bytes: int) -> List[Entry]:
        """What the disk holds now: an evicted body must be there (it was applied, so synced)."""
        out: List[Entry] = []
        size = 0
        for index in range(first, last + 1):
            if not self.base < index <= self.base + len(self.entries):
                raise SimulationFailure(f"read of entry {index} beyond the disk's {self.base + 1}.."
                                        f"{self.base + len(self.entries)}")
            e = self.entries[index - self.base - 1]
            if out and size + len(e.body) > max_bytes:
                break
            out.append(e)
            size += len(e.body)
        return out


class Sim:
    def __init__(self, seed: int, n: int, trace: bool = False, config: RaftConfig = SIM_CONFIG,
                 chaos_ms: int = 4_000) -> None:
        self.seed, self.n, self.trace, self.config, self.chaos_ms = seed, n, trace, config, chaos_ms
        self.rng = random.Random(self.seed)
        r = self.rng
        self.ids = [f"n{i}" for i in range(self.n)]
        self.now = 0
        self.events: List[Tuple[int, int, str, tuple]] = []
        self.seq = 0
        self.disks = {i: Disk() for i in self.ids}
        self.nodes: Dict[str, Optional[RaftNode]] = {}
        self.generation = {i: 0 for i in self.ids}
        self.tick_at = {i: None for i in self.ids}
        self.commit_seen = {i: 0 for i in self.ids}  # each node's commit index after its last step
        self.cut: set = set()  # (src, dst) pairs that cannot talk
        # fault rates, drawn per seed so the runs span gentle to hostile networks
        self.p_drop = r.choice([0.0, 0.01, 0.05, 0.2])
        self.p_dup = r.choice([0.0, 0.02, 0.1])
        self.p_slow = r.choice([0.0, 0.02, 0.1])
        self.fault_every = r.choice([150, 400, 1_000])
        self.propose_every = r.choice([5, 20, 60])
        # the log's body cache: none (every body in memory) or a budget of a few bodies; drawn from its own
        # stream so that the other draws of a seed stay what they were
        self.cache_bytes = random.Random(seed ^ 0x5EED).choice([None, 0, 12, 60])
        # retention, in half the seeds: now and then a node deletes its log up to a random applied index, and
        # followers a leader finds behind it are resynced (their log restarted at that leader's base)
        self.retention = random.Random(seed ^ 0xBA5E)
        self.retain_every = self.retention.choice([None, None, 50, 300])
        self.checker = Checker(self)
        self.stats = {"delivered": 0, "dropped": 0, "crashes": 0, "elections": 0, "acked": 0, "transfers": 0,
                      "disk_reads": 0, "compactions": 0, "resyncs": 0}
        for i in self.ids:
            self._start(i)

    # -- events ------------------------------------------------------------------------------------------

    def _at(self, t: int, kind: str, *args) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, args))

    def run(self) -> "Sim":
        try:
            self._at(self.fault_every, "fault")
            self._at(1, "propose")
            if self.retain_every:
                self._at(self.retain_every, "retain")
            self._run_until(self.chaos_ms)
            self._heal_and_check_liveness()
        except SimulationFailure as e:
            raise SimulationFailure(f"{e}\n  at t={self.now} ms, seed {self.seed}, {self.n} nodes; replay: "
                                    f"python -m tests.dledger.simulation --seed {self.seed} --nodes {self.n} "
                                    f"--trace") from None
        return self

    def _run_until(self, end: int) -> None:
        while self.events and self.events[0][0] <= end:
            t, _, kind, args = heapq.heappop(self.events)
            self.now = t
            getattr(self, "_ev_" + kind)(*args)
        self.now = max(self.now, end)

    def _log(self, text: str) -> None:
        if self.trace:
            print(f"{self.now:7d} {text}")

    # -- nodes -------------------------------------------------------------------------------------------

    def _start(self, i: str) -> None:
        disk = self.disks[i]
        disk.cache.clear()
        disk.syncing = 0
        self.generation[i] += 1
        self.tick_at[i] = None
        if self.cache_bytes is None:
            log = MemoryLog(disk.entries, disk.base, disk.base_term)
        else:
            log = RaftLog.from_store(disk, self.cache_bytes)
        node = RaftNode(i, self.ids, self.config, random.Random(self.rng.random()), self.now,
                        disk.hard_state, log)
        self.nodes[i] = node
        self.commit_seen[i] = node.commit
        self.checker.started(node)
        self._schedule_tick(i)

    def _handle(self, i: str, out: Output) -> None:
        node = self.nodes[i]
        disk = self.disks[i]
        if out.hard_state is not None:
            if out.hard_state.term < disk.hard_state.term:
                raise SimulationFailure(f"{i} moved its term back {disk.hard_state.term} -> {out.hard_state.term}")
            disk.hard_state = out.hard_state  # durable before any message of this output leaves
        for role in out.roles:
            self._log(f"{i} role {role.role} term {role.term} leader {role.leader}")
            if role.role == LEADER:
                self.stats["elections"] += 1
        for m in out.messages:
            self._send(m)
        if out.persist:
            for op in out.persist:
                if isinstance(op, Truncate):
                    self.checker.truncating(node, op.index, self.commit_seen[i])
            disk.cache.extend(out.persist)
            if not disk.syncing:
                self._sync(i)
        self.checker.applied(node, out.committed)
        self.commit_seen[i] = node.commit
        self.checker.after_step(node)
        self._schedule_tick(i)

    def _schedule_tick(self, i: str) -> None:
        node = self.nodes[i]
        due = node.next_deadline()
        if self.tick_at[i] is None or due < self.tick_at[i]:
            self.tick_at[i] = due
            self._at(max(due, self.now), "tick", i, self.generation[i])

    def _ev_tick(self, i: str, gen: int) -> None:
        node = self.nodes[i]
        if node is None or gen != self.generation[i]:
            return
        self.tick_at[i] = None
        self._handle(i, node.tick(self.now))

    def _sync(self, i: str) -> None:
        disk = self.disks[i]
        disk.syncing = len(disk.cache)
        self._at(self.now + self.rng.randint(1, 15), "synced", i, self.generation[i])

    def _ev_synced(self, i: str, gen: int) -> None:
        node = self.nodes[i]
        if node is None or gen != self.generation[i]:
            return
        disk = self.disks[i]
        ops, disk.cache = disk.cache[: disk.syncing], disk.cache[disk.syncing:]
        disk.apply(ops, self.checker.durable_loss(i))
        disk.syncing = 0
        if disk.cache:
            self._sync(i)
        if disk.entries:
            last = disk.entries[-1]
            self._handle(i, node.persisted(last.index, last.term, self.now))

    def _crash(self, i: str) -> None:
        disk = self.disks[i]
        kept = self.rng.randint(0, len(disk.cache))
        ops = disk.cache[:kept]
        if kept < len(disk.cache) and isinstance(disk.cache[kept], Append) and self.rng.random() < 0.5:
            torn = disk.cache[kept]
            ops.append(Append(torn.entries[: self.rng.randint(0, len(torn.entries))]))
        disk.apply(ops, self.checker.durable_loss(i))
        disk.cache.clear()
        self.stats["disk_reads"] += self.nodes[i].log.disk_reads
        self.nodes[i] = None
        self.generation[i] += 1
        self.stats["crashes"] += 1
        self._log(f"{i} CRASH (kept {kept} unsynced ops)")

    # -- network -----------------------------------------------------------------------------------------

    def _send(self, m) -> None:
        r = self.rng
        if (m.src, m.dst) in self.cut or r.random() < self.p_drop:
            self.stats["dropped"] += 1
            return
        copies = 2 if r.random() < self.p_dup else 1
        for _ in range(copies):
            delay = r.randint(1, 8) if r.random() >= self.p_slow else r.randint(50, 400)
            self._at(self.now + delay, "deliver", m)

    def _ev_deliver(self, m) -> None:
        node = self.nodes[m.dst]
        if node is None or (m.src, m.dst) in self.cut:
            self.stats["dropped"] += 1
            return
        self.stats["delivered"] += 1
        self._handle(m.dst, node.step(m, self.now))

    # -- faults and the client ---------------------------------------------------------------------------

    def _ev_fault(self) -> None:
        r = self.rng
        kind = r.choice(["crash", "restart", "restart", "partition", "heal", "oneway", "transfer"])
        up = [i for i in self.ids if self.nodes[i] is not None]
        down = [i for i in self.ids if self.nodes[i] is None]
        if kind == "crash" and up:
            victim = r.choice(self._leaders() or up) if r.random() < 0.5 else r.choice(up)
            self._crash(victim)
        elif kind == "restart" and down:
            i = r.choice(down)
            self._log(f"{i} RESTART")
            self._start(i)
        elif kind == "partition":
            side = set(r.sample(self.ids, r.randint(1, self.n // 2)))
            self.cut = {(a, b) for a in self.ids for b in self.ids if (a in side) != (b in side)}
            self._log(f"PARTITION {sorted(side)} | rest")
        elif kind == "oneway":
            a, b = r.sample(self.ids, 2)
            self.cut.add((a, b))
            self._log(f"CUT {a} -> {b}")
        elif kind == "heal":
            self.cut = set()
            self._log("HEAL network")
        elif kind == "transfer":
            leaders = self._leaders()
            if leaders:
                i = r.choice(leaders)
                target = r.choice([p for p in self.ids if p != i])
                self.stats["transfers"] += 1
                self._log(f"{i} TRANSFER to {target}")
                _, out = self.nodes[i].transfer_leadership(target, self.now)
                self._handle(i, out)
        self._at(self.now + r.randint(1, 2 * self.fault_every), "fault")

    def _ev_retain(self) -> None:
        r = self.retention
        up = [i for i in self.ids if self.nodes[i] is not None]
        if up:
            i = r.choice(up)
            node = self.nodes[i]
            if node.applied > node.log.base_index:
                base = r.randint(node.log.base_index + 1, node.applied)
                node.log.compact(base)
                self.stats["compactions"] += 1
                self._log(f"{i} RETAIN after {base}")
                disk = self.disks[i]
                disk.cache.append(Compact(base))  # as the driver queues it: a crash may lose it
                if not disk.syncing:
                    self._sync(i)
        self._resync_behind(lambda: r.random() < 0.5)
        if self.now < self.chaos_ms:
            self._at(self.now + r.randint(1, 2 * self.retain_every), "retain")

    def _resync_behind(self, choose: Callable[[], bool] = lambda: True) -> None:
        """The broker's resync of a follower a leader's retention left behind: its log restarts, empty, at the
        leader's base (what lies below is the application's to copy; the simulation has none)."""
        for leader in self._leaders():
            base = self.nodes[leader].log.base_index
            base_term = self.nodes[leader].log.term_at(base)
            for p in sorted(self.nodes[leader].behind):
                node = self.nodes[p]
                if node is None or node.log.base_index >= base or node.log.term_at(base) == base_term or not choose():
                    continue  # one that holds the base catches up by itself (the base heartbeat matches)
                self.stats["disk_reads"] += node.log.disk_reads
                self.nodes[p] = None
                disk = self.disks[p]
                disk.cache.clear()
                disk.entries, disk.base, disk.base_term = [], base, base_term
                self.stats["resyncs"] += 1
                self._log(f"{p} RESYNC at {leader}'s base {base}")
                self._start(p)

    def _leaders(self) -> List[str]:
        return [i for i in self.ids if self.nodes[i] is not None and self.nodes[i].role == LEADER]

    def _ev_propose(self) -> None:
        self._propose()
        if self.now < self.chaos_ms:
            self._at(self.now + self.rng.randint(1, 2 * self.propose_every), "propose")

    def _propose(self) -> Optional[Proposed]:
        leaders = self._leaders()
        if not leaders:
            return None
        i = self.rng.choice(leaders)
        count = self.rng.randint(1, 3)
        bodies = [self.checker.new_body() for _ in range(count)]
        result, out = self.nodes[i].propose(bodies, self.now)
        if isinstance(result, Proposed):
            self.checker.proposed(result, bodies)
        self._handle(i, out)
        return result if isinstance(result, Proposed) else None

    def _heal_and_check_liveness(self) -> None:
        self.events = [e for e in self.events if e[2] not in ("fault", "propose")]
        heapq.heapify(self.events)
        self.cut = set()
        self.p_drop = self.p_dup = self.p_slow = 0.0
        for i in self.ids:
            if self.nodes[i] is None:
                self._start(i)
        self._log("HEAL all: every node up, no partition, no loss")
        healed = self.now
        deadline = healed + LIVENESS_BOUND_MS
        proposals: List[Proposed] = []
        last_try = None
        while self.now < deadline:
            self._run_until(self.now + 10)
            self._resync_behind()
            if any(self.checker.is_acked(p) for p in proposals):
                break
            if last_try is None or self.now - last_try >= 200:  # retry, as a client whose send timed out
                last_try = self.now
                p = self._propose()
                if p is not None:
                    proposals.append(p)
        else:
            raise SimulationFailure(f"no commit within {LIVENESS_BOUND_MS} ms of healing "
                                    f"(leaders: {self._leaders()})")
        self.stats["recovery_ms"] = self.now - healed
        for _ in range(20):
            self._run_until(self.now + self.config.heartbeat_ms)
            self._resync_behind()
        self.checker.final()
        self.stats["disk_reads"] += sum(self.nodes[i].log.disk_reads for i in self.ids)


class Checker:
    """The safety and liveness properties, checked as the run goes."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.leaders: Dict[int, str] = {}
        self.committed: Dict[int, Entry] = {}
        self.commit_term: Dict[int, int] = {}  # the term of the node that first applied each committed entry
        self.checked: Dict[str, int] = {}
        self.proposals: Dict[int, Tuple[Proposed, list]] = {}
        self.acked: set = set()  # bodies acknowledged to the client
        self.counter = 0

    def new_body(self) -> bytes:
        self.counter += 1
        return b"m%d" % self.counter

    def proposed(self, p: Proposed, bodies: list) -> None:
        self.proposals[p.first] = (p, bodies)

    def is_acked(self, p: Proposed) -> bool:
        e = self.committed.get(p.last)
        return e is not None and e.term == p.term

    def started(self, node: RaftNode) -> None:
        self.checked[node.id] = 0

    def applied(self, node: RaftNode, entries: List[Entry]) -> None:
        for e in entries:
            known = self.committed.get(e.index)
            if known is None:
                if e.index > 1 and e.index - 1 not in self.committed:
                    raise SimulationFailure(f"{node.id} applied {e.index} before {e.index - 1} was committed")
                holders = sum(1 for d in self.sim.disks.values() if d.holds(e))
                if holders < node.quorum:
                    raise SimulationFailure(f"entry {e.index} (term {e.term}) committed on {holders} disks only")
                self.committed[e.index] = e
                self.commit_term[e.index] = node.term
                if e.body:
                    self.acked.add(e.body)
                    self.sim.stats["acked"] += 1
            elif known != e:
                raise SimulationFailure(f"{node.id} applied {e} but {known} was committed at that index")

    def truncating(self, node: RaftNode, index: int, commit: int) -> None:
        if index <= commit:
            raise SimulationFailure(f"{node.id} truncates from {index} at or below its commit {commit}")

    def durable_loss(self, i: str) -> Callable[[Entry], None]:
        def check(e: Entry) -> None:
            if self.committed.get(e.index) == e:
                raise SimulationFailure(f"{i} removes committed entry {e.index} (term {e.term}) from its disk")
        return check

    def after_step(self, node: RaftNode) -> None:
        if node.role == LEADER:
            known = self.leaders.setdefault(node.term, node.id)
            if known != node.id:
                raise SimulationFailure(f"two leaders in term {node.term}: {known} and {node.id}")
            if self.checked.get(("lead", node.id)) != node.term:
                self.checked[("lead", node.id)] = node.term
                for index, e in self.committed.items():  # leader completeness: entries committed in earlier terms
                    if self.commit_term[index] >= node.term:
                        continue  # a stale vote may still elect a leader of an older term; it need not hold these
                    if index <= node.log.base_index:
                        continue  # applied here, then deleted by retention
                    if index > node.log.last_index or node.log.entry(index) != e:
                        raise SimulationFailure(f"leader {node.id} of term {node.term} lacks entry {index} "
                                                f"(term {e.term}) committed in term {self.commit_term[index]}")
        start = self.checked.get(node.id, 0)
        upto = node.commit
        for index in range(max(start, node.log.base_index) + 1, upto + 1):
            e = self.committed.get(index)
            if e is not None and node.log.entry(index) != e:
                raise SimulationFailure(f"{node.id} holds {node.log.entry(index)} at committed {index}, not {e}")
        self.checked[node.id] = max(start, upto)

    def final(self) -> None:
        nodes = [self.sim.nodes[i] for i in self.sim.ids]
        top = max(self.committed) if self.committed else 0
        for node in nodes:
            if node.commit < top:
                raise SimulationFailure(f"{node.id} commit {node.commit} below the group's {top} after healing")
            for index in range(node.log.first_index, top + 1):
                if node.log.entry(index) != self.committed[index]:
                    raise SimulationFailure(f"{node.id} differs at committed index {index} after healing")
        first = nodes[0].log.first_index  # below it: retention deleted entries checked when committed
        in_log = {e.body for e in nodes[0].log.range(first, top)}
        in_log.update(self.committed[i].body for i in range(1, first))
        missing = self.acked - in_log
        if missing:
            raise SimulationFailure(f"acknowledged appends missing from the final log: {sorted(missing)[:5]}")


def run(seed: int, n: int, trace: bool = False, chaos_ms: int = 4_000) -> Sim:
    return Sim(seed, n, trace=trace, chaos_ms=chaos_ms).run()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--chaos-ms", type=int, default=4_000)
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args(argv)
    try:
        sim = run(args.seed, args.nodes, args.trace, args.chaos_ms)
    except SimulationFailure as e:
        print(f"FAILED: {e}")
        return 1
    print(f"ok: seed {args.seed}, {args.nodes} nodes: {sim.stats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
