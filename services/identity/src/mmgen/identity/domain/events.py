"""Identity's events: public data, personal fields (sealed under the subject's key), audit meaning.

Each type declares its audit `action`, `resource_type` and `categories` once; the kernel stamps
them onto every envelope. Email, name, phone, business details and the password hash only ever
travel inside `pii` (AES-256-GCM under `subject:<user id>`), so shredding that key erases them
from the store, from Kafka and from every backup at once.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from mmgen.events.registry import EventData, EventRegistry, PersonalData
from mmgen.events.revocation import ACCOUNT_CLOSED, SUBJECT_ERASED

registry = EventRegistry()

UserRole = Literal["client", "creator", "staff", "compliance", "admin"]
RegisteredBy = Literal["self", "admin", "bootstrap"]
ClosedBy = Literal["self", "admin"]


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


@registry.event(
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


@registry.event(
    "identity.EmailCorrected", action="update", resource_type="user", categories=["contact"]
)
class EmailCorrected(EventData):
    personal: ClassVar = EmailCorrectedPII


class NameCorrectedPII(PersonalData):
    name: str


@registry.event(
    "identity.NameCorrected", action="update", resource_type="user", categories=["contact"]
)
class NameCorrected(EventData):
    personal: ClassVar = NameCorrectedPII


class PhoneCorrectedPII(PersonalData):
    phone: str | None


@registry.event(
    "identity.PhoneCorrected", action="update", resource_type="user", categories=["contact"]
)
class PhoneCorrected(EventData):
    personal: ClassVar = PhoneCorrectedPII


class BusinessCorrectedPII(PersonalData):
    business: BusinessDetails | None


@registry.event(
    "identity.BusinessCorrected", action="update", resource_type="user", categories=["business"]
)
class BusinessCorrected(EventData):
    personal: ClassVar = BusinessCorrectedPII


# --- end of an account -------------------------------------------------------------------------


@registry.event(ACCOUNT_CLOSED, action="delete", resource_type="user", categories=["account"])
class AccountClosed(EventData):
    """The owner closed the account: its tokens stop working (every service denies the subject)."""

    closed_by: ClosedBy = "self"


@registry.event(SUBJECT_ERASED, action="erase", resource_type="user")
class SubjectErased(EventData):
    """Crypto-shredding done for an `EraseSubject` command, with what it made unreadable."""

    request_id: str
    subject_id: str
    key_shredded: bool
    events_made_unreadable: int = Field(ge=0)
    read_models_deleted: int = Field(ge=0)
    held_categories: list[str] = Field(default_factory=list)


# --- audit of access -----------------------------------------------------------------------------


@registry.event(
    "identity.UserRead", action="read", resource_type="user", categories=["contact", "business"]
)
class UserRead(EventData):
    """Staff or compliance read a user's personal fields (named here), for a declared purpose."""

    fields: list[str]


@registry.event("identity.AccessDenied", action="deny", resource_type="endpoint")
class AccessDenied(EventData):
    """A request was refused (401/403): who, where, why — never the data asked for."""

    code: str
    status: int
    method: str
    path: str
    target_user_id: str | None = None


# --- security -------------------------------------------------------------------------------------


@registry.event(
    "identity.RefreshTokenReuseDetected",
    action="update",
    resource_type="session",
    categories=["security"],
)
class RefreshTokenReuseDetected(EventData):
    """A used refresh token came back: its whole family was revoked (likely theft)."""

    family_id: str
    revoked_tokens: int = Field(ge=0)


@registry.event(
    "identity.SigningKeyRotated",
    action="update",
    resource_type="signing_key",
    categories=["security"],
)
class SigningKeyRotated(EventData):
    """A new token-signing key; the previous one keeps verifying until its tokens expired."""

    kid: str
    previous_kid: str | None
    previous_verifies_until: str | None


#: Which category each personal field belongs to (for footprints and held categories).
FIELD_CATEGORIES: dict[str, str] = {
    "email": "contact",
    "name": "contact",
    "phone": "contact",
    "business": "business",
    "password_hash": "account",
}

registry.check()
