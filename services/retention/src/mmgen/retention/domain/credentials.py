"""What a subject re-authenticates with before an erasure, on its way to identity.

Retention keeps none of it: the value lives for one request, is handed to identity's sign-in,
and is never stored, logged or put in an event.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SignInCredentials:
    """Email and password, and the second factor when the account has one (a current TOTP
    code, or one of its recovery codes). Secrets stay out of `repr`."""

    email: str
    password: str = field(repr=False)
    totp: str | None = field(default=None, repr=False)
    recovery_code: str | None = field(default=None, repr=False)
