"""Pure decisions of metrics (质效指标), rules.md §7: no database, no broker, no wall clock.

Incremental by construction: each case's *contribution* to the counters is a function of
that case's state alone (`contributions`), as a map
`<scope>|<period date>|<counter>|<case type>|<known date>` → amount. The period date places it
(closed_on for closures, filed_on for filings, rules.md §7); the known date is the date of the
latest fact it rests on (the launch of a network inquiry, the 终本 review, the team decision),
so a snapshot as of D counts exactly what had happened by D, however the input was batched or
delayed. When an event changes a case, the handler recomputes its contribution and adds the
difference to the buckets (`Deltas`): nothing is ever rescanned, a triage decision read after a
closure moves the closure to its team from the decision's date, and a redelivered event (dropped
by the inbox) or a restart (state in MongoDB) counts nothing twice.

Buckets, per scope (`court:<code>`, `team:<team>`):
- a month document `<scope>|<YYYY-MM>` with `d["<DD>|<counter>|<type>|<known>"]`: day-level
  counts; a snapshot as of D sums the entries known by D (known ≥ the period date);
- a flow document `flow|<scope>` with `m["<YYYY-MM>|filed|<type>|<known>"]` and `...|closed|...`:
  the month totals `open_at_start` needs (filed before the period − closed before it).
Amounts are kept in fen (integer cents), days as whole days.

Snapshots (rules.md §7): when the watermark's local date moves from d to D', one snapshot as of
D' − 1 for its month and its year (to date), and a final one for each month that ended in
between (as of its last day; a year's final one on 12-31).
"""
from __future__ import annotations

import calendar as month_calendar
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from services.metrics.policy import COUNTERS, IndicatorPolicy
from shared.calendar import CourtCalendar
from shared.contract.envelope import COURT_TZ, Event
from shared.deadline_book import ms
from shared.deadlines import court_date, due_at

CENT = Decimal("0.01")
FLOW_COUNTERS = ("filed", "closed")
UNASSIGNED = "unassigned"


def new_case(case_no: str) -> dict[str, Any]:
    """The state metrics keeps per case (collection `cases`)."""
    return {
        "_id": case_no, "case_type": None, "court_code": None, "filed_on": None, "target_fen": 0,
        "team": None, "teams": [], "launched_at": None, "asset_found_on": None, "term_until": None,
        "closed": None, "zb_review": None, "contrib": {}, "open_key": None,
    }


def fen(amount: Decimal) -> int:
    return int((amount / CENT).to_integral_value())


def yuan(amount_fen: int) -> Decimal:
    return (Decimal(amount_fen) * CENT).quantize(CENT)


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)


# -- applying events to a case --------------------------------------------------------------


def apply_event(case: dict[str, Any], event: Event, policy: IndicatorPolicy) -> None:
    """What the indicators need of one event. Order across topics is free: each fact is kept as is."""
    data: Any = event.data
    kind = event.type
    if kind == "case.filed":
        if case["filed_on"] is None:  # the first filing counts
            case.update(case_type=data.case_type, court_code=data.court_code, filed_on=data.filed_on.isoformat(),
                        target_fen=fen(data.target_amount))
    elif kind == "triage.decided":
        entry = [ms(data.decided_at), data.revision, data.team]
        if not any(t[0] == entry[0] and t[1] == entry[1] for t in case["teams"]):
            case["teams"] = sorted([*case["teams"], entry], key=lambda t: (t[0], t[1]))
            case["team"] = case["teams"][-1][2]
    elif kind == "node.completed":
        if data.node == "network_inquiry_launched":
            done = ms(data.done_at)
            if case["launched_at"] is None or done < case["launched_at"]:
                case["launched_at"] = done
    elif kind == "property.inquiry.result":
        if any(a.controllable and a.value > policy.asset_value_above for a in data.assets):
            found = court_date(data.returned_at).isoformat()
            if case["asset_found_on"] is None or found < case["asset_found_on"]:
                case["asset_found_on"] = found
    elif kind == "case.term_extended":
        stamp = ms(event.time)
        if case["term_until"] is None or stamp >= case["term_until"][0]:
            case["term_until"] = [stamp, data.new_deadline.isoformat()]
    elif kind == "case.closed":
        if case["closed"] is None:  # the first closure counts
            case["closed"] = {"mode": data.mode, "closed_on": data.closed_on.isoformat(),
                              "recovered_fen": fen(data.amount_recovered)}
    elif kind == "termination.reviewed":
        if data.stage == "closed":  # the latest closed-stage review counts, from its date
            case["zb_review"] = [bool(data.passed), court_date(event.time).isoformat()]


def inquiry_due(filed_on: date, policy: IndicatorPolicy, calendar: CourtCalendar) -> datetime:
    start = datetime.combine(filed_on, time(0, 0), tzinfo=COURT_TZ)
    return due_at(start, policy.periods.network_inquiry_due, calendar)


