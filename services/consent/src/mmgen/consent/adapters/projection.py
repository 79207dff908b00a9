"""The read-model projection: stored events → the consent, policy and tracking read models.

One `apply(envelope)` serves both paths that write read models: request handlers apply the
events they just appended (read-your-writes), and the runtime's checkpointed projector
(`runtime.projection("read_models", ...)`) applies every stored event in order, so a crash
between an append and its read-model write is repaired, and dropped read models are rebuilt
from the store. Each application is idempotent (guarded by stream version or keyed by event
id). Rows of a subject whose key is shredded are never re-created (the keystore's erasure
marker is checked), and a replayed `consent.SubjectErased` deletes the rows it deleted the
first time — those of the categories not held — so a rebuild ends where the service is.
"""

from __future__ import annotations

from datetime import datetime

from mmgen.consent.adapters.read_models import (
    ConsentReadModel,
    Policy,
    PolicyReadModel,
    TrackedEvent,
    TrackingReadModel,
)
from mmgen.consent.domain.events import (
    CONSENT_GRANTED,
    CONSENT_WITHDRAWN,
    POLICY_PUBLISHED,
    TRACKING_EVENT_ACCEPTED,
)
from mmgen.consent.domain.model import ConsentState
from mmgen.events.envelope import Envelope, normalize_time
from mmgen.events.keys import Keystore
from mmgen.runtime.contract import SUBJECT_ERASED, owner_of_subject

#: The checkpoint's name in `projection_state` (kept from the first projector: data continues).
PROJECTION_NAME = "read_models"
GRANTS = {CONSENT_GRANTED: True, CONSENT_WITHDRAWN: False}
ERASED = f"consent.{SUBJECT_ERASED}"


class ReadModelProjection:
    """Applies one stored event to the read models it concerns (idempotent)."""

    def __init__(
        self,
        keystore: Keystore,
        consents: ConsentReadModel,
        policies: PolicyReadModel,
        tracking: TrackingReadModel,
        *,
        max_tracking_events_per_subject: int = 1000,
    ) -> None:
        self.keystore = keystore
        self.consents = consents
        self.policies = policies
        self.tracking = tracking
        self.max_tracking_events = max_tracking_events_per_subject

    async def apply(self, envelope: Envelope) -> None:
        kind, subject, data = envelope.event_type, envelope.subject_id, envelope.data
        if kind == POLICY_PUBLISHED:
            await self.policies.add(
                Policy(
                    version=str(data["version"]),
                    title=str(data["title"]),
                    effective_at=normalize_time(datetime.fromisoformat(str(data["effective_at"]))),
                    sha256=str(data["sha256"]),
                    published_at=envelope.occurred_at,
                    published_by=envelope.actor.id if envelope.actor else None,
                    text=str(data["text"]),
                )
            )
        elif kind in GRANTS and subject:
            if await self.keystore.is_erased(owner_of_subject(subject)):
                return
            state = ConsentState(
                purpose=str(data["purpose"]),
                granted=GRANTS[kind],
                policy_version=data.get("policy_version"),
                method=data["method"],
                decided_at=envelope.occurred_at,
            )
            await self.consents.put(subject, state, envelope.stream_version)
        elif kind == TRACKING_EVENT_ACCEPTED and subject:
            if await self.keystore.is_erased(owner_of_subject(subject)):
                return
            if await self.tracking.has(envelope.event_id):
                return
            event = TrackedEvent(
                envelope.event_id, subject, str(data["name"]), envelope.occurred_at
            )
            # Applied again after the bound dropped it (the inline write and the projector both
            # apply each event): stored again, it would put the subject over the bound until
            # the trim that follows.
            if await self.tracking.newer(event) >= self.max_tracking_events:
                return
            await self.tracking.add(event)
            await self.tracking.trim(subject, self.max_tracking_events)
        elif kind == ERASED and subject:
            held = set(data.get("categories_held") or [])
            if "consent" not in held:
                await self.consents.delete_subject(subject)
            if "usage" not in held:
                await self.tracking.delete_subject(subject)
