"""Refusals raised by authentication and authorization, rendered as problem+json."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from mmgen.platform.errors import ProblemError, ServiceUnavailableError

if TYPE_CHECKING:
    from mmgen.platform.auth.principal import Principal

BEARER_CHALLENGE = "Bearer"


class AuthError(ProblemError):
    """Root of authentication and authorization refusals."""


class UnauthenticatedError(AuthError):
    status = 401
    slug = "unauthenticated"
    title = "Authentication required"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            detail or "a bearer token is required",
            headers={"WWW-Authenticate": BEARER_CHALLENGE},
        )


class InvalidTokenError(AuthError):
    """The token failed verification; `reason` says which check, for the audit only.

    The answer is the same whatever the reason (RFC 6750 `invalid_token`): telling a caller
    "subject revoked" or "unknown key id" would tell them that an account was closed, or help
    them probe the verifier.
    """

    status = 401
    slug = "invalid-token"
    title = "Invalid access token"
    GENERIC_DETAIL = "the access token is invalid"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            self.GENERIC_DETAIL,
            headers={"WWW-Authenticate": f'{BEARER_CHALLENGE} error="invalid_token"'},
        )


class SubjectRevokedError(InvalidTokenError):
    """A genuine token of a closed or erased account, or one issued before its subject's
    credentials changed: refused like any invalid token, but the verified `principal` is
    known, so its refusal is audited as that principal's."""

    def __init__(self, principal: Principal, reason: str = "subject revoked") -> None:
        self.principal = principal
        super().__init__(reason)


class RoleNotAllowedError(AuthError):
    status = 403
    slug = "role-not-allowed"
    title = "Role not allowed"

    def __init__(self, role: str, allowed: Iterable[str]) -> None:
        allowed_roles = sorted(str(r) for r in allowed)
        super().__init__(
            f"role {role!r} may not use this operation",
            extensions={"allowed_roles": allowed_roles},
        )


class SecondFactorRequiredError(AuthError):
    """A staff, compliance or admin token issued without a one-time code (`amr` lacks "otp")."""

    status = 403
    slug = "mfa-required"
    title = "Second factor required"
    #: The machine-readable member clients switch on (the same as identity's sign-in answer).
    CODE = "mfa_required"

    def __init__(self) -> None:
        super().__init__(
            "this role needs a token signed in with a one-time code: enrol TOTP at identity "
            "(POST /users/me/mfa/totp) and sign in with it",
            extensions={"code": self.CODE},
        )


class ServiceTokenRequiredError(AuthError):
    status = 403
    slug = "service-token-required"
    title = "Service token required"


class PurposeRequiredError(AuthError):
    """Staff, compliance and admin reads must declare `X-Purpose`."""

    status = 403
    slug = "purpose-required"
    title = "Processing purpose required"

    def __init__(self, allowed: Iterable[str]) -> None:
        allowed_purposes = sorted(str(p) for p in allowed)
        super().__init__(
            "declare the processing purpose in the X-Purpose header",
            extensions={"allowed_purposes": allowed_purposes},
        )


class PurposeUnknownError(AuthError):
    status = 403
    slug = "purpose-unknown"
    title = "Unknown processing purpose"

    def __init__(self, allowed: Iterable[str]) -> None:
        allowed_purposes = sorted(str(p) for p in allowed)
        super().__init__(
            "the X-Purpose header does not name a known purpose",
            extensions={"allowed_purposes": allowed_purposes},
        )


class PurposeNotAllowedError(AuthError):
    status = 403
    slug = "purpose-not-allowed"
    title = "Purpose not allowed here"

    def __init__(self, purpose: str, allowed: Iterable[str]) -> None:
        allowed_purposes = sorted(str(p) for p in allowed)
        super().__init__(
            f"purpose {purpose!r} does not justify this operation",
            extensions={"allowed_purposes": allowed_purposes},
        )


class SigningKeysUnavailableError(ServiceUnavailableError, AuthError):
    """Identity's JWKS could not be fetched and the token's key is not cached."""

    slug = "signing-keys-unavailable"
    title = "Token signing keys unavailable"
