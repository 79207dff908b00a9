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
    NameCorrected,
    PhoneCorrected,
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

    def when(self, data: EventData, personal: Any) -> None:
        match data:
            case UserRegistered(role=role, registered_by=by):
                self.registered = True
                self.role, self.registered_by = role, by
                self.email, self.name = personal.email, personal.name
                self.phone, self.business = personal.phone, personal.business
                self.password_hash = personal.password_hash
                if is_erased(personal):
                    self.status = ERASED_STATUS
            case EmailCorrected():
                self.email = personal.email
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
    def erased(self) -> bool:
        return self.status == ERASED_STATUS or is_erased(self.email)
