"""Calendar arithmetic: month ends, leap years, strict ISO 8601 periods, Art. 12(3) deadlines."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from mmgen.retention.domain.deadlines import Deadline
from mmgen.retention.domain.errors import ExtensionInvalidError, PeriodInvalidError
from mmgen.retention.domain.periods import RetentionPeriod, add_months


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2027, 1, 31), 1, date(2027, 2, 28)),  # common year
        (date(2028, 1, 31), 1, date(2028, 2, 29)),  # leap year
        (date(2100, 1, 31), 1, date(2100, 2, 28)),  # divisible by 100: not a leap year
        (date(2000, 1, 31), 1, date(2000, 2, 29)),  # divisible by 400: a leap year
        (date(2027, 3, 31), 1, date(2027, 4, 30)),
        (date(2027, 1, 15), 1, date(2027, 2, 15)),
        (date(2027, 12, 31), 1, date(2028, 1, 31)),  # over the year end
        (date(2027, 11, 30), 3, date(2028, 2, 29)),
        (date(2028, 2, 29), 12, date(2029, 2, 28)),
        (date(2027, 3, 31), -1, date(2027, 2, 28)),
    ],
)
def test_add_months_clamps_to_the_end_of_a_shorter_month(
    start: date, months: int, expected: date
) -> None:
    assert add_months(start, months) == expected


def test_add_months_keeps_the_time_of_day() -> None:
    at = datetime(2028, 1, 31, 17, 45, tzinfo=UTC)
    assert add_months(at, 1) == datetime(2028, 2, 29, 17, 45, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "parts", "canonical"),
    [
        ("P1Y", (1, 0, 0, 0), "P1Y"),
        ("P6M", (0, 6, 0, 0), "P6M"),
        ("P30D", (0, 0, 0, 30), "P30D"),
        ("P1Y6M", (1, 6, 0, 0), "P1Y6M"),
        ("P1Y2M3D", (1, 2, 0, 3), "P1Y2M3D"),
        ("P2W", (0, 0, 2, 0), "P2W"),
        ("P0Y13M", (0, 13, 0, 0), "P13M"),
    ],
)
def test_periods_accepted(text: str, parts: tuple[int, int, int, int], canonical: str) -> None:
    period = RetentionPeriod.parse(text)
    assert (period.years, period.months, period.weeks, period.days) == parts
    assert str(period) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "PT1H",  # time components are refused
        "P1DT2H",
        "PT0S",
        "P",
        "",
        "P0D",  # zero
        "P1.5Y",  # fraction
        "P1,5Y",
        "-P1Y",  # sign
        "P-1Y",
        "p1y",  # lower case
        "P1W2D",  # weeks mixed
        "P01Y",  # leading zero
        "P1Y1Y",
        "P1D1M",  # wrong order
        "P0001-00-00",  # alternative form
        "P101Y",  # beyond 100 years
        "P1Y ",
        "1Y",
    ],
)
def test_periods_refused(text: str) -> None:
    with pytest.raises(PeriodInvalidError):
        RetentionPeriod.parse(text)


def test_period_after_adds_months_then_days() -> None:
    period = RetentionPeriod.parse("P1M1D")
    assert period.after(date(2027, 1, 31)) == date(2027, 3, 1)  # 28 Feb + 1 day
    assert RetentionPeriod.parse("P1Y").after(date(2028, 2, 29)) == date(2029, 2, 28)


def test_period_before_is_the_latest_start_that_has_ended() -> None:
    month = RetentionPeriod.parse("P1M")
    # 29, 30 and 31 January + 1 month all end on 28 February 2027.
    assert month.before(date(2027, 2, 28)) == date(2027, 1, 31)
    assert month.before(date(2027, 3, 1)) == date(2027, 2, 1)
    for period in ("P1M", "P3Y", "P6M", "P30D", "P13M", "P2W", "P1Y6M"):
        parsed = RetentionPeriod.parse(period)
        end = datetime(2027, 2, 28, 9, tzinfo=UTC)
        cut = parsed.before(end)
        assert parsed.after(cut) <= end
        assert parsed.after(cut + timedelta(days=1)) > end


# --- Art. 12(3) deadlines --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (datetime(2027, 1, 31, 10, tzinfo=UTC), date(2027, 2, 28)),
        (datetime(2028, 1, 31, 10, tzinfo=UTC), date(2028, 2, 29)),
        (datetime(2028, 1, 30, 0, 0, tzinfo=UTC), date(2028, 2, 29)),
        (datetime(2027, 3, 15, 23, 59, tzinfo=UTC), date(2027, 4, 15)),
        (datetime(2027, 12, 31, 12, tzinfo=UTC), date(2028, 1, 31)),
        (datetime(2027, 5, 31, 12, tzinfo=UTC), date(2027, 6, 30)),
        # 00:30 on 1 March in UTC+2 is still 28 February in UTC: the UTC day counts.
        (datetime(2027, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))), date(2027, 3, 28)),
    ],
)
def test_deadline_is_one_calendar_month_from_receipt(received: datetime, due: date) -> None:
    deadline = Deadline.for_receipt(received)
    assert deadline.due_on == due
    assert deadline.due_by == datetime.combine(
        due + timedelta(days=1), datetime.min.time(), tzinfo=UTC
    )


def test_overdue_only_after_the_due_day_has_ended() -> None:
    deadline = Deadline.for_receipt(datetime(2027, 1, 31, 10, tzinfo=UTC))
    assert not deadline.is_overdue(datetime(2027, 2, 28, 23, 59, 59, tzinfo=UTC))
    assert deadline.is_overdue(datetime(2027, 3, 1, 0, 0, tzinfo=UTC))


def test_extension_counts_from_receipt_and_needs_a_reason() -> None:
    received = datetime(2027, 11, 30, 9, tzinfo=UTC)
    deadline = Deadline.for_receipt(received)
    assert deadline.due_on == date(2027, 12, 30)
    two = deadline.extend(2, "  many linked requests from the same subject ", received)
    assert two.due_on == date(2028, 2, 29)  # three months from receipt, leap day
    assert two.extension_reason == "many linked requests from the same subject"
    assert two.original_due_on == date(2027, 12, 30)
    assert deadline.extend(1, "complex", received).due_on == date(2028, 1, 30)


@pytest.mark.parametrize("reason", [None, "", "   \n\t"])
def test_extension_without_a_reason_is_refused(reason: str | None) -> None:
    deadline = Deadline.for_receipt(datetime(2027, 1, 31, tzinfo=UTC))
    with pytest.raises(ExtensionInvalidError, match="reasons"):
        deadline.extend(2, reason, datetime(2027, 2, 1, tzinfo=UTC))


def test_extension_limits() -> None:
    received = datetime(2027, 1, 31, tzinfo=UTC)
    deadline = Deadline.for_receipt(received)
    for months in (0, 3, -1, True):
        with pytest.raises(ExtensionInvalidError):
            deadline.extend(months, "complex", received)  # type: ignore[arg-type]
    extended = deadline.extend(1, "complex", received)
    with pytest.raises(ExtensionInvalidError, match="already"):
        extended.extend(1, "again", received)
    with pytest.raises(ExtensionInvalidError, match="has passed"):
        deadline.extend(2, "too late", datetime(2027, 3, 1, tzinfo=UTC))
    with pytest.raises(ExtensionInvalidError, match="longer"):
        deadline.extend(1, "x" * 1001, received)
