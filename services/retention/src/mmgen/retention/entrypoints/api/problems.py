"""Every domain error of retention as an RFC 9457 problem, and the refusals its routes raise.

Refusals (401/403) are `ProblemError`s, so the platform renders them and the runtime's denial
recorder turns each into a `retention.AccessDenied` event.
"""

from __future__ import annotations

from mmgen.events.errors import OwnerErasedError
from mmgen.platform import ProblemError, ProblemSpec
from mmgen.retention.domain.errors import (
    ExtensionInvalidError,
    HoldAlreadyReleasedError,
    HoldInvalidError,
    HoldNotFoundError,
    IllegalTransitionError,
    PackageExpiredError,
    PackageNotReadyError,
    PeriodInvalidError,
    PolicyInvalidError,
    PrivacyRequestNotFoundError,
    ReceiptNotAvailableError,
    RequestInvalidError,
    RequestTypeMismatchError,
    RetentionError,
    ServiceUnreachableError,
)

PROBLEMS: dict[type[Exception], ProblemSpec] = {
    ExtensionInvalidError: ProblemSpec(422, "Extension not allowed", "extension-invalid"),
    PeriodInvalidError: ProblemSpec(422, "Invalid retention period", "period-invalid"),
    PolicyInvalidError: ProblemSpec(422, "Invalid retention policy", "policy-invalid"),
    HoldInvalidError: ProblemSpec(422, "Invalid legal hold", "hold-invalid"),
    RequestInvalidError: ProblemSpec(422, "Invalid privacy request step", "request-invalid"),
    PrivacyRequestNotFoundError: ProblemSpec(
        404, "Privacy request not found", "privacy-request-not-found"
    ),
    HoldNotFoundError: ProblemSpec(404, "Legal hold not found", "hold-not-found"),
    IllegalTransitionError: ProblemSpec(409, "Step not allowed now", "illegal-transition"),
    RequestTypeMismatchError: ProblemSpec(
        409, "Step of another type of request", "request-type-mismatch"
    ),
    HoldAlreadyReleasedError: ProblemSpec(409, "Legal hold already released", "hold-released"),
    PackageNotReadyError: ProblemSpec(409, "Access package not ready", "package-not-ready"),
    ReceiptNotAvailableError: ProblemSpec(409, "No receipt yet", "receipt-not-available"),
    PackageExpiredError: ProblemSpec(410, "Access package gone", "package-expired"),
    OwnerErasedError: ProblemSpec(
        410,
        "Subject erased",
        "subject-erased",
        "the subject was erased: nothing personal can be recorded about them any more",
    ),
    ServiceUnreachableError: ProblemSpec(
        503, "A service did not answer", "service-unavailable", lambda e: f"{e.service}: retry"
    ),
    RetentionError: ProblemSpec(400, "Request refused", "retention-error"),
}


class NotYoursError(ProblemError):
    """The request exists but is neither the caller's nor open to their role."""

    status = 403
    slug = "not-your-request"
    title = "Not your privacy request"


class OnBehalfNotAllowedError(ProblemError):
    """A client or creator named another subject: only staff act on someone's behalf."""

    status = 403
    slug = "on-behalf-not-allowed"
    title = "Only staff file requests on someone's behalf"


class SubjectRequiredError(ProblemError):
    """Staff filing on a subject's behalf must say whose request it is."""

    status = 422
    slug = "subject-required"
    title = "Subject required"


class RecentSignInRequiredError(ProblemError):
    """An erasure needs a recent sign-in (RFC 9470 step-up), or the password again."""

    status = 401
    slug = "recent-sign-in-required"
    title = "Recent sign-in required"

    def __init__(self, max_age: int) -> None:
        super().__init__(
            f"erasing your data needs a sign-in within the last {max_age} seconds: sign in "
            "again, or send your email and password with the request",
            extensions={"max_age": max_age},
            headers={
                "WWW-Authenticate": (
                    f'Bearer error="insufficient_user_authentication", max_age={max_age}'
                )
            },
        )


class ReauthenticationFailedError(ProblemError):
    """The credentials sent for the erasure (email, password, one-time code) did not sign the
    caller in."""

    status = 401
    slug = "reauthentication-failed"
    title = "Password not confirmed"

    def __init__(self) -> None:
        super().__init__(
            "the email and password (and one-time code, if your account has one) do not sign "
            "you in",
            headers={"WWW-Authenticate": 'Bearer error="insufficient_user_authentication"'},
        )


class ReauthenticationSecondFactorRequiredError(ProblemError):
    """The password was right, but the account has TOTP: the erasure needs its code too.

    Slug and `code` are identity's sign-in answer's, so a client handles both the same way."""

    status = 401
    slug = "mfa-required"
    title = "One-time code required"
    CODE = "mfa_required"

    def __init__(self) -> None:
        super().__init__(
            "your account signs in with a one-time code: send `totp` (or a `recovery_code`) "
            "with your email and password",
            extensions={"code": self.CODE},
            headers={"WWW-Authenticate": 'Bearer error="insufficient_user_authentication"'},
        )
