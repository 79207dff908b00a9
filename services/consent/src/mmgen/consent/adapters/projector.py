"""Catch-up projector: keeps the read models in step with the event store, by `producer_seq`.

Request handlers project their own writes right after appending (read-your-writes), but a
crash between the append and that write would leave a read model behind for good. This
projector tails the store from a persisted checkpoint — the same way the relay does: bounded
`read_range` windows, stopping at a hole, woken by commits or by polling — and applies every
event again. Each application is idempotent (guarded by stream version or keyed by event id),
so running both paths costs nothing but a few writes. Rows of an erased subject are never
re-created: erasure deletes them and the projector checks the keystore's erasure marker.
Dropping the read models and the checkpoint rebuilds them from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from mmgen.consent.adapters.read_models import (
    ConsentReadModel,
    PolicyReadModel,
    TrackingReadModel,
)
from mmgen.consent.domain.model import ConsentState
from mmgen.events.envelope import Envelope, normalize_time
from mmgen.events.keys import Keystore
from mmgen.events.store import EventStore

log = logging.getLogger(__name__)

STATE_COLLECTION = "projection_state"
CONSENT_TYPES = {"consent.ConsentGranted": True, "consent.ConsentWithdrawn": False}


class ReadModelProjector:
    """Applies stored events to the consent, policy and tracking read models."""

    def __init__(
        self,
        store: EventStore,
        db: AsyncDatabase[Any],
        keystore: Keystore,
        consents: ConsentReadModel,
        policies: PolicyReadModel,
        tracking: TrackingReadModel,
        *,
        window: int = 500,
        idle_wait_s: float = 1.0,
        max_tracking_events_per_subject: int = 1000,
    ) -> None:
        self.store = store
        self.state = db[STATE_COLLECTION]
        self.keystore = keystore
        self.consents = consents
        self.policies = policies
        self.tracking = tracking
        self.window = min(window, store.max_read_window)
        self.idle_wait_s = idle_wait_s
        self.max_tracking_events = max_tracking_events_per_subject
        self._stopping = asyncio.Event()
        self.checkpoint = 0
        self.last_error: str | None = None

    async def load_checkpoint(self) -> int:
        doc = await self.state.find_one({"_id": "read_models"})
        self.checkpoint = int(doc["checkpoint"]) if doc else 0
        return self.checkpoint

    async def run(self) -> None:
        """Project until `stop()`; errors are logged and retried (the checkpoint never skips)."""
        await self.load_checkpoint()
        while not self._stopping.is_set():
            try:
                applied = await self.project_next()
                if applied < self.window:
                    await self.store.wait_for_append(self.checkpoint, self.idle_wait_s)
            except Exception as exc:
                self.last_error = repr(exc)
                log.exception("read-model projection round failed; retrying")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), 1.0)

    async def stop(self) -> None:
        self._stopping.set()

    async def project_next(self) -> int:
        """Apply the next window of events after the checkpoint; returns how many."""
        start = self.checkpoint + 1
        events = await self.store.read_range(start, start + self.window)
        applied = 0
        for envelope in events:
            if envelope.producer_seq != start + applied:
                break  # a hole: wait for it rather than skip it
            await self.apply(envelope)
            applied += 1
        if applied:
            self.checkpoint += applied
            await self.state.update_one(
                {"_id": "read_models"}, {"$max": {"checkpoint": self.checkpoint}}, upsert=True
            )
        return applied

    async def apply(self, envelope: Envelope) -> None:
        """Apply one event (idempotent)."""
        kind = envelope.event_type
        subject = envelope.subject_id
        if kind == "consent.PolicyPublished":
            data = envelope.data
            if await self.policies.get(str(data["version"])) is None:
                await self.policies.put(
                    {
                        "_id": data["version"],
                        "version": data["version"],
                        "title": data["title"],
                        "effective_at": normalize_time(
                            datetime.fromisoformat(str(data["effective_at"]))
                        ),
                        "sha256": data["sha256"],
                        "text": data["text"],
                        "published_at": envelope.occurred_at,
                        "published_by": envelope.actor.id if envelope.actor else None,
                    }
                )
        elif kind in CONSENT_TYPES and subject:
            if await self.keystore.is_erased(f"subject:{subject}"):
                return
            state = ConsentState(
                purpose=str(envelope.data["purpose"]),
                granted=CONSENT_TYPES[kind],
                policy_version=envelope.data.get("policy_version"),
                method=envelope.data["method"],
                decided_at=envelope.occurred_at,
            )
            await self.consents.project(subject, [state], envelope.stream_version)
        elif kind == "consent.TrackingEventAccepted" and subject:
            if await self.keystore.is_erased(f"subject:{subject}"):
                return
            if await self.tracking.has(envelope.event_id):
                return
            await self.tracking.add(
                envelope.event_id, subject, str(envelope.data["name"]), envelope.occurred_at
            )
            await self.tracking.trim(subject, self.max_tracking_events)
