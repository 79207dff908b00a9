"""Errors of the event kernel: one root, `EventsError`, so a service edge maps them in one place."""

from __future__ import annotations


class EventsError(Exception):
    """Root of every error raised by `mmgen.events`."""


# --- envelope and registry -------------------------------------------------------------------


class EnvelopeInvalidError(EventsError, ValueError):
    """Bytes or a document that do not form a valid event envelope."""


class EventRegistrationError(EventsError):
    """An event type or upcaster was declared twice or inconsistently (a programming error)."""


class UnknownEventTypeError(EventsError):
    """An envelope names an event type this registry does not know."""

    def __init__(self, event_type: str) -> None:
        self.event_type = event_type
        super().__init__(f"unknown event type {event_type!r}")


class UnknownSchemaVersionError(EventsError):
    """The schema version is newer than the current one, or no upcaster chain reaches it."""

    def __init__(self, event_type: str, version: int, current: int, reason: str) -> None:
        self.event_type, self.version, self.current = event_type, version, current
        super().__init__(
            f"{event_type} schema_version {version} cannot be read (current {current}): {reason}"
        )


class EventDataInvalidError(EventsError, ValueError):
    """The public data or personal fields of an event do not match its declared model."""


# --- event store -------------------------------------------------------------------------------


class ConcurrencyError(EventsError):
    """The stream is not at the version the caller expected: someone else appended first.

    The caller reloads the stream and decides again; nothing of this append was written.
    """

    def __init__(self, stream_id: str, expected_version: int, actual_version: int) -> None:
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(
            f"stream {stream_id!r} is at version {actual_version}, "
            f"append expected {expected_version}"
        )


class AppendInvalidError(EventsError, ValueError):
    """The events handed to `append` do not fit the stream (wrong stream id or versions)."""


class EventNotAuditableError(AppendInvalidError):
    """An event no consumer could hold (the audit log would refuse it): refused at append.

    Refusing it here, where the caller sees the error, is what keeps the audit log gapless:
    an event stored but refused downstream would leave a hole that repair chases for ever.
    """


class DuplicateEventIdError(EventsError):
    """An event with this `event_id` is already stored (event ids are unique everywhere)."""

    def __init__(self, event_ids: list[str]) -> None:
        self.event_ids = event_ids
        super().__init__(f"event id(s) already stored: {', '.join(event_ids)}")


class ReadWindowTooLargeError(EventsError, ValueError):
    """A read asked for more than the store reads in one bounded window."""


class StoreClosedError(EventsError):
    """The store was closed; appends are refused rather than silently dropped."""


# --- keys and personal data ----------------------------------------------------------------------


class KeystoreError(EventsError):
    """Root of key-management errors."""


class OwnerErasedError(KeystoreError):
    """The owner was crypto-shredded: no new data key is ever minted for it."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        super().__init__(f"owner {owner!r} was erased; refusing to mint a new data key")


class DataKeyMissingError(KeystoreError):
    """No data key for an owner that was never erased: data loss or misconfiguration."""

    def __init__(self, owner: str, key_id: str | None = None) -> None:
        self.owner, self.key_id = owner, key_id
        detail = f" (key_id {key_id})" if key_id else ""
        super().__init__(f"data key of owner {owner!r}{detail} is missing and was not erased")


class MasterKeyUnknownError(KeystoreError):
    """A data key is wrapped under a master key id that the settings do not provide."""

    def __init__(self, master_key_id: str) -> None:
        self.master_key_id = master_key_id
        super().__init__(f"master key {master_key_id!r} is not configured")


class PersonalDataCorruptError(KeystoreError):
    """Ciphertext fails authentication: tampered, or moved to another event (the AAD binds it)."""
