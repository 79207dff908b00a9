"""Calendar arithmetic for legal periods, and the ISO 8601 durations retention policies use.

**Months** follow the EU rule for periods (Regulation 1182/71, Art. 3(2)(c)), which is how
GDPR periods such as Art. 12(3)'s "one month" are counted: a period of n months ends on the
same day-of-month n months later, and when that month is shorter, on its last day
(31 January + 1 month → 28 February, or 29 in a leap year). ``add_months`` never overflows
into the next month, unlike adding 30 days.

**Durations** (``RetentionPeriod``) are a strict subset of ISO 8601-1:2019 §5.5.2:
``P[nY][nM][nD]`` or ``PnW`` with non-negative integers (at most 5 digits, no leading zero),
at least one component and not all zero, nothing else. Refused on purpose:

- time components (``PT12H``, ``P1DT1H``): retention is decided per calendar day, and an
  hour-precise period would promise a precision the daily scheduler does not keep;
- fractions (``P0.5Y``), leading zeros (``P01Y``), signs, lower-case designators, weeks
  mixed with other components (``P1W2D``: ISO 8601-1 keeps weeks alone), alternative forms
  (``P0001-00-00``);
- anything longer than 100 years (no legal retention period is, and typos like ``P2000Y``
  would otherwise keep data forever).

Adding a period to an instant adds years and months first (as months, with the end-of-month
rule), then weeks and days — the order ``dateutil.relativedelta`` and Java's ``Period`` use —
and keeps the time of day.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeVar

from mmgen.retention.domain.errors import PeriodInvalidError

MAX_YEARS = 100
_DURATION = re.compile(
    r"P(?:(?P<weeks>{n})W|(?:(?P<y>{n})Y)?(?:(?P<m>{n})M)?(?:(?P<d>{n})D)?)".replace(
        "{n}", r"(?:0|[1-9]\d{0,4})"
    )
)

D = TypeVar("D", date, datetime)


def add_months(value: D, months: int) -> D:
    """``value`` plus ``months`` calendar months, clamped to the last day of a shorter month."""
    index = value.year * 12 + (value.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    if not 1 <= year <= 9999:
        raise PeriodInvalidError("the date falls outside the calendar")
    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


@dataclass(frozen=True, slots=True)
class RetentionPeriod:
    """A calendar period: years, months, weeks, days (see the module's rules)."""

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0

    def __post_init__(self) -> None:
        parts = (self.years, self.months, self.weeks, self.days)
        if any(isinstance(p, bool) or not isinstance(p, int) or p < 0 for p in parts):
            raise PeriodInvalidError("period components are non-negative integers")
        if not any(parts):
            raise PeriodInvalidError("a retention period must not be zero")
        if self.weeks and (self.years or self.months or self.days):
            raise PeriodInvalidError("weeks cannot be combined with other components")
        approx_days = self.years * 366 + self.months * 31 + self.weeks * 7 + self.days
        if approx_days > MAX_YEARS * 366:
            raise PeriodInvalidError(f"a retention period is at most {MAX_YEARS} years")

    @classmethod
    def parse(cls, text: str) -> RetentionPeriod:
        if not isinstance(text, str) or len(text) > 32:
            raise PeriodInvalidError("a period is a short ISO 8601 duration string")
        if "T" in text:
            raise PeriodInvalidError(
                f"{text!r}: time components (PT…) are not accepted; use days, months or years"
            )
        match = _DURATION.fullmatch(text)
        if match is None or text == "P":
            raise PeriodInvalidError(
                f"{text!r} is not an ISO 8601 duration of the form P[nY][nM][nD] or PnW"
            )
        return cls(
            years=int(match["y"] or 0),
            months=int(match["m"] or 0),
            weeks=int(match["weeks"] or 0),
            days=int(match["d"] or 0),
        )

    def __str__(self) -> str:
        if self.weeks:
            return f"P{self.weeks}W"
        parts = [(self.years, "Y"), (self.months, "M"), (self.days, "D")]
        return "P" + "".join(f"{n}{unit}" for n, unit in parts if n)

    def after(self, start: D) -> D:
        """The instant (or day) this period ends when it starts at ``start``."""
        moved = add_months(start, self.years * 12 + self.months)
        return moved + timedelta(days=self.weeks * 7 + self.days)

    def before(self, end: D) -> D:
        """The latest start (on ``end``'s time of day) whose period has ended by ``end``.

        Subtracting is not the inverse of adding at month ends: 29, 30 and 31 January + 1
        month all end on 28 February, so the cut-off for 28 February is 31 January, not
        28 January. ``after`` never decreases, so stepping a day at a time finds it.
        """
        cut = add_months(
            end - timedelta(days=self.weeks * 7 + self.days), -(self.years * 12 + self.months)
        )
        while self.after(cut) > end:
            cut -= timedelta(days=1)
        while self.after(cut + timedelta(days=1)) <= end:
            cut += timedelta(days=1)
        return cut
