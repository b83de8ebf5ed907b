"""The court calendar (工作日历): package data, override file, weekends-only fallback."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from shared.calendar import (
    CALENDAR_FILE_NAME,
    CalendarError,
    CourtCalendar,
    default_calendar,
    load_overrides,
)
from shared.config import PROJECT_ROOT

RULES_CALENDAR = PROJECT_ROOT / "rules" / CALENDAR_FILE_NAME


@pytest.fixture
def court_calendar() -> CourtCalendar:
    # A fresh instance per test: the once-per-year fallback log is per calendar.
    return CourtCalendar.load(RULES_CALENDAR)


def write_override(tmp_path: Path, body: str) -> Path:
    path = tmp_path / CALENDAR_FILE_NAME
    path.write_text(body, encoding="utf-8")
    return path


# -- official data (chinese_calendar 2004-2026) ---------------------------------


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2025, 10, 1), False),   # 国庆节 National Day
        (date(2025, 10, 8), False),   # 国庆/中秋 holiday, a Wednesday
        (date(2025, 10, 9), True),    # first working day after it
        (date(2025, 9, 28), True),    # Sunday, 调休 adjusted working day
        (date(2025, 10, 11), True),   # Saturday, 调休
        (date(2025, 4, 4), False),    # 清明节 Qingming, Friday
        (date(2025, 4, 6), False),    # Sunday in the Qingming break
        (date(2025, 5, 5), False),    # 劳动节 May Day, Monday
        (date(2025, 5, 6), True),
        (date(2025, 2, 28), True),    # ordinary Friday
        (date(2025, 3, 1), False),    # ordinary Saturday
    ],
)
def test_is_working_day_follows_official_calendar(court_calendar, day, working):
    assert court_calendar.is_working_day(day) is working


def test_adjusted_working_weekend_counts_as_working(court_calendar):
    sunday = date(2025, 9, 28)
    assert sunday.weekday() == 6
    assert court_calendar.is_working_day(sunday)
    assert court_calendar.next_working_day(sunday) == sunday
    # Friday 09-26 + 1 working day skips Saturday 09-27 and lands on the 调休 Sunday.
    assert court_calendar.add_working_days(date(2025, 9, 26), 1) == sunday


def test_next_working_day(court_calendar):
    assert court_calendar.next_working_day(date(2025, 10, 6)) == date(2025, 10, 9)
    assert court_calendar.next_working_day(date(2025, 10, 9)) == date(2025, 10, 9)
    assert court_calendar.next_working_day(date(2025, 5, 1)) == date(2025, 5, 6)


def test_add_working_days_skips_qingming(court_calendar):
    # Thursday 2025-04-03; 04-04..06 are off, so 04-07, 04-08, 04-09.
    assert court_calendar.add_working_days(date(2025, 4, 3), 3) == date(2025, 4, 9)
    assert court_calendar.add_working_days(date(2025, 4, 3), 0) == date(2025, 4, 3)
    # From a non-working day the day itself is still not counted.
    assert court_calendar.add_working_days(date(2025, 4, 5), 1) == date(2025, 4, 7)


def test_add_working_days_refuses_negative(court_calendar):
    with pytest.raises(ValueError):
        court_calendar.add_working_days(date(2025, 4, 3), -1)


def test_working_days_between(court_calendar):
    assert court_calendar.working_days_between(date(2025, 4, 3), date(2025, 4, 9)) == 3
    assert court_calendar.working_days_between(date(2025, 4, 9), date(2025, 4, 3)) == -3
    assert court_calendar.working_days_between(date(2025, 10, 1), date(2025, 10, 8)) == 0
    assert court_calendar.working_days_between(date(2025, 4, 3), date(2025, 4, 3)) == 0


def test_datetimes_are_refused(court_calendar):
    # A datetime's calendar day depends on its zone: callers convert with court_date.
    with pytest.raises(TypeError):
        court_calendar.is_working_day(datetime(2025, 10, 9, 12, 0))


def test_covers_package_years(court_calendar):
    assert court_calendar.covers(2004)
    assert court_calendar.covers(2025)
    assert court_calendar.covers(2026)
    assert not court_calendar.covers(2003)
    assert court_calendar.source_of(2025).startswith("chinesecalendar")


# -- 2027: no notice yet, weekends only -------------------------------------------


def test_2027_is_not_covered_and_falls_back_to_weekends(court_calendar):
    assert not court_calendar.covers(2027)
    assert court_calendar.is_working_day(date(2027, 1, 1))      # Friday, 元旦 not known yet
    assert not court_calendar.is_working_day(date(2027, 1, 2))  # Saturday
    assert not court_calendar.is_working_day(date(2027, 1, 3))  # Sunday
    assert court_calendar.next_working_day(date(2027, 1, 2)) == date(2027, 1, 4)
    assert "none found as of 2026-11-27" in court_calendar.source_of(2027)


def test_fallback_logged_once_per_year_and_gauged(court_calendar):
    with structlog.testing.capture_logs() as logs:
        for offset in range(30):
            court_calendar.is_working_day(date(2027, 3, 1) + timedelta(days=offset))
        court_calendar.is_working_day(date(2003, 6, 1))
    events = [entry for entry in logs if entry["event"] == "calendar_year_not_covered"]
    assert [(e["year"], e["log_level"]) for e in events] == [(2027, "critical"), (2003, "warning")]
    assert events[0]["alert"] == "calendar.coverage:2027"
    assert REGISTRY.get_sample_value("ecc_calendar_fallback_years", {"year": "2027"}) == 1


def test_covered_years_log_nothing(court_calendar):
    with structlog.testing.capture_logs() as logs:
        court_calendar.is_working_day(date(2025, 10, 1))
    assert logs == []


@pytest.mark.parametrize(
    ("now_date", "expected"),
    [
        (date(2026, 10, 1), []),
        (date(2026, 11, 1), []),        # + 60 days = 2026-12-31
        (date(2026, 11, 2), [2027]),    # + 60 days = 2027-01-01
        (date(2026, 12, 31), [2027]),
        (date(2027, 6, 1), [2027]),     # inside the uncovered year: still reported
        (date(2025, 6, 1), []),
    ],
)
def test_uncovered_years_near(court_calendar, now_date, expected):
    assert court_calendar.uncovered_years_near(now_date) == expected


def test_uncovered_years_near_custom_horizon(court_calendar):
    assert court_calendar.uncovered_years_near(date(2026, 10, 1), horizon_days=92) == [2027]


# -- the override file --------------------------------------------------------------


def test_shipped_override_file_loads():
    overrides = load_overrides(RULES_CALENDAR)
    assert overrides[2027].status == "weekends_only"
    assert overrides[2027].holidays == frozenset()


def test_official_override_covers_its_year(tmp_path):
    path = write_override(tmp_path, """
