"""Legal holds: place, release, and end those whose `until` has passed.

Releasing (or expiry) tells the erasure coordinator, which orders the held part of an open
erasure request erased.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from mmgen.events.envelope import Actor
from mmgen.events.ids import new_event_id
from mmgen.events.repository import EventSourcedRepository
from mmgen.retention.domain.errors import HoldNotFoundError
from mmgen.retention.domain.holds import HoldView, LegalHold, hold_stream
from mmgen.retention.service_layer.erasure import ErasureCoordinator
from mmgen.retention.service_layer.ports import Clock, HoldViews

log = logging.getLogger(__name__)


class LegalHolds:
    def __init__(
        self,
        *,
        repository: EventSourcedRepository,
        views: HoldViews,
        coordinator: ErasureCoordinator,
        clock: Clock,
    ) -> None:
        self.repository = repository
        self.views = views
        self.coordinator = coordinator
        self.clock = clock

    async def place(
        self,
        *,
        subject_id: str,
        categories: Sequence[str],
        legal_basis: str,
        owner: str,
        until: datetime | None,
        by: Actor,
    ) -> HoldView:
        hold = LegalHold.place(
            new_event_id(),
            subject_id=subject_id,
            categories=categories,
            legal_basis=legal_basis,
            owner=owner,
            until=until,
            placed_by=by.id,
            now=self.clock.now(),
        )
        await self.repository.save(hold)
        view = hold.view()
        await self.views.put(view)
        return view

    async def get(self, hold_id: str) -> HoldView:
        view = await self.views.get(hold_id)
        if view is None:
            raise HoldNotFoundError(hold_id)
        return view

    async def release(self, hold_id: str, *, by: Actor | None, expired: bool = False) -> HoldView:
        hold = await self.repository.get(LegalHold, hold_stream(hold_id))
        if hold is None:
            raise HoldNotFoundError(hold_id)
        hold.release(by=None if by is None else by.id, now=self.clock.now(), expired=expired)
        await self.repository.save(hold)
        view = hold.view()
        await self.views.put(view)
        await self.coordinator.on_hold_released(hold.subject_id)
        return view

    async def end_expired(self, *, batch: int = 100) -> int:
        """Release every hold whose `until` has passed (scheduler pass)."""
        ended = 0
        for view in await self.views.ended(self.clock.now(), batch):
            try:
                await self.release(view.hold_id, by=None, expired=True)
                ended += 1
            except Exception:
                log.exception("ending hold %s failed", view.hold_id)
        return ended

    async def page(self, *, limit: int, after: str | None) -> list[HoldView]:
        return await self.views.page(limit=limit, after=after)
