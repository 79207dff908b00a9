"""The activity projection: what the audit log says about each subject and each resource.

Retention reads `audit.log` (entries hold ids, actions, categories and times, never contents)
and keeps, as pure state folded entry by entry:

- per **subject**: when they were first and last seen, their **last own activity** (the last
  entry they caused as actor, refusals excluded: a staff member reading a subject's data is not
  the subject using the service, and a refused request is not legitimate use), the categories
  each service stored about them (entries of action create, update, consent or share), the last
  time each event type happened to them (policy triggers such as ``identity.AccountClosed``),
  which services have erased them, and their most recent disclosures (``share`` entries);
- per **resource** of the types policies act on (``project`` by default): first and last seen,
  the last time each event type touched it (``projects.ProjectCompleted``), and when it was
  anonymised.

Folding is idempotent: each state remembers the last ``seq`` it applied and ignores entries
at or below it, so replaying the log (a rebuild, or a redelivered batch) changes nothing.
Entries must be applied in ``seq`` order, as the log is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from mmgen.events.envelope import normalize_time
from mmgen.retention.domain.contract import AuditRecord

STORING_ACTIONS = frozenset({"create", "update", "consent", "share"})
#: Actor roles that are not people (their entries are nobody's own activity).
NON_PERSON_ROLES = frozenset({"service", "system"})
MAX_DISCLOSURES = 50
DEFAULT_RESOURCE_TYPES = frozenset({"project"})


def _erased_event(entry: AuditRecord) -> bool:
    return entry.event_type == f"{entry.producer}.SubjectErased"


def _anonymized_event(entry: AuditRecord) -> bool:
    return entry.event_type == f"{entry.producer}.ResourceAnonymized"


@dataclass(frozen=True, slots=True)
class Disclosure:
    """A ``share`` entry about the subject: who shared what, when, for which purpose."""

    seq: int
    event_id: str
    producer: str
    event_type: str
    purpose: str | None
    categories: tuple[str, ...]
    occurred_at: datetime
    resource_type: str | None
    resource_id: str | None

    def to_doc(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "event_id": self.event_id,
            "producer": self.producer,
            "event_type": self.event_type,
            "purpose": self.purpose,
            "categories": list(self.categories),
            "occurred_at": self.occurred_at,
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
        }

    @classmethod
    def of(cls, doc: dict[str, Any]) -> Disclosure:
        return cls(
            seq=int(doc["seq"]),
            event_id=str(doc["event_id"]),
            producer=str(doc["producer"]),
            event_type=str(doc["event_type"]),
            purpose=doc.get("purpose"),
            categories=tuple(doc.get("categories") or ()),
            occurred_at=normalize_time(doc["occurred_at"]),
            resource_type=doc.get("resource_type"),
            resource_id=doc.get("resource_id"),
        )


@dataclass(frozen=True, slots=True)
class SubjectActivity:
    subject_id: str
    first_seen_at: datetime
    last_seen_at: datetime
    last_activity_at: datetime | None = None
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    triggers: dict[str, datetime] = field(default_factory=dict)
    erased_by: dict[str, datetime] = field(default_factory=dict)
    disclosures: tuple[Disclosure, ...] = ()
    last_seq: int = -1

    @property
    def activity_at(self) -> datetime:
        """Last own activity, or first appearance for a subject who never acted themselves."""
        return self.last_activity_at or self.first_seen_at

    @property
    def all_categories(self) -> frozenset[str]:
        return frozenset(c for cats in self.categories.values() for c in cats)

    def to_doc(self) -> dict[str, Any]:
        return {
            "_id": self.subject_id,
            "first_seen_at": self.first_seen_at,
            "last_seen_at": self.last_seen_at,
            "last_activity_at": self.last_activity_at,
            "activity_at": self.activity_at,
            "categories": {k: list(v) for k, v in self.categories.items()},
            "triggers": [{"event_type": k, "at": v} for k, v in sorted(self.triggers.items())],
            "erased_by": [{"service": k, "at": v} for k, v in sorted(self.erased_by.items())],
            "disclosures": [d.to_doc() for d in self.disclosures],
            "last_seq": self.last_seq,
        }

    @classmethod
    def of(cls, doc: dict[str, Any]) -> SubjectActivity:
        last = doc.get("last_activity_at")
        return cls(
            subject_id=str(doc["_id"]),
            first_seen_at=normalize_time(doc["first_seen_at"]),
            last_seen_at=normalize_time(doc["last_seen_at"]),
            last_activity_at=None if last is None else normalize_time(last),
            categories={k: tuple(v) for k, v in (doc.get("categories") or {}).items()},
            triggers={t["event_type"]: normalize_time(t["at"]) for t in doc.get("triggers") or ()},
            erased_by={e["service"]: normalize_time(e["at"]) for e in doc.get("erased_by") or ()},
            disclosures=tuple(Disclosure.of(d) for d in doc.get("disclosures") or ()),
            last_seq=int(doc.get("last_seq", -1)),
        )


@dataclass(frozen=True, slots=True)
class ResourceActivity:
    resource_type: str
    resource_id: str
    first_seen_at: datetime
    last_seen_at: datetime
    triggers: dict[str, datetime] = field(default_factory=dict)
    anonymized_at: datetime | None = None
    last_seq: int = -1

    @property
    def key(self) -> str:
        return resource_key(self.resource_type, self.resource_id)

    def to_doc(self) -> dict[str, Any]:
        return {
            "_id": self.key,
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "first_seen_at": self.first_seen_at,
            "last_seen_at": self.last_seen_at,
            "triggers": [{"event_type": k, "at": v} for k, v in sorted(self.triggers.items())],
            "anonymized_at": self.anonymized_at,
            "last_seq": self.last_seq,
        }

    @classmethod
    def of(cls, doc: dict[str, Any]) -> ResourceActivity:
        anonymized = doc.get("anonymized_at")
        return cls(
            resource_type=str(doc["resource_type"]),
            resource_id=str(doc["resource_id"]),
            first_seen_at=normalize_time(doc["first_seen_at"]),
            last_seen_at=normalize_time(doc["last_seen_at"]),
            triggers={t["event_type"]: normalize_time(t["at"]) for t in doc.get("triggers") or ()},
            anonymized_at=None if anonymized is None else normalize_time(anonymized),
            last_seq=int(doc.get("last_seq", -1)),
        )


def resource_key(resource_type: str, resource_id: str) -> str:
    return f"{resource_type}:{resource_id}"


def _later(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate > current else current


def subjects_of(entry: AuditRecord) -> set[str]:
    """The subjects an entry tells something about: its subject, and its actor if a person."""
    out = {entry.subject_id} if entry.subject_id else set()
    if entry.actor_id and (entry.actor_role or "") not in NON_PERSON_ROLES:
        out.add(entry.actor_id)
    return out


def apply_to_subject(
    state: SubjectActivity | None, subject_id: str, entry: AuditRecord
) -> SubjectActivity:
    """Fold one entry into a subject's activity (unchanged if already applied)."""
    at = normalize_time(entry.occurred_at)
    if state is None:
        state = SubjectActivity(subject_id, first_seen_at=at, last_seen_at=at)
    if entry.seq <= state.last_seq:
        return state
    first = min(state.first_seen_at, at)
    last_seen = max(state.last_seen_at, at)
    last_activity = state.last_activity_at
    if entry.actor_id == subject_id and entry.action != "deny":
        last_activity = _later(last_activity, at)
    categories = dict(state.categories)
    triggers = dict(state.triggers)
    erased_by = dict(state.erased_by)
    disclosures = state.disclosures
    if entry.subject_id == subject_id:
        triggers[entry.event_type] = _later(triggers.get(entry.event_type), at)
        if _erased_event(entry):
            erased_by[entry.producer] = _later(erased_by.get(entry.producer), at)
            categories.pop(entry.producer, None)
        elif entry.action in STORING_ACTIONS and entry.categories:
            held = set(categories.get(entry.producer, ())) | set(entry.categories)
            categories[entry.producer] = tuple(sorted(held))
        if entry.action == "share":
            resource = entry.resource_key
            record = Disclosure(
                seq=entry.seq,
                event_id=entry.event_id,
                producer=entry.producer,
                event_type=entry.event_type,
                purpose=entry.purpose,
                categories=tuple(entry.categories),
                occurred_at=at,
                resource_type=resource[0] if resource else None,
                resource_id=resource[1] if resource else None,
            )
            disclosures = (*disclosures, record)[-MAX_DISCLOSURES:]
    return replace(
        state,
        first_seen_at=first,
        last_seen_at=last_seen,
        last_activity_at=last_activity,
        categories=categories,
        triggers=triggers,
        erased_by=erased_by,
        disclosures=disclosures,
        last_seq=entry.seq,
    )


