"""The event envelope: what every service stores, publishes and consumes (DESIGN.md).

One pydantic model, three forms:
- `to_wire()` / `Envelope.from_wire()`: JSON bytes for Kafka (binary fields as base64 strings);
- `to_document()` / `Envelope.from_document()`: a BSON-friendly dict for MongoDB (binary fields
  as bytes, `occurred_at` as a datetime, `_id` = `event_id`);
- the model itself, immutable.

The envelope is self-describing for the audit log: `action`, `resource` and `categories` are
stamped from the event type's declaration when the event is made, so no consumer needs
per-type code to audit it. Personal fields travel only inside `pii`, encrypted; `pii.owner`
names whose data key encrypts them (`subject:<id>` or `project:<id>`).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
)

from mmgen.events.errors import EnvelopeInvalidError
from mmgen.events.ids import new_event_id

Action = Literal["create", "read", "update", "delete", "share", "consent", "deny", "erase"]
ACTIONS: tuple[str, ...] = get_args(Action)

PII_ALG: Literal["AES-256-GCM"] = "AES-256-GCM"
OWNER_PATTERN = r"^[a-z][a-z0-9_]*:[^\s]+$"
EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]*\.[A-Z][A-Za-z0-9]*$"


def _b64_in(value: Any) -> Any:
    """Accept bytes as they are (BSON) and base64 text (JSON)."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise ValueError("not valid base64") from exc
    return value


def _b64_out(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


B64Bytes = Annotated[bytes, BeforeValidator(_b64_in), PlainSerializer(_b64_out, when_used="json")]


def utc_now() -> datetime:
    """Now in UTC, at the millisecond precision BSON dates keep (so stored == published)."""
    return normalize_time(datetime.now(UTC))


def normalize_time(value: datetime) -> datetime:
    """UTC, millisecond precision; a naive datetime is taken as UTC (what BSON gives back)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(microsecond=(value.microsecond // 1000) * 1000)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Actor(_Frozen):
    """Who caused the event; `None` in the envelope means the system itself."""

    id: str = Field(min_length=1)
    role: str = Field(min_length=1)


class Resource(_Frozen):
    """What the event touched, for the audit log (`type` from the event's declaration)."""

    type: str = Field(min_length=1)
    id: str = Field(min_length=1)


class PiiBlob(_Frozen):
    """The encrypted personal fields of one event.

    `owner` says whose data key encrypts it, `key_id` which key (a shredded owner has none),
    the event id is the associated data, so a blob copied onto another event fails to decrypt.
    """

    owner: str = Field(pattern=OWNER_PATTERN)
    key_id: str = Field(min_length=1)
    alg: Literal["AES-256-GCM"] = PII_ALG
    nonce: B64Bytes
    ciphertext: B64Bytes


class Envelope(_Frozen):
    """One event as stored and published. `producer_seq` is `None` until the store appends it."""

    event_id: str = Field(default_factory=new_event_id)
    event_type: str = Field(pattern=EVENT_TYPE_PATTERN)
    schema_version: int = Field(ge=1)
    producer: str = Field(min_length=1)
    producer_seq: int | None = Field(default=None, ge=1)
    stream_id: str = Field(min_length=1)
    stream_version: int = Field(ge=1)
    subject_id: str | None = None
    actor: Actor | None = None
    purpose: str | None = None
    action: Action
    resource: Resource
    occurred_at: datetime = Field(default_factory=utc_now)
    correlation_id: str | None = None
    causation_id: str | None = None
    traceparent: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    pii: PiiBlob | None = None
    categories: tuple[str, ...] = ()

    @field_validator("event_id")
    @classmethod
    def _canonical_uuid(cls, value: str) -> str:
        try:
            return str(uuid.UUID(value))
        except ValueError as exc:
            raise ValueError("event_id must be a UUID") from exc

    @field_validator("occurred_at")
    @classmethod
    def _utc_ms(cls, value: datetime) -> datetime:
        return normalize_time(value)

    # --- Kafka ---------------------------------------------------------------------------

    def to_wire(self) -> bytes:
        """JSON bytes (UTF-8) for a Kafka message value."""
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_wire(cls, raw: bytes | bytearray | str) -> Envelope:
        """Parse a Kafka message value; anything malformed is an `EnvelopeInvalidError`."""
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            raise EnvelopeInvalidError(f"not a valid event envelope: {exc}") from exc

    def kafka_key(self) -> bytes:
        """The message key: the subject (keeps one subject's events ordered), else the stream."""
        return (self.subject_id or self.stream_id).encode("utf-8")

    # --- MongoDB -------------------------------------------------------------------------

    def to_document(self) -> dict[str, Any]:
        """A BSON-friendly dict: `_id` is the event id, binary fields stay bytes."""
        doc = self.model_dump(mode="python", exclude={"event_id"})
        doc["categories"] = list(self.categories)
        return {"_id": self.event_id, **doc}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Envelope:
        """Rebuild an envelope from a stored document (naive datetimes are taken as UTC)."""
        fields = {k: v for k, v in doc.items() if k != "_id"}
        fields["event_id"] = doc.get("_id", doc.get("event_id"))
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            raise EnvelopeInvalidError(f"stored document is not a valid envelope: {exc}") from exc

    def with_position(self, producer_seq: int) -> Envelope:
        """A copy carrying the sequence number the store assigned at commit."""
        return self.model_copy(update={"producer_seq": producer_seq})

    @property
    def owner(self) -> str | None:
        """Whose data key encrypts this event's personal fields, if it has any."""
        return self.pii.owner if self.pii is not None else None
