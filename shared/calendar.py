"""The court's working-day calendar (工作日历), rules.md §0.

A day is a working day (工作日) unless it is a weekend or a statutory holiday
(法定节假日), and an adjusted working weekend (调休上班日) is a working day.
The data comes from the maintained `chinese_calendar` package (pip
`chinesecalendar`) plus the project's override file `rules/calendar.yaml`
for years the package does not cover yet. The State Council publishes each
year's schedule (国务院办公厅关于部分节假日安排的通知) in November.

Precedence per year: an override with `status: official` replaces the
package for that year (the project can publish a notice before the package
does); a `weekends_only` placeholder yields to the package once the package
covers the year, so upgrading the package never makes data worse. A year
with neither is *not covered*: only Saturdays and Sundays are non-working,
which is logged once per year and shown in the `ecc_calendar_fallback_years`
gauge; `uncovered_years_near` feeds the `calendar.coverage:<year>` alert.

All functions take local dates (`datetime.date` in Asia/Shanghai); passing a
`datetime` is refused, because its date depends on the zone it is in (use
`shared.deadlines.court_date`).
"""
from __future__ import annotations

import functools
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import chinese_calendar
import structlog
import yaml
from prometheus_client import REGISTRY, Gauge

from shared.config import Settings

log = structlog.get_logger()

CALENDAR_FILE_NAME = "calendar.yaml"

# rules.md §0: the coverage alert fires when the watermark is this close to an uncovered year.
COVERAGE_HORIZON_DAYS = 60

# A run of non-working days longer than this means broken data, not a holiday.
_MAX_NON_WORKING_RUN = 60

OverrideStatus = Literal["official", "weekends_only"]
OVERRIDE_STATUSES: tuple[str, ...] = ("official", "weekends_only")
_OVERRIDE_KEYS = {"status", "source", "holidays", "workdays", "note"}
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

FALLBACK_GAUGE_NAME = "ecc_calendar_fallback_years"


def _register_fallback_gauge() -> Gauge:
    """Registration guard: a re-imported module must reuse the gauge, not register it twice."""
    try:
        return Gauge(
            FALLBACK_GAUGE_NAME,
            "1 for each year whose working days were judged on weekends only (no official calendar)",
            ["year"],
        )
    except ValueError:  # already registered by an earlier import of this module
        return REGISTRY._names_to_collectors[FALLBACK_GAUGE_NAME]  # type: ignore[return-value]


FALLBACK_YEARS = _register_fallback_gauge()


class CalendarError(ValueError):
    """The calendar override file cannot be used; the message names the file, year and date."""


@dataclass(frozen=True)
class YearOverride:
    """One year of `rules/calendar.yaml`.

    holidays: statutory rest days (法定节假日, incl. those on weekends);
    workdays: adjusted working weekends (调休上班日).
    """

    year: int
    status: OverrideStatus
    source: str
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    note: str = ""


def _package_data() -> tuple[frozenset[int], frozenset[date], frozenset[date]]:
    """Years, holidays and adjusted workdays the installed chinese_calendar holds."""
    holidays = frozenset(chinese_calendar.holidays)
    workdays = frozenset(chinese_calendar.workdays)
    return frozenset(d.year for d in holidays), holidays, workdays


def _require_date(value: Any, what: str) -> date:
    # datetime is a subclass of date; its calendar day would depend on its zone.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"{what} must be a datetime.date (local court date), got {value!r}")
    return value


