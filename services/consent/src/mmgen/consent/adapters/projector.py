"""Catch-up projector: keeps the read models in step with the event store, by `producer_seq`.

Request handlers project their own writes right after appending (read-your-writes), but a
crash between the append and that write would leave a read model behind for good. This
projector follows the store with the checkpointed tailer (mmgen.events.tailer): from a
persisted checkpoint, in bounded windows, stopping at a hole, woken by commits or by polling,
and applies every event again. Each application is idempotent (guarded by stream version or
keyed by event id), so running both paths costs nothing but a few writes. Rows of an erased
subject are never re-created: erasure deletes them and the projector checks the keystore's
erasure marker. Dropping the read models and the checkpoint rebuilds them from the store.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
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
from mmgen.events.tailer import MongoCheckpoint, StoreSource, Tailer, TailerMetrics

log = logging.getLogger(__name__)

STATE_COLLECTION = "projection_state"
CHECKPOINT_ID = "read_models"
"""The checkpoint document (`{_id: "read_models", checkpoint}` in `projection_state`)."""
TAILER_NAME = "consent.read_models"
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
        metrics: TailerMetrics | None = None,
    ) -> None:
        self.store = store
        self.state = db[STATE_COLLECTION]
        self.keystore = keystore
        self.consents = consents
        self.policies = policies
        self.tracking = tracking
        self.max_tracking_events = max_tracking_events_per_subject
        self.tailer: Tailer[Envelope] = Tailer(
            TAILER_NAME,
            StoreSource(store),
            MongoCheckpoint(self.state, CHECKPOINT_ID),
            self.apply_all,
            window=window,
            idle_wait_s=idle_wait_s,
            metrics=metrics,
        )
        self.window = self.tailer.window

    @property
    def checkpoint(self) -> int:
        """Last `producer_seq` applied to the read models."""
        return self.tailer.status.checkpoint

    @checkpoint.setter
    def checkpoint(self, value: int) -> None:
        """Replay from `value + 1` (the stored checkpoint never moves back)."""
        self.tailer.reset(value)

    @property
    def last_error(self) -> str | None:
        return self.tailer.status.last_error

    async def load_checkpoint(self) -> int:
        return await self.tailer.load()

    async def run(self) -> None:
        """Project until `stop()`; errors are logged and retried (the checkpoint never skips)."""
        await self.tailer.run()

    async def stop(self) -> None:
        await self.tailer.stop()

    def notify(self) -> None:
        """Wake the projector now (an append happened in this process)."""
        self.tailer.notify()

    async def project_next(self) -> int:
        """Apply the next window of events after the checkpoint; returns how many."""
        return await self.tailer.step()

    async def apply_all(self, envelopes: Sequence[Envelope]) -> None:
        """Apply a contiguous run of events, in order (the tailer's sink)."""
        for envelope in envelopes:
            await self.apply(envelope)

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
