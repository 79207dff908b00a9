"""Prometheus metrics of the audit log: ingest, duplicates, gaps and repairs, heads, publishing."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge


class AuditMetrics:
    """One set per app; pass the app's registry (tests build several apps per process)."""

    def __init__(self, registry: CollectorRegistry | None = None, namespace: str = "mmgen") -> None:
        kw: dict[str, Any] = {"namespace": namespace, "subsystem": "audit"}
        self.registry = registry if registry is not None else REGISTRY
        if registry is not None:
            kw["registry"] = registry
        self.appended = Counter(
            "entries_appended", "Entries appended to the log", ["producer"], **kw
        )
        self.duplicates = Counter("duplicates", "Events skipped: already in the log", **kw)
        self.replans = Counter(
            "replans",
            "Batches planned again: the head moved or an event reached the log meanwhile",
            **kw,
        )
        self.dead_lettered = Counter(
            "dead_lettered", "Messages that could not become entries (sent to <topic>.dlq)", **kw
        )
        self.refused = Counter(
            "refused",
            "Envelopes not taken: their producer is not the service of the topic they came on",
            ["topic_producer"],
            **kw,
        )
        self.tree_size = Gauge("tree_size", "Entries in the log", **kw)
        self.checkpoint_size = Gauge("checkpoint_tree_size", "Size of the latest signed head", **kw)
        self.checkpoints = Counter("checkpoints_signed", "Tree heads signed", **kw)
        self.gaps_open = Gauge(
            "gap_missing_events",
            "producer_seq numbers missing below the highest seen",
            ["producer"],
            **kw,
        )
        self.repair_requests = Counter(
            "repair_requests", "Republish requests sent to producers", ["producer"], **kw
        )
        self.repairs = Counter(
            "gaps_repaired", "Gaps closed after a republish request", ["producer"], **kw
        )
        self.published = Counter("published", "Entries published to audit.log", **kw)
        self.republished = Counter(
            "republished",
            "Entries published to audit.log again on a reader's republish request",
            **kw,
        )
        self.published_seq = Gauge(
            "published_next_seq", "Next seq the audit.log publisher sends", **kw
        )
