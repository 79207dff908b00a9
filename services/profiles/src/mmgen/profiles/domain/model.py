"""The `CreatorProfile` aggregate: one stream per creator, folding details, sensitive details and
publication.

Decisions are made on the folded state (the event store is the source of truth): a `put` that
changes nothing records nothing, a publish of a published profile records nothing. After the
creator's key was shredded the fold yields `ERASED` details, and nothing more is recorded.
No snapshots: a snapshot would hold the decrypted sensitive details in clear.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from mmgen.events.envelope import Actor
from mmgen.events.erased import Erased, is_erased
from mmgen.events.mapper import DomainEvent, NewEvent
from mmgen.events.registry import EventData
from mmgen.events.repository import Aggregate
from mmgen.profiles.domain.errors import (
    ProfileErasedError,
    ProfileInvalidError,
    ProfileNotFoundError,
)
from mmgen.profiles.domain.events import (
    ProfileChanged,
    ProfileCreated,
    ProfilePublished,
    ProfileUnpublished,
    SensitiveDetailsSet,
    counts,
)
from mmgen.profiles.domain.profile import (
    NO_SENSITIVE_DETAILS,
    PUBLIC_FIELDS,
    ProfileDetails,
    SensitiveDetails,
    date_problems,
    exposure_problems,
)

STREAM_PREFIX = "profile:"


def profile_stream(creator_id: str) -> str:
    return f"{STREAM_PREFIX}{creator_id}"


def creator_of_stream(stream_id: str) -> str:
    return stream_id.removeprefix(STREAM_PREFIX)


class CreatorProfile(Aggregate):
    """One creator's profile; the creator's subject id names the stream."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(stream_id)
        self.creator_id = creator_of_stream(stream_id)
        self.created = False
        self.details: ProfileDetails | Erased | None = None
        self.sensitive: SensitiveDetails | Erased = NO_SENSITIVE_DETAILS
        #: The event holding the current sensitive details (read models point at it).
        self.sensitive_event_id: str | None = None
        self.published = False
        self.created_at: datetime | None = None
        #: When the public details last changed (sensitive changes do not count: they must not
        #: show in a profile's position in search).
        self.updated_at: datetime | None = None
        self.published_at: datetime | None = None

    @classmethod
    def new(cls, creator_id: str) -> CreatorProfile:
        return cls(profile_stream(creator_id))

    # --- folding --------------------------------------------------------------------------------

    def when(self, data: EventData, personal: Any) -> None:
        match data:
            case ProfileCreated():
                self.created = True
                self.details = personal
            case ProfileChanged():
                self.details = personal
            case SensitiveDetailsSet():
                self.sensitive = personal
            case ProfilePublished():
                self.published = True
            case ProfileUnpublished():
                self.published = False

    def apply(self, event: DomainEvent[Any]) -> None:
        super().apply(event)
        self._stamp(event.data, event.event_id, event.occurred_at)

    def record(self, event: NewEvent[Any]) -> None:
        super().record(event)
        self._stamp(event.data, event.event_id, event.occurred_at)

    def _stamp(self, data: EventData, event_id: str, at: datetime) -> None:
        """Times and pointers come from the envelope, not from `data`."""
        match data:
            case ProfileCreated():
                self.created_at = self.updated_at = at
            case ProfileChanged():
                self.updated_at = at
            case SensitiveDetailsSet():
                self.sensitive_event_id = event_id
            case ProfilePublished():
                self.published_at = at

    @property
    def erased(self) -> bool:
        """The creator's key was shredded: the details read back as `ERASED`."""
        return self.created and is_erased(self.details)

    # --- decisions ------------------------------------------------------------------------------

    def put(
        self,
        details: ProfileDetails,
        sensitive: SensitiveDetails,
        *,
        actor: Actor | None,
        today: date,
    ) -> list[str]:
        """Replace the profile's contents; returns what changed (public field names, and
        `sensitive` when the sensitive details did). Nothing changed, nothing recorded."""
        if self.erased:
            raise ProfileErasedError()
        problems = date_problems(details, sensitive, today) + exposure_problems(details, sensitive)
        if problems:
            raise ProfileInvalidError(problems)
        changed: list[str] = []
        if not self.created:
            changed = list(PUBLIC_FIELDS)
            self.record(self._event(ProfileCreated(**counts(details)), details, actor))
        else:
            current = self.details
            changed = [f for f in PUBLIC_FIELDS if getattr(details, f) != getattr(current, f)]
            if changed:
                event = ProfileChanged(changed=changed, **counts(details))  # type: ignore[arg-type]
                self.record(self._event(event, details, actor))
        if sensitive != self.sensitive:
            fields_set = len(sensitive.filled_fields())
            self.record(self._event(SensitiveDetailsSet(fields_set=fields_set), sensitive, actor))
            changed.append("sensitive")
        return changed

    def publish(self, *, actor: Actor | None) -> bool:
        """Make the profile visible and searchable; False when it already was."""
        self._require_live()
        if self.published:
            return False
        self.record(self._event(ProfilePublished(), None, actor))
        return True

    def unpublish(self, *, actor: Actor | None) -> bool:
        """Withdraw the profile from clients and search; False when it was not published."""
        self._require_live()
        if not self.published:
            return False
        self.record(self._event(ProfileUnpublished(), None, actor))
        return True

    def _require_live(self) -> None:
        if not self.created:
            raise ProfileNotFoundError("write your profile before publishing it")
        if self.erased:
            raise ProfileErasedError()

    def _event(self, data: EventData, personal: Any, actor: Actor | None) -> NewEvent[Any]:
        return NewEvent(
            data,
            personal=personal,
            subject_id=self.creator_id,
            actor=actor,
            resource_id=self.creator_id,
        )
