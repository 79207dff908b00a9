"""The `User` aggregate: an account's state as the fold of its events.

Personal fields are `ERASED` markers once the subject's key was shredded: folding never
fails, and `status` tells what is left of the account. Only an erasure shreds a subject's key,
so a registration whose personal part is erased is an erased account; erasure answers are
recorded outside the account's stream (the runtime's `SubjectErased`), except in accounts
erased before the erasure contract, whose streams hold them.
"""

from __future__ import annotations

from typing import Any

from mmgen.events.erased import ERASED, is_erased
from mmgen.events.registry import EventData
from mmgen.events.repository import Aggregate
from mmgen.identity.domain.events import (
    AccountClosed,
    BusinessCorrected,
    EmailCorrected,
    EmailVerified,
    NameCorrected,
    PasswordChanged,
    PhoneCorrected,
    RecoveryCodeUsed,
    TotpActivated,
    TotpEnrolled,
    UserRegistered,
)
from mmgen.runtime.contract import SubjectErasedData

ACTIVE = "active"
CLOSED = "closed"
ERASED_STATUS = "erased"


class User(Aggregate):
    """An account. `id` is the user id (a UUID), which is also the subject id."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(stream_id)
        self.role: str | None = None
        self.status: str = ACTIVE
        self.registered_by: str | None = None
        self.email: Any = ERASED
        self.name: Any = ERASED
        self.phone: Any = None
        self.business: Any = None
        self.password_hash: Any = ERASED
        self.registered = False
        #: The stream version of the event that set the current email, and whether its owner
        #: proved the mailbox (accounts an admin created count as verified).
        self.email_version = 0
        self.email_verified = False
        #: The stream version of the last password change (a reset token asked before it is void).
        self.password_version = 0
        #: TOTP: the active secret (base32) and recovery code hashes (None: spent), and a
        #: pending enrolment waiting for its first code.
        self.totp_secret: Any = None
        self.recovery_codes: list[str | None] = []
        self.pending_totp: Any = None

    def when(self, data: EventData, personal: Any) -> None:
        match data:
            case UserRegistered(role=role, registered_by=by):
                self.registered = True
                self.role, self.registered_by = role, by
                self.email, self.name = personal.email, personal.name
                self.phone, self.business = personal.phone, personal.business
                self.password_hash = personal.password_hash
                self.email_version = self.version + 1
                self.email_verified = by != "self"
                if is_erased(personal):
                    self.status = ERASED_STATUS
            case EmailCorrected():
                self.email = personal.email
                self.email_version, self.email_verified = self.version + 1, False
            case EmailVerified(email_version=version):
                if version == self.email_version:
                    self.email_verified = True
            case PasswordChanged():
                self.password_hash = personal.password_hash
                self.password_version = self.version + 1
            case TotpEnrolled():
                self.pending_totp = personal
            case TotpActivated():
                pending = self.pending_totp
                if pending is not None and not is_erased(pending):
                    self.totp_secret = pending.secret
                    self.recovery_codes = list(pending.recovery_code_hashes)
                self.pending_totp = None
            case RecoveryCodeUsed(index=index):
                if 0 <= index < len(self.recovery_codes):
                    self.recovery_codes[index] = None
            case NameCorrected():
                self.name = personal.name
            case PhoneCorrected():
                self.phone = personal.phone
            case BusinessCorrected():
                self.business = personal.business
            case AccountClosed():
                self._close()
            case SubjectErasedData(keys_shredded=shredded) if shredded > 0:
                self.status = ERASED_STATUS
                self.email = self.name = self.phone = self.business = ERASED
                self.password_hash = ERASED
                self.totp_secret, self.pending_totp, self.recovery_codes = ERASED, None, []
            case SubjectErasedData():
                self._close()
            case _:
                pass

    def _close(self) -> None:
        if self.status == ACTIVE:
            self.status = CLOSED

    @property
    def active(self) -> bool:
        return self.registered and self.status == ACTIVE

    @property
    def totp_enabled(self) -> bool:
        """Sign-in needs a second factor (an erased secret still counts: no way around it)."""
        return self.totp_secret is not None

    @property
    def erased(self) -> bool:
        return self.status == ERASED_STATUS or is_erased(self.email)
