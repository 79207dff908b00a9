"""Legal holds: categories of a subject's data that must be kept despite an erasure.

GDPR Art. 17(3) lets a controller keep data it needs "for compliance with a legal obligation"
or "for the establishment, exercise or defence of legal claims" (tax records, a pending
dispute). A hold names the subject, the categories kept, the legal basis, who owns the
decision, and optionally when it ends. While active, its categories are sent as
`categories_held` with every erasure order for the subject, and the request ends
`partially_completed` naming the hold; when it is released (or its `until` passes), the held
part is erased and the request moves on to `verified`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from mmgen.events.envelope import normalize_time
from mmgen.events.mapper import NewEvent
from mmgen.events.registry import KNOWN_CATEGORIES, EventData
from mmgen.events.repository import Aggregate
from mmgen.retention.domain.errors import HoldAlreadyReleasedError, HoldInvalidError
from mmgen.retention.domain.events import HeldCategoryData, LegalHoldPlaced, LegalHoldReleased

MAX_CATEGORIES = 16
MAX_TEXT = 500


def hold_stream(hold_id: str) -> str:
    return f"legal-hold:{hold_id}"


class LegalHold(Aggregate):
    """One hold, folded from its events."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(stream_id)
        self.hold_id = stream_id.removeprefix("legal-hold:")
        self.subject_id = ""
        self.categories: tuple[str, ...] = ()
        self.legal_basis = ""
        self.owner = ""
        self.until: datetime | None = None
        self.placed_at: datetime | None = None
        self.placed_by = ""
        self.released_at: datetime | None = None
        self.release_reason: str | None = None

    @classmethod
    def place(
        cls,
        hold_id: str,
        *,
        subject_id: str,
        categories: Iterable[str],
        legal_basis: str,
        owner: str,
        until: datetime | None,
        placed_by: str,
        now: datetime,
    ) -> LegalHold:
        cats = sorted(set(categories))
        if not cats or len(cats) > MAX_CATEGORIES:
            raise HoldInvalidError(f"a hold keeps 1 to {MAX_CATEGORIES} categories")
        unknown = sorted(set(cats) - KNOWN_CATEGORIES)
        if unknown:
            raise HoldInvalidError(f"unknown categories {unknown}")
        basis, owner = legal_basis.strip(), owner.strip()
        if not basis or len(basis) > MAX_TEXT:
            raise HoldInvalidError("a hold needs its legal basis (at most 500 characters)")
        if not owner or len(owner) > 200:
            raise HoldInvalidError("a hold needs an owner responsible for it")
        if not subject_id:
            raise HoldInvalidError("a hold needs the subject it applies to")
        if until is not None and until <= now:
            raise HoldInvalidError("a hold cannot end in the past")
        hold = cls(hold_stream(hold_id))
        hold.record(
            NewEvent(
                LegalHoldPlaced(
                    subject_id=subject_id,
                    categories=cats,
                    legal_basis=basis,
                    owner=owner,
                    until=until,
                    placed_by=placed_by,
                    placed_at=now,
                ),
                subject_id=subject_id,
                resource_id=hold_id,
            )
        )
        return hold

    def when(self, data: EventData, personal: Any) -> None:
        match data:
            case LegalHoldPlaced():
                self.subject_id = data.subject_id
                self.categories = tuple(data.categories)
                self.legal_basis, self.owner = data.legal_basis, data.owner
                self.until, self.placed_at, self.placed_by = (
                    data.until,
                    data.placed_at,
                    data.placed_by,
                )
            case LegalHoldReleased():
                self.released_at, self.release_reason = data.released_at, data.reason

    def active(self, now: datetime) -> bool:
        return self.view().active(now)

    def release(self, *, by: str | None, now: datetime, expired: bool = False) -> None:
        if self.released_at is not None:
            raise HoldAlreadyReleasedError(f"hold {self.hold_id} was released before")
        self.record(
            NewEvent(
                LegalHoldReleased(
                    released_by=by, reason="expired" if expired else "released", released_at=now
                ),
                subject_id=self.subject_id,
                resource_id=self.hold_id,
            )
        )

    def view(self) -> HoldView:
        return HoldView(
            hold_id=self.hold_id,
            subject_id=self.subject_id,
            categories=self.categories,
            legal_basis=self.legal_basis,
            owner=self.owner,
            until=self.until,
            placed_at=self.placed_at,
            placed_by=self.placed_by,
            released_at=self.released_at,
            release_reason=self.release_reason,
        )


def held_categories(holds: Iterable[HoldView], now: datetime) -> list[HeldCategoryData]:
    """Every category kept by the active holds, one entry per (category, hold)."""
    out: list[HeldCategoryData] = []
    for hold in holds:
        if hold.active(now):
            out.extend(hold.held())
    return sorted(out, key=lambda h: (h.category, h.hold_id))


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else normalize_time(value)


@dataclass(frozen=True, slots=True)
class HoldView:
    """A hold's current state: what its read model stores and use cases decide on."""

    hold_id: str
    subject_id: str
    categories: tuple[str, ...]
    legal_basis: str
    owner: str
    until: datetime | None
    placed_at: datetime | None
    placed_by: str
    released_at: datetime | None = None
    release_reason: str | None = None

    def active(self, now: datetime) -> bool:
        return self.released_at is None and (self.until is None or now < self.until)

    def held(self) -> list[HeldCategoryData]:
        return [
            HeldCategoryData(
                category=c, hold_id=self.hold_id, legal_basis=self.legal_basis, until=self.until
            )
            for c in self.categories
        ]

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["categories"] = list(self.categories)
        return doc

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> HoldView:
        return cls(
            hold_id=str(doc["hold_id"]),
            subject_id=str(doc["subject_id"]),
            categories=tuple(doc["categories"]),
            legal_basis=str(doc["legal_basis"]),
            owner=str(doc["owner"]),
            until=_aware(doc.get("until")),
            placed_at=_aware(doc.get("placed_at")),
            placed_by=str(doc.get("placed_by") or ""),
            released_at=_aware(doc.get("released_at")),
            release_reason=doc.get("release_reason"),
        )
