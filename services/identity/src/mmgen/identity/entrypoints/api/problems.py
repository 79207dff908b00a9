"""The one place identity's exceptions become problem+json (status, slug, title)."""

from __future__ import annotations

from mmgen.events.errors import ConcurrencyError, OwnerErasedError
from mmgen.identity.domain.errors import (
    AccountNotActiveError,
    EmailInvalidError,
    EmailNotVerifiedError,
    EmailTakenError,
    InvalidCredentialsError,
    OneTimeTokenInvalidError,
    PasswordRejectedError,
    ReauthenticationFailedError,
    RefreshTokenInvalidError,
    SecondFactorRequiredError,
    ServiceCredentialsInvalidError,
    TotpEnrolmentError,
    UserNotFoundError,
)
from mmgen.platform import ProblemError, ProblemSpec
from mmgen.platform.auth.audiences import AudienceNotAllowedError


class TooManyAttemptsError(ProblemError):
    """429 with `Retry-After` (a `ProblemError` because the header must go out with it)."""

    status = 429
    slug = "too-many-attempts"
    title = "Too many failed attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed sign-in attempts; retry in {retry_after} seconds",
            extensions={"retry_after": retry_after},
            headers={"Retry-After": str(retry_after)},
        )


def _reason(exc: PasswordRejectedError) -> str:
    return exc.reason


def _refused_audiences(exc: AudienceNotAllowedError) -> dict[str, object]:
    return {"code": "invalid_target", "refused": list(exc.refused)}


PROBLEMS: dict[type[Exception], ProblemSpec] = {
    EmailInvalidError: ProblemSpec(422, "Invalid email", "email-invalid"),
    EmailTakenError: ProblemSpec(409, "Email in use", "email-taken"),
    PasswordRejectedError: ProblemSpec(
        422, "Password not acceptable", "password-rejected", detail=_reason
    ),
    InvalidCredentialsError: ProblemSpec(401, "Invalid credentials", "invalid-credentials"),
    SecondFactorRequiredError: ProblemSpec(
        401, "One-time code required", "mfa-required", extensions=lambda _: {"code": "mfa_required"}
    ),
    ReauthenticationFailedError: ProblemSpec(
        403, "Re-authentication failed", "reauthentication-failed"
    ),
    OneTimeTokenInvalidError: ProblemSpec(400, "Invalid or used token", "one-time-token-invalid"),
    TotpEnrolmentError: ProblemSpec(409, "TOTP enrolment not possible", "totp-enrolment"),
    EmailNotVerifiedError: ProblemSpec(409, "Email not verified", "email-not-verified"),
    RefreshTokenInvalidError: ProblemSpec(401, "Invalid refresh token", "invalid-refresh-token"),
    ServiceCredentialsInvalidError: ProblemSpec(
        401, "Invalid service credentials", "invalid-service-credentials"
    ),
    # RFC 8707 calls this `invalid_target`: a token asked for a service the role may not use.
    AudienceNotAllowedError: ProblemSpec(
        400, "Audience not allowed", "audience-not-allowed", extensions=_refused_audiences
    ),
    UserNotFoundError: ProblemSpec(404, "No such user", "user-not-found"),
    AccountNotActiveError: ProblemSpec(409, "Account closed", "account-closed"),
    ConcurrencyError: ProblemSpec(
        409, "Concurrent update", "concurrent-update", detail="the account changed meanwhile; retry"
    ),
    OwnerErasedError: ProblemSpec(
        410, "Subject erased", "subject-erased", detail="the account was erased"
    ),
}
