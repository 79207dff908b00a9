"""The shared erasure contract's shapes, as the service runtime (`mmgen.runtime.erasure`)
defines them: orders in, outcomes, footprint and export out.

The runtime is written beside this service; until it lands, its types are stated here with
the same names and fields (notes/RUNTIME.md), so the participant is written against the
contract and wiring it is a change of this module to `from mmgen.runtime.erasure import ...`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from mmgen.events.envelope import Envelope


@dataclass(frozen=True)
class EraseOrder:
    request_id: str
    subject_id: str
    categories_held: frozenset[str]
    command: Envelope


@dataclass(frozen=True)
class AnonymizeOrder:
    request_id: str
    resource_type: str
    resource_id: str
    command: Envelope


@dataclass(frozen=True)
class ErasureOutcome:
    keys_shredded: int
    records_deleted: dict[str, int] = field(default_factory=dict)
    records_anonymized: dict[str, int] = field(default_factory=dict)
    categories_held: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AnonymizationOutcome:
    keys_shredded: int
    records_anonymized: dict[str, int] = field(default_factory=dict)


class CategoryFootprint(BaseModel):
    records: int
    readable_personal_fields: int


class Footprint(BaseModel):
    service: str
    subject_id: str
    key_erased: bool
    categories: dict[str, CategoryFootprint]
    total_records: int
    readable_personal_fields: int


class ExportedEvent(BaseModel):
    event_id: str
    event_type: str
    occurred_at: datetime
    action: str
    purpose: str | None
    categories: list[str]
    data: dict[str, Any]
    personal: dict[str, Any] | None


class SubjectExport(BaseModel):
    service: str
    subject_id: str
    generated_at: datetime
    erased: bool
    records: dict[str, Any]
    events: list[ExportedEvent]
