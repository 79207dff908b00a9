"""Identity's exception root and its leaves; the HTTP edge maps them to problem+json in one place.

Messages never contain personal data (they become a problem's `detail`).
"""

from __future__ import annotations


class IdentityError(Exception):
    """Root of every error the identity service raises on purpose."""


class EmailInvalidError(IdentityError, ValueError):
    """The email address is not a plausible mailbox."""


class EmailTakenError(IdentityError):
    """Another account already uses this email address."""


class PasswordRejectedError(IdentityError, ValueError):
    """The password breaks the password policy (length, blocklist, context words)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"password rejected: {reason}")


class InvalidCredentialsError(IdentityError):
    """Unknown email or wrong password: deliberately the same error for both."""

    def __init__(self) -> None:
        super().__init__("the email or password is not correct")


class LoginThrottledError(IdentityError):
    """Too many failed logins for the account or the client address; retry later."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, retry_after)
        super().__init__(f"too many failed attempts; retry in {self.retry_after} s")


class RefreshTokenInvalidError(IdentityError):
    """Unknown, expired, revoked or already-used refresh token."""

    def __init__(self, detail: str = "the refresh token is not valid") -> None:
        super().__init__(detail)


class RefreshTokenReusedError(RefreshTokenInvalidError):
    """An already-used refresh token was presented: its family is now revoked."""

    def __init__(self, user_id: str, family_id: str, revoked: int) -> None:
        self.user_id, self.family_id, self.revoked = user_id, family_id, revoked
        super().__init__("the refresh token was already used; the session is revoked")


class ServiceCredentialsInvalidError(IdentityError):
    """Unknown service or wrong service secret."""

    def __init__(self) -> None:
        super().__init__("the service name or secret is not correct")


class UserNotFoundError(IdentityError):
    """No (active) account with this id."""

    def __init__(self) -> None:
        super().__init__("no such user")


class AccountNotActiveError(IdentityError):
    """The account was closed or erased: nothing can be done with it any more."""

    def __init__(self) -> None:
        super().__init__("the account is closed")


class NothingToChangeError(IdentityError, ValueError):
    """A correction that changes nothing."""

    def __init__(self) -> None:
        super().__init__("the request changes nothing")


class SecondFactorRequiredError(IdentityError):
    """The password was right, the account has TOTP, and no code came with it."""

    def __init__(self) -> None:
        super().__init__("this account needs a one-time code (totp or recovery_code)")


class ReauthenticationFailedError(IdentityError):
    """The password (or the one-time code) given to confirm a sensitive change is not right."""

    def __init__(self) -> None:
        super().__init__("confirm with your current password (and one-time code if enrolled)")


class OneTimeTokenInvalidError(IdentityError, ValueError):
    """A mailed token that is malformed, forged, expired, already used or outdated."""

    def __init__(self) -> None:
        super().__init__("the link is not valid (expired, already used, or replaced)")


class TotpEnrolmentError(IdentityError):
    """TOTP cannot be enrolled or confirmed in the account's state."""


class EmailNotVerifiedError(IdentityError):
    """The action needs the account's email to be verified first."""

    def __init__(self) -> None:
        super().__init__("verify your email address first (POST /auth/verify-email)")


class MailNotConfiguredError(IdentityError):
    """Mail is needed but no SMTP server is configured (outside the local stack)."""
