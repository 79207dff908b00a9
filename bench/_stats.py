"""Latency summaries the benchmarks record. Not a benchmark: `make bench` runs `bench_*.py`."""

from __future__ import annotations

import statistics


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99/max/mean of durations in seconds, as milliseconds, and the sample count."""
    s = sorted(samples)
    return {
        "p50_ms": round(s[len(s) // 2] * 1000, 3),
        "p95_ms": round(s[int(len(s) * 0.95)] * 1000, 3),
        "p99_ms": round(s[int(len(s) * 0.99)] * 1000, 3),
        "max_ms": round(s[-1] * 1000, 3),
        "mean_ms": round(statistics.fmean(s) * 1000, 3),
        "samples": len(s),
    }
