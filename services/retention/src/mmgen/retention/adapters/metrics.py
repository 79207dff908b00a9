"""The retention service's own metrics: how its privacy requests stand against their deadlines.

Set after every scheduler pass. `mmgen_retention_privacy_request_deadline_seconds` is the time
left to the earliest deadline of an open, unanswered request — negative once it passed,
`+Inf` while no request waits — so one alert rule catches a request nearing its legal
deadline, whichever it is; `mmgen_retention_privacy_requests_overdue` counts those past it.
"""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Gauge


class RetentionMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.overdue = Gauge(
            "retention_privacy_requests_overdue",
            "Open privacy requests past their deadline, unanswered",
            namespace="mmgen",
            registry=registry,
        )
        self.deadline = Gauge(
            "retention_privacy_request_deadline_seconds",
            "Seconds left to the earliest deadline of an open, unanswered privacy request "
            "(negative: passed; +Inf: none waits)",
            namespace="mmgen",
            registry=registry,
        )
        self.deadline.set(math.inf)

    def record(self, overdue: int, nearest_deadline_seconds: float | None) -> None:
        self.overdue.set(overdue)
        self.deadline.set(
            math.inf if nearest_deadline_seconds is None else nearest_deadline_seconds
        )
