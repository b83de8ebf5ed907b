"""Deadline arithmetic (期间计算), rules.md §0, on the shipped court calendar."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.calendar import CALENDAR_FILE_NAME, CourtCalendar
from shared.config import PROJECT_ROOT
from shared.deadlines import (
    COURT_TZ,
    Period,
    PeriodError,
    add_months,
    court_date,
    deadline_state,
    due_at,
    end_of_day,
    warn_at,
)

CALENDAR = CourtCalendar.load(PROJECT_ROOT / "rules" / CALENDAR_FILE_NAME)
ONE_SECOND = timedelta(seconds=1)


def local(text: str) -> datetime:
    """An Asia/Shanghai instant from 'YYYY-MM-DDTHH:MM:SS'."""
    return datetime.fromisoformat(text).replace(tzinfo=COURT_TZ)


def days(n: int) -> Period:
    return Period(n, "days")


# -- the worked examples of rules.md ------------------------------------------------


def test_notice_period_over_national_day_rolls_to_first_working_day():
    # node.notice: filed Friday 2025-09-26, 10 days -> 10-06, inside 国庆 -> 10-09.
    due = due_at(local("2025-09-26T10:00:00"), days(10), CALENDAR)
    assert due.isoformat() == "2025-10-09T23:59:59+08:00"


def test_first_network_inquiry_over_national_day():
    # node.first_network_inquiry: 5 days -> 2025-10-01 (国庆节) -> 10-09.
    due = due_at(local("2025-09-26T10:00:00"), days(5), CALENDAR)
    assert due == end_of_day(date(2025, 10, 9))


def test_without_roll_over_the_last_day_stands():
    due = due_at(local("2025-09-26T10:00:00"), days(10), CALENDAR, roll_over=False)
    assert due.isoformat() == "2025-10-06T23:59:59+08:00"


def test_unidentified_deposit_claim_over_qingming():
    # funds.claim: received Thursday 2025-04-03, 3 working days; 清明 04-04..06 off.
    received_at = local("2025-04-03T15:20:00")
    due = due_at(received_at, Period(3, "working_days"), CALENDAR)
    assert due.isoformat() == "2025-04-09T23:59:59+08:00"
    # No warning for this rule: pending through the last second, overdue after it.
    assert deadline_state(local("2025-04-09T23:59:59"), due) == "pending"
    assert deadline_state(local("2025-04-10T00:00:00"), due) == "overdue"


def test_disbursement_30_days_over_may_day():
    # funds.disbursement: 2025-04-01 + 30 days = 05-01; 劳动节 05-01..05 -> 05-06.
    due = due_at(local("2025-04-01T09:00:00"), days(30), CALENDAR)
    assert due.isoformat() == "2025-05-06T23:59:59+08:00"


def test_month_end_clamps_to_shorter_month():
    # 2025-01-31 + 1 month -> 2025-02-28, a Friday and a working day.
    due = due_at(local("2025-01-31T09:00:00"), Period(1, "months"), CALENDAR)
    assert due.isoformat() == "2025-02-28T23:59:59+08:00"


def test_adjusted_working_sunday_is_a_valid_last_day():
    # 2025-09-18 + 10 days = Sunday 09-28, a 调休 working day: no roll-over.
    due = due_at(local("2025-09-18T09:00:00"), days(10), CALENDAR)
    assert due.isoformat() == "2025-09-28T23:59:59+08:00"


def test_working_days_may_end_on_adjusted_working_sunday():
    due = due_at(local("2025-09-26T09:00:00"), Period(1, "working_days"), CALENDAR)
    assert due == end_of_day(date(2025, 9, 28))


def test_trigger_date_is_the_local_date():
    # 2025-09-25T17:30Z is 2025-09-26 01:30 in Shanghai: counted from 09-26.
    trigger = datetime(2025, 9, 25, 17, 30, tzinfo=timezone.utc)
    assert court_date(trigger) == date(2025, 9, 26)
    assert due_at(trigger, days(10), CALENDAR) == end_of_day(date(2025, 10, 9))


def test_2027_rolls_over_weekends_only():
    # Friday 2026-12-25 + 7 days = Friday 2027-01-01 (元旦, unknown without the notice).
    assert due_at(local("2026-12-25T09:00:00"), days(7), CALENDAR) == end_of_day(date(2027, 1, 1))
    # Saturday 2027-01-02 rolls to Monday 01-04.
    assert due_at(local("2026-12-26T09:00:00"), days(7), CALENDAR) == end_of_day(date(2027, 1, 4))


def test_hours_are_exact_and_never_roll():
    # sentiment.response: captured Saturday 2025-10-04 22:10:05 + 5 hours.
    captured_at = local("2025-10-04T22:10:05")
    due = due_at(captured_at, Period(5, "hours"), CALENDAR)
    assert due.isoformat() == "2025-10-05T03:10:05+08:00"


def test_end_of_day_is_23_59_59_microsecond_0_in_shanghai():
    moment = end_of_day(date(2025, 10, 9))
    assert (moment.hour, moment.minute, moment.second, moment.microsecond) == (23, 59, 59, 0)
    assert moment.utcoffset() == timedelta(hours=8)


def test_naive_trigger_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        due_at(datetime(2025, 9, 26, 10), days(10), CALENDAR)


# -- warnings and state ----------------------------------------------------------------


def test_warn_at_is_plain_calendar_arithmetic():
    due = end_of_day(date(2025, 10, 9))
    # 7 days before, no roll-over even though 10-02 is a holiday.
    assert warn_at(due, days(7)).isoformat() == "2025-10-02T23:59:59+08:00"
    assert warn_at(due, Period(1, "months")).isoformat() == "2025-09-09T23:59:59+08:00"
    assert warn_at(end_of_day(date(2025, 3, 31)), Period(1, "months")) == end_of_day(date(2025, 2, 28))
    assert warn_at(local("2025-10-05T03:10:05"), Period(2, "hours")) == local("2025-10-05T01:10:05")


def test_warn_at_refuses_working_days():
    with pytest.raises(PeriodError):
        warn_at(end_of_day(date(2025, 10, 9)), Period(2, "working_days"))


def test_deadline_state_boundaries_to_the_second():
    due = end_of_day(date(2025, 10, 9))
    warn = warn_at(due, days(7))
    assert deadline_state(warn - ONE_SECOND, due, warn) == "pending"
    assert deadline_state(warn, due, warn) == "due_soon"
    assert deadline_state(due, due, warn) == "due_soon"
    assert deadline_state(due + ONE_SECOND, due, warn) == "overdue"
    # Within the last second is still on time; the next second is late.
    assert deadline_state(due + timedelta(microseconds=999_999), due, warn) == "due_soon"


def test_deadline_state_compares_instants_across_zones():
    due = end_of_day(date(2025, 10, 9))  # 15:59:59Z
    assert deadline_state(datetime(2025, 10, 9, 15, 59, 59, tzinfo=timezone.utc), due) == "pending"
    assert deadline_state(datetime(2025, 10, 9, 16, 0, 0, tzinfo=timezone.utc), due) == "overdue"


# -- Period parsing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10 days", Period(10, "days")),
        ("1 day", Period(1, "days")),
        ("1 month", Period(1, "months")),
        ("6 months", Period(6, "months")),
        ("3 years", Period(36, "months")),
        ("3 working days", Period(3, "working_days")),
        ("3 working_days", Period(3, "working_days")),
        ("5 hours", Period(5, "hours")),
        ({"days": 10}, Period(10, "days")),
        ({"working_days": 3}, Period(3, "working_days")),
        ({"amount": 24, "unit": "hours"}, Period(24, "hours")),
        (Period(7, "days"), Period(7, "days")),
    ],
)
def test_period_parse(value, expected):
    assert Period.parse(value) == expected


@pytest.mark.parametrize("value", [10, "10", "ten days", "10 fortnights", "-1 days", {"days": "10"},
                                   {"days": 1, "hours": 2}, None, {"days": True}])
def test_period_parse_refuses(value):
    with pytest.raises(PeriodError):
        Period.parse(value)


def test_period_validates_itself():
    with pytest.raises(PeriodError):
        Period(-1, "days")
    with pytest.raises(PeriodError):
        Period(1, "weeks")  # type: ignore[arg-type]
    assert str(Period(3, "working_days")) == "3 working_days"


def test_add_months():
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2025, 11, 30), 3) == date(2026, 2, 28)
    assert add_months(date(2025, 3, 31), -1) == date(2025, 2, 28)
    assert add_months(date(2025, 1, 15), 12) == date(2026, 1, 15)


# -- properties ------------------------------------------------------------------------------

triggers = st.datetimes(
    min_value=datetime(2004, 1, 1), max_value=datetime(2027, 6, 30), timezones=st.just(COURT_TZ),
)
periods = st.one_of(
    st.builds(Period, st.integers(0, 400), st.just("days")),
    st.builds(Period, st.integers(0, 24), st.just("months")),
    st.builds(Period, st.integers(0, 60), st.just("working_days")),
)


@settings(max_examples=300, deadline=None)
@given(trigger=triggers, period=periods)
def test_rolled_due_is_end_of_a_working_day(trigger, period):
    due = due_at(trigger, period, CALENDAR)
    assert CALENDAR.is_working_day(court_date(due))
    assert due.timetz().replace(tzinfo=None) == end_of_day(court_date(due)).time()


@settings(max_examples=300, deadline=None)
@given(trigger=triggers, amount=st.integers(0, 400), unit=st.sampled_from(["days", "working_days"]))
def test_due_is_at_least_n_days_after_trigger(trigger, amount, unit):
    due = due_at(trigger, Period(amount, unit), CALENDAR)
    assert due >= trigger + timedelta(days=amount)


@settings(max_examples=300, deadline=None)
@given(first=triggers, gap=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=60)), period=periods)
def test_later_trigger_never_gives_earlier_due(first, gap, period):
    assert due_at(first + gap, period, CALENDAR) >= due_at(first, period, CALENDAR)


@settings(max_examples=200, deadline=None)
@given(trigger=triggers, hours=st.integers(0, 200))
def test_hours_are_exact_elapsed_time(trigger, hours):
    assert due_at(trigger, Period(hours, "hours"), CALENDAR) - trigger == timedelta(hours=hours)
