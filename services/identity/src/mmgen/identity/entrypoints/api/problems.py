"""The one place identity's exceptions become problem+json (status, slug, title)."""

from __future__ import annotations

from mmgen.events.errors import ConcurrencyError, OwnerErasedError
from mmgen.identity.domain.errors import (
    AccountNotActiveError,
    EmailInvalidError,
    EmailTakenError,
    InvalidCredentialsError,
    PasswordRejectedError,
    RefreshTokenInvalidError,
    ServiceCredentialsInvalidError,
    UserNotFoundError,
)
from mmgen.platform import PlatformApp, ProblemError


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


def register_problems(app: PlatformApp) -> None:
    app.register_problem(EmailInvalidError, status=422, slug="email-invalid", title="Invalid email")
    app.register_problem(EmailTakenError, status=409, slug="email-taken", title="Email in use")
    app.register_problem(
        PasswordRejectedError,
        status=422,
        slug="password-rejected",
        title="Password not acceptable",
        detail=lambda exc: exc.reason,
    )
    app.register_problem(
        InvalidCredentialsError,
        status=401,
        slug="invalid-credentials",
        title="Invalid credentials",
    )
    app.register_problem(
        RefreshTokenInvalidError,
        status=401,
        slug="invalid-refresh-token",
        title="Invalid refresh token",
    )
    app.register_problem(
        ServiceCredentialsInvalidError,
        status=401,
        slug="invalid-service-credentials",
        title="Invalid service credentials",
    )
    app.register_problem(UserNotFoundError, status=404, slug="user-not-found", title="No such user")
    app.register_problem(
        AccountNotActiveError, status=409, slug="account-closed", title="Account closed"
    )
    app.register_problem(
        ConcurrencyError,
        status=409,
        slug="concurrent-update",
        title="Concurrent update",
        detail="the account changed meanwhile; retry",
    )
    app.register_problem(
        OwnerErasedError,
        status=410,
        slug="subject-erased",
        title="Subject erased",
        detail="the account was erased",
    )
