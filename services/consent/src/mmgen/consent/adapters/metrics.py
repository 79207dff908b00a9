"""Prometheus counters of the tracking gate (accepted and dropped analytics events, by reason)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class TrackingMetrics:
    """`mmgen_consent_tracking_events_total{result, reason}` on the app's registry."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        kwargs = {"registry": registry} if registry is not None else {}
        self.events = Counter(
            "mmgen_consent_tracking_events",
            "Analytics events offered to the tracking gate, by outcome and reason",
            ["result", "reason"],
            **kwargs,  # type: ignore[arg-type]
        )
        self.gpc_signals = Counter(
            "mmgen_consent_gpc_signals",
            "Requests carrying Sec-GPC: 1, by whether a withdrawal was recorded",
            ["recorded"],
            **kwargs,  # type: ignore[arg-type]
        )

    def accepted(self) -> None:
        self.events.labels(result="accepted", reason="consent_granted").inc()

    def dropped(self, reason: str) -> None:
        self.events.labels(result="dropped", reason=reason).inc()
