"""Consent use cases: policies, decisions, GPC, staff reads, refusals, the tracking gate.

Every change is an event appended to the store first; read models follow. Personal values
(evidence, analytics contents) only ever enter events through their encrypted part.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mmgen.consent.adapters.metrics import TrackingMetrics
from mmgen.consent.adapters.read_models import (
    ConsentReadModel,
    PolicyReadModel,
    TrackingReadModel,
)
from mmgen.consent.domain.errors import (
    ConsentConflictError,
    NoCurrentPolicyError,
    PolicyNotFoundError,
    PolicyVersionExistsError,
    PolicyVersionUnknownError,
    SubjectErasedError,
)
from mmgen.consent.domain.events import (
    AccessDenied,
    ConsentEvidence,
    ConsentMethod,
    ConsentRecordsRead,
    PolicyPublished,
    TrackedEventContent,
    TrackingEventAccepted,
)
from mmgen.consent.domain.model import ConsentState, SubjectConsents, consent_stream
from mmgen.consent.domain.purposes import COOKIES_ANALYTICS, GPC_REFUSED, consentable
from mmgen.events.envelope import Actor, utc_now
from mmgen.events.errors import ConcurrencyError, OwnerErasedError
from mmgen.events.ids import new_event_id
from mmgen.events.keys import Keystore
from mmgen.events.mapper import NewEvent
from mmgen.events.repository import EventSourcedRepository

log = logging.getLogger(__name__)

CONFLICT_RETRIES = 8


def owner_of(subject_id: str) -> str:
    return f"subject:{subject_id}"


def policy_hash(text: str) -> str:
    """SHA-256 of the policy text's UTF-8 bytes, lowercase hex (what a user can recompute)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TrackingOutcome:
    """What the gate did with one analytics event."""

    accepted: bool
    reason: str
    event_id: str | None = None


