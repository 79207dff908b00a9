"""Mapping between domain events and envelopes, in swappable steps (pyeventsourcing's layering).

    write:  NewEvent ─ mapping ─▶ (public dict, personal dict) ─ transcoding ─▶ personal bytes
                     ─ encryption (per-owner key, event id as AAD) ─▶ Envelope ─▶ store
    read:   Envelope ─ decryption (or ERASED) ─ transcoding ─ upcasting ─ validation ─▶ DomainEvent

`Transcoder` turns the personal dict into bytes (JSON by default; swap for another encoding),
`PersonalDataCipher` seals them, `EventRegistry` supplies models, audit meaning and upcasters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from pydantic import ValidationError

from mmgen.events.crypto import PersonalDataCipher
from mmgen.events.envelope import Actor, Envelope, Resource, utc_now
from mmgen.events.erased import Erased
from mmgen.events.errors import EventDataInvalidError
from mmgen.events.ids import new_event_id
from mmgen.events.registry import EventData, EventRegistry, EventSpec, PersonalData
from mmgen.events.tracing import current_traceparent

D = TypeVar("D", bound=EventData)


class Transcoder(Protocol):
    """Personal fields (a JSON-compatible dict) ⇄ bytes, before encryption / after decryption."""

    def encode(self, value: dict[str, Any]) -> bytes: ...

    def decode(self, raw: bytes) -> dict[str, Any]: ...


class JsonTranscoder:
    """Compact, key-sorted UTF-8 JSON."""

    def encode(self, value: dict[str, Any]) -> bytes:
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def decode(self, raw: bytes) -> dict[str, Any]:
        decoded = json.loads(raw)
        if not isinstance(decoded, dict):
            raise EventDataInvalidError("personal data is not a JSON object")
        return decoded


@dataclass(frozen=True)
class NewEvent(Generic[D]):
    """An event a service decided on, before it has a stream position.

    `resource_id` defaults to the stream id; `owner` defaults from the event's declaration
    (`subject:<subject_id>` or `<resource_type>:<resource_id>`). `traceparent` defaults to the
    span active when the event becomes an envelope (the request or consumer handling that
    appends it), so callers pass one only to link the event to another trace.
    """

    data: D
    personal: PersonalData | None = None
    subject_id: str | None = None
    actor: Actor | None = None
    purpose: str | None = None
    resource_id: str | None = None
    owner: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    traceparent: str | None = None
    event_id: str = field(default_factory=new_event_id)
    occurred_at: datetime = field(default_factory=utc_now)
    categories: tuple[str, ...] | None = None
    """Overrides the declared categories for this one event (an access event names the
    categories it read); each must be one the registry allows."""


@dataclass(frozen=True)
class DomainEvent(Generic[D]):
    """A stored event as a service reads it: upcast, validated, personal part decrypted.

    `personal` is the `PersonalData` model, `None` if the event has none, or an `Erased`
    marker if its owner was shredded (then `personal.<field>` is `ERASED` too).
    """

    envelope: Envelope
    data: D
    personal: Any  # PersonalData | Erased | None; Any so `event.personal.email` type-checks

    @property
    def event_id(self) -> str:
        return self.envelope.event_id

    @property
    def event_type(self) -> str:
        return self.envelope.event_type

    @property
    def stream_id(self) -> str:
        return self.envelope.stream_id

    @property
    def stream_version(self) -> int:
        return self.envelope.stream_version

    @property
    def producer_seq(self) -> int | None:
        return self.envelope.producer_seq

    @property
    def subject_id(self) -> str | None:
        return self.envelope.subject_id

    @property
    def actor(self) -> Actor | None:
        return self.envelope.actor

    @property
    def occurred_at(self) -> datetime:
        return self.envelope.occurred_at

    @property
    def erased(self) -> bool:
        """True if this event had personal data and its owner was shredded."""
        return isinstance(self.personal, Erased)


class EventMapper:
    """Turns `NewEvent`s into encrypted envelopes and envelopes back into `DomainEvent`s."""

    def __init__(
        self,
        registry: EventRegistry,
        cipher: PersonalDataCipher,
        producer: str,
        transcoder: Transcoder | None = None,
    ) -> None:
        self.registry = registry
        self.cipher = cipher
        self.producer = producer
        self.transcoder: Transcoder = transcoder or JsonTranscoder()

    def owner_of(self, spec: EventSpec, event: NewEvent[Any], resource_id: str) -> str:
        if event.owner is not None:
            return event.owner
        if spec.owner == "resource":
            return f"{spec.resource_type}:{resource_id}"
        if event.subject_id is None:
            raise EventDataInvalidError(
                f"{spec.event_type} has personal fields owned by its subject: set subject_id"
            )
        return f"subject:{event.subject_id}"

    async def to_envelope(
        self, event: NewEvent[Any], stream_id: str, stream_version: int
    ) -> Envelope:
        spec = self.registry.spec_for(event.data)
        if event.personal is not None and (
            spec.personal_model is None or not isinstance(event.personal, spec.personal_model)
        ):
            raise EventDataInvalidError(
                f"{spec.event_type} takes personal fields of type "
                f"{spec.personal_model.__name__ if spec.personal_model else 'None'}, "
                f"got {type(event.personal).__name__}"
            )
        resource_id = event.resource_id or stream_id
        pii = None
        if event.personal is not None:
            owner = self.owner_of(spec, event, resource_id)
            plaintext = self.transcoder.encode(event.personal.model_dump(mode="json"))
            pii = await self.cipher.encrypt(owner, event.event_id, plaintext)
        return Envelope(
            event_id=event.event_id,
            event_type=spec.event_type,
            schema_version=spec.version,
            producer=self.producer,
            stream_id=stream_id,
            stream_version=stream_version,
            subject_id=event.subject_id,
            actor=event.actor,
            purpose=event.purpose,
            action=spec.action,
            resource=Resource(type=spec.resource_type, id=resource_id),
            occurred_at=event.occurred_at,
            correlation_id=event.correlation_id,
            causation_id=event.causation_id,
            traceparent=event.traceparent or current_traceparent(),
            data=event.data.model_dump(mode="json"),
            pii=pii,
            categories=self._categories(spec, event),
        )

    def _categories(self, spec: EventSpec, event: NewEvent[Any]) -> tuple[str, ...]:
        if event.categories is None:
            return spec.categories
        unknown = set(event.categories) - self.registry.allowed_categories
        if unknown:
            raise EventDataInvalidError(f"{spec.event_type}: unknown categories {sorted(unknown)}")
        return tuple(dict.fromkeys(event.categories))

    async def to_domain(self, envelope: Envelope) -> DomainEvent[Any]:
        """Decrypt, upcast and validate; a shredded owner gives `Erased`, never an exception."""
        spec = self.registry.spec(envelope.event_type)
        personal_raw: dict[str, Any] | None = None
        erased: Erased | None = None
        if envelope.pii is not None:
            plain = await self.cipher.decrypt(envelope.pii, envelope.event_id)
            if isinstance(plain, Erased):
                erased = plain
            else:
                personal_raw = self.transcoder.decode(plain)
        data_raw, personal_raw = self.registry.upcast(
            envelope.event_type,
            envelope.schema_version,
            dict(envelope.data),
            personal_raw,
            envelope,
        )
        try:
            data = spec.data_model.model_validate(data_raw)
            personal: Any = erased
            if personal_raw is not None:
                if spec.personal_model is None:
                    raise EventDataInvalidError(
                        f"{spec.event_type} carries personal data but declares none"
                    )
                personal = spec.personal_model.model_validate(personal_raw)
        except ValidationError as exc:
            raise EventDataInvalidError(
                f"event {envelope.event_id} ({envelope.event_type} "
                f"v{envelope.schema_version}) does not match its model: {exc}"
            ) from exc
        return DomainEvent(envelope=envelope, data=data, personal=personal)
