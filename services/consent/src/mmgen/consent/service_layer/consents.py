"""Consent use cases: policies, decisions, GPC, staff reads, the tracking gate.

Every change is an event appended to the store first; the read models follow through
`ReadModelProjection.apply` on the stored events (the same function the runtime's catch-up
projector runs). Personal values (evidence, analytics contents) only ever enter events
through their encrypted part.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mmgen.consent.adapters.metrics import TrackingMetrics
from mmgen.consent.adapters.projection import ReadModelProjection
from mmgen.consent.adapters.read_models import (
    ConsentReadModel,
    Policy,
    PolicyReadModel,
    PolicySummary,
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
from mmgen.events.mapper import DomainEvent, NewEvent
from mmgen.events.repository import EventSourcedRepository
from mmgen.runtime.contract import owner_of_subject

log = logging.getLogger(__name__)

CONFLICT_RETRIES = 8


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
        repository: EventSourcedRepository,
        keystore: Keystore,
        consents: ConsentReadModel,
        policies: PolicyReadModel,
        projection: ReadModelProjection,
        metrics: TrackingMetrics,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.repository = repository
        self.keystore = keystore
        self.consents = consents
        self.policies = policies
        self.projection = projection
        self.metrics = metrics
        self.clock = clock

    async def _project(self, stored: Sequence[DomainEvent[Any]]) -> None:
        """Read-your-writes: the read models show what was just appended."""
        for event in stored:
            await self.projection.apply(event.envelope)

    # --- policies -----------------------------------------------------------------------------

    async def publish_policy(
        self, *, version: str, effective_at: datetime, title: str, text: str, actor: Actor
    ) -> Policy:
        """Publish a policy version once; its hash binds consents to the exact text."""
        event = NewEvent(
            PolicyPublished(
                version=version,
                effective_at=effective_at,
                sha256=policy_hash(text),
                title=title,
                text=text,
            ),
            actor=actor,
            resource_id=version,
        )
        try:
            stored = await self.repository.append(f"policy:{version}", 0, [event])
        except ConcurrencyError:
            raise PolicyVersionExistsError(version) from None
        await self._project(stored)
        return await self.policy(version)

    async def current_policy(self) -> Policy:
        summary = await self.policies.current(self.clock())
        if summary is None:
            raise NoCurrentPolicyError()
        return await self.policy(summary.version)

    async def policy(self, version: str) -> Policy:
        found = await self.policies.get(version)
        if found is None:
            raise PolicyNotFoundError(version)
        return found

    async def list_policies(self) -> list[PolicySummary]:
        return await self.policies.all()

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
    ) -> ConsentState:
        """Grant or withdraw — the same single step either way (GDPR Art. 7(3))."""
        consentable(purpose)
        if await self.policies.get(policy_version) is None:
            raise PolicyVersionUnknownError(policy_version)
        aggregate = await self._decide(
            subject_id, [(purpose, granted, policy_version, "explicit")], actor, evidence
        )
        return aggregate.states[purpose]

    async def apply_gpc(
        self,
        *,
        subject_id: str,
        actor: Actor,
        evidence: ConsentEvidence,
        skip: Sequence[str] = (),
    ) -> list[str]:
        """Record `Sec-GPC: 1` as a withdrawal of sale/sharing and analytics where not already
        withdrawn. Returns the purposes for which a withdrawal was recorded."""
        current = await self.repository.get(SubjectConsents, consent_stream(subject_id))
        todo = [
            p
            for p in GPC_REFUSED
            if p not in skip and (current is None or not current.is_withdrawn(p))
        ]
        if not todo:
            self.metrics.gpc_signals.labels(recorded="no").inc()
            return []
        summary = await self.policies.current(self.clock())
        version = None if summary is None else summary.version
        decisions: list[tuple[str, bool, str | None, ConsentMethod]] = [
            (p, False, version, "gpc") for p in todo
        ]
        await self._decide(subject_id, decisions, actor, evidence)
        self.metrics.gpc_signals.labels(recorded="yes").inc()
        return todo

    async def _decide(
        self,
        subject_id: str,
        decisions: Sequence[tuple[str, bool, str | None, ConsentMethod]],
        actor: Actor,
        evidence: ConsentEvidence,
    ) -> SubjectConsents:
        """Load, decide, append with optimistic concurrency (retried), then project."""
        if await self.keystore.is_erased(owner_of_subject(subject_id)):
            raise SubjectErasedError()
        stream = consent_stream(subject_id)
        for _ in range(CONFLICT_RETRIES):
            aggregate = await self.repository.get(SubjectConsents, stream)
            aggregate = aggregate or SubjectConsents(stream)
            for purpose, granted, version, method in decisions:
                aggregate.decide(
                    subject_id=subject_id,
                    purpose=purpose,
                    granted=granted,
                    policy_version=version,
                    method=method,
                    actor=actor,
                    evidence=evidence,
                )
            try:
                stored = await self.repository.save(aggregate)
            except ConcurrencyError:
                continue
            except OwnerErasedError:
                raise SubjectErasedError() from None
            await self._project(stored)
            return aggregate
        raise ConsentConflictError()

    async def consents_of(self, subject_id: str) -> list[ConsentState]:
        return await self.consents.of_subject(subject_id)

    async def is_granted(self, subject_id: str, purpose: str) -> bool:
        state = await self.consents.get(subject_id, purpose)
        return state is not None and state.granted

    # --- audited reads --------------------------------------------------------------------------

    async def read_consents(
        self, *, subject_id: str, actor: Actor, purpose: str | None
    ) -> list[ConsentState]:
        """Staff/compliance read a subject's consents: the read is an access event (`read`)."""
        states = await self.consents.of_subject(subject_id)
        event_id = new_event_id()
        await self.repository.append(
            f"access:{event_id}",
            0,
            [
                NewEvent(
                    ConsentRecordsRead(records=len(states)),
                    subject_id=subject_id,
                    actor=actor,
                    purpose=purpose,
                    resource_id=subject_id,
                    event_id=event_id,
                )
            ],
        )
        return states

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
    ) -> TrackingOutcome:
        """Accept an analytics event only under a granted `cookies.analytics` consent.

        Anonymous events are dropped: without a subject there is no consent on record to
        rely on or to prove. `Sec-GPC: 1` drops the event whatever was granted before.
        """
        if subject_id is None or actor is None:
            return self._drop("anonymous")
        if gpc:
            return self._drop("gpc")
        if await self.keystore.is_erased(owner_of_subject(subject_id)):
            return self._drop("subject_erased")
        if not await self.is_granted(subject_id, COOKIES_ANALYTICS):
            return self._drop("no_consent")
        event_id = new_event_id()
        try:
            stored = await self.repository.append(
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
                    )
                ],
            )
        except OwnerErasedError:
            return self._drop("subject_erased")
        await self._project(stored)
        self.metrics.accepted()
        return TrackingOutcome(True, "consent_granted", event_id)

    def _drop(self, reason: str) -> TrackingOutcome:
        self.metrics.dropped(reason)
        return TrackingOutcome(False, reason)