years:
  2027:
    status: official
    source: "国办发明电〔2026〕99号, 2026-11-30 (test data)"
    holidays: [2027-01-01, 2027-02-08]
    workdays: [2027-02-06]
""")
    calendar = CourtCalendar.load(path)
    assert calendar.covers(2027)
    assert not calendar.is_working_day(date(2027, 1, 1))    # Friday, listed holiday
    assert not calendar.is_working_day(date(2027, 2, 8))    # Monday, listed holiday
    assert calendar.is_working_day(date(2027, 2, 6))        # Saturday, listed 调休
    assert not calendar.is_working_day(date(2027, 2, 7))    # Sunday, not listed
    assert calendar.uncovered_years_near(date(2026, 12, 1)) == []
    assert calendar.source_of(2027).startswith("国办发明电")


def test_weekends_only_entry_yields_to_package(tmp_path):
    path = write_override(tmp_path, """
years:
  2025:
    status: weekends_only
    source: none found
""")
    calendar = CourtCalendar.load(path)
    assert calendar.covers(2025)
    assert not calendar.is_working_day(date(2025, 10, 1))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("years:\n  2027:\n    status: official\n    source: x\n    holidays: [2027-02-30]\n",
         "year 2027: holidays: 2027-02-30 is not a valid date"),
        ("years:\n  2027:\n    status: official\n    source: x\n    holidays: [2027-02-06]\n"
         "    workdays: [2027-02-06]\n",
         "year 2027: 2027-02-06 is listed both as holiday and as workday"),
        ("years:\n  2027:\n    status: official\n    source: x\n    holidays: [2026-10-01]\n",
         "year 2027: holidays: 2026-10-01 is not in 2027"),
        ("years:\n  2027:\n    status: official\n    source: x\n    holidays: [2027-01-01]\n"
         "    workdays: [2027-01-04]\n",
         "year 2027: workday 2027-01-04 is a Monday"),
        ("years:\n  2027:\n    status: offical\n    source: x\n", "year 2027: status 'offical'"),
        ("years:\n  2027:\n    status: official\n    source: x\n    holidays: []\n",
         "year 2027: status official but no holidays"),
        ("years:\n  2027:\n    status: weekends_only\n    source: x\n    holidays: [2027-01-01]\n",
         "year 2027: status weekends_only must have empty"),
        ("years:\n  2027:\n    status: official\n    holidays: [2027-01-01]\n", "year 2027: source"),
        ("years:\n  2027:\n    status: official\n    source: x\n    holiday: [2027-01-01]\n",
         "year 2027: unknown keys ['holiday']"),
        ("years:\n  2027:\n    status: official\n    source: x\n    holidays: [2027-1-1]\n",
         "year 2027: holidays: '2027-1-1' is not a YYYY-MM-DD date"),
        ("years:\n  2027:\n    status: official\n    source: x\n    holidays: [2027-01-01, 2027-01-01]\n",
         "year 2027: holidays: 2027-01-01 is listed twice"),
        ("years:\n  twenty: {}\n", "year key 'twenty'"),
        ("2027: {}\n", "'years' mapping"),
        ("years: [\n", "not valid YAML"),
    ],
)
def test_bad_override_file_is_refused_with_year_and_date(tmp_path, body, message):
    path = write_override(tmp_path, body)
    with pytest.raises(CalendarError) as caught:
        CourtCalendar.load(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_missing_override_file_is_refused(tmp_path):
    with pytest.raises(CalendarError, match="not found"):
        CourtCalendar.load(tmp_path / "absent.yaml")


def test_default_calendar_reads_rules_dir(tmp_path, monkeypatch):
    write_override(tmp_path, """
