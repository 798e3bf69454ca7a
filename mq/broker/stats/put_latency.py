"""Put latency over the last whole minute, as Java's StoreStatsService reports it in GET_BROKER_RUNTIME_INFO.

``putMessageDistributeTime`` counts puts in 13 bands (``[<=0ms]:n [0~10ms]:n … [10s~]:n ``) and
``putLatency99``/``putLatency999`` interpolate a percentile (ms, two decimals) in finer buckets. Both describe
the previous minute: the counters are swapped every 60 s (Java's printTps), so a quiet broker reports zeros a
minute after its last put. rocketmq-exporter turns the bands into ``rocketmq_brokeruntime_pmdt_*`` and the
percentiles into ``rocketmq_brokeruntime_put_latency_99/999``.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import List, Tuple

#: Upper bounds (ms, exclusive) of the bands after ``[<=0ms]``; the last band has none.
BAND_BOUNDS = (10, 50, 100, 200, 500, 1000, 2000, 3000, 4000, 5000, 10000)
BAND_NAMES = ("[<=0ms]", "[0~10ms]", "[10~50ms]", "[50~100ms]", "[100~200ms]", "[200~500ms]", "[500ms~1s]",
              "[1~2s]", "[2~3s]", "[3~4s]", "[4~5s]", "[5~10s]", "[10s~]")


def _fine_bounds() -> Tuple[int, ...]:
    """Lower bounds (ms) of the percentile buckets after the first ([0, 1) ms): steps of 1 ms to 20, 2 to 50,
    5 to 100, 10 to 200, 50 to 500, 100 to 1000 and 1000 to 10 000 ms, as StoreStatsService; the last bucket
    is [10 000 ms, ∞). Every band edge is a bucket edge, so the bands are sums of buckets."""
    bounds: List[int] = []
    top = 0
    for step, count in ((1, 20), (2, 15), (5, 10), (10, 10), (50, 6), (100, 5), (1000, 9)):
        for _ in range(count):
            top += step
            bounds.append(top)
    return tuple(bounds)


FINE_BOUNDS = _fine_bounds()
_LAST_FINE = FINE_BOUNDS[-1] * 2  # stands for Java's Long.MAX_VALUE bound in the interpolation
#: the band of each bucket: [0, 1) is "[<=0ms]" (a put under 1 ms, which Java's millisecond clock reads as 0)
_BAND_OF = tuple(0 if i == 0 else 1 + bisect_right(BAND_BOUNDS, FINE_BOUNDS[i - 1]) for i in range(len(FINE_BOUNDS) + 1))


class PutTimeDistribution:
    """Put counts by millisecond bucket, of the current minute and the finished one; ``roll()`` every 60 s.

    The hot path is one bisect and one increment (``observe_ms``); bands and percentiles are computed when read.
    """

    __slots__ = ("fine", "last_fine")

    def __init__(self) -> None:
        self.fine = [0] * (len(FINE_BOUNDS) + 1)
        self.last_fine = list(self.fine)

    def observe_ms(self, ms: int) -> None:
        self.fine[bisect_right(FINE_BOUNDS, ms)] += 1

    def roll(self) -> None:
        self.last_fine, self.fine = self.fine, [0] * (len(FINE_BOUNDS) + 1)

    def bands(self) -> List[int]:
        bands = [0] * len(BAND_NAMES)
        for i, n in enumerate(self.last_fine):
            bands[_BAND_OF[i]] += n
        return bands

    def distribute_text(self) -> str:
        return "".join(f"{name}:{n} " for name, n in zip(BAND_NAMES, self.bands()))

    def percentile(self, px: float) -> float:
        """ms below which ``px`` of last minute's puts finished, interpolated in its bucket (0 without puts)."""
        counts = self.last_fine
        rank = int(sum(counts) * px)
        passed = 0
        bounds = FINE_BOUNDS + (_LAST_FINE,)
        for i, n in enumerate(counts):
            if rank <= passed + n:
                low = bounds[i - 1] if i else 0
                return low + ((bounds[i] - low) * (rank - passed) / n if n else 0.0)
            passed += n
        return 0.0