class CourtCalendar:
    """Working days (工作日) of the court, by the official Chinese calendar."""

    def __init__(
        self,
        overrides: Mapping[int, YearOverride] | None = None,
        *,
        package_version: str = chinese_calendar.__version__,
    ):
        package_years, package_holidays, package_workdays = _package_data()
        overrides = dict(overrides or {})
        official = {y: o for y, o in overrides.items() if o.status == "official"}
        for year, override in official.items():
            if year in package_years:
                _warn_if_override_differs(override, package_holidays, package_workdays)
        for year, override in overrides.items():
            if override.status == "weekends_only" and year in package_years:
                log.info("calendar_override_superseded", year=year, package=package_version,
                         hint="chinese_calendar now covers this year; remove it from calendar.yaml")

        self._overrides = overrides
        self._package_years = package_years
        self._package_version = package_version
        self._covered_years = frozenset(package_years | set(official))
        # Merged day sets: an official override replaces the package's days for its year.
        self._holidays = frozenset(
            {d for d in package_holidays if d.year not in official}
            | {d for o in official.values() for d in o.holidays}
        )
        self._workdays = frozenset(
            {d for d in package_workdays if d.year not in official}
            | {d for o in official.values() for d in o.workdays}
        )
        self._fallback_logged: set[int] = set()
        self._fallback_lock = threading.Lock()

    @classmethod
    def load(cls, path: Path | str) -> "CourtCalendar":
        """Read and validate the override file; a bad file raises CalendarError."""
        return cls(load_overrides(path))

    # -- coverage -----------------------------------------------------------

    def covers(self, year: int) -> bool:
        """True when official data exists for the year (package, or override with status official)."""
        return year in self._covered_years

    def source_of(self, year: int) -> str:
        """Where the year's data comes from, for logs and alert details."""
        override = self._overrides.get(year)
        if override is not None and override.status == "official":
            return override.source
        if year in self._package_years:
            return f"chinesecalendar {self._package_version}"
        if override is not None:
            return f"weekends only ({override.source})"
        return "weekends only (no entry in calendar.yaml)"

    def uncovered_years_near(self, now_date: date, horizon_days: int = COVERAGE_HORIZON_DAYS) -> list[int]:
        """Years without official data between now_date and now_date + horizon_days (inclusive).

        Drives the critical alert `calendar.coverage:<year>` (rules.md §0: as soon
        as the watermark is within 60 days of an uncovered year).
        """
        now_date = _require_date(now_date, "now_date")
        if horizon_days < 0:
            raise ValueError(f"horizon_days must be >= 0, got {horizon_days}")
        last = now_date + timedelta(days=horizon_days)
        return [y for y in range(now_date.year, last.year + 1) if not self.covers(y)]

    # -- working days -------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        """True on a working day: Mon-Fri not a 法定节假日, or a 调休 working weekend."""
        day = _require_date(day, "day")
        if day.year not in self._covered_years:
            self._note_fallback(day.year)
            return day.weekday() < 5
        if day in self._workdays:
            return True
        return day.weekday() < 5 and day not in self._holidays

    def next_working_day(self, day: date) -> date:
        """The day itself when it is a working day, else the first working day after it."""
        candidate = _require_date(day, "day")
        for _ in range(_MAX_NON_WORKING_RUN):
            if self.is_working_day(candidate):
                return candidate
            candidate += timedelta(days=1)
        raise CalendarError(f"no working day within {_MAX_NON_WORKING_RUN} days after {day}; calendar data is broken")

    def add_working_days(self, day: date, count: int) -> date:
        """The `count`-th working day after `day`; `day` itself is not counted (rules.md §0).

        add_working_days(d, 0) is d, working or not (roll-over is the caller's choice).
        """
        day = _require_date(day, "day")
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        current = day
        for _ in range(count):
            current = self.next_working_day(current + timedelta(days=1))
        return current

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end]: start excluded, end included.

        So working_days_between(d, add_working_days(d, n)) == n. Negative when
        end is before start, like subtracting dates.
        """
        start = _require_date(start, "start")
        end = _require_date(end, "end")
        if end < start:
            return -self.working_days_between(end, start)
        return sum(1 for offset in range(1, (end - start).days + 1)
                   if self.is_working_day(start + timedelta(days=offset)))

    def _note_fallback(self, year: int) -> None:
        """Log once per year that only weekends are non-working days, and set the gauge."""
        if year in self._fallback_logged:
            return
        with self._fallback_lock:
            if year in self._fallback_logged:
                return
            self._fallback_logged.add(year)
        FALLBACK_YEARS.labels(year=str(year)).set(1)
        # A future year is an operational gap (the notice must be entered); a past one is history.
        is_future = not self._covered_years or year > max(self._covered_years)
        emit = log.critical if is_future else log.warning
        emit("calendar_year_not_covered", year=year, fallback="weekends_only",
             alert=f"calendar.coverage:{year}", source=self.source_of(year),
             hint=f"enter the State Council holiday notice for {year} in rules/{CALENDAR_FILE_NAME}")


def _warn_if_override_differs(override: YearOverride, package_holidays: frozenset[date],
                              package_workdays: frozenset[date]) -> None:
    year = override.year
    pkg_h = {d for d in package_holidays if d.year == year}
    pkg_w = {d for d in package_workdays if d.year == year}
    if pkg_h != override.holidays or pkg_w != override.workdays:
        log.warning(
            "calendar_override_differs_from_package", year=year, source=override.source,
            holidays_only_in_override=sorted(map(str, override.holidays - pkg_h)),
            holidays_only_in_package=sorted(map(str, pkg_h - override.holidays)),
            workdays_only_in_override=sorted(map(str, override.workdays - pkg_w)),
            workdays_only_in_package=sorted(map(str, pkg_w - override.workdays)),
        )


# -- the override file --------------------------------------------------------


class _DatesAsTextLoader(yaml.SafeLoader):
    """SafeLoader that leaves dates as text, so a bad date is reported with its year."""


_DatesAsTextLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_overrides(path: Path | str) -> dict[int, YearOverride]:
    """Parse and validate `rules/calendar.yaml` (format described in that file)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CalendarError(f"{path}: calendar override file not found") from exc
    try:
        # _DatesAsTextLoader is a SafeLoader subclass (bandit cannot see that).
        document = yaml.load(text, Loader=_DatesAsTextLoader)  # nosec B506
    except yaml.YAMLError as exc:
        raise CalendarError(f"{path}: not valid YAML: {exc}") from exc
    return parse_overrides(document, origin=str(path))


