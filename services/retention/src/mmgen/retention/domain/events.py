"""Events and commands of the retention service (`retention.*`) and their schema registry.

Public `data` holds ids, statuses, dates, counts and the reasons the controller must be able
to show (extension and rejection reasons, legal bases) — these are written by staff about
the handling of a request and must not contain personal data. What a subject wrote about
themselves (the details of a rectification request, its resolution note) is personal and
travels only encrypted under the subject's key.

The two commands (`retention.EraseSubject`, `retention.AnonymizeResource`) are declared here
too, with the `data` every service parses (DESIGN.md, erasure contract), so that they can be
appended and relayed like any event. The standard events every service shares
(`retention.AccessDenied`, `retention.SubjectExported`, ...) come from the runtime.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from mmgen.events.registry import EventData, EventRegistry, PersonalData

RequestType = Literal["access", "erasure", "rectification"]
REQUEST = "privacy_request"


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HeldCategoryData(_Part):
    """A category kept by a legal hold, as recorded on a request."""

    category: str
    hold_id: str
    legal_basis: str
    until: datetime | None = None


class AcknowledgementData(_Part):
    """One service's answer to an erasure order, with its audit-log position."""

    service: str
    event_id: str
    command_id: str | None = None
    audit_seq: int = Field(ge=0)
    keys_shredded: int = Field(ge=0)
    records_deleted: dict[str, int] = Field(default_factory=dict)
    records_anonymized: dict[str, int] = Field(default_factory=dict)
    categories_held: list[str] = Field(default_factory=list)
    acknowledged_at: datetime


class ServiceCheck(_Part):
    """What a service's footprint showed when a request was concluded."""

    service: str
    readable_outside_held: int = Field(ge=0)
    readable_held: int = Field(ge=0)
    key_erased: bool


# --- privacy requests ------------------------------------------------------------------------


class RequestDetails(PersonalData):
    """What the subject wrote: for a rectification, what is wrong and what it should be."""

    details: str | None = None


class PrivacyRequestReceived(EventData):
    request_type: RequestType
    subject_id: str
    requested_by: str
    requested_by_role: str
    on_behalf: bool
    received_at: datetime
    due_on: date
    personal: ClassVar = RequestDetails


class ErasureOrdered(EventData):
    """`retention.EraseSubject` was sent (again, for a retry or after a hold ended)."""

    command_id: str
    attempt: int = Field(ge=1)
    services: list[str]
    categories_held: list[HeldCategoryData]
    reason: str
    ordered_at: datetime


class ErasureAcknowledged(EventData):
    acknowledgement: AcknowledgementData


class ErasurePartiallyCompleted(EventData):
    """Everything not held is erased and checked; held categories remain, with reasons."""

    held: list[HeldCategoryData]
    checks: list[ServiceCheck]
    concluded_at: datetime


class ErasureVerified(EventData):
    """Every service acknowledged and every footprint shows zero readable personal data."""

    checks: list[ServiceCheck]
    verified_at: datetime


class AccessCollectionStarted(EventData):
    services: list[str]
    started_at: datetime


class AccessPackageReady(EventData):
    package_id: str
    services: list[str]
    expires_at: datetime
    ready_at: datetime


class Resolution(PersonalData):
    note: str


class RectificationResolved(EventData):
    """Staff corrected the data through the owning service (named) and closed the request."""

    service: str
    resolved_by: str
    resolved_at: datetime
    personal: ClassVar = Resolution


class DeadlineExtended(EventData):
    months: int = Field(ge=1, le=2)
    due_on: date
    reason: str
    extended_by: str
    extended_at: datetime


class PrivacyRequestOverdue(EventData):
    due_on: date
    detected_at: datetime


class PrivacyRequestRejected(EventData):
    """Refused under GDPR Art. 12(5) (manifestly unfounded or excessive), with the reason."""

    reason: str
    rejected_by: str
    rejected_at: datetime


# --- legal holds -----------------------------------------------------------------------------


class LegalHoldPlaced(EventData):
    subject_id: str
    categories: list[str]
    legal_basis: str
    owner: str
    until: datetime | None
    placed_by: str
    placed_at: datetime


