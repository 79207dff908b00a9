"""The deadline gauges after a scheduler pass: time left to the nearest deadline, and overdue."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry

from mmgen.retention.adapters.metrics import RetentionMetrics

DEADLINE = "mmgen_retention_privacy_request_deadline_seconds"
OVERDUE = "mmgen_retention_privacy_requests_overdue"


def test_no_waiting_request_reads_as_an_infinite_time_left() -> None:
    registry = CollectorRegistry()
    metrics = RetentionMetrics(registry)
    assert registry.get_sample_value(DEADLINE) == math.inf
    metrics.record(0, None)
    assert registry.get_sample_value(DEADLINE) == math.inf
    assert registry.get_sample_value(OVERDUE) == 0


def test_a_pass_sets_the_time_left_and_the_overdue_count() -> None:
    registry = CollectorRegistry()
    metrics = RetentionMetrics(registry)
    metrics.record(0, 86_400.5)
    assert registry.get_sample_value(DEADLINE) == 86_400.5
    metrics.record(2, -30.0)
    assert (registry.get_sample_value(DEADLINE), registry.get_sample_value(OVERDUE)) == (-30.0, 2)
