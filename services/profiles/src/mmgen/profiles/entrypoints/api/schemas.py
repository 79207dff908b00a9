"""Request and response models of the profiles API, with their limits.

The profile's own value objects (`domain.profile`) are the request body's parts, so the API
refuses exactly what the domain refuses (lengths, counts, formats, https-only links), with the
platform's 422 problem listing each invalid field; unknown fields are refused. A search card
has no sensitive member at all, so it cannot carry one by mistake; a profile read carries one
only when the reveal rule shows it to the caller.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from mmgen.platform.pagination import MAX_CURSOR_LENGTH
from mmgen.profiles.domain.profile import (
    Category,
    Language,
    ProfileDetails,
    RateBand,
    SensitiveDetails,
)
from mmgen.profiles.domain.reveal import Basis
from mmgen.profiles.domain.search import SearchQuery
from mmgen.profiles.service_layer.profiles import OwnProfile, ProfileRead, PublicProfile

BIO_EXCERPT = 280
Q_MAX_LENGTH = 200
#: The most `ProfilesSettings.page_size_max` may be; the settings bound the page size further.
LIMIT_CEILING = 200


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
    """`GET /profiles/{user_id}`: the public part, and the sensitive fields only when the
    reveal rule shows them to this caller (`sensitive` null and `revealed` empty otherwise)."""

    user_id: str
    published: bool
    updated_at: datetime | None
    sensitive: SensitiveDetails | None = None
    #: The sensitive fields shown (names), as the access event of this read lists them.
    revealed: list[str] = Field(default_factory=list)
    #: Why they are shown: `owner`, `consent` or `shared_project`.
    basis: Basis | None = None

    @classmethod
    def of(cls, read: ProfileRead) -> ProfileOut:
        profile, revealed = read.profile, read.revealed
        return cls(
            **profile.details.model_dump(),
            user_id=profile.creator_id,
            published=profile.published,
            updated_at=profile.updated_at,
            sensitive=revealed.sensitive if revealed is not None else None,
            revealed=list(revealed.fields) if revealed is not None else [],
            basis=revealed.basis if revealed is not None else None,
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


class PublicationOut(_Out):
    """`POST /profiles/me/publish|unpublish`."""

    user_id: str
    published: bool
    changed: bool


class SearchParams(BaseModel):
    """`GET /profiles?category=&skill=&city=&language=&q=&limit=&cursor=`.

    Any other parameter is refused (422): there is no filter or sort on anything else, and
    certainly none on a sensitive value (a range on a birth date would reveal it)."""

    model_config = ConfigDict(extra="forbid")

    category: Category | None = None
    skill: Annotated[str, Field(min_length=1, max_length=50)] | None = None
    city: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    language: Language | None = None
    q: Annotated[str, Field(max_length=Q_MAX_LENGTH)] | None = None
    #: Page size (default and largest from the settings: 20 and 50).
    limit: Annotated[int, Field(ge=1, le=LIMIT_CEILING)] | None = None
    #: `next_cursor` of the previous page.
    cursor: Annotated[str, Field(min_length=1, max_length=MAX_CURSOR_LENGTH)] | None = None

    def query(self) -> SearchQuery:
        return SearchQuery(
            category=self.category,
            skill=self.skill,
            city=self.city,
            language=self.language,
            q=self.q,
        )