class LegalHoldReleased(EventData):
    released_by: str | None
    reason: Literal["released", "expired"]
    released_at: datetime


# --- retention policies and runs ---------------------------------------------------------------


class RetentionPolicyDefined(EventData):
    """A policy was set (a later definition of the same category and trigger replaces it)."""

    policy_id: str
    category: str
    trigger_event: str
    period: str
    action: Literal["erase", "anonymize"]
    legal_basis: str
    defined_by: str | None
    defined_at: datetime


class OrderRecord(_Part):
    """One order a run issued, and why."""

    command_id: str
    kind: Literal["erase_subject", "anonymize_resource"]
    policy_id: str
    target: str
    trigger_event: str
    triggered_at: datetime
    due_at: datetime
    categories_held: list[str] = Field(default_factory=list)
    reason: str


class RetentionRunCompleted(EventData):
    """A policy run: what it ordered and why, and how many targets it looked at."""

    run_id: str
    started_at: datetime
    completed_at: datetime
    evaluated: int = Field(ge=0)
    orders: list[OrderRecord]
    truncated: bool = False


# --- commands (the erasure contract) -------------------------------------------------------------


class EraseSubject(EventData):
    request_id: str
    subject_id: str
    categories_held: list[str]
    #: Retention's compact JWS over the command (`mmgen.runtime.commands`); unsigned, refused.
    signature: str | None = None


class ResourceRef(_Part):
    type: str
    id: str


class AnonymizeResource(EventData):
    request_id: str
    resource: ResourceRef
    signature: str | None = None


#: The command types retention publishes on `retention.commands` (besides `retention.events`).
COMMAND_TYPES = ("retention.EraseSubject", "retention.AnonymizeResource")


def retention_registry() -> EventRegistry:
    """A registry of retention's own events and commands (the runtime adds the standard ones).

    One per runtime: the runtime registers `retention.AccessDenied` and the other standard
    events into it, so two apps in one process (tests) each need their own.
    """
    registry = EventRegistry()
    registry.event(
        "retention.PrivacyRequestReceived",
        action="create",
        resource_type=REQUEST,
        categories=["account"],
    )(PrivacyRequestReceived)
    registry.event("retention.ErasureOrdered", action="erase", resource_type=REQUEST)(
        ErasureOrdered
    )
    registry.event("retention.ErasureAcknowledged", action="update", resource_type=REQUEST)(
        ErasureAcknowledged
    )
    registry.event("retention.ErasurePartiallyCompleted", action="update", resource_type=REQUEST)(
        ErasurePartiallyCompleted
    )
    registry.event("retention.ErasureVerified", action="update", resource_type=REQUEST)(
        ErasureVerified
    )
    registry.event("retention.AccessCollectionStarted", action="update", resource_type=REQUEST)(
        AccessCollectionStarted
    )
    registry.event("retention.AccessPackageReady", action="update", resource_type=REQUEST)(
        AccessPackageReady
    )
    registry.event("retention.RectificationResolved", action="update", resource_type=REQUEST)(
        RectificationResolved
    )
    registry.event("retention.DeadlineExtended", action="update", resource_type=REQUEST)(
        DeadlineExtended
    )
    registry.event("retention.PrivacyRequestOverdue", action="update", resource_type=REQUEST)(
        PrivacyRequestOverdue
    )
    registry.event("retention.PrivacyRequestRejected", action="update", resource_type=REQUEST)(
        PrivacyRequestRejected
    )
    registry.event("retention.LegalHoldPlaced", action="create", resource_type="legal_hold")(
        LegalHoldPlaced
    )
    registry.event("retention.LegalHoldReleased", action="delete", resource_type="legal_hold")(
        LegalHoldReleased
    )
    registry.event("retention.RetentionPolicyDefined", action="create", resource_type="policy")(
        RetentionPolicyDefined
    )
    registry.event(
        "retention.RetentionRunCompleted", action="update", resource_type="retention_run"
    )(RetentionRunCompleted)
    registry.event("retention.EraseSubject", action="erase", resource_type="subject")(EraseSubject)
    registry.event("retention.AnonymizeResource", action="erase", resource_type="resource")(
        AnonymizeResource
    )
    registry.check()
    return registry
