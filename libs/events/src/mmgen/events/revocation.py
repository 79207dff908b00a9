"""Revocation of closed and erased subjects, and of tokens issued before a subject's password
changed, learnt from identity's events, for token verifiers.

Identity publishes `identity.AccountClosed`, `identity.SubjectErased`, and
`identity.PasswordChanged` and `identity.TotpActivated` (whose `tokens_not_before` is the instant
before which the subject's tokens are void) to `identity.events`. Every other service wires
`SubjectRevocations` into its token verifier so a closed account's tokens, and the tokens held
before a password change or reset or before a second factor was switched on, stop working there
as soon as the event is consumed:

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
revocation within that bound plus the consumer's lag. Not-before instants (collection
`subject_not_before`, the latest instant kept) are cached for the same `negative_ttl_s`, as a
later password change moves them on.
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
#: Identity's events after which the subject's earlier tokens are void: a new password (changed
#: or reset), a second factor switched on (the earlier tokens were got without it).
PASSWORD_CHANGED = "identity.PasswordChanged"  # noqa: S105 - an event type, not a password
TOTP_ACTIVATED = "identity.TotpActivated"
#: Their field with the instant (seconds since the epoch) tokens must follow.
NOT_BEFORE_FIELD = "tokens_not_before"
NOT_BEFORE_EVENT_TYPES = frozenset({PASSWORD_CHANGED, TOTP_ACTIVATED})
#: Every event type `SubjectRevocations.handle` acts on.
TOKEN_EVENT_TYPES = REVOKING_EVENT_TYPES | NOT_BEFORE_EVENT_TYPES
REVOCATIONS_COLLECTION = "revoked_subjects"
NOT_BEFORE_COLLECTION = "subject_not_before"
#: Cached entries beyond this are dropped (a cache, not a record: the database has them all).
_CACHE_LIMIT = 100_000


class SubjectRevocations:
    """A `SubjectDenylist` fed by identity's events, persisted in the service's database."""

    def __init__(
        self,
        db: AsyncDatabase[Any],
        *,
        collection: str = REVOCATIONS_COLLECTION,
        not_before_collection: str = NOT_BEFORE_COLLECTION,
        negative_ttl_s: float = 1.0,
        clock: Any = time.monotonic,
    ) -> None:
        self.collection = db[collection]
        self.not_before_collection = db[not_before_collection]
        self.negative_ttl_s = negative_ttl_s
        self._clock = clock
        self._revoked: set[str] = set()
        self._not_revoked_until: dict[str, float] = {}
        self._not_before: dict[str, tuple[float | None, float]] = {}

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
        if len(self._not_revoked_until) > _CACHE_LIMIT:
            self._not_revoked_until.clear()
        self._not_revoked_until[subject_id] = now + self.negative_ttl_s
        return False

    async def not_before(self, subject_id: str) -> float | None:
        """The instant before which the subject's tokens are void (its last password change),
        or None; read again after `negative_ttl_s`, so a later change is seen within it."""
        now = self._clock()
        cached = self._not_before.get(subject_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        found = await self.not_before_collection.find_one({"_id": subject_id})
        instant = float(found["not_before"]) if found is not None else None
        if len(self._not_before) > _CACHE_LIMIT:
            self._not_before.clear()
        self._not_before[subject_id] = (instant, now + self.negative_ttl_s)
        return instant

    async def void_before(
        self,
        subject_id: str,
        instant: float,
        *,
        event_id: str | None = None,
        session: AsyncClientSession | None = None,
    ) -> None:
        """Record that the subject's tokens issued before `instant` are void (idempotent; the
        latest instant wins, whatever order the events come in)."""
        await self.not_before_collection.update_one(
            {"_id": subject_id},
            {"$max": {"not_before": float(instant)}, "$set": {"event_id": event_id}},
            upsert=True,
            session=session,
        )
        cached = self._not_before.get(subject_id)
        if cached is not None and cached[0] is not None and cached[0] >= instant:
            return
        # Caching before the commit is safe: identity changed the password either way, and
        # a retried transaction applies the same instant again.
        self._not_before[subject_id] = (instant, self._clock() + self.negative_ttl_s)

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
        """Consumer handler for `identity.events`: revoke on `AccountClosed`/`SubjectErased`,
        void earlier tokens on `PasswordChanged`/`TotpActivated`."""
        if envelope.event_type not in TOKEN_EVENT_TYPES:
            return
        subject = envelope.subject_id or envelope.data.get("subject_id")
        if not subject:
            return
        if envelope.event_type in NOT_BEFORE_EVENT_TYPES:
            instant = envelope.data.get(NOT_BEFORE_FIELD)
            if not isinstance(instant, int | float) or isinstance(instant, bool):
                # An event from before the field: the second after it happened, as identity does.
                instant = int(envelope.occurred_at.timestamp()) + 1
            await self.void_before(
                str(subject), float(instant), event_id=envelope.event_id, session=ctx.session
            )
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
