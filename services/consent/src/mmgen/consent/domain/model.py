"""The consent aggregate: one stream per subject, folding grants and withdrawals per purpose.

Decisions are made on the folded state (read from the event store, the source of truth), so a
withdrawal is recorded exactly as a grant is — one event — and a GPC signal only records a
withdrawal where the purpose is not already withdrawn. A decision's event names the
categories of its purpose besides `consent` (an analytics consent concerns `usage`, a
sensitive-sharing one `sensitive`), so the audit log files it under both.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from mmgen.consent.domain.events import (
    ConsentEvidence,
    ConsentGranted,
    ConsentMethod,
    ConsentWithdrawn,
)
from mmgen.consent.domain.purposes import purpose as catalogue_purpose
from mmgen.events.envelope import Actor
from mmgen.events.mapper import DomainEvent, NewEvent
from mmgen.events.registry import EventData
from mmgen.events.repository import Aggregate


def consent_stream(subject_id: str) -> str:
    return f"consent-subject:{subject_id}"


@dataclass(frozen=True)
class ConsentState:
    """The current decision for one purpose."""

    purpose: str
    granted: bool
    policy_version: str | None
    method: ConsentMethod
    decided_at: datetime | None


class SubjectConsents(Aggregate):
    """All consent decisions of one subject."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(stream_id)
        self.states: dict[str, ConsentState] = {}

    def apply(self, event: DomainEvent[Any]) -> None:
        super().apply(event)
        self._stamp(event.data, event.occurred_at)

    def record(self, event: NewEvent[Any]) -> None:
        super().record(event)
        self._stamp(event.data, event.occurred_at)

    def _stamp(self, data: EventData, at: datetime) -> None:
        """Keep when each purpose was last decided (the envelope's time, not in `data`)."""
        if isinstance(data, ConsentGranted | ConsentWithdrawn):
            state = self.states[data.purpose]
            self.states[data.purpose] = replace(state, decided_at=at)

    def when(self, data: EventData, personal: Any) -> None:
        match data:
            case ConsentGranted(purpose=p, policy_version=v, method=m):
                self.states[p] = ConsentState(p, True, v, m, None)
            case ConsentWithdrawn(purpose=p, policy_version=v, method=m):
                self.states[p] = ConsentState(p, False, v, m, None)

    def decide(
        self,
        *,
        subject_id: str,
        purpose: str,
        granted: bool,
        policy_version: str | None,
        method: ConsentMethod,
        actor: Actor | None,
        evidence: ConsentEvidence,
        traceparent: str | None = None,
    ) -> bool:
        """Record a decision; False (nothing recorded) when it repeats the current state exactly."""
        current = self.states.get(purpose)
        if (
            current is not None
            and current.granted == granted
            and current.policy_version == policy_version
            and current.method == method
        ):
            return False
        cls = ConsentGranted if granted else ConsentWithdrawn
        categories = sorted({"consent", *catalogue_purpose(purpose).event_categories})
        self.record(
            NewEvent(
                cls(purpose=purpose, policy_version=policy_version, method=method),
                personal=evidence,
                subject_id=subject_id,
                actor=actor,
                resource_id=f"{subject_id}:{purpose}",
                traceparent=traceparent,
                categories=tuple(categories),
            )
        )
        return True

    def is_withdrawn(self, purpose: str) -> bool:
        state = self.states.get(purpose)
        return state is not None and not state.granted

    def is_granted(self, purpose: str) -> bool:
        state = self.states.get(purpose)
        return state is not None and state.granted
