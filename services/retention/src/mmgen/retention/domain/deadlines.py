"""Deadlines of privacy requests: GDPR Art. 12(3), counted in calendar months.

- A request is answered "without undue delay and in any event within one month of receipt".
  The month is counted as EU periods are (``periods.add_months``): received on 15 March, due
  by the end of 15 April; received on 31 January, due by the end of 28 February (29 in a
  leap year). The day is the UTC calendar day of receipt.
- It "may be extended by two further months where necessary, taking into account the
  complexity and number of the requests", and the subject is told "within one month of
  receipt ... together with the reasons for the delay". So: at most one extension, of one or
  two months counted from the receipt (three months in all at most), made before the first
  deadline has passed, and never without a reason.
- A request is overdue once its due day has ended (UTC) while it is still being worked on.

Not applied: moving a deadline that falls on a weekend or public holiday to the next working
day (Regulation 1182/71 Art. 3(4)), which needs a holiday calendar per member state; the
deadline kept here is therefore never later than the legal one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from mmgen.retention.domain.errors import ExtensionInvalidError
from mmgen.retention.domain.periods import add_months

RESPONSE_MONTHS = 1
MAX_EXTENSION_MONTHS = 2
MAX_REASON_LENGTH = 1000


def utc_day(at: datetime) -> date:
    """The UTC calendar day of an aware instant (naive instants are refused)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("an aware datetime is needed")
    return at.astimezone(UTC).date()


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a request is due, and the one extension it may have had."""

    received_on: date
    due_on: date
    extension_months: int = 0
    extension_reason: str | None = None
    extended_on: date | None = None

    @classmethod
    def for_receipt(cls, received_at: datetime) -> Deadline:
        received = utc_day(received_at)
        return cls(received, add_months(received, RESPONSE_MONTHS))

    @property
    def original_due_on(self) -> date:
        return add_months(self.received_on, RESPONSE_MONTHS)

    @property
    def extended(self) -> bool:
        return self.extension_months > 0

    @property
    def due_by(self) -> datetime:
        """The first instant at which the request is late (the end of the due day, UTC)."""
        return datetime.combine(self.due_on + timedelta(days=1), time(0), tzinfo=UTC)

    def is_overdue(self, now: datetime) -> bool:
        return now >= self.due_by

    def extend(self, months: int, reason: str | None, at: datetime) -> Deadline:
        """The deadline after the one extension Art. 12(3) allows; `ExtensionInvalidError` else."""
        if self.extended:
            raise ExtensionInvalidError("the deadline was already extended once")
        if isinstance(months, bool) or not isinstance(months, int):
            raise ExtensionInvalidError("an extension is a whole number of months")
        if not 1 <= months <= MAX_EXTENSION_MONTHS:
            raise ExtensionInvalidError(
                f"an extension is of 1 to {MAX_EXTENSION_MONTHS} further months"
            )
        text = (reason or "").strip()
        if not text:
            raise ExtensionInvalidError(
                "an extension needs the reasons for the delay (GDPR Art. 12(3))"
            )
        if len(text) > MAX_REASON_LENGTH:
            raise ExtensionInvalidError(f"the reason is longer than {MAX_REASON_LENGTH} characters")
        if at >= self.due_by:
            raise ExtensionInvalidError(
                "the subject must be told of an extension within one month of receipt; "
                f"the deadline {self.due_on.isoformat()} has passed"
            )
        return replace(
            self,
            due_on=add_months(self.received_on, RESPONSE_MONTHS + months),
            extension_months=months,
            extension_reason=text,
            extended_on=utc_day(at),
        )