years:
  2027:
    status: official
    source: test
    holidays: [2027-01-01]
""")
    monkeypatch.setenv("ECC_RULES_DIR", str(tmp_path))
    default_calendar.cache_clear()
    try:
        assert default_calendar() is default_calendar()
        assert default_calendar().covers(2027)
    finally:
        default_calendar.cache_clear()


# -- properties -----------------------------------------------------------------------

SHARED_CALENDAR = CourtCalendar.load(RULES_CALENDAR)
days_2004_2027 = st.dates(min_value=date(2004, 1, 1), max_value=date(2027, 11, 30))


@settings(max_examples=200, deadline=None)
@given(day=days_2004_2027, count=st.integers(min_value=1, max_value=40))
def test_add_working_days_lands_on_working_day_and_counts_back(day, count):
    result = SHARED_CALENDAR.add_working_days(day, count)
    assert result > day
    assert SHARED_CALENDAR.is_working_day(result)
    assert SHARED_CALENDAR.working_days_between(day, result) == count


@settings(max_examples=200, deadline=None)
@given(day=days_2004_2027)
def test_next_working_day_is_first_working_day_on_or_after(day):
    result = SHARED_CALENDAR.next_working_day(day)
    assert SHARED_CALENDAR.is_working_day(result)
    assert all(not SHARED_CALENDAR.is_working_day(day + timedelta(days=i)) for i in range((result - day).days))