def apply_to_resource(state: ResourceActivity | None, entry: AuditRecord) -> ResourceActivity:
    """Fold one entry into its resource's activity (unchanged if already applied)."""
    resource = entry.resource_key
    if resource is None:
        raise ValueError("the entry names no resource")
    at = normalize_time(entry.occurred_at)
    if state is None:
        state = ResourceActivity(resource[0], resource[1], first_seen_at=at, last_seen_at=at)
    if entry.seq <= state.last_seq:
        return state
    triggers = dict(state.triggers)
    triggers[entry.event_type] = _later(triggers.get(entry.event_type), at)
    anonymized = state.anonymized_at
    if _anonymized_event(entry):
        anonymized = _later(anonymized, at)
    return replace(
        state,
        first_seen_at=min(state.first_seen_at, at),
        last_seen_at=max(state.last_seen_at, at),
        triggers=triggers,
        anonymized_at=anonymized,
        last_seq=entry.seq,
    )


@dataclass
class ActivityBatch:
    """Entries folded into the states they touch: what one projector step writes."""

    subjects: dict[str, SubjectActivity] = field(default_factory=dict)
    resources: dict[str, ResourceActivity] = field(default_factory=dict)
    last_seq: int = -1


def keys_touched(
    entries: Iterable[AuditRecord], resource_types: frozenset[str] = DEFAULT_RESOURCE_TYPES
) -> tuple[set[str], set[str]]:
    """Subject ids and resource keys a batch touches (to load their states in one read each)."""
    subjects: set[str] = set()
    resources: set[str] = set()
    for entry in entries:
        subjects |= subjects_of(entry)
        resource = entry.resource_key
        if resource is not None and resource[0] in resource_types:
            resources.add(resource_key(*resource))
    return subjects, resources


