"""What the audit feed's integration tests share: a recorder of what the feed applied, and a
feed running for the length of a block."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from mmgen.retention.adapters.audit_log import AuditLogReader
from mmgen.retention.domain.contract import AuditRecord


class Applied:
    """What the feed was given, in order."""

    def __init__(self) -> None:
        self.seqs: list[int] = []

    async def __call__(self, records: Sequence[AuditRecord]) -> None:
        self.seqs.extend(r.seq for r in records)


@asynccontextmanager
async def running(feed: AuditLogReader) -> AsyncIterator[AuditLogReader]:
    """`feed` started for the block and stopped after it, also when the block fails."""
    await feed.start()
    try:
        yield feed
    finally:
        await feed.stop()
