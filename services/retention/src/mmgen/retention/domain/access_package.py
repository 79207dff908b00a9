"""The Art. 15 access package: every service's export in one JSON document, with its schema.

GDPR Art. 15(1) gives the subject, besides a copy of the data (15(3)): the purposes (a), the
categories (b), the recipients (c), the retention period or the criteria for it (d), the
rights to rectification, erasure, restriction and objection (e) and to complain (f), the
source of data not collected from them (g), and whether automated decision-making is used
(h). The package answers each from what the system holds:

- ``purposes``: the purposes catalogue with its legal bases, each marked with whether it was
  declared for a processing of this subject's data (purposes in their exported events and
  disclosures);
- ``categories``: the categories of the subject's data per service (exported events and the
  activity projection);
- ``recipients``: every disclosure (``share`` action): recipient, purpose, legal basis,
  categories and date from the exporting service's events; a ``share`` entry of the audit log
  whose event no export explains is listed as well, with the recipient "not named";
- ``retention``: per category, the policies that apply, or the criterion when none does;
- ``holds``: categories kept under a legal hold and why;
- ``sources``: per service, how many recorded events the subject caused, others caused (by
  role) and the system caused;
- ``automated_decision_making``: none is made (the product ranks nothing and profiles no one);
- ``services``: each service's export as it gave it.

``PACKAGE_SCHEMA`` (JSON Schema 2020-12) describes the document; ``assemble_package``
validates what it builds against it, so a package that does not match is never stored.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import jsonschema

from mmgen.retention.domain.activity import SubjectActivity
from mmgen.retention.domain.contract import Purpose
from mmgen.retention.domain.holds import HoldView
from mmgen.retention.domain.policies import RetentionPolicy
from mmgen.runtime.contract import SubjectExport

PACKAGE_FORMAT = "mmgen.access-package/1"
SCHEMA_ID = "urn:mmgen:schema:access-package:1"
NO_AUTOMATED_DECISIONS = (
    "No decision based solely on automated processing, including profiling, which produces "
    "legal effects concerning you or similarly significantly affects you (GDPR Art. 22), is "
    "made about you."
)
RIGHTS = (
    "You may ask for your data to be corrected (Art. 16) or erased (Art. 17), for its "
    "processing to be restricted (Art. 18), object to processing (Art. 21), receive it in a "
    "portable form (Art. 20: this package), withdraw any consent at any time, and lodge a "
    "complaint with a supervisory authority (Art. 77)."
)
NO_POLICY_CRITERION = (
    "kept while your account is active and needed for the purposes listed; erased when you ask "
    "for erasure or when your account is erased"
)

_STR = {"type": "string"}
_OPT_STR = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_STR_LIST = {"type": "array", "items": _STR}
_COUNT = {"type": "integer", "minimum": 0}


def _obj(properties: dict[str, Any], *, extra: bool = False) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": extra,
    }


PACKAGE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "Access package (GDPR Art. 15)",
    **_obj(
        {
            "format": {"const": PACKAGE_FORMAT},
            "request_id": _STR,
            "subject_id": _STR,
            "generated_at": _TIME,
            "purposes": {
                "type": "array",
                "items": _obj(
                    {
                        "id": _STR,
                        "legal_basis": _STR,
                        "description": _STR,
                        "categories": _STR_LIST,
                        "consent_based": {"type": "boolean"},
                        "used_for_you": {"type": "boolean"},
                    }
                ),
            },
            "categories": {
                "type": "array",
                "items": _obj({"category": _STR, "services": _STR_LIST, "events": _COUNT}),
            },
            "recipients": {
                "type": "array",
                "items": _obj(
                    {
                        "recipient": _obj({"type": _STR, "name": _OPT_STR}),
                        "purpose": _OPT_STR,
                        "legal_basis": _OPT_STR,
                        "categories": _STR_LIST,
                        "disclosed_at": {"type": ["string", "null"], "format": "date-time"},
                        "service": _STR,
                        "event_id": _STR,
                    }
                ),
            },
            "retention": {
                "type": "array",
                "items": _obj(
                    {
                        "category": _STR,
                        "rules": {
                            "type": "array",
                            "items": _obj(
                                {
                                    "trigger_event": _STR,
                                    "period": _STR,
                                    "action": {"enum": ["erase", "anonymize"]},
                                    "legal_basis": _STR,
                                }
                            ),
                        },
                        "criterion": _OPT_STR,
                    }
                ),
            },
            "holds": {
                "type": "array",
                "items": _obj(
                    {
                        "category": _STR,
                        "legal_basis": _STR,
                        "until": {"type": ["string", "null"], "format": "date-time"},
                    }
                ),
            },
            "sources": {
                "type": "array",
                "items": _obj(
                    {
                        "service": _STR,
                        "provided_by_you": _COUNT,
                        "by_others": {"type": "object", "additionalProperties": _COUNT},
                        "by_the_system": _COUNT,
                    }
                ),
            },
            "automated_decision_making": _obj({"exists": {"const": False}, "statement": _STR}),
            "rights": _STR,
            "services": {
                "type": "array",
                "items": _obj(
                    {
                        "service": _STR,
                        "generated_at": {"type": ["string", "null"], "format": "date-time"},
                        "erased": {"type": "boolean"},
                        "events_truncated": {"type": "boolean"},
                        "records": {"type": "object"},
                        "events": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["event_id", "event_type"],
                                "properties": {"event_id": _STR, "event_type": _STR},
                            },
                        },
                    }
                ),
            },
        }
    ),
}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _recipient(data: Mapping[str, Any]) -> dict[str, Any]:
    found = data.get("recipient")
    if isinstance(found, Mapping):
        return {"type": str(found.get("type") or "unknown"), "name": found.get("name")}
    if isinstance(found, str):
        return {"type": "unknown", "name": found}
    return {"type": "unknown", "name": None}


def _recipients(
    exports: Sequence[SubjectExport], activity: SubjectActivity | None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    explained: set[str] = set()
    for export in exports:
        for event in export.events:
            if event.action != "share":
                continue
            explained.add(event.event_id)
            data = event.data
            categories = data.get("categories") or event.categories
            out.append(
                {
                    "recipient": _recipient(data),
                    "purpose": data.get("purpose") or event.purpose,
                    "legal_basis": data.get("legal_basis"),
                    "categories": sorted(str(c) for c in categories),
                    "disclosed_at": _iso(event.occurred_at),
                    "service": export.service,
                    "event_id": event.event_id,
                }
            )
    for disclosure in activity.disclosures if activity else ():
        if disclosure.event_id in explained:
            continue
        out.append(
            {
                "recipient": {"type": "unknown", "name": None},
                "purpose": disclosure.purpose,
                "legal_basis": None,
                "categories": sorted(disclosure.categories),
                "disclosed_at": _iso(disclosure.occurred_at),
                "service": disclosure.producer,
                "event_id": disclosure.event_id,
            }
        )
    return sorted(out, key=lambda r: (r["disclosed_at"] or "", r["event_id"]))


def _categories(
    exports: Sequence[SubjectExport], activity: SubjectActivity | None
) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = defaultdict(lambda: {"services": set(), "events": 0})
    for export in exports:
        for event in export.events:
            for category in event.categories:
                found[category]["services"].add(export.service)
                found[category]["events"] += 1
    for service, categories in (activity.categories if activity else {}).items():
        for category in categories:
            found[category]["services"].add(service)
    return found


def _sources(exports: Sequence[SubjectExport], subject_id: str) -> list[dict[str, Any]]:
    out = []
    for export in exports:
        mine, system = 0, 0
        others: Counter[str] = Counter()
        for event in export.events:
            actor = event.actor
            if actor is None:
                system += 1
            elif actor.id == subject_id:
                mine += 1
            else:
                others[actor.role or "unknown"] += 1
        out.append(
            {
                "service": export.service,
                "provided_by_you": mine,
                "by_others": dict(sorted(others.items())),
                "by_the_system": system,
            }
        )
    return out


def assemble_package(
    *,
    request_id: str,
    subject_id: str,
    generated_at: datetime,
    exports: Sequence[SubjectExport],
    purposes: Sequence[Purpose],
    policies: Sequence[RetentionPolicy],
    holds: Sequence[HoldView],
    activity: SubjectActivity | None,
) -> dict[str, Any]:
    """The package document, validated against ``PACKAGE_SCHEMA``."""
    used = {e.purpose for x in exports for e in x.events if e.purpose}
    used |= {d.purpose for d in (activity.disclosures if activity else ()) if d.purpose}
    categories = _categories(exports, activity)
    by_category: dict[str, list[RetentionPolicy]] = defaultdict(list)
    for policy in policies:
        by_category[policy.category].append(policy)
    active_holds = [h for h in holds if h.active(generated_at)]
    package = {
        "format": PACKAGE_FORMAT,
        "request_id": request_id,
        "subject_id": subject_id,
        "generated_at": _iso(generated_at),
        "purposes": [
            {
                "id": p.id,
                "legal_basis": p.legal_basis,
                "description": p.description,
                "categories": sorted(p.data_categories),
                "consent_based": p.consent_based,
                "used_for_you": p.id in used,
            }
            for p in sorted(purposes, key=lambda p: p.id)
        ],
        "categories": [
            {
                "category": name,
                "services": sorted(entry["services"]),
                "events": entry["events"],
            }
            for name, entry in sorted(categories.items())
        ],
        "recipients": _recipients(exports, activity),
        "retention": [
            {
                "category": name,
                "rules": [
                    {
                        "trigger_event": p.trigger_event,
                        "period": str(p.period),
                        "action": p.action.value,
                        "legal_basis": p.legal_basis,
                    }
                    for p in sorted(by_category.get(name, ()), key=lambda p: p.policy_id)
                ],
                "criterion": None if by_category.get(name) else NO_POLICY_CRITERION,
            }
            for name in sorted(set(categories) | set(by_category))
        ],
        "holds": [
            {"category": c, "legal_basis": h.legal_basis, "until": _iso(h.until)}
            for h in active_holds
            for c in h.categories
        ],
        "sources": _sources(exports, subject_id),
        "automated_decision_making": {"exists": False, "statement": NO_AUTOMATED_DECISIONS},
        "rights": RIGHTS,
        "services": [
            {
                "service": x.service,
                "generated_at": _iso(x.generated_at),
                "erased": x.erased,
                "events_truncated": x.events_truncated,
                "records": x.records,
                "events": [e.model_dump(mode="json") for e in x.events],
            }
            for x in sorted(exports, key=lambda x: x.service)
        ],
    }
    validate_package(package)
    return package


def validate_package(package: Mapping[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless the package matches its schema."""
    validator = jsonschema.Draft202012Validator(
        PACKAGE_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(package)
