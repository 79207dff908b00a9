"""What retention does with `audit.log` and with the services' `SubjectErased` events.

`AuditFeed.on_entries` takes entries in `seq` order (the runtime's consumer of `audit.log`):
the activity projection folds them, and meanwhile the window's `<service>.SubjectErased`
entries go to the erasure coordinator as acknowledgements' audit-log halves.
`AuditFeed.rebuild` replays the log from the start into an emptied projection (the projection
is a cache of the log). `on_subject_erased` takes the other half, the `SubjectErased` envelope
from a service's events topic.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Mapping, Sequence
from typing import Any

from mmgen.events.envelope import Envelope
from mmgen.retention.domain.activity import DEFAULT_RESOURCE_TYPES, fold_batch, keys_touched
from mmgen.retention.domain.contract import AuditRecord, SubjectErasedReport
from mmgen.retention.service_layer.erasure import ErasureCoordinator
from mmgen.retention.service_layer.ports import ActivityStore

REBUILD_BATCH = 500


def _record(entry: Mapping[str, Any] | AuditRecord) -> AuditRecord:
    return entry if isinstance(entry, AuditRecord) else AuditRecord.model_validate(entry)


class AuditFeed:
    def __init__(
        self,
        *,
        activity: ActivityStore,
        coordinator: ErasureCoordinator,
        resource_types: frozenset[str] = DEFAULT_RESOURCE_TYPES,
    ) -> None:
        self.activity = activity
        self.coordinator = coordinator
        self.resource_types = resource_types

    async def project(self, records: Sequence[AuditRecord]) -> int:
        """Fold entries not yet applied into the projection; returns how many were new."""
        start = await self.activity.next_seq()
        fresh = sorted((r for r in records if r.seq >= start), key=lambda r: r.seq)
        if not fresh:
            return 0
        subject_ids, resource_keys = keys_touched(fresh, self.resource_types)
        subjects, resources = await self.activity.load(sorted(subject_ids), sorted(resource_keys))
        batch = fold_batch(fresh, subjects, resources, self.resource_types)
        await self.activity.save(batch)
        return len(fresh)

    async def on_entries(self, entries: Sequence[Mapping[str, Any] | AuditRecord]) -> int:
        records = [
            e if isinstance(e, AuditRecord) else AuditRecord.model_validate(e) for e in entries
        ]
        # Side by side: the two touch different records, and an erasure's answers need not wait
        # for the projection (each is idempotent, so a window redone after a failure is safe).
        applied, _ = await asyncio.gather(
            self.project(records), self.coordinator.on_audit_entries(records)
        )
        return applied

    async def on_subject_erased(self, envelope: Envelope) -> str | None:
        report = SubjectErasedReport.of(envelope)
        if report is None or not report.subject_id:
            return None
        return await self.coordinator.on_report(report)

    async def rebuild(self, entries: AsyncIterable[Mapping[str, Any] | AuditRecord]) -> int:
        """Empty the projection and fold the whole log again (no orders or acknowledgements
        are re-sent: only the projection is rebuilt)."""
        await self.activity.reset()
        total = 0
        chunk: list[AuditRecord] = []
        async for entry in entries:
            chunk.append(
                entry if isinstance(entry, AuditRecord) else AuditRecord.model_validate(entry)
            )
            if len(chunk) >= REBUILD_BATCH:
                total += await self.project(chunk)
                chunk = []
        if chunk:
            total += await self.project(chunk)
        return total
