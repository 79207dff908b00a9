"""Schema registry: event type → schema version → pydantic models, audit meaning, upcasters.

A service declares each event once:

    registry = EventRegistry()

    class UserRegisteredPII(PersonalData):
        name: str
        email: str

    @registry.event("identity.UserRegistered", version=1, action="create",
                    resource_type="user", categories=["contact", "business"])
    class UserRegistered(EventData):
        role: str
        personal: ClassVar = UserRegisteredPII

`EventData` holds the public fields (ids, enums, counts, timestamps) that travel in clear in
`data`; the `personal` model's fields travel only encrypted in `pii`. `action`,
`resource_type` and `categories` are the audit meaning, stamped onto every envelope so no
consumer needs per-type code to audit it. `owner` says whose key encrypts the personal part:
`"subject"` → `subject:<subject_id>`, `"resource"` → `<resource_type>:<resource id>`
(e.g. `project:<id>`, anonymisable on its own).

When a model changes, bump `version` and register an upcaster from each older version:

    @registry.upcaster("identity.UserRegistered", from_version=1)
    def _v1_to_v2(data: dict, personal: dict | None) -> tuple[dict, dict | None]:
        return {**data, "locale": "en"}, personal

Upcasters run on read, on plain dicts, before validation; `personal` is `None` when the
event has no personal part or its owner was erased, so an upcaster must accept that.
A step that needs the stored envelope — a field an older version kept only in the header,
such as the subject id — is registered with `with_envelope=True` and gets it third.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from mmgen.events.envelope import ACTIONS, EVENT_TYPE_PATTERN, Action, Envelope
from mmgen.events.errors import (
    EventRegistrationError,
    UnknownEventTypeError,
    UnknownSchemaVersionError,
)

OwnerKind = Literal["subject", "resource"]
JsonDict = dict[str, Any]
UpcastResult = tuple[JsonDict, JsonDict | None]
Upcaster = Callable[[JsonDict, JsonDict | None], UpcastResult]
EnvelopeUpcaster = Callable[[JsonDict, JsonDict | None, Envelope], UpcastResult]

KNOWN_CATEGORIES = frozenset(
    {
        "contact",
        "business",
        "project",
        "communication",
        "files",
        "portfolio",
        "sensitive",
        "usage",
        "account",
        "consent",
        "security",
        "payment",
    }
)


class PersonalData(BaseModel):
    """Base of the personal-fields model of an event (encrypted, shreddable)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class EventData(BaseModel):
    """Base of an event's public data. Set `personal` to its `PersonalData` model, if any."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    personal: ClassVar[type[PersonalData] | None] = None


D = TypeVar("D", bound=EventData)


@dataclass(frozen=True)
class EventSpec:
    """Everything the kernel knows about one event type (at its current version)."""

    event_type: str
    version: int
    data_model: type[EventData]
    personal_model: type[PersonalData] | None
    action: Action
    resource_type: str
    categories: tuple[str, ...]
    owner: OwnerKind

    @property
    def service(self) -> str:
        return self.event_type.split(".", 1)[0]


class EventRegistry:
    """Maps event types to their models and upcasters, and data classes back to their type."""

    def __init__(self, *, allowed_categories: Iterable[str] = KNOWN_CATEGORIES) -> None:
        self._specs: dict[str, EventSpec] = {}
        self._by_class: dict[type[EventData], EventSpec] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._envelope_upcasters: dict[tuple[str, int], EnvelopeUpcaster] = {}
        self._allowed_categories = frozenset(allowed_categories)

    def event(
        self,
        event_type: str,
        *,
        version: int = 1,
        action: Action,
        resource_type: str,
        categories: Iterable[str] = (),
        owner: OwnerKind = "subject",
    ) -> Callable[[type[D]], type[D]]:
        """Class decorator declaring an event type at its current schema version."""
        if not re.match(EVENT_TYPE_PATTERN, event_type):
            raise EventRegistrationError(f"event type {event_type!r} is not <service>.<Name>")
        if action not in ACTIONS:
            raise EventRegistrationError(f"{event_type}: action {action!r} not in {ACTIONS}")
        if version < 1:
            raise EventRegistrationError(f"{event_type}: version must be >= 1")
        cats = tuple(categories)
        unknown = set(cats) - self._allowed_categories
        if unknown:
            raise EventRegistrationError(f"{event_type}: unknown categories {sorted(unknown)}")
        if owner not in ("subject", "resource"):
            raise EventRegistrationError(f"{event_type}: owner must be 'subject' or 'resource'")

        def register(cls: type[D]) -> type[D]:
            if not (isinstance(cls, type) and issubclass(cls, EventData)):
                raise EventRegistrationError(f"{event_type}: {cls!r} is not an EventData model")
            if event_type in self._specs:
                raise EventRegistrationError(f"event type {event_type} is registered twice")
            if cls in self._by_class:
                raise EventRegistrationError(f"{cls.__name__} already registered")
            personal = cls.personal
            if personal is not None and not (
                isinstance(personal, type) and issubclass(personal, PersonalData)
            ):
                raise EventRegistrationError(
                    f"{event_type}: personal must be a PersonalData model, got {personal!r}"
                )
            overlap = set(cls.model_fields) & set(personal.model_fields if personal else ())
            if overlap:
                raise EventRegistrationError(
                    f"{event_type}: fields both public and personal: {sorted(overlap)}"
                )
            spec = EventSpec(event_type, version, cls, personal, action, resource_type, cats, owner)
            self._specs[event_type] = spec
            self._by_class[cls] = spec
            return cls

        return register

    def upcaster(
        self, event_type: str, *, from_version: int, with_envelope: bool = False
    ) -> Callable[[Any], Any]:
        """Decorator registering the step `from_version` → `from_version + 1`.

        `with_envelope`: the step is called `(data, personal, envelope)`.
        """

        def register(fn: Any) -> Any:
            key = (event_type, from_version)
            if key in self._upcasters or key in self._envelope_upcasters:
                raise EventRegistrationError(
                    f"{event_type}: two upcasters from version {from_version}"
                )
            if with_envelope:
                self._envelope_upcasters[key] = fn
            else:
                self._upcasters[key] = fn
            return fn

        return register

    def spec(self, event_type: str) -> EventSpec:
        try:
            return self._specs[event_type]
        except KeyError:
            raise UnknownEventTypeError(event_type) from None

    def spec_for(self, data: EventData | type[EventData]) -> EventSpec:
        cls = data if isinstance(data, type) else type(data)
        try:
            return self._by_class[cls]
        except KeyError:
            raise EventRegistrationError(f"{cls.__name__} is not a registered event") from None

    @property
    def allowed_categories(self) -> frozenset[str]:
        return self._allowed_categories

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._specs

    def event_types(self) -> list[str]:
        return sorted(self._specs)

    def upcast(
        self,
        event_type: str,
        version: int,
        data: JsonDict,
        personal: JsonDict | None,
        envelope: Envelope | None = None,
    ) -> tuple[JsonDict, JsonDict | None]:
        """Bring stored dicts from `version` to the current version, one step at a time."""
        spec = self.spec(event_type)
        if version > spec.version:
            raise UnknownSchemaVersionError(
                event_type, version, spec.version, "written by a newer producer"
            )
        if version < 1:
            raise UnknownSchemaVersionError(event_type, version, spec.version, "invalid version")
        while version < spec.version:
            key = (event_type, version)
            personal_copy = dict(personal) if personal is not None else None
            if key in self._envelope_upcasters:
                if envelope is None:
                    raise UnknownSchemaVersionError(
                        event_type, version, spec.version, "its upcaster needs the envelope"
                    )
                data, personal = self._envelope_upcasters[key](dict(data), personal_copy, envelope)
            elif key in self._upcasters:
                data, personal = self._upcasters[key](dict(data), personal_copy)
            else:
                raise UnknownSchemaVersionError(
                    event_type, version, spec.version, f"no upcaster from version {version}"
                )
            version += 1
        return data, personal

    def check(self) -> None:
        """Fail at start-up, not on first read, if any upcaster chain has a hole."""
        for spec in self._specs.values():
            for version in range(1, spec.version):
                steps = (spec.event_type, version)
                if steps not in self._upcasters and steps not in self._envelope_upcasters:
                    raise EventRegistrationError(
                        f"{spec.event_type}: no upcaster from version {version} "
                        f"to {version + 1} (current {spec.version})"
                    )
        for event_type, version in [*self._upcasters, *self._envelope_upcasters]:
            if event_type not in self._specs:
                raise EventRegistrationError(f"upcaster for unregistered type {event_type}")
            if version >= self._specs[event_type].version:
                raise EventRegistrationError(
                    f"{event_type}: upcaster from {version} but current is "
                    f"{self._specs[event_type].version}"
                )
