"""Percentiles and latency summaries (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's default).

    Interpolating keeps small samples honest: with 20 values p99 lies between the two largest, instead
    of snapping to the maximum or to the 19th value depending on a rounding rule.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @classmethod
    def of(cls, latencies_ms: Sequence[float]) -> LatencySummary:
        if not latencies_ms:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        return cls(
            count=len(latencies_ms),
            p50_ms=percentile(latencies_ms, 50),
            p95_ms=percentile(latencies_ms, 95),
            p99_ms=percentile(latencies_ms, 99),
            max_ms=max(latencies_ms),
            mean_ms=sum(latencies_ms) / len(latencies_ms),
        )


def per_second(points: Sequence[tuple[float, float]], q: float) -> list[tuple[float, float]]:
    """Bucket (t_s, value) points by whole second of t and give each bucket's q-th percentile."""
    buckets: dict[int, list[float]] = {}
    for t, value in points:
        buckets.setdefault(math.floor(t), []).append(value)
    return [(float(second), percentile(vals, q)) for second, vals in sorted(buckets.items())]
