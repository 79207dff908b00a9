"""Events of the profiles service (`profiles.*` on `profiles.events`) and their registry.

Every value of a profile travels only in the encrypted `pii` part, sealed under the creator's
`subject:<id>` key: shredding that key erases the profile from the store, from Kafka and from
every backup at once. Public `data` holds counts and field names, never a value — not even
the category or the city, which in clear beside the creator's id would say who they are.

`profiles_registry()` builds a fresh registry per runtime (the runtime adds the standard
`AccessDenied`, `DataAccessed`, `SubjectExported`, `SubjectErased`, `ResourceAnonymized`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from mmgen.events.registry import EventData, EventRegistry
from mmgen.profiles.domain.profile import (
    PUBLIC_FIELDS,
    SENSITIVE_FIELDS,
    ProfileDetails,
    SensitiveDetails,
)

PROFILE_CREATED = "profiles.ProfileCreated"
PROFILE_CHANGED = "profiles.ProfileChanged"
SENSITIVE_DETAILS_SET = "profiles.SensitiveDetailsSet"
PROFILE_PUBLISHED = "profiles.ProfilePublished"
PROFILE_UNPUBLISHED = "profiles.ProfileUnpublished"
RESOURCE_PROFILE = "profile"

#: The categories of this service's personal data (audit log, footprints, held categories).
PORTFOLIO = "portfolio"
SENSITIVE = "sensitive"

PublicField = Literal[
    "display_name",
    "category",
    "bio",
    "skills",
    "city",
    "languages",
    "rates",
    "experience",
    "portfolio",
]


class _Counts(EventData):
    """How much the public part holds (counts only: the audit log may show them)."""

    skill_count: int = Field(ge=0)
    language_count: int = Field(ge=0)
    experience_count: int = Field(ge=0)
    portfolio_count: int = Field(ge=0)


def counts(details: ProfileDetails) -> dict[str, int]:
    """The public counts of a profile's details, as its events carry them."""
    return {
        "skill_count": len(details.skills),
        "language_count": len(details.languages),
        "experience_count": len(details.experience),
        "portfolio_count": len(details.portfolio),
    }


class ProfileCreated(_Counts):
    """A creator wrote their profile for the first time (it starts unpublished)."""

    personal: ClassVar = ProfileDetails


class ProfileChanged(_Counts):
    """A creator changed the public part of their profile; `changed` names the fields."""

    changed: list[PublicField] = Field(min_length=1)
    personal: ClassVar = ProfileDetails


class SensitiveDetailsSet(EventData):
    """A creator set, changed or cleared their sensitive details (the whole set, encrypted)."""

    fields_set: int = Field(ge=0, le=len(SENSITIVE_FIELDS))
    personal: ClassVar = SensitiveDetails


class ProfilePublished(EventData):
    """The profile became visible to clients and searchable."""


class ProfileUnpublished(EventData):
    """The profile was withdrawn from clients and search (the owner and staff still see it)."""


def profiles_registry() -> EventRegistry:
    """A registry of the service's own events (one per runtime: the runtime adds its own)."""
    registry = EventRegistry()
    declare = registry.event
    portfolio = {"resource_type": RESOURCE_PROFILE, "categories": [PORTFOLIO]}
    declare(PROFILE_CREATED, action="create", **portfolio)(ProfileCreated)  # type: ignore[arg-type]
    declare(PROFILE_CHANGED, action="update", **portfolio)(ProfileChanged)  # type: ignore[arg-type]
    declare(
        SENSITIVE_DETAILS_SET,
        action="update",
        resource_type=RESOURCE_PROFILE,
        categories=[SENSITIVE],
    )(SensitiveDetailsSet)
    declare(PROFILE_PUBLISHED, action="update", resource_type=RESOURCE_PROFILE)(ProfilePublished)
    declare(PROFILE_UNPUBLISHED, action="update", resource_type=RESOURCE_PROFILE)(
        ProfileUnpublished
    )
    registry.check()
    return registry


PROFILE_EVENT_TYPES = frozenset(
    {
        PROFILE_CREATED,
        PROFILE_CHANGED,
        SENSITIVE_DETAILS_SET,
        PROFILE_PUBLISHED,
        PROFILE_UNPUBLISHED,
    }
)
#: Which category each personal field of this service belongs to (footprints, holds).
FIELD_CATEGORIES: dict[str, str] = {
    **dict.fromkeys(PUBLIC_FIELDS, PORTFOLIO),
    **dict.fromkeys(SENSITIVE_FIELDS, SENSITIVE),
}