def fold_batch(
    entries: Iterable[AuditRecord],
    subjects: dict[str, SubjectActivity],
    resources: dict[str, ResourceActivity],
    resource_types: frozenset[str] = DEFAULT_RESOURCE_TYPES,
) -> ActivityBatch:
    """Fold entries (in seq order) into the given states; returns only the changed ones."""
    batch = ActivityBatch()
    for entry in entries:
        for subject_id in subjects_of(entry):
            current = batch.subjects.get(subject_id) or subjects.get(subject_id)
            updated = apply_to_subject(current, subject_id, entry)
            if updated is not current:
                batch.subjects[subject_id] = updated
        resource = entry.resource_key
        if resource is not None and resource[0] in resource_types:
            key = resource_key(*resource)
            current_r = batch.resources.get(key) or resources.get(key)
            updated_r = apply_to_resource(current_r, entry)
            if updated_r is not current_r:
                batch.resources[key] = updated_r
        batch.last_seq = max(batch.last_seq, entry.seq)
    return batch


# --- the trigger index -------------------------------------------------------------------------
#
# Policies ask "which targets had trigger T at or before time X?". Each state contributes one
# index entry per trigger (for subjects also `subject.inactive` at their activity time) whose
# key sorts by (kind, trigger, time, target): a due query is then one range on one indexed
# string field, read in pages from a cursor (INFRA.md: the database bounds such ranges, and
# only such ranges).

INACTIVE_TRIGGER = "subject.inactive"
_INDEX_MAX = "\U0010ffff"


def index_time(at: datetime) -> str:
    return normalize_time(at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def index_key(kind: str, trigger: str, at: datetime, target: str) -> str:
    return f"{kind}|{trigger}|{index_time(at)}|{target}"


def index_range(kind: str, trigger: str, until: datetime, after: str | None) -> tuple[str, str]:
    """``(exclusive lower, inclusive upper)`` bounds of a due query."""
    lower = after if after is not None else f"{kind}|{trigger}|"
    return lower, f"{kind}|{trigger}|{index_time(until)}|{_INDEX_MAX}"


def index_entries(state: SubjectActivity | ResourceActivity) -> dict[str, tuple[str, datetime]]:
    """``{entry id: (index key, trigger time)}`` of a state (ids stable per target+trigger)."""
    if isinstance(state, SubjectActivity):
        kind, target = "subject", state.subject_id
        triggers = {**state.triggers, INACTIVE_TRIGGER: state.activity_at}
    else:
        kind, target = "resource", state.key
        triggers = dict(state.triggers)
    return {
        f"{kind}|{trigger}|{target}": (index_key(kind, trigger, at, target), at)
        for trigger, at in triggers.items()
    }
