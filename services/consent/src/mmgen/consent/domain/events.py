"""Events of the consent service (`consent.*` on `consent.events`) and its schema registry.

Public `data` holds ids, enums and timestamps; personal values (evidence of how a consent was
given, analytics event contents) travel only in the encrypted `pii` part, owned by
`subject:<id>`, so erasing the subject's key erases them everywhere.

`consent_registry()` declares consent's own events in a fresh registry, one per service
runtime, which then adds the platform's standard events (`consent.AccessDenied`,
`consent.DataAccessed`, `consent.SubjectExported`, `consent.SubjectErased`,
`consent.ResourceAnonymized`; see `mmgen.runtime.contract` and `domain.history`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from mmgen.events.registry import EventData, EventRegistry, PersonalData

ConsentMethod = Literal["explicit", "gpc"]


class ConsentEvidence(PersonalData):
    """How the decision reached us (GDPR Art. 7(1): the controller can demonstrate consent)."""

    user_agent: str | None = None
    client_ip: str | None = None


class ConsentGranted(EventData):
    """The subject granted consent to a purpose under a published policy version."""

    purpose: str
    policy_version: str | None
    method: ConsentMethod
    personal: ClassVar = ConsentEvidence


class ConsentWithdrawn(EventData):
    """The subject withdrew (or refused) consent — explicitly or by a GPC signal."""

    purpose: str
    policy_version: str | None
    method: ConsentMethod
    personal: ClassVar = ConsentEvidence


class PolicyPublished(EventData):
    """An admin published a policy version; the text is public, so it travels in clear."""

    version: str
    effective_at: datetime
    sha256: str
    title: str
    text: str


class TrackedEventContent(PersonalData):
    """What an analytics event says about the subject's behaviour."""

    page: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class TrackingEventAccepted(EventData):
    """An analytics event accepted under the subject's `cookies.analytics` consent."""

    name: str
    client_occurred_at: datetime | None = None
    personal: ClassVar = TrackedEventContent


class ConsentRecordsRead(EventData):
    """Staff or compliance read a subject's consents (who, why: actor and purpose)."""

    records: int


CONSENT_GRANTED = "consent.ConsentGranted"
CONSENT_WITHDRAWN = "consent.ConsentWithdrawn"
POLICY_PUBLISHED = "consent.PolicyPublished"
TRACKING_EVENT_ACCEPTED = "consent.TrackingEventAccepted"
CONSENT_RECORDS_READ = "consent.ConsentRecordsRead"


def consent_registry() -> EventRegistry:
    """A registry holding consent's own events (the runtime adds the standard ones)."""
    registry = EventRegistry()
    decisions: list[tuple[str, type[EventData]]] = [
        (CONSENT_GRANTED, ConsentGranted),
        (CONSENT_WITHDRAWN, ConsentWithdrawn),
    ]
    for event_type, cls in decisions:
        registry.event(
            event_type, action="consent", resource_type="consent", categories=["consent"]
        )(cls)
    registry.event(POLICY_PUBLISHED, action="create", resource_type="policy")(PolicyPublished)
    registry.event(
        TRACKING_EVENT_ACCEPTED,
        action="create",
        resource_type="tracking_event",
        categories=["usage"],
    )(TrackingEventAccepted)
    registry.event(
        CONSENT_RECORDS_READ, action="read", resource_type="consent", categories=["consent"]
    )(ConsentRecordsRead)
    return registry