def term_end(case: dict[str, Any], policy: IndicatorPolicy, calendar: CourtCalendar) -> date:
    """The last day of the legal term: filed_on + 6 months (rolled over), or the approved extension."""
    if case.get("term_until"):
        return date.fromisoformat(case["term_until"][1])
    start = datetime.combine(_date(case["filed_on"]), time(0, 0), tzinfo=COURT_TZ)
    return court_date(due_at(start, policy.periods.case_term, calendar))


def counter_values(case: dict[str, Any], policy: IndicatorPolicy,
                   calendar: CourtCalendar) -> list[tuple[date, date, str, int]]:
    """(period date, known date, counter, amount) of this case; nothing before its filing is read."""
    if case["filed_on"] is None or case["case_type"] not in policy.counted_types:
        return []
    filed_on = _date(case["filed_on"])
    values: list[tuple[date, date, str, int]] = [(filed_on, filed_on, "filed", 1)]
    launched = case.get("launched_at")
    if launched is not None and launched <= inquiry_due(filed_on, policy, calendar):
        values.append((filed_on, max(filed_on, court_date(launched)), "inquiry_on_time", 1))
    closed = case.get("closed")
    if closed is None:
        return values
    closed_on = _date(closed["closed_on"])
    mode = closed["mode"]

    def on_closure(counter: str, amount: int, known: date = closed_on) -> None:
        values.append((closed_on, max(closed_on, known), counter, amount))

    on_closure("closed", 1)
    on_closure("target_amount_closed", case["target_fen"])
    on_closure("amount_recovered", closed["recovered_fen"])
    on_closure("days_to_close", max((closed_on - filed_on).days, 0))
    if mode == "performed":
        on_closure("closed_performed", 1)
    if mode == "performed" or (mode == "terminated" and closed["recovered_fen"] > 0):
        on_closure("closed_actual", 1)
    if mode == "terminated_current":
        on_closure("closed_zb", 1)
        review = case.get("zb_review")
        if review and review[0] is True:
            on_closure("zb_qualified", 1, date.fromisoformat(review[1]))
    found = _date(case.get("asset_found_on"))
    if found is not None and found <= closed_on:
        on_closure("asset_closed", 1)
        if mode == "performed" and closed_on <= term_end(case, policy, calendar):
            extension = case.get("term_until")
            on_closure("asset_performed_in_term", 1, court_date(extension[0]) if extension else closed_on)
    return values


def contributions(case: dict[str, Any], policy: IndicatorPolicy, calendar: CourtCalendar) -> dict[str, int]:
    """`<scope>|<period date>|<counter>|<case type>|<known date>` → amount, for every scope of the case.

    The court counts a value from its known date; a team counts it while the case is the team's:
    from max(known, the decision's date) until max(known, the next decision's date).
    """
    out: dict[str, int] = {}
    case_type = case["case_type"]
    teams = [(court_date(t[0]), t[2]) for t in case.get("teams") or []]

    def add(scope: str, period: date, counter: str, known: date, amount: int) -> None:
        key = f"{scope}|{period.isoformat()}|{counter}|{case_type}|{known.isoformat()}"
        out[key] = out.get(key, 0) + amount
        if out[key] == 0:
            del out[key]

    for period, known, counter, amount in counter_values(case, policy, calendar):
        if amount == 0:
            continue
        add(f"court:{case['court_code']}", period, counter, known, amount)
        for index, (since, team) in enumerate(teams):
            start = max(known, since)
            end = max(known, teams[index + 1][0]) if index + 1 < len(teams) else None
            if end is not None and end <= start:
                continue  # superseded before it counted
            add(f"team:{team}", period, counter, start, amount)
            if end is not None:
                add(f"team:{team}", period, counter, end, -amount)
    return out


def open_key(case: dict[str, Any]) -> str | None:
    """The case-flow gauge's key `<case type>|<team>` while the case is open (every case type)."""
    if case["filed_on"] is None or case.get("closed") is not None:
        return None
    return f"{case['case_type']}|{case.get('team') or UNASSIGNED}"


@dataclass
class Deltas:
    """Counter changes of a batch, per bucket document and field (written with $inc)."""

    months: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    flows: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    open: dict[str, int] = field(default_factory=dict)

    def case_changed(self, old: dict[str, int], new: dict[str, int]) -> None:
        for key in set(old) | set(new):
            change = new.get(key, 0) - old.get(key, 0)
            if change:
                self._add(key, change)

    def _add(self, key: str, change: int) -> None:
        scope, day, counter, case_type, known = key.split("|")
        month, dd = day[:7], day[8:10]
        bucket = self.months[f"{scope}|{month}"]
        field_name = f"{dd}|{counter}|{case_type}|{known}"
        bucket[field_name] = bucket.get(field_name, 0) + change
        if counter in FLOW_COUNTERS:
            flow = self.flows[f"flow|{scope}"]
            name = f"{month}|{counter}|{case_type}|{known}"
            flow[name] = flow.get(name, 0) + change

    def open_changed(self, old: str | None, new: str | None) -> None:
        if old == new:
            return
        if old is not None:
            self.open[old] = self.open.get(old, 0) - 1
        if new is not None:
            self.open[new] = self.open.get(new, 0) + 1

    def merge_into(self, months: dict[str, dict[str, Any]], flows: dict[str, dict[str, Any]]) -> None:
        """Add this batch's changes to bucket documents read before it is written (for snapshots)."""
        for doc_id, fields in self.months.items():
            scope, month = doc_id.rsplit("|", 1)
            doc = months.setdefault(doc_id, {"_id": doc_id, "scope": scope, "month": month, "d": {}})
            for name, change in fields.items():
                doc["d"][name] = doc["d"].get(name, 0) + change
        for doc_id, fields in self.flows.items():
            doc = flows.setdefault(doc_id, {"_id": doc_id, "scope": doc_id[5:], "m": {}})
            for name, change in fields.items():
                doc["m"][name] = doc["m"].get(name, 0) + change

    @property
    def scopes(self) -> set[str]:
        return {doc_id[5:] for doc_id in self.flows} | {doc_id.rsplit("|", 1)[0] for doc_id in self.months}


