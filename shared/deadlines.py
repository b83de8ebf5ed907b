"""Deadline arithmetic (期间计算), rules.md §0: pure functions on aware datetimes.

Times are judged in the court's zone, Asia/Shanghai. A period of days,
months or working days ends at the **end** of its last local day, 23:59:59
with microsecond 0 (`end_of_day`); the trigger day is not counted. When the
last day is not a working day (weekend or 法定节假日 statutory holiday, with
调休 adjusted working weekends counting as working), the deadline rolls to
the end of the next working day (民事诉讼法 期间 rule). Periods in hours are
exact and never roll (舆情 sentiment response times).

The numbers themselves (10 days, 3 working days...) come from the services'
rules files via `Period.parse`; nothing here knows a rule.
"""
from __future__ import annotations

import calendar as month_calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Literal, get_args

from shared.calendar import CourtCalendar

from shared.clock import COURT_TZ  # noqa: F401  (re-exported for callers)

# End of the local day; microsecond 0, and `deadline_state` judges whole seconds,
# so the whole second 23:59:59 is still on time.
END_OF_DAY = time(23, 59, 59)

PeriodUnit = Literal["days", "months", "working_days", "hours"]
PERIOD_UNITS: tuple[str, ...] = get_args(PeriodUnit)
DeadlineState = Literal["pending", "due_soon", "overdue"]

# Unit words accepted in rules files, mapped to (unit, multiplier). A year is 12 months.
_UNIT_WORDS: dict[str, tuple[PeriodUnit, int]] = {
    "day": ("days", 1), "days": ("days", 1),
    "month": ("months", 1), "months": ("months", 1),
    "year": ("months", 12), "years": ("months", 12),
    "working_day": ("working_days", 1), "working_days": ("working_days", 1),
    "hour": ("hours", 1), "hours": ("hours", 1),
}
_PERIOD_TEXT = re.compile(r"^\s*(\d+)\s*([A-Za-z_ ]+?)\s*$")


class PeriodError(ValueError):
    """A period value from a rules file that cannot be understood."""


@dataclass(frozen=True)
class Period:
    """A length of time as rules state it: 10 days, 1 month, 3 working days, 5 hours."""

    amount: int
    unit: PeriodUnit

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount < 0:
            raise PeriodError(f"period amount must be a whole number >= 0, got {self.amount!r}")
        if self.unit not in PERIOD_UNITS:
            raise PeriodError(f"period unit {self.unit!r} must be one of {list(PERIOD_UNITS)}")

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}"

    @classmethod
    def parse(cls, value: Any) -> "Period":
        """Read a period as a rules file writes it.

        Accepted: "10 days", "1 month", "2 years" (= 24 months), "3 working days",
        "3 working_days", "5 hours"; {days: 10}; {amount: 10, unit: days};
        a Period. A bare number is refused: the unit must be written.
        """
        if isinstance(value, Period):
            return value
        if isinstance(value, str):
            match = _PERIOD_TEXT.match(value)
            if not match:
                raise PeriodError(f"period {value!r} should look like '10 days' or '3 working days'")
            return cls._from_word(int(match.group(1)), match.group(2), value)
        if isinstance(value, dict):
            if set(value) == {"amount", "unit"}:
                return cls._from_word(value["amount"], str(value["unit"]), value)
            if len(value) == 1:
                ((word, amount),) = value.items()
                return cls._from_word(amount, str(word), value)
        raise PeriodError(f"period {value!r} should be text like '10 days' or a mapping like {{days: 10}}")

    @classmethod
    def _from_word(cls, amount: Any, word: str, original: Any) -> "Period":
        key = "_".join(word.strip().lower().split())
        if key not in _UNIT_WORDS:
            raise PeriodError(f"period {original!r}: unknown unit {word!r}; "
                              "use days, months, years, working days or hours")
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise PeriodError(f"period {original!r}: amount must be a whole number")
        unit, multiplier = _UNIT_WORDS[key]
        return cls(amount * multiplier, unit)


