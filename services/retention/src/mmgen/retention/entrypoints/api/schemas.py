"""Request and response bodies of the retention API (unknown fields refused on writes).

Limits are the domain's (details 4,000 characters, reasons 1,000, legal bases 500, at most 16
held categories); rules that need the domain (an extension without a reason, a period that is
not an accepted ISO 8601 duration, an unknown category) are left to it so that they are
stated once, and surface as 422 problems all the same.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, model_validator

from mmgen.retention.domain.events import OrderRecord

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
CATEGORY_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
SERVICE_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
#: A TOTP code as identity takes it (RFC 6238, six digits).
TOTP_CODE = r"^[0-9]{6}$"
EVENT_OR_TRIGGER_PATTERN = r"^[a-z][a-z0-9_]*\.[A-Za-z][A-Za-z0-9_]{0,63}$"

RequestTypeField = Literal["access", "erasure", "rectification"]
StatusField = Literal[
    "received",
    "in_progress",
    "completed",
    "partially_completed",
    "verified",
    "overdue",
    "rejected",
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrivacyRequestIn(_In):
    """`POST /privacy-requests`. Staff filing on a subject's behalf name the subject (and send
    `X-Purpose: legal_compliance`); an erasure by the subject needs a sign-in within the last
    5 minutes, or `email` and `password` again — with `totp` (a current code) or
    `recovery_code` when the account has TOTP (checked at identity, never kept)."""

    type: RequestTypeField
    details: str | None = Field(default=None, max_length=4000)
    subject_id: str | None = Field(default=None, pattern=UUID_PATTERN)
    email: str | None = Field(default=None, min_length=3, max_length=320)
    password: SecretStr | None = Field(default=None, max_length=4096)
    #: A one-time code, spent at identity on use (so not kept secret like the others).
    totp: str | None = Field(default=None, pattern=TOTP_CODE)
    recovery_code: SecretStr | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _rectification_says_what(self) -> Self:
        if self.type == "rectification" and not (self.details or "").strip():
            raise ValueError("a rectification request says what is wrong (details)")
        return self


class ExtensionIn(_In):
    """`POST /privacy-requests/{id}/extension`: one extension of 1-2 months, with reasons."""

    months: int = Field(ge=1, le=2)
    reason: str | None = Field(default=None, max_length=1000)


class RejectionIn(_In):
    reason: str = Field(min_length=1, max_length=1000)


class ResolutionIn(_In):
    """How staff resolved a rectification, through which owning service."""

    service: str = Field(pattern=SERVICE_PATTERN)
    note: str = Field(min_length=1, max_length=4000)


class HoldIn(_In):
    subject_id: str = Field(pattern=UUID_PATTERN)
    categories: list[str] = Field(min_length=1, max_length=16)
    legal_basis: str = Field(min_length=1, max_length=500)
    owner: str = Field(min_length=1, max_length=200)
    until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _category_names(self) -> Self:
        bad = [c for c in self.categories if not re.fullmatch(CATEGORY_PATTERN, c)]
        if bad:
            raise ValueError(f"malformed category names: {bad}")
        return self


class PolicyIn(_In):
    category: str = Field(pattern=CATEGORY_PATTERN)
    trigger_event: str = Field(pattern=EVENT_OR_TRIGGER_PATTERN, max_length=128)
    period: str = Field(min_length=2, max_length=32, examples=["P3Y", "P6M", "P30D"])
    action: Literal["erase", "anonymize"]
    legal_basis: str = Field(min_length=1, max_length=500)


# --- responses ---------------------------------------------------------------------------------


class TimelineOut(BaseModel):
    at: datetime
    step: str
    status: StatusField
    detail: dict[str, Any]


class ExtensionOut(BaseModel):
    months: int
    reason: str | None
    extended_on: date | None


class DeadlineOut(BaseModel):
    due_on: date
    due_by: datetime
    overdue: bool
    extension: ExtensionOut | None


class AcknowledgementOut(BaseModel):
    service: str
    event_id: str
    audit_seq: int
    keys_shredded: int
    records_deleted: dict[str, int]
    records_anonymized: dict[str, int]
    categories_held: list[str]
    acknowledged_at: datetime


class ProgressOut(BaseModel):
    """Per service: pending, to_retry, acknowledged, residual or clean (erasure); exported
    or to_retry (access)."""

    service: str
    state: str
    detail: str = ""
    retry: bool | None = None
    audit_seq: int | None = None
    readable_outside_held: int | None = None


class HeldOut(BaseModel):
    category: str
    hold_id: str
    legal_basis: str
    until: datetime | None


class PrivacyRequestOut(BaseModel):
    request_id: str
    type: RequestTypeField
    subject_id: str
    requested_by: str
    on_behalf: bool
    status: StatusField
    received_at: datetime
    deadline: DeadlineOut
    timeline: list[TimelineOut]
    expected_services: list[str]
    acknowledgements: dict[str, AcknowledgementOut]
    progress: list[ProgressOut]
    held: list[HeldOut]
    attempts: int
    package_expires_at: datetime | None
    rejection_reason: str | None

    @classmethod
    def of(cls, view: dict[str, Any], now: datetime) -> PrivacyRequestOut:
        due_by = view["due_by"]
        return cls(
            request_id=view["request_id"],
            type=view["type"],
            subject_id=view["subject_id"],
            requested_by=view["requested_by"],
            on_behalf=view["on_behalf"],
            status=view["status"],
            received_at=view["received_at"],
            deadline=DeadlineOut(
                due_on=date.fromisoformat(view["due_on"]),
                due_by=due_by,
                overdue=view["open"] and view.get("answered_at") is None and now >= due_by,
                extension=None if view.get("extension") is None else view["extension"],
            ),
            timeline=view["timeline"],
            expected_services=view["expected_services"],
            acknowledgements=view["acknowledgements"],
            progress=view.get("progress") or [],
            held=view["held"],
            attempts=view["attempts"],
            package_expires_at=view.get("package_expires_at"),
            rejection_reason=view.get("rejection_reason"),
        )


class PrivacyRequestPage(BaseModel):
    items: list[PrivacyRequestOut]
    next_cursor: str | None = None


class HoldOut(BaseModel):
    hold_id: str
    subject_id: str
    categories: list[str]
    legal_basis: str
    owner: str
    until: datetime | None
    placed_at: datetime | None
    placed_by: str
    released_at: datetime | None
    release_reason: str | None


class HoldPage(BaseModel):
    items: list[HoldOut]
    next_cursor: str | None = None


class PolicyOut(BaseModel):
    policy_id: str
    category: str
    trigger_event: str
    period: str
    action: Literal["erase", "anonymize"]
    legal_basis: str


class PoliciesOut(BaseModel):
    items: list[PolicyOut]


class RunOut(BaseModel):
    """`POST /retention/run`: what the pass did and every order it sent, with why."""

    run_id: str
    started_at: datetime
    completed_at: datetime
    evaluated: int
    truncated: bool
    orders: list[OrderRecord]
    holds_ended: int = 0
    marked_overdue: int = 0
    erasures_ordered: int = 0
    erasures_retried: int = 0
    packages_ready: int = 0
    packages_deleted: int = 0


class AccessPackageOut(BaseModel):
    """`GET /privacy-requests/{id}/export`: the package and the JSON Schema it validates
    against."""

    package: dict[str, Any]
    schema_: dict[str, Any] = Field(alias="schema", serialization_alias="schema")

    model_config = ConfigDict(populate_by_name=True)