# -- snapshots --------------------------------------------------------------------------------


def last_day(year: int, month: int) -> date:
    return date(year, month, month_calendar.monthrange(year, month)[1])


def snapshot_plan(old: date | None, new: date) -> list[tuple[date, str]]:
    """(as_of, period) to emit when the watermark's local date moves from `old` to `new`."""
    if old is None or new <= old:
        return []
    as_of = new - timedelta(days=1)
    plan: list[tuple[date, str]] = []
    cursor = last_day(old.year, old.month)
    while cursor < as_of:  # month ends skipped over: a final snapshot of each
        plan.append((cursor, f"{cursor.year:04d}-{cursor.month:02d}"))
        if cursor.month == 12:
            plan.append((cursor, f"{cursor.year:04d}"))
        nxt = cursor + timedelta(days=1)
        cursor = last_day(nxt.year, nxt.month)
    plan.append((as_of, f"{as_of.year:04d}-{as_of.month:02d}"))
    plan.append((as_of, f"{as_of.year:04d}"))
    return plan


def months_needed(period: str, as_of: date) -> list[str]:
    """Month documents a period to date needs: the month itself, or January..as_of's month."""
    if len(period) == 7:
        return [period]
    return [f"{as_of.year:04d}-{m:02d}" for m in range(1, as_of.month + 1)]


def period_start(period: str) -> str:
    """The first month of the period, YYYY-MM."""
    return period if len(period) == 7 else f"{period}-01"


@dataclass(frozen=True)
class Snapshot:
    scope: str
    period: str
    as_of: date
    indicators: dict[str, float | None]
    counts: dict[str, dict[str, int | Decimal]]


def totals(month_docs: list[dict[str, Any]], as_of: date) -> dict[str, dict[str, int]]:
    """counter → case type → Σ over these month documents of what was known by as_of."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    cutoff = as_of.isoformat()
    for doc in month_docs:
        for name, amount in (doc.get("d") or {}).items():
            _dd, counter, case_type, known = name.split("|")
            if known <= cutoff:  # known ≥ the period date, so the day is ≤ as_of too
                out[counter][case_type] += amount
    return out


def open_at_start(flow_doc: dict[str, Any] | None, period: str, as_of: date) -> dict[str, int]:
    """case type → filed before the period − closed before it, as known by as_of."""
    out: dict[str, int] = defaultdict(int)
    start, cutoff = period_start(period), as_of.isoformat()
    for name, amount in ((flow_doc or {}).get("m") or {}).items():
        month, counter, case_type, known = name.split("|")
        if month < start and known <= cutoff:
            out[case_type] += amount if counter == "filed" else -amount
    return out


def compute(policy: IndicatorPolicy, scope: str, period: str, as_of: date, month_docs: list[dict[str, Any]],
            flow_doc: dict[str, Any] | None) -> Snapshot:
    """The indicators of one scope and period as of a day (rules.md §7): denominator 0 → None."""
    sums = totals(month_docs, as_of)
    opening = open_at_start(flow_doc, period, as_of)
    indicators: dict[str, float | None] = {}
    counts: dict[str, dict[str, int | Decimal]] = {}
    for indicator in policy.indicators:
        types = policy.case_types(indicator)

        def total(counters: tuple[str, ...]) -> int:
            value = 0
            for counter in counters:
                source = opening if counter == "open_at_start" else sums.get(counter, {})
                value += sum(source.get(t, 0) for t in types)
            return value

        numerator, denominator = total(indicator.numerator), total(indicator.denominator)
        indicators[indicator.id] = round(numerator / denominator, 4) if denominator > 0 else None
        if indicator.money:
            counts[indicator.id] = {"numerator": yuan(numerator), "denominator": yuan(denominator)}
        elif COUNTERS[indicator.denominator[0]] == "money":  # pragma: no cover - refused by the policy
            raise ValueError(indicator.id)
        else:
            counts[indicator.id] = {"numerator": max(numerator, 0), "denominator": max(denominator, 0)}
    return Snapshot(scope, period, as_of, indicators, counts)
