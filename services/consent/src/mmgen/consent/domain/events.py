"""Events of the consent service (`consent.*` on `consent.events`) and their schema registry.

Public `data` holds ids, enums and timestamps; personal values (evidence of how a consent was
given, analytics event contents) travel only in the encrypted `pii` part, owned by
`subject:<id>`, so erasing the subject's key erases them everywhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from mmgen.events.registry import EventData, EventRegistry, PersonalData

registry = EventRegistry()

ConsentMethod = Literal["explicit", "gpc"]


class ConsentEvidence(PersonalData):
    """How the decision reached us (GDPR Art. 7(1): the controller can demonstrate consent)."""

    user_agent: str | None = None
    client_ip: str | None = None


@registry.event(
    "consent.ConsentGranted", action="consent", resource_type="consent", categories=["consent"]
)
class ConsentGranted(EventData):
    """The subject granted consent to a purpose under a published policy version."""

    purpose: str
    policy_version: str | None
    method: ConsentMethod
    personal: ClassVar = ConsentEvidence


@registry.event(
    "consent.ConsentWithdrawn", action="consent", resource_type="consent", categories=["consent"]
)
class ConsentWithdrawn(EventData):
    """The subject withdrew (or refused) consent — explicitly or by a GPC signal."""

    purpose: str
    policy_version: str | None
    method: ConsentMethod
    personal: ClassVar = ConsentEvidence


@registry.event("consent.PolicyPublished", action="create", resource_type="policy")
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


@registry.event(
    "consent.TrackingEventAccepted",
    action="create",
    resource_type="tracking_event",
    categories=["usage"],
)
class TrackingEventAccepted(EventData):
    """An analytics event accepted under the subject's `cookies.analytics` consent."""

    name: str
    client_occurred_at: datetime | None = None
    personal: ClassVar = TrackedEventContent


@registry.event(
    "consent.ConsentRecordsRead", action="read", resource_type="consent", categories=["consent"]
)
class ConsentRecordsRead(EventData):
    """Staff or compliance read a subject's consents (who, why: actor and purpose)."""

    records: int


@registry.event(
    "consent.SubjectExported",
    action="read",
    resource_type="subject",
    categories=["consent", "usage"],
)
class SubjectExported(EventData):
    """A service (retention) exported everything held on a subject, for an access request."""

    consent_records: int
    tracking_events: int


@registry.event("consent.AccessDenied", action="deny", resource_type="endpoint")
class AccessDenied(EventData):
    """A request was refused (401/403): the refusal itself is audited."""

    code: str
    status: int
    method: str
    route: str


@registry.event(
    "consent.SubjectErased",
    action="erase",
    resource_type="subject",
    categories=["consent", "usage"],
)
class SubjectErased(EventData):
    """The answer to `retention.EraseSubject`: what this service erased, as counts."""

    request_id: str | None
    keys_shredded: int
    consent_records_deleted: int
    tracking_events_deleted: int
    categories_held: list[str]


@registry.event("consent.ResourceAnonymized", action="erase", resource_type="resource")
class ResourceAnonymized(EventData):
    """The answer to `retention.AnonymizeResource` (this service owns no such resources)."""

    request_id: str | None
    resource_type: str
    resource_id: str
    records_anonymized: int


registry.check()