class ConsentService:
    """The consent service's use cases over its repository and read models."""

    def __init__(
        self,
        repo: EventSourcedRepository,
        keystore: Keystore,
        consents: ConsentReadModel,
        policies: PolicyReadModel,
        tracking: TrackingReadModel,
        metrics: TrackingMetrics,
        *,
        max_tracking_events_per_subject: int = 1000,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.repo = repo
        self.keystore = keystore
        self.consents = consents
        self.policies = policies
        self.tracking = tracking
        self.metrics = metrics
        self.max_tracking_events = max_tracking_events_per_subject
        self.clock = clock

    # --- policies -----------------------------------------------------------------------------

    async def publish_policy(
        self, *, version: str, effective_at: datetime, title: str, text: str, actor: Actor
    ) -> dict[str, Any]:
        """Publish a policy version once; its hash binds consents to the exact text."""
        digest = policy_hash(text)
        event = NewEvent(
            PolicyPublished(
                version=version, effective_at=effective_at, sha256=digest, title=title, text=text
            ),
            actor=actor,
            resource_id=version,
        )
        try:
            stored = await self.repo.append(f"policy:{version}", 0, [event])
        except ConcurrencyError:
            raise PolicyVersionExistsError(version) from None
        doc = {
            "_id": version,
            "version": version,
            "title": title,
            "effective_at": stored[0].data.effective_at,
            "sha256": digest,
            "text": text,
            "published_at": stored[0].occurred_at,
            "published_by": actor.id,
        }
        await self.policies.put(doc)
        return doc

    async def current_policy(self) -> dict[str, Any]:
        doc = await self.policies.current(self.clock())
        if doc is None:
            raise NoCurrentPolicyError()
        return doc

    async def policy(self, version: str) -> dict[str, Any]:
        doc = await self.policies.get(version)
        if doc is None:
            raise PolicyNotFoundError(version)
        return doc

    # --- consents -----------------------------------------------------------------------------

    async def set_consent(
        self,
        *,
        subject_id: str,
        purpose: str,
        granted: bool,
        policy_version: str,
        actor: Actor,
        evidence: ConsentEvidence,
        traceparent: str | None = None,
    ) -> ConsentState:
        """Grant or withdraw — the same single step either way (GDPR Art. 7(3))."""
        consentable(purpose)
        if await self.policies.get(policy_version) is None:
            raise PolicyVersionUnknownError(policy_version)
        aggregate = await self._decide(
            subject_id,
            [(purpose, granted, policy_version, "explicit")],
            actor,
            evidence,
            traceparent,
        )
        return aggregate.states[purpose]

    async def apply_gpc(
        self,
        *,
        subject_id: str,
        actor: Actor,
        evidence: ConsentEvidence,
        skip: Sequence[str] = (),
        traceparent: str | None = None,
    ) -> list[str]:
        """Record `Sec-GPC: 1` as a withdrawal of sale/sharing and analytics where not already
        withdrawn. Returns the purposes for which a withdrawal was recorded."""
        current = await self.repo.get(SubjectConsents, consent_stream(subject_id))
        todo = [
            p
            for p in GPC_REFUSED
            if p not in skip and (current is None or not current.is_withdrawn(p))
        ]
        if not todo:
            self.metrics.gpc_signals.labels(recorded="no").inc()
            return []
        version = await self._current_version()
        decisions: list[tuple[str, bool, str | None, ConsentMethod]] = [
            (p, False, version, "gpc") for p in todo
        ]
        await self._decide(subject_id, decisions, actor, evidence, traceparent)
        self.metrics.gpc_signals.labels(recorded="yes").inc()
        return todo

    async def _current_version(self) -> str | None:
        doc = await self.policies.current(self.clock())
        return None if doc is None else str(doc["version"])

    async def _decide(
        self,
        subject_id: str,
        decisions: Sequence[tuple[str, bool, str | None, ConsentMethod]],
        actor: Actor,
        evidence: ConsentEvidence,
        traceparent: str | None,
    ) -> SubjectConsents:
        """Load, decide, append with optimistic concurrency (retried), then project."""
        if await self.keystore.is_erased(owner_of(subject_id)):
            raise SubjectErasedError()
        stream = consent_stream(subject_id)
        for _ in range(CONFLICT_RETRIES):
            aggregate = await self.repo.get(SubjectConsents, stream) or SubjectConsents(stream)
            for purpose, granted, version, method in decisions:
                aggregate.decide(
                    subject_id=subject_id,
                    purpose=purpose,
                    granted=granted,
                    policy_version=version,
                    method=method,
                    actor=actor,
                    evidence=evidence,
                    traceparent=traceparent,
                )
            try:
                await self.repo.save(aggregate)
            except ConcurrencyError:
                continue
            except OwnerErasedError:
                raise SubjectErasedError() from None
            await self.consents.project(
                subject_id, list(aggregate.states.values()), aggregate.version
            )
            return aggregate
        raise ConsentConflictError()

    async def consents_of(self, subject_id: str) -> list[dict[str, Any]]:
        return await self.consents.of_subject(subject_id)

    async def is_granted(self, subject_id: str, purpose: str) -> bool:
        doc = await self.consents.get(subject_id, purpose)
        return doc is not None and bool(doc["granted"])

    # --- audit of reads and refusals -----------------------------------------------------------

    async def record_read(
        self,
        *,
        subject_id: str,
        actor: Actor,
        purpose: str | None,
        records: int,
        traceparent: str | None = None,
    ) -> None:
        """Staff/compliance read a subject's consents: an access event (action `read`)."""
        event_id = new_event_id()
        await self.repo.append(
            f"access:{event_id}",
            0,
            [
                NewEvent(
                    ConsentRecordsRead(records=records),
                    subject_id=subject_id,
                    actor=actor,
                    purpose=purpose,
                    resource_id=subject_id,
                    event_id=event_id,
                    traceparent=traceparent,
                )
            ],
        )

    async def record_denial(
        self,
        *,
        actor: Actor | None,
        subject_id: str | None,
        purpose: str | None,
        code: str,
        status: int,
        method: str,
        route: str,
        traceparent: str | None = None,
    ) -> None:
        """A refused request: a `deny` event (ids and codes only)."""
        event_id = new_event_id()
        await self.repo.append(
            f"denial:{event_id}",
            0,
            [
                NewEvent(
                    AccessDenied(code=code, status=status, method=method, route=route),
                    subject_id=subject_id,
                    actor=actor,
                    purpose=purpose,
                    resource_id=route,
                    event_id=event_id,
                    traceparent=traceparent,
                )
            ],
        )

    # --- tracking gate ------------------------------------------------------------------------

    async def track(
        self,
        *,
        subject_id: str | None,
        actor: Actor | None,
        gpc: bool,
        name: str,
        client_occurred_at: datetime | None,
        page: str | None,
        properties: dict[str, Any],
        traceparent: str | None = None,
    ) -> TrackingOutcome:
        """Accept an analytics event only under a granted `cookies.analytics` consent.

        Anonymous events are dropped: without a subject there is no consent on record to
        rely on or to prove. `Sec-GPC: 1` drops the event whatever was granted before.
        """
        if subject_id is None or actor is None:
            return self._drop("anonymous")
        if gpc:
            return self._drop("gpc")
        if await self.keystore.is_erased(owner_of(subject_id)):
            return self._drop("subject_erased")
        if not await self.is_granted(subject_id, COOKIES_ANALYTICS):
            return self._drop("no_consent")
        event_id = new_event_id()
        try:
            stored = await self.repo.append(
                f"tracking:{event_id}",
                0,
                [
                    NewEvent(
                        TrackingEventAccepted(name=name, client_occurred_at=client_occurred_at),
                        personal=TrackedEventContent(page=page, properties=properties),
                        subject_id=subject_id,
                        actor=actor,
                        resource_id=event_id,
                        event_id=event_id,
                        traceparent=traceparent,
                    )
                ],
            )
        except OwnerErasedError:
            return self._drop("subject_erased")
        await self.tracking.add(event_id, subject_id, name, stored[0].occurred_at)
        await self.tracking.trim(subject_id, self.max_tracking_events)
        self.metrics.accepted()
        return TrackingOutcome(True, "consent_granted", event_id)

    def _drop(self, reason: str) -> TrackingOutcome:
        self.metrics.dropped(reason)
        return TrackingOutcome(False, reason)
