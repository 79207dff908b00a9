"""Consent's audit and erasure events as stored before the platform's erasure contract.

Consent stored `consent.AccessDenied`, `consent.SubjectExported`, `consent.SubjectErased` and
`consent.ResourceAnonymized` in shapes of its own (schema version 1). They are the runtime's
standard events now, with the same fields in every service (`mmgen.runtime.contract`);
consent declares them at version 2 (`STANDARD_EVENT_VERSIONS`) and reads stored version-1
events through the upcasters below, so every reader sees one shape. Pure functions on dicts.
"""

from __future__ import annotations

from typing import Any

from mmgen.events.envelope import Envelope
from mmgen.events.registry import EventRegistry
from mmgen.runtime.contract import CODE_MAX, ROUTE_MAX

Data = dict[str, Any]
Personal = dict[str, Any] | None

#: The schema version of each standard event in consent's registry (suffix → version).
STANDARD_EVENT_VERSIONS = {
    "AccessDenied": 2,
    "SubjectExported": 2,
    "SubjectErased": 2,
    "ResourceAnonymized": 2,
}
#: Which category each version-1 deletion count was about.
V1_DELETION_COUNTS = {"consent_records_deleted": "consent", "tracking_events_deleted": "usage"}
REQUEST_ID_MAX = 200


def _request_id(data: Data) -> str | None:
    value = data.get("request_id")
    return None if value is None else str(value)[:REQUEST_ID_MAX]


def access_denied_v1(data: Data, personal: Personal) -> tuple[Data, Personal]:
    """v1: code, status, method, route (the code unbounded); v2 adds a target, unknown here."""
    return {
        "code": str(data["code"])[:CODE_MAX],
        "status": int(data["status"]),
        "method": str(data["method"])[:10],
        "route": str(data["route"])[:ROUTE_MAX],
    }, personal


def subject_exported_v1(data: Data, personal: Personal) -> tuple[Data, Personal]:
    """v1 counted the current consent rows and the analytics events it exported; v2 counts
    records and events. Both v1 counts were records; its events were the analytics events
    (the consent history it also exported went uncounted)."""
    consent_rows = int(data["consent_records"])
    tracked = int(data["tracking_events"])
    return {"records": consent_rows + tracked, "events": tracked}, personal


def subject_erased_v1(data: Data, personal: Personal, envelope: Envelope) -> tuple[Data, Personal]:
    """v1 counted deletions in two fields and named the subject only in the envelope; v2 counts
    per category (`consent` rows, `usage` analytics events) — for the categories not held."""
    held = sorted({str(c) for c in data.get("categories_held") or []})
    deleted = {
        category: int(data.get(count) or 0)
        for count, category in V1_DELETION_COUNTS.items()
        if category not in held
    }
    return {
        "request_id": _request_id(data),
        "subject_id": envelope.subject_id or envelope.resource.id,
        "keys_shredded": int(data["keys_shredded"]),
        "records_deleted": deleted,
        "records_anonymized": {},
        "categories_held": held,
    }, personal


def resource_anonymized_v1(data: Data, personal: Personal) -> tuple[Data, Personal]:
    """v1 had one count (always 0: consent owns no anonymisable resources) and no key count;
    v2 counts per category, here under the resource type."""
    kind = str(data.get("resource_type") or "unknown")[:40]
    count = int(data.get("records_anonymized") or 0)
    return {
        "request_id": _request_id(data),
        "resource_type": kind,
        "resource_id": str(data.get("resource_id") or "unknown")[:200],
        "keys_shredded": 0,
        "records_anonymized": {kind: count} if count else {},
    }, personal


def register_history(registry: EventRegistry) -> None:
    """Register the version-1 → 2 upcasters of the standard events in consent's registry."""
    registry.upcaster("consent.AccessDenied", from_version=1)(access_denied_v1)
    registry.upcaster("consent.SubjectExported", from_version=1)(subject_exported_v1)
    registry.upcaster("consent.SubjectErased", from_version=1, with_envelope=True)(
        subject_erased_v1
    )
    registry.upcaster("consent.ResourceAnonymized", from_version=1)(resource_anonymized_v1)
