"""The events and models every service shares, so retention and the audit log read one shape.

`register_standard_events(registry, "projects")` declares, in the service's own registry:

| event type | action | what it records |
|---|---|---|
| `<svc>.AccessDenied` | deny | a refused request: route, code, target (ids only) |
| `<svc>.DataAccessed` | read | a read of personal data: the categories and fields read, purpose |
| `<svc>.SubjectExported` | read | an Art. 15 export handed to a service caller |
| `<svc>.SubjectErased` | erase | the answer to `retention.EraseSubject` (counts only) |
| `<svc>.ResourceAnonymized` | erase | the answer to `retention.AnonymizeResource` (counts only) |

Their `data` fields are the same in every service (the erasure contract of DESIGN.md); the
footprint and export models below are what `/internal/subjects/{id}/footprint|export` return,
so they appear in every service's OpenAPI document the same way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mmgen.events.registry import EventData, EventRegistry

ROUTE_MAX = 200
CODE_MAX = 100
#: Event-type suffixes of the standard events (after `<service>.`).
ACCESS_DENIED = "AccessDenied"
DATA_ACCESSED = "DataAccessed"
SUBJECT_EXPORTED = "SubjectExported"
SUBJECT_ERASED = "SubjectErased"
RESOURCE_ANONYMIZED = "ResourceAnonymized"

CountsByCategory = dict[str, int]


def owner_of_subject(subject_id: str) -> str:
    """The keystore owner of a subject's personal data (`subject:<id>`)."""
    return f"subject:{subject_id}"


def well_formed_id(value: Any) -> str | None:
    """The canonical UUID text of `value`, or None: raw request values never reach an event."""
    if value is None:
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


# --- event data (the same fields in every service) -----------------------------------------


class AccessDeniedData(EventData):
    """A refused request. `route` is the route template, never the raw path.

    `reason` is what the caller was not told (why a token was invalid); `occurrences` is how
    many refusals a sampled record of anonymous refusals stands for (1 for any other).
    """

    code: str = Field(max_length=CODE_MAX)
    status: int = Field(ge=400, le=599)
    method: str = Field(max_length=10)
    route: str = Field(max_length=ROUTE_MAX)
    target_type: str | None = Field(default=None, max_length=40)
    target_id: str | None = Field(default=None, max_length=36)
    reason: str | None = Field(default=None, max_length=CODE_MAX)
    occurrences: int = Field(default=1, ge=1)


class DataAccessedData(EventData):
    """A successful read of personal data: which fields, through which route."""

    route: str = Field(max_length=ROUTE_MAX)
    fields: list[str] = Field(default_factory=list, max_length=100)
    records: int = Field(default=1, ge=0)


class SubjectExportedData(EventData):
    """An export of everything held on a subject, handed to a service caller."""

    records: int = Field(ge=0)
    events: int = Field(ge=0)


class SubjectErasedData(EventData):
    """The answer to `retention.EraseSubject`: what was made unreadable or removed, per category."""

    request_id: str | None = Field(default=None, max_length=200)
    subject_id: str
    keys_shredded: int = Field(ge=0)
    records_deleted: CountsByCategory = Field(default_factory=dict)
    records_anonymized: CountsByCategory = Field(default_factory=dict)
    categories_held: list[str] = Field(default_factory=list)


class ResourceAnonymizedData(EventData):
    """The answer to `retention.AnonymizeResource`."""

    request_id: str | None = Field(default=None, max_length=200)
    resource_type: str = Field(max_length=40)
    resource_id: str = Field(max_length=200)
    keys_shredded: int = Field(ge=0)
    records_anonymized: CountsByCategory = Field(default_factory=dict)


@dataclass(frozen=True)
class StandardEvents:
    """The service's own classes of the standard events (each registered under its name)."""

    service: str
    AccessDenied: type[AccessDeniedData]
    DataAccessed: type[DataAccessedData]
    SubjectExported: type[SubjectExportedData]
    SubjectErased: type[SubjectErasedData]
    ResourceAnonymized: type[ResourceAnonymizedData]

    def event_type(self, suffix: str) -> str:
        return f"{self.service}.{suffix}"


