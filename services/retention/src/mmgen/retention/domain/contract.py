"""Retention's reading of the shared erasure contract: what other services send back to it.

Every service answers `retention.EraseSubject` with `<service>.SubjectErased` and serves
`/internal/subjects/{id}/export|footprint` with the same models (the runtime's erasure
contract). Retention parses them here, tolerantly about members it does not use (a newer
service may add some) and strictly about the ones it decides on: counts are non-negative
integers, a footprint names its service and subject.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt


class _Read(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class CategoryFootprint(_Read):
    records: NonNegativeInt = 0
    readable_personal_fields: NonNegativeInt = 0


class Footprint(_Read):
    """What one service still holds on a subject (`GET /internal/subjects/{id}/footprint`)."""

    service: str = Field(min_length=1, max_length=64)
    subject_id: str = Field(min_length=1, max_length=256)
    key_erased: bool = False
    categories: dict[str, CategoryFootprint] = Field(default_factory=dict)
    total_records: NonNegativeInt = 0
    readable_personal_fields: NonNegativeInt = 0

    def readable_outside(self, held: frozenset[str]) -> int:
        """Readable personal fields in categories not under a hold.

        Fields the service counts in its total but in no category are counted as outside
        every hold: a service that cannot say where data lies cannot claim it is held.
        """
        outside = sum(
            c.readable_personal_fields for name, c in self.categories.items() if name not in held
        )
        categorised = sum(c.readable_personal_fields for c in self.categories.values())
        return outside + max(0, self.readable_personal_fields - categorised)


class ExportedEvent(_Read):
    """One event of a subject's history, as a service exports it."""

    event_id: str
    event_type: str
    occurred_at: datetime | None = None
    action: str | None = None
    actor: dict[str, Any] | None = None
    purpose: str | None = None
    categories: list[str] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)
    personal: Any = None


class SubjectExport(_Read):
    """Everything one service holds on a subject, decrypted (`.../export`)."""

    service: str = Field(min_length=1, max_length=64)
    subject_id: str = Field(min_length=1, max_length=256)
    generated_at: datetime | None = None
    erased: bool = False
    records: dict[str, Any] = Field(default_factory=dict)
    events: list[ExportedEvent] = Field(default_factory=list)


class SubjectErasedReport(_Read):
    """A service's `<service>.SubjectErased`, read from its events topic (public `data`).

    `event_id` joins it to the audit-log entry that records it (whose `seq` goes into the
    receipt); `command_id` is the envelope's `causation_id`, the command it answers.
    """

    service: str = Field(min_length=1, max_length=64)
    event_id: str = Field(min_length=1, max_length=64)
    command_id: str | None = None
    occurred_at: datetime
    request_id: str | None = None
    subject_id: str = Field(min_length=1, max_length=256)
    keys_shredded: NonNegativeInt = 0
    records_deleted: dict[str, NonNegativeInt] = Field(default_factory=dict)
    records_anonymized: dict[str, NonNegativeInt] = Field(default_factory=dict)
    categories_held: list[str] = Field(default_factory=list)


class AuditRecord(_Read):
    """The members of an audit-log entry retention reads (the entry holds no contents)."""

    seq: NonNegativeInt
    event_id: str
    producer: str
    event_type: str
    action: str
    subject_id: str | None = None
    actor_id: str | None = None
    actor_role: str | None = None
    purpose: str | None = None
    resource: dict[str, str] | None = None
    categories: list[str] = Field(default_factory=list)
    occurred_at: datetime

    @property
    def resource_key(self) -> tuple[str, str] | None:
        if not self.resource:
            return None
        kind, ident = self.resource.get("type"), self.resource.get("id")
        return (kind, ident) if kind and ident else None


class Purpose(_Read):
    """An entry of the purposes catalogue (consent's public `GET /purposes`)."""

    id: str
    legal_basis: str
    description: str = ""
    data_categories: list[str] = Field(default_factory=list)
    consent_based: bool = False
