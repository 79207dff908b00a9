"""Revocation of closed and erased subjects, learnt from identity's events, for token verifiers.

Identity publishes `identity.AccountClosed` and `identity.SubjectErased` to `identity.events`.
Every other service wires `SubjectRevocations` into its token verifier so a closed account's
tokens stop working there as soon as the event is consumed:

    revocations = SubjectRevocations(db)                          # the service's own database
    topic = settings.topic("identity.events")
    revocations.subscribe(consumer, topic, group_id="projects-revocations")
    verifier = TokenVerifier.from_settings(settings, denylist=revocations)

`SubjectRevocations` satisfies the platform's `SubjectDenylist` protocol (`async is_denied`)
structurally, so this module needs nothing from `mmgen.platform`. Revoked subjects are kept in
the service's database (collection `revoked_subjects`, written in the consumer's transaction,
so the local broker forgetting its topics on restart loses nothing) and cached in the process:
a revoked subject is remembered for good; a subject found not revoked is re-checked after
`negative_ttl_s`, so every replica of a service (each consuming only some partitions) learns a
revocation within that bound plus the consumer's lag.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pymongo.asynchronous.client_session import AsyncClientSession
    from pymongo.asynchronous.database import AsyncDatabase

    from mmgen.events.consumer import EventConsumer, HandlerContext
    from mmgen.events.envelope import Envelope

#: Identity's event types that end an account (the contract with identity).
ACCOUNT_CLOSED = "identity.AccountClosed"
SUBJECT_ERASED = "identity.SubjectErased"
REVOKING_EVENT_TYPES = frozenset({ACCOUNT_CLOSED, SUBJECT_ERASED})
REVOCATIONS_COLLECTION = "revoked_subjects"


class SubjectRevocations:
    """A `SubjectDenylist` fed by identity's events, persisted in the service's database."""

    def __init__(
        self,
        db: AsyncDatabase[Any],
        *,
        collection: str = REVOCATIONS_COLLECTION,
        negative_ttl_s: float = 1.0,
        clock: Any = time.monotonic,
    ) -> None:
        self.collection = db[collection]
        self.negative_ttl_s = negative_ttl_s
        self._clock = clock
        self._revoked: set[str] = set()
        self._not_revoked_until: dict[str, float] = {}

    async def is_denied(self, subject_id: str) -> bool:
        """True if identity closed or erased this subject (checked after the token's signature)."""
        if subject_id in self._revoked:
            return True
        now = self._clock()
        until = self._not_revoked_until.get(subject_id)
        if until is not None and until > now:
            return False
        found = await self.collection.find_one({"_id": subject_id}, projection={"_id": 1})
        if found is not None:
            self._revoked.add(subject_id)
            self._not_revoked_until.pop(subject_id, None)
            return True
        if len(self._not_revoked_until) > 100_000:
            self._not_revoked_until.clear()
        self._not_revoked_until[subject_id] = now + self.negative_ttl_s
        return False

    async def revoke(
        self,
        subject_id: str,
        *,
        reason: str,
        event_id: str | None = None,
        session: AsyncClientSession | None = None,
    ) -> None:
        """Record a revocation (idempotent); the first reason and event are kept."""
        await self.collection.update_one(
            {"_id": subject_id},
            {
                "$setOnInsert": {
                    "reason": reason,
                    "event_id": event_id,
                    "revoked_at": datetime.now(UTC),
                }
            },
            upsert=True,
            session=session,
        )
        # Caching a revocation is safe even if the transaction is retried or rolled back:
        # identity has ended the account either way, and the event will be applied again.
        self._revoked.add(subject_id)
        self._not_revoked_until.pop(subject_id, None)

    async def handle(self, envelope: Envelope, ctx: HandlerContext) -> None:
        """Consumer handler for `identity.events`: revoke on `AccountClosed`/`SubjectErased`."""
        if envelope.event_type not in REVOKING_EVENT_TYPES:
            return
        subject = envelope.subject_id or envelope.data.get("subject_id")
        if not subject:
            return
        await self.revoke(
            str(subject),
            reason=envelope.event_type,
            event_id=envelope.event_id,
            session=ctx.session,
        )

    def subscribe(
        self, consumer: EventConsumer[Any], topic: str, *, group_id: str, **kwargs: Any
    ) -> Any:
        """Subscribe `handle` on `topic` (identity's events topic) through the consumer runtime."""
        return consumer.subscribe(topic, handler=self.handle, group_id=group_id, **kwargs)

    def __len__(self) -> int:
        return len(self._revoked)