def register_standard_events(
    registry: EventRegistry, service: str, *, versions: dict[str, int] | None = None
) -> StandardEvents:
    """Declare the standard events in `registry` under `service`.

    `versions`: a schema version per suffix, for a service whose stored events of that type
    predate the contract (it registers upcasters from the older versions itself).
    """
    versions = versions or {}

    def declare(
        base: type[EventData], suffix: str, action: str, resource_type: str
    ) -> type[EventData]:
        cls = type(suffix, (base,), {"__module__": base.__module__})
        registry.event(
            f"{service}.{suffix}",
            version=versions.get(suffix, 1),
            action=action,  # type: ignore[arg-type]
            resource_type=resource_type,
        )(cls)
        return cls

    return StandardEvents(
        service=service,
        AccessDenied=declare(AccessDeniedData, ACCESS_DENIED, "deny", "endpoint"),  # type: ignore[arg-type]
        DataAccessed=declare(DataAccessedData, DATA_ACCESSED, "read", "resource"),  # type: ignore[arg-type]
        SubjectExported=declare(SubjectExportedData, SUBJECT_EXPORTED, "read", "subject"),  # type: ignore[arg-type]
        SubjectErased=declare(SubjectErasedData, SUBJECT_ERASED, "erase", "subject"),  # type: ignore[arg-type]
        ResourceAnonymized=declare(  # type: ignore[arg-type]
            ResourceAnonymizedData, RESOURCE_ANONYMIZED, "erase", "resource"
        ),
    )


# --- footprint and export (HTTP models) ---------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CategoryFootprint(_Model):
    records: int = Field(ge=0, description="Records held in this category.")
    readable_personal_fields: int = Field(
        ge=0, description="Personal values still readable (zero once erased, unless held)."
    )


class Footprint(_Model):
    """What a service still holds on a subject, counts only (no contents)."""

    service: str
    subject_id: str
    key_erased: bool = Field(description="The subject's data key is shredded.")
    categories: dict[str, CategoryFootprint]
    total_records: int = Field(ge=0)
    readable_personal_fields: int = Field(ge=0, description="Sum over the categories.")

    @classmethod
    def of(
        cls,
        service: str,
        subject_id: str,
        *,
        key_erased: bool,
        records: CountsByCategory,
        readable: CountsByCategory,
    ) -> Footprint:
        """Build from per-category counts (categories absent from one side count zero)."""
        names = sorted(set(records) | set(readable))
        categories = {
            name: CategoryFootprint(
                records=records.get(name, 0), readable_personal_fields=readable.get(name, 0)
            )
            for name in names
        }
        return cls(
            service=service,
            subject_id=subject_id,
            key_erased=key_erased,
            categories=categories,
            total_records=sum(c.records for c in categories.values()),
            readable_personal_fields=sum(c.readable_personal_fields for c in categories.values()),
        )


class ExportedActor(_Model):
    id: str
    role: str


class ExportedEvent(_Model):
    """One stored event about the subject, personal part decrypted (or `{"erased": true}`)."""

    event_id: str
    event_type: str
    occurred_at: datetime
    action: str
    actor: ExportedActor | None = None
    purpose: str | None = None
    categories: list[str] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)
    personal: dict[str, Any] | None = None


class SubjectExport(_Model):
    """Everything a service holds on a subject, decrypted and machine-readable (Art. 15/20)."""

    service: str
    subject_id: str
    generated_at: datetime
    erased: bool = Field(description="The subject's data key is shredded.")
    records: dict[str, Any] = Field(
        default_factory=dict, description="The service's current records on the subject."
    )
    events: list[ExportedEvent] = Field(default_factory=list)
    events_truncated: bool = Field(
        default=False, description="More events exist than one export carries."
    )
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` for the next page of events; null on the last page.",
    )
