"""Request and response bodies of the consent API (unknown fields refused on writes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
EVENT_NAME_PATTERN = r"^[a-z][a-z0-9_.:-]{0,63}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PurposeOut(BaseModel):
    id: str
    legal_basis: str
    description: str
    data_categories: list[str]
    consent_based: bool


class PurposesOut(BaseModel):
    items: list[PurposeOut]


class PolicyIn(_In):
    version: str = Field(pattern=VERSION_PATTERN)
    effective_at: datetime
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=200_000)


class PolicyOut(BaseModel):
    version: str
    title: str
    effective_at: datetime
    sha256: str
    published_at: datetime


class PolicyWithTextOut(PolicyOut):
    text: str


class PoliciesOut(BaseModel):
    items: list[PolicyOut]


class ConsentIn(_In):
    granted: StrictBool
    policy_version: str = Field(pattern=VERSION_PATTERN)


class ConsentOut(BaseModel):
    purpose: str
    granted: bool
    policy_version: str | None
    method: str
    decided_at: datetime | None


class ConsentsOut(BaseModel):
    subject_id: str
    items: list[ConsentOut]
    gpc_recorded: list[str] = Field(
        default_factory=list,
        description="Purposes withdrawn by this request's Sec-GPC: 1 signal",
    )


class TrackingEventIn(_In):
    name: str = Field(pattern=EVENT_NAME_PATTERN)
    occurred_at: datetime | None = None
    page: str | None = Field(default=None, max_length=2048)
    properties: dict[str, Any] = Field(default_factory=dict, max_length=64)


class TrackingOut(BaseModel):
    accepted: bool
    reason: str
    event_id: str | None = None
