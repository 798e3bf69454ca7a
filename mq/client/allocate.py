"""Queue allocation strategies for clustering consumers (Java ``AllocateMessageQueue*``).

Every member of a group runs the same strategy on the same sorted inputs (all queues, all client ids) and
takes its own share, so no coordination is needed. The results match the Java client's, so a group may mix
this client with Java consumers using the same strategy.
"""

from __future__ import annotations

import bisect
import hashlib
from typing import Callable, Dict, List, Sequence

from mq.client.model import MessageQueue

Allocator = Callable[[str, Sequence[MessageQueue], Sequence[str]], List[MessageQueue]]


def _check(current: str, mq_all: Sequence[MessageQueue], cid_all: Sequence[str]) -> bool:
    if not current:
        raise ValueError("the current client id is empty")
    return bool(mq_all) and current in cid_all


def allocate_averagely(current: str, mq_all: Sequence[MessageQueue], cid_all: Sequence[str]) -> List[MessageQueue]:
    """Contiguous blocks: with 8 queues and 3 clients, the shares are 3, 3 and 2 queues in order."""
    if not _check(current, mq_all, cid_all):
        return []
    index = list(cid_all).index(current)
    n, m = len(mq_all), len(cid_all)
    mod = n % m
    if n <= m:
        size = 1
    elif mod > 0 and index < mod:
        size = n // m + 1
    else:
        size = n // m
    start = index * size if (mod > 0 and index < mod) else index * size + mod
    count = min(size, n - start)
    return [mq_all[(start + i) % n] for i in range(max(count, 0))]


def allocate_averagely_by_circle(current: str, mq_all: Sequence[MessageQueue],
                                 cid_all: Sequence[str]) -> List[MessageQueue]:
    """Dealt like cards: client i gets queues i, i + m, i + 2m, ..."""
    if not _check(current, mq_all, cid_all):
        return []
    index = list(cid_all).index(current)
    return [mq_all[i] for i in range(index, len(mq_all), len(cid_all))]


def md5_hash(key: str) -> int:
    """The ring position of a key: the first four MD5 bytes, big-endian (Java ``ConsistentHashRouter.MD5Hash``)."""
    return int.from_bytes(hashlib.md5(key.encode("utf-8")).digest()[:4], "big")


class ConsistentHashAllocator:
    """Consistent hashing with ``virtual_nodes`` points per client: few queues move when a client joins or
    leaves. The ring and the keys are Java's (``clientId-i`` for the points, ``MessageQueue.toString()``)."""

    def __init__(self, virtual_nodes: int = 10) -> None:
        if virtual_nodes < 0:
            raise ValueError("virtual_nodes must not be negative")
        self.virtual_nodes = virtual_nodes

    def __call__(self, current: str, mq_all: Sequence[MessageQueue], cid_all: Sequence[str]) -> List[MessageQueue]:
        if not _check(current, mq_all, cid_all):
            return []
        ring: Dict[int, str] = {}
        for cid in cid_all:
            for i in range(self.virtual_nodes):
                ring[md5_hash(f"{cid}-{i}")] = cid
        points = sorted(ring)
        out = []
        for mq in mq_all:
            at = bisect.bisect_left(points, md5_hash(repr(mq)))
            if ring[points[at % len(points)]] == current:
                out.append(mq)
        return out


allocate_consistent_hash = ConsistentHashAllocator()

STRATEGIES: Dict[str, Allocator] = {
    "AVG": allocate_averagely,
    "AVG_BY_CIRCLE": allocate_averagely_by_circle,
    "CONSISTENT_HASH": allocate_consistent_hash,
}
