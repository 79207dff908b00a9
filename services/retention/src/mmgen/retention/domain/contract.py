"""What retention keeps of the erasure contract's answers, and the audit entries it reads.

The shapes every service shares — `Footprint`, `SubjectExport`, the `SubjectErased` data —
are the runtime's (`mmgen.runtime.contract`), used as they are. Here are retention's own
records built from them: a `SubjectErasedReport` is one service's `SubjectErased` with the
envelope members that join it to its audit-log entry (event id) and to the command it
answers (causation id); an `AuditRecord` is the part of an audit-log entry retention reads
(entries hold ids, actions and categories, never contents); `Purpose` is an entry of
consent's purposes catalogue.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt

from mmgen.events.envelope import Envelope
from mmgen.runtime.contract import SUBJECT_ERASED, SubjectErasedData


class _Read(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


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

    @classmethod
    def of(cls, envelope: Envelope) -> SubjectErasedReport | None:
        """The report of a `<producer>.SubjectErased` envelope (None for any other event).

        Its data is validated as the contract's `SubjectErasedData`: a service that answers in
        another shape is not taken at its word (a `ValidationError` parks the message)."""
        if envelope.event_type != f"{envelope.producer}.{SUBJECT_ERASED}":
            return None
        data = SubjectErasedData.model_validate(envelope.data)
        return cls(
            service=envelope.producer,
            event_id=envelope.event_id,
            command_id=envelope.causation_id,
            occurred_at=envelope.occurred_at,
            request_id=data.request_id,
            subject_id=data.subject_id,
            keys_shredded=data.keys_shredded,
            records_deleted=data.records_deleted,
            records_anonymized=data.records_anonymized,
            categories_held=data.categories_held,
        )


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
    #: When the audit log took the event in (absent from entries written before it was kept).
    recorded_at: datetime | None = None

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