def parse_overrides(document: Any, origin: str = "calendar.yaml") -> dict[int, YearOverride]:
    """Validate an already-loaded override document: {years: {<year>: {...}}}."""
    if not isinstance(document, dict) or not isinstance(document.get("years"), dict):
        raise CalendarError(f"{origin}: expected a mapping with a 'years' mapping at the top")
    overrides: dict[int, YearOverride] = {}
    for raw_year, entry in document["years"].items():
        year = _parse_year(raw_year, origin)
        overrides[year] = _parse_year_entry(year, entry, f"{origin}: year {year}")
    return overrides


def _parse_year(raw_year: Any, origin: str) -> int:
    if isinstance(raw_year, bool) or not isinstance(raw_year, (int, str)) or not str(raw_year).isdigit():
        raise CalendarError(f"{origin}: year key {raw_year!r} is not a year like 2027")
    return int(raw_year)


def _parse_year_entry(year: int, entry: Any, where: str) -> YearOverride:
    if not isinstance(entry, dict):
        raise CalendarError(f"{where}: expected a mapping with status, source, holidays, workdays")
    unknown = set(entry) - _OVERRIDE_KEYS
    if unknown:
        raise CalendarError(f"{where}: unknown keys {sorted(map(str, unknown))}; allowed {sorted(_OVERRIDE_KEYS)}")
    status = entry.get("status")
    if status not in OVERRIDE_STATUSES:
        raise CalendarError(f"{where}: status {status!r} must be one of {list(OVERRIDE_STATUSES)}")
    source = entry.get("source")
    if not isinstance(source, str) or not source.strip():
        raise CalendarError(f"{where}: source must name the State Council notice (or say none was found)")
    note = entry.get("note") or ""
    if not isinstance(note, str):
        raise CalendarError(f"{where}: note must be text")
    holidays = _parse_dates(year, entry.get("holidays"), f"{where}: holidays")
    workdays = _parse_dates(year, entry.get("workdays"), f"{where}: workdays")

    both = sorted(holidays & workdays)
    if both:
        raise CalendarError(f"{where}: {both[0].isoformat()} is listed both as holiday and as workday")
    for day in sorted(workdays):
        if day.weekday() < 5:
            raise CalendarError(
                f"{where}: workday {day.isoformat()} is a {day.strftime('%A')}; "
                "workdays lists only adjusted working weekends (调休上班日)")
    if status == "weekends_only" and (holidays or workdays):
        raise CalendarError(f"{where}: status weekends_only must have empty holidays and workdays; "
                            "set status official when entering a notice")
    if status == "official" and not holidays:
        raise CalendarError(f"{where}: status official but no holidays listed")
    return YearOverride(year=year, status=status, source=source.strip(),
                        holidays=frozenset(holidays), workdays=frozenset(workdays), note=note.strip())


def _parse_dates(year: int, raw: Any, where: str) -> set[date]:
    if raw is None:
        return set()
    if not isinstance(raw, list):
        raise CalendarError(f"{where}: expected a list of YYYY-MM-DD dates")
    days: set[date] = set()
    for item in raw:
        text = str(item)
        if not _ISO_DATE.match(text):
            raise CalendarError(f"{where}: {item!r} is not a YYYY-MM-DD date")
        try:
            day = date.fromisoformat(text)
        except ValueError as exc:
            raise CalendarError(f"{where}: {text} is not a valid date ({exc})") from exc
        if day.year != year:
            raise CalendarError(f"{where}: {text} is not in {year}")
        if day in days:
            raise CalendarError(f"{where}: {text} is listed twice")
        days.add(day)
    return days


@functools.lru_cache(maxsize=1)
def default_calendar() -> CourtCalendar:
    """The process-wide calendar from `<ECC_RULES_DIR>/calendar.yaml`, loaded once.

    Tests that change the environment call `default_calendar.cache_clear()`.
    """
    return CourtCalendar.load(Settings.from_env().rules_dir / CALENDAR_FILE_NAME)
