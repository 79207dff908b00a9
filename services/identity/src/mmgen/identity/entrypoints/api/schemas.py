"""Request and response bodies. Requests refuse unknown fields: nobody sets their own role."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from mmgen.identity.domain.events import BusinessDetails

PHONE_PATTERN = r"^\+?[0-9][0-9 ().\-]{3,31}$"

#: A service name, as a token's audience (`mmgen.platform.auth.audiences.SERVICE_AUDIENCES`).
AudienceName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,63}$")]
#: The services a token is asked for; omitted: every service the role may use. One the role
#: may not use → 400 `audience-not-allowed`, and no token is issued.
Audiences = Annotated[list[AudienceName] | None, Field(default=None, min_length=1, max_length=16)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RegisterRequest(_Request):
    email: str = Field(min_length=3, max_length=254)
    # Not stripped: a passphrase's spaces are the user's; the policy checks its length.
    password: str = Field(min_length=1, max_length=4096)
    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    role: Literal["client", "creator"]
    business: BusinessDetails | None = None

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class CreateUserRequest(_Request):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=4096)
    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    role: Literal["staff", "compliance", "admin"]

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class CreateAdminRequest(_Request):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=4096)
    name: str = Field(default="Administrator", min_length=1, max_length=200)

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


TOTP_CODE = r"^[0-9]{6}$"


class _Reauthentication(_Request):
    """The current password (and a one-time code when TOTP is on) confirming a sensitive change."""

    current_password: str | None = Field(default=None, min_length=1, max_length=4096)
    totp: str | None = Field(default=None, pattern=TOTP_CODE)
    recovery_code: str | None = Field(default=None, min_length=1, max_length=64)


class CorrectionRequest(_Reauthentication):
    """Only the fields present are changed; `phone`/`business` may be set to null to remove.
    Changing `email` needs `current_password` (and `totp` or `recovery_code` when enrolled)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    email: str | None = Field(default=None, min_length=3, max_length=254)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    business: BusinessDetails | None = None

    @model_validator(mode="after")
    def _no_null_for_required_fields(self) -> CorrectionRequest:
        for name in ("email", "name"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be removed, only corrected")
        return self

    def corrections(self) -> dict[str, object]:
        credentials = {"current_password", "totp", "recovery_code"}
        return {
            name: getattr(self, name) for name in self.model_fields_set if name not in credentials
        }


class CloseRequest(_Reauthentication):
    """Closing an account needs the current password (and a one-time code when enrolled)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    current_password: str = Field(min_length=1, max_length=4096)


class TokenRequest(_Request):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=4096)
    #: Needed when the account has TOTP: a current code, or one of the recovery codes.
    totp: str | None = Field(default=None, pattern=TOTP_CODE)
    recovery_code: str | None = Field(default=None, min_length=1, max_length=64)
    audience: Audiences = None

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Accepted(BaseModel):
    """The same answer whatever the outcome (so it tells nothing about which accounts exist)."""

    status: Literal["accepted"] = "accepted"
    detail: str


class VerifyEmailRequest(_Request):
    token: str = Field(min_length=1, max_length=512)


class PasswordResetRequest(_Request):
    email: str = Field(min_length=1, max_length=320)


class PasswordResetConfirmRequest(_Request):
    token: str = Field(min_length=1, max_length=512)
    new_password: str = Field(min_length=1, max_length=4096)

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class PasswordChangeRequest(_Request):
    current_password: str = Field(min_length=1, max_length=4096)
    new_password: str = Field(min_length=1, max_length=4096)

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class TotpEnrolRequest(_Reauthentication):
    """The password (and, replacing an active TOTP, a code of it)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    current_password: str = Field(min_length=1, max_length=4096)


class TotpConfirmRequest(_Request):
    code: str = Field(pattern=TOTP_CODE)


class TotpEnrolment(BaseModel):
    secret: str
    otpauth_uri: str
    recovery_codes: list[str]


class RefreshRequest(_Request):
    refresh_token: str = Field(min_length=1, max_length=200)


class ServiceTokenRequest(_Request):
    service: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9-]*$")
    secret: str = Field(min_length=1, max_length=200)
    audience: Audiences = None


class Registered(BaseModel):
    user_id: str


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a token type, not a secret
    expires_in: int
    refresh_token: str


class ServiceTokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a token type, not a secret
    expires_in: int


class UserView(BaseModel):
    user_id: str
    role: str
    status: str
    email_verified: bool
    mfa_enabled: bool
    email: str | None
    name: str | None
    phone: str | None
    business: BusinessDetails | None


class RotationView(BaseModel):
    kid: str
    previous_kid: str | None
    previous_verifies_until: str | None
    #: The new key is in the JWKS from now on and signs from this moment.
    signs_from: str | None = None
