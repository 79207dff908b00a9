"""A creator profile's contents: the public details and the sensitive details, with their rules.

What is personal and what is public (every value here is personal data, since it describes an
identifiable creator; "public" means the creator publishes it for client selection):

- public details (`ProfileDetails`): display name, category, bio, skills, city, languages,
  rate band, experience, portfolio. In clear only in the profiles read model and the search
  tokens (both deleted on erasure); in events only encrypted under `subject:<creator>`.
- sensitive details (`SensitiveDetails`): phone, email, date of birth, address, measurements.
  In clear nowhere: only inside events' encrypted part, decrypted in memory for the owner, for
  a permitted reveal and for an export; never in a read model, a token or an event's `data`.

Shape rules (lengths, counts, formats, URL schemes) are checked when a model is built, so an
invalid value never becomes a model; rules that need today's date (`date_problems`) or both
parts (`exposure_problems`: no sensitive value repeated in a public field) are checked when
the aggregate records the profile.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import date
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from mmgen.events.registry import PersonalData
from mmgen.profiles.domain.errors import FieldProblem
from mmgen.profiles.domain.text import fold, has_control_characters, keyword

Category = Literal["model", "promoter", "content_creator"]
CATEGORIES: tuple[Category, ...] = ("model", "promoter", "content_creator")
#: Day rate bands, in euros (a band, never an exact rate: enough to shortlist).
RateBand = Literal["under_150", "150_300", "300_600", "600_1200", "over_1200"]

EARLIEST_DATE = date(1900, 1, 1)
MAX_SKILLS = 30
MAX_LANGUAGES = 10
MAX_EXPERIENCE = 30
MAX_PORTFOLIO = 50

_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8}){0,2}$")
_PHONE = re.compile(r"^\+?[0-9 ().-]+$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


def _line(value: str) -> str:
    """A one-line text: no control characters, surrounding blanks removed, not empty."""
    if has_control_characters(value):
        raise ValueError("must not contain control characters or line breaks")
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


def _text(value: str) -> str:
    """A multi-line text: line breaks allowed (normalised to \\n), no other control characters."""
    if has_control_characters(value, multiline=True):
        raise ValueError("must not contain control characters")
    return value.replace("\r\n", "\n").strip()


def _https_url(value: str) -> str:
    if has_control_characters(value) or any(ch.isspace() for ch in value):
        raise ValueError("must be a URL without spaces or control characters")
    parts = urlsplit(value)
    if parts.scheme.lower() != "https":
        raise ValueError("must be an https:// URL")
    if "@" in parts.netloc:
        raise ValueError("must not carry credentials")
    host = (parts.hostname or "").lower()
    if not host or not _HOST.match(host) or "." not in host:
        raise ValueError("must name a host")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ValueError("has a malformed port") from exc
    return value


def _uuid(value: str) -> str:
    try:
        canonical = str(uuid.UUID(value))
    except ValueError as exc:
        raise ValueError("must be a file id (a UUID)") from exc
    return canonical


def _language(value: str) -> str:
    value = value.strip().lower().replace("_", "-")
    if not _LANGUAGE.match(value):
        raise ValueError("must be a language tag such as 'fr', 'en' or 'pt-br'")
    return value


def _phone(value: str) -> str:
    value = value.strip()
    digits = sum(ch.isdigit() for ch in value)
    if not _PHONE.match(value) or not 6 <= digits <= 15:
        raise ValueError("must be a phone number of 6 to 15 digits (+, spaces, dots, dashes ok)")
    return value


def _email(value: str) -> str:
    value = value.strip()
    if not _EMAIL.match(value):
        raise ValueError("must be an email address")
    return value


def _not_before_1900(value: date) -> date:
    if value < EARLIEST_DATE:
        raise ValueError("must not be before 1900-01-01")
    return value


Line = Annotated[str, AfterValidator(_line)]
Text = Annotated[str, AfterValidator(_text)]
HttpsUrl = Annotated[str, Field(max_length=2000), AfterValidator(_https_url)]
FileId = Annotated[str, Field(max_length=36), AfterValidator(_uuid)]
Language = Annotated[str, Field(max_length=20), AfterValidator(_language)]
PastDate = Annotated[date, AfterValidator(_not_before_1900)]


class _Value(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class ExperienceEntry(_Value):
    """A past or current engagement; `to` is null while it goes on."""

    title: Annotated[Line, Field(max_length=100)]
    organisation: Annotated[Line, Field(max_length=100)]
    from_: PastDate = Field(alias="from")
    to: PastDate | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ExperienceEntry:
        if self.to is not None and self.to < self.from_:
            raise ValueError("'from' must not be after 'to'")
        return self


class PortfolioItem(_Value):
    """A piece of work: an https link, or a file of the creator's (by id), never both."""

    title: Annotated[Line, Field(max_length=100)]
    description: Annotated[Text, Field(max_length=500)] = ""
    url: HttpsUrl | None = None
    file_id: FileId | None = None

    @model_validator(mode="after")
    def _one_target(self) -> PortfolioItem:
        if (self.url is None) == (self.file_id is None):
            raise ValueError("give exactly one of 'url' (https) and 'file_id'")
        return self


