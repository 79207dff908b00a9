"""Request and response models of the profiles API, with their limits.

The profile's own value objects (`domain.profile`) are the request body's parts, so the API
refuses exactly what the domain refuses (lengths, counts, formats, https-only links), with the
platform's 422 problem listing each invalid field; unknown fields are refused. Responses for
anyone but the owner have no sensitive member at all: a search card or a public profile cannot
carry one by mistake.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from mmgen.profiles.domain.profile import (
    Category,
    Language,
    ProfileDetails,
    RateBand,
    SensitiveDetails,
)
from mmgen.profiles.domain.reveal import Basis
from mmgen.profiles.service_layer.profiles import OwnProfile, PublicProfile, Revealed

BIO_EXCERPT = 280
Q_MAX_LENGTH = 200


class ProfileIn(ProfileDetails):
    """`PUT /profiles/me`: the whole profile (a field left out is cleared)."""

    sensitive: SensitiveDetails = Field(default_factory=SensitiveDetails)

    def parts(self) -> tuple[ProfileDetails, SensitiveDetails]:
        public = ProfileDetails.model_validate(self.model_dump(exclude={"sensitive"}))
        return public, self.sensitive


class OwnProfileOut(ProfileDetails):
    """The owner's view: everything, sensitive details included."""

    user_id: str
    published: bool
    sensitive: SensitiveDetails
    version: int = Field(ge=1)
    created_at: datetime | None
    updated_at: datetime | None
    published_at: datetime | None

    @classmethod
    def of(cls, own: OwnProfile) -> OwnProfileOut:
        return cls(
            **own.details.model_dump(),
            user_id=own.creator_id,
            published=own.published,
            sensitive=own.sensitive,
            version=own.version,
            created_at=own.created_at,
            updated_at=own.updated_at,
            published_at=own.published_at,
        )


class ProfileOut(ProfileDetails):
    """`GET /profiles/{user_id}`: the public part; `can_reveal` says whether
    `GET /profiles/{user_id}/sensitive` would answer for this caller."""

    user_id: str
    published: bool
    updated_at: datetime | None
    can_reveal: bool

    @classmethod
    def of(cls, profile: PublicProfile, *, can_reveal: bool) -> ProfileOut:
        return cls(
            **profile.details.model_dump(),
            user_id=profile.creator_id,
            published=profile.published,
            updated_at=profile.updated_at,
            can_reveal=can_reveal,
        )


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProfileCard(_Out):
    """A search result: enough to shortlist, nothing sensitive."""

    user_id: str
    display_name: str = Field(max_length=80)
    category: Category
    city: str | None = Field(default=None, max_length=100)
    skills: list[str] = Field(max_length=30)
    languages: list[str] = Field(max_length=10)
    rates: RateBand | None = None
    bio_excerpt: str = Field(max_length=BIO_EXCERPT + 1)
    experience_count: int = Field(ge=0)
    portfolio_count: int = Field(ge=0)
    updated_at: datetime | None = None

    @classmethod
    def of(cls, profile: PublicProfile) -> ProfileCard:
        details = profile.details
        bio = details.bio
        excerpt = bio if len(bio) <= BIO_EXCERPT else bio[:BIO_EXCERPT].rstrip() + "…"
        return cls(
            user_id=profile.creator_id,
            display_name=details.display_name,
            category=details.category,
            city=details.city,
            skills=list(details.skills),
            languages=list(details.languages),
            rates=details.rates,
            bio_excerpt=excerpt,
            experience_count=len(details.experience),
            portfolio_count=len(details.portfolio),
            updated_at=profile.updated_at,
        )


class SearchPageOut(_Out):
    items: list[ProfileCard]
    next_cursor: str | None = None


class SensitiveOut(_Out):
    """`GET /profiles/{user_id}/sensitive`: the fields set, and on which basis they are shown."""

    user_id: str
    sensitive: SensitiveDetails
    fields: list[str]
    basis: Basis

    @classmethod
    def of(cls, revealed: Revealed) -> SensitiveOut:
        return cls(
            user_id=revealed.creator_id,
            sensitive=revealed.sensitive,
            fields=list(revealed.fields),
            basis=revealed.basis,
        )


class PublicationOut(_Out):
    """`POST /profiles/me/publish|unpublish`."""

    user_id: str
    published: bool
    changed: bool


class SearchParams(BaseModel):
    """`GET /profiles?category=&skill=&city=&language=&q=` (with `limit` and `cursor`)."""

    model_config = ConfigDict(extra="forbid")

    category: Category | None = None
    skill: Annotated[str, Field(min_length=1, max_length=50)] | None = None
    city: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    language: Language | None = None
    q: Annotated[str, Field(max_length=Q_MAX_LENGTH)] | None = None