# -- local days ---------------------------------------------------------------


def _require_aware(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {moment!r}")
    return moment


def court_time(moment: datetime) -> datetime:
    """The same instant in the court's zone (Asia/Shanghai)."""
    return _require_aware(moment, "moment").astimezone(COURT_TZ)


def court_date(moment: datetime) -> date:
    """The court's local calendar date of an instant."""
    return court_time(moment).date()


def end_of_day(day: date) -> datetime:
    """23:59:59 (microsecond 0) of a local date, in Asia/Shanghai."""
    return datetime.combine(day, END_OF_DAY, tzinfo=COURT_TZ)


def add_months(day: date, months: int) -> date:
    """Same day-of-month `months` later (or earlier when negative); the month's last day when shorter."""
    month_index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(month_index, 12)
    last_day = month_calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last_day))


def _add_exact_hours(moment: datetime, hours: int) -> datetime:
    # Through UTC so the result is exact elapsed time whatever the zone does.
    return (moment.astimezone(timezone.utc) + timedelta(hours=hours)).astimezone(COURT_TZ)


# -- deadlines ----------------------------------------------------------------


def due_at(trigger: datetime, period: Period, calendar: CourtCalendar, roll_over: bool = True) -> datetime:
    """When a period started by `trigger` runs out (rules.md §0).

    - days: end of (trigger's local date + N days). The trigger day is not counted.
    - months: end of the same day-of-month N months later (the month's last
      day when shorter: 01-31 + 1 month -> 02-28).
    - working_days: end of the Nth working day after the trigger's local date
      (trigger day not counted, whether or not it is a working day).
    - hours: trigger + N hours exactly; no end-of-day and no roll-over.

    With roll_over (the default) a last day that is not a working day moves
    to the end of the next working day (节假日顺延). Result in Asia/Shanghai.
    """
    trigger_local = court_time(_require_aware(trigger, "trigger"))
    if period.unit == "hours":
        return _add_exact_hours(trigger_local, period.amount)
    start_day = trigger_local.date()
    if period.unit == "days":
        last_day = start_day + timedelta(days=period.amount)
    elif period.unit == "months":
        last_day = add_months(start_day, period.amount)
    else:
        last_day = calendar.add_working_days(start_day, period.amount)
    if roll_over:
        last_day = calendar.next_working_day(last_day)
    return end_of_day(last_day)


def warn_at(due: datetime, warn_before: Period) -> datetime:
    """When the warning (临期预警) starts: due minus warn_before, plain calendar arithmetic.

    No roll-over and no working-day logic (rules.md §0): days and months move
    the local date keeping the time of day, hours subtract exact time.
    working_days is refused, since no calendar is consulted here.
    """
    due_local = court_time(_require_aware(due, "due"))
    if warn_before.unit == "hours":
        return _add_exact_hours(due_local, -warn_before.amount)
    if warn_before.unit == "days":
        warn_day = due_local.date() - timedelta(days=warn_before.amount)
    elif warn_before.unit == "months":
        warn_day = add_months(due_local.date(), -warn_before.amount)
    else:
        raise PeriodError(f"warn_before {warn_before} in working days is not supported; "
                          "rules.md §0 warns by plain calendar arithmetic (days, months or hours)")
    return datetime.combine(warn_day, due_local.time(), tzinfo=COURT_TZ)


def deadline_state(now: datetime, due: datetime, warn: datetime | None = None) -> DeadlineState:
    """pending, due_soon (now >= warn) or overdue (now > due, strictly).

    Judged to the whole second: now's microseconds are dropped, so any
    instant within due's last second is still on time. `warn` is None for
    rules without a warning (e.g. funds.claim, sentiment.response).
    """
    now_second = _require_aware(now, "now").replace(microsecond=0)
    if now_second > _require_aware(due, "due"):
        return "overdue"
    if warn is not None and now_second >= _require_aware(warn, "warn"):
        return "due_soon"
    return "pending"