class ProfileDetails(PersonalData):
    """The public part of a profile (personal data the creator publishes for client selection)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    display_name: Annotated[Line, Field(max_length=80)]
    category: Category
    bio: Annotated[Text, Field(max_length=2000)] = ""
    skills: list[Annotated[Line, Field(max_length=50)]] = Field(
        default_factory=list, max_length=MAX_SKILLS
    )
    city: Annotated[Line, Field(max_length=100)] | None = None
    languages: list[Language] = Field(default_factory=list, max_length=MAX_LANGUAGES)
    rates: RateBand | None = None
    experience: list[ExperienceEntry] = Field(default_factory=list, max_length=MAX_EXPERIENCE)
    portfolio: list[PortfolioItem] = Field(default_factory=list, max_length=MAX_PORTFOLIO)

    @model_validator(mode="after")
    def _distinct(self) -> ProfileDetails:
        skills = [keyword(skill) for skill in self.skills]
        if any(not key for key in skills):
            raise ValueError("a skill must contain letters or digits")
        if len(set(skills)) != len(skills):
            raise ValueError("skills must be distinct (ignoring case and accents)")
        if len(set(self.languages)) != len(self.languages):
            raise ValueError("languages must be distinct")
        return self

    def filled_fields(self) -> list[str]:
        """Names of the fields that hold something (for access records: names, never values)."""
        return [name for name, value in self if value not in (None, "", [])]


class Measurements(_Value):
    """Body measurements a model may share (sensitive: only ever revealed, never listed)."""

    height_cm: int | None = Field(default=None, ge=50, le=250)
    chest_cm: int | None = Field(default=None, ge=30, le=200)
    waist_cm: int | None = Field(default=None, ge=30, le=200)
    hips_cm: int | None = Field(default=None, ge=30, le=200)
    shoe_size_eu: float | None = Field(default=None, ge=15, le=55, multiple_of=0.5)
    clothing_size: Annotated[Line, Field(max_length=10)] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Measurements:
        if all(value is None for _, value in self):
            raise ValueError("give at least one measurement, or leave measurements out")
        return self


class SensitiveDetails(PersonalData):
    """The sensitive part: never listed, never searched, revealed only under the reveal rule."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    phone: Annotated[str, Field(max_length=32), AfterValidator(_phone)] | None = None
    email: Annotated[str, Field(max_length=254), AfterValidator(_email)] | None = None
    date_of_birth: PastDate | None = None
    address: Annotated[Text, Field(min_length=1, max_length=300)] | None = None
    measurements: Measurements | None = None

    def filled_fields(self) -> list[str]:
        """Names of the sensitive fields set (what a reveal shows and its access event lists)."""
        return [name for name, value in self if value is not None]

    @property
    def empty(self) -> bool:
        return not self.filled_fields()


NO_SENSITIVE_DETAILS = SensitiveDetails()
SENSITIVE_FIELDS: tuple[str, ...] = tuple(SensitiveDetails.model_fields)
PUBLIC_FIELDS: tuple[str, ...] = tuple(ProfileDetails.model_fields)


def date_problems(
    details: ProfileDetails, sensitive: SensitiveDetails, today: date
) -> list[FieldProblem]:
    """The rules that need today's date: experience and birth dates lie in the past."""
    problems: list[FieldProblem] = []
    for index, entry in enumerate(details.experience):
        if entry.from_ > today:
            problems.append(
                FieldProblem(f"experience.{index}.from", "must not be in the future", "date_past")
            )
        if entry.to is not None and entry.to > today:
            problems.append(
                FieldProblem(f"experience.{index}.to", "must not be in the future", "date_past")
            )
    if sensitive.date_of_birth is not None and sensitive.date_of_birth >= today:
        problems.append(FieldProblem("sensitive.date_of_birth", "must be in the past", "date_past"))
    return problems


#: Digits compared at the end of two phone numbers: the national number, whatever the prefix
#: (`+33 6 12 34 56 78` and `06 12 34 56 78` are one number).
PHONE_TAIL = 9
_PHONE_RUN = re.compile(r"\+?\d[\d ().-]{4,}\d")


def _phone_tail(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())[-PHONE_TAIL:]


def _public_texts(value: object, path: str) -> list[tuple[str, str]]:
    """Every text of the public part with its dotted path (list indexes included)."""
    if isinstance(value, str):
        return [(path, value)]
    items: Iterable[tuple[object, object]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return []
    return [t for key, v in items for t in _public_texts(v, f"{path}.{key}" if path else str(key))]


def exposure_problems(details: ProfileDetails, sensitive: SensitiveDetails) -> list[FieldProblem]:
    """A value of the creator's own sensitive part written into the public part would be shown
    to everyone and returned by search, around the consent that guards it: refused, naming the
    public field and which sensitive field it repeats (never the value).

    Compared: the email (folded, as a substring), the phone (the national number's last
    digits, in any phone-like run of digits), the address (its folded words, in sequence) and
    the birth date (ISO form).
    """
    email = fold(sensitive.email) if sensitive.email else None
    phone = _phone_tail(sensitive.phone) if sensitive.phone else None
    address = keyword(sensitive.address) if sensitive.address else None
    birth = sensitive.date_of_birth.isoformat() if sensitive.date_of_birth else None
    problems: list[FieldProblem] = []
    for path, text in _public_texts(details.model_dump(mode="json"), ""):
        repeated = []
        if email and email in fold(text):
            repeated.append("email")
        if phone and any(
            len(_phone_tail(run)) >= len(phone) and _phone_tail(run)[-len(phone) :] == phone
            for run in _PHONE_RUN.findall(text)
        ):
            repeated.append("phone")
        if address and f" {address} " in f" {keyword(text)} ":
            repeated.append("address")
        if birth and birth in text:
            repeated.append("date_of_birth")
        problems.extend(
            FieldProblem(
                path,
                f"repeats your sensitive {name}, which is shown only under your consent or "
                f"on a shared project: keep it in sensitive.{name} only",
                "sensitive_value_in_public_field",
            )
            for name in repeated
        )
    return problems
