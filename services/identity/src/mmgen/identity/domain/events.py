"""Identity's events: public data, personal fields (sealed under the subject's key), audit meaning.

Each type declares its audit `action`, `resource_type` and `categories` once; the kernel stamps
them onto every envelope. Email, name, phone, business details and the password hash only ever
travel inside `pii` (AES-256-GCM under `subject:<user id>`), so shredding that key erases them
from the store, from Kafka and from every backup at once.

The declarations are collected here and registered by `identity_registry()`, which gives every
service instance a registry of its own: the runtime adds the standard events (`AccessDenied`,
`SubjectErased`, `SubjectExported`, ...) to it, and `mmgen.identity.domain.history` the
upcasters of their older shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from mmgen.events.registry import EventData, EventRegistry, PersonalData
from mmgen.events.revocation import ACCOUNT_CLOSED

D = TypeVar("D", bound=EventData)
_DECLARED: list[tuple[type[EventData], str, dict[str, Any]]] = []


def declare(event_type: str, **meaning: Any) -> Callable[[type[D]], type[D]]:
    """Keep an event class and its audit meaning for `identity_registry()`."""

    def keep(cls: type[D]) -> type[D]:
        _DECLARED.append((cls, event_type, meaning))
        return cls

    return keep


UserRole = Literal["client", "creator", "staff", "compliance", "admin"]
RegisteredBy = Literal["self", "admin", "bootstrap"]
ClosedBy = Literal["self", "admin", "retention"]


class BusinessDetails(BaseModel):
    """A client's business: company, VAT number, address (all personal: they name a person)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    company_name: str = Field(min_length=1, max_length=200)
    vat_number: str | None = Field(default=None, max_length=40)
    address: str | None = Field(default=None, max_length=500)


# --- registration -----------------------------------------------------------------------------


class UserRegisteredPII(PersonalData):
    email: str
    name: str
    phone: str | None = None
    business: BusinessDetails | None = None
    password_hash: str


@declare(
    "identity.UserRegistered",
    action="create",
    resource_type="user",
    categories=["contact", "business", "account"],
)
class UserRegistered(EventData):
    """An account was created (by its owner, by an admin, or from the bootstrap settings)."""

    role: UserRole
    registered_by: RegisteredBy = "self"
    personal: ClassVar = UserRegisteredPII


# --- corrections (one event per corrected field) ----------------------------------------------


class EmailCorrectedPII(PersonalData):
    email: str


@declare("identity.EmailCorrected", action="update", resource_type="user", categories=["contact"])
class EmailCorrected(EventData):
    personal: ClassVar = EmailCorrectedPII


class NameCorrectedPII(PersonalData):
    name: str


@declare("identity.NameCorrected", action="update", resource_type="user", categories=["contact"])
class NameCorrected(EventData):
    personal: ClassVar = NameCorrectedPII


class PhoneCorrectedPII(PersonalData):
    phone: str | None


@declare("identity.PhoneCorrected", action="update", resource_type="user", categories=["contact"])
class PhoneCorrected(EventData):
    personal: ClassVar = PhoneCorrectedPII


class BusinessCorrectedPII(PersonalData):
    business: BusinessDetails | None


@declare(
    "identity.BusinessCorrected", action="update", resource_type="user", categories=["business"]
)
class BusinessCorrected(EventData):
    personal: ClassVar = BusinessCorrectedPII


# --- end of an account -------------------------------------------------------------------------


@declare(ACCOUNT_CLOSED, action="delete", resource_type="user", categories=["account"])
class AccountClosed(EventData):
    """The account ended: its tokens stop working (every service denies the subject).

    `retention` closes it when an erasure must keep the data under a legal hold."""

    closed_by: ClosedBy = "self"


# --- credentials (NIST SP 800-63B) -----------------------------------------------------------


@declare("identity.EmailVerified", action="update", resource_type="user", categories=["account"])
class EmailVerified(EventData):
    """The owner proved they read the mailbox of the email set at `email_version` (the
    stream version of the registration or correction that set it)."""

    email_version: int = Field(ge=1)


class PasswordChangedPII(PersonalData):
    password_hash: str


@declare("identity.PasswordChanged", action="update", resource_type="user", categories=["account"])
class PasswordChanged(EventData):
    """A new password: by the owner knowing the old one (`change`) or through a mailed one-time
    token (`reset`). Every session of the account was revoked with it, and every access token
    issued (`iat`) before `tokens_not_before` (seconds since the epoch) is refused by every
    service as soon as it reads this event."""

    method: Literal["change", "reset"]
    #: Absent from events stored before it existed (then: the second after `occurred_at`).
    tokens_not_before: int | None = Field(default=None, ge=0)
    personal: ClassVar = PasswordChangedPII


@declare(
    "identity.PasswordResetRequested",
    action="update",
    resource_type="user",
    categories=["security"],
)
class PasswordResetRequested(EventData):
    """Someone asked for a reset of this account's password: a one-time token goes by mail to
    its address (the event is what the mail outbox is made from)."""


@declare(
    "identity.RegistrationAttempted",
    action="update",
    resource_type="user",
    categories=["security"],
)
class RegistrationAttempted(EventData):
    """Someone tried to register this account's email again: its owner is told by mail (the
    registrant got the same answer as for a new address)."""


class TotpEnrolledPII(PersonalData):
    #: The shared secret, base32; sealed under the subject's key like the other personal data.
    secret: str
    #: SHA-256 of each recovery code (the codes themselves are shown once, never stored).
    recovery_code_hashes: list[str]


@declare("identity.TotpEnrolled", action="update", resource_type="user", categories=["account"])
class TotpEnrolled(EventData):
    """A TOTP secret and recovery codes were issued; they take effect once confirmed with a
    code (`TotpActivated`). A later enrolment replaces a pending one."""

    personal: ClassVar = TotpEnrolledPII


@declare("identity.TotpActivated", action="update", resource_type="user", categories=["account"])
class TotpActivated(EventData):
    """The owner showed a code of the enrolled secret: sign-in needs a code from now on, and
    a token issued (`iat`) before `tokens_not_before` is refused by every service as soon as
    it reads this event (it was got without the code), as after `PasswordChanged`."""

    #: Absent from events stored before it existed (then: the second after `occurred_at`).
    tokens_not_before: int | None = Field(default=None, ge=0)


@declare(
    "identity.RecoveryCodeUsed", action="update", resource_type="user", categories=["security"]
)
class RecoveryCodeUsed(EventData):
    """One recovery code (by its position) was spent instead of a TOTP code."""

    index: int = Field(ge=0)
    remaining: int = Field(ge=0)


# --- audit of access -----------------------------------------------------------------------------


@declare(
    "identity.UserRead", action="read", resource_type="user", categories=["contact", "business"]
)
class UserRead(EventData):
    """Staff or compliance read a user's personal fields (named here), for a declared purpose."""

    fields: list[str]


# --- security -------------------------------------------------------------------------------------


@declare(
    "identity.RefreshTokenReuseDetected",
    action="update",
    resource_type="session",
    categories=["security"],
)
class RefreshTokenReuseDetected(EventData):
    """A used refresh token came back: its whole family was revoked (likely theft)."""

    family_id: str
    revoked_tokens: int = Field(ge=0)


@declare(
    "identity.SigningKeyRotated",
    action="update",
    resource_type="signing_key",
    categories=["security"],
)
class SigningKeyRotated(EventData):
    """A new token-signing key, published at once and signing from `signs_from`; the previous
    one keeps verifying until its tokens expired."""

    kid: str
    previous_kid: str | None
    previous_verifies_until: str | None
    signs_from: str | None = None


#: Which category each personal field belongs to (for footprints and held categories).
FIELD_CATEGORIES: dict[str, str] = {
    "email": "contact",
    "name": "contact",
    "phone": "contact",
    "business": "business",
    "password_hash": "account",
}


def identity_registry() -> EventRegistry:
    """A new registry holding identity's own events (one per service instance)."""
    registry = EventRegistry()
    for cls, event_type, meaning in _DECLARED:
        registry.event(event_type, **meaning)(cls)
    return registry
