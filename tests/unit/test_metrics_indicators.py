"""metrics (质效指标), rules.md §7, through its handler on an in-memory database stand-in.

Every indicator, each with a denominator of 0 (→ null); one month of synthetic closures whose
values are worked out by hand below; snapshots when the local day changes, with month-end and
year-end catch-up; counts moved between teams by a late triage decision; the case-flow and
alert gauges; a bad rules file.
"""
from __future__ import annotations

import copy
import itertools
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY
from pymongo import UpdateOne

from services.metrics.handlers import MetricsHandler, alert_kind
from services.metrics.policy import PolicyError, load_policy, parse_policy
from services.metrics.rules import snapshot_plan
from services.metrics.store import MetricsStore
from shared.calendar import default_calendar
from shared.contract.envelope import Event, make_event
from shared.runtime.effects import Effects
from tests.unit.event_examples import EVENT_EXAMPLES
from tests.unit.fakedb import FakeCollection, FakeDB, _bson, matches

RULES_FILE = Path(__file__).resolve().parents[2] / "rules" / "indicators.yaml"
POLICY = load_policy(RULES_FILE)
COURT = "court:豫0481"
_ids = itertools.count(1)


# -- an in-memory database that also takes $inc upserts ------------------------------------------


class IncCollection(FakeCollection):
    def apply(self, op) -> None:
        if not (isinstance(op, UpdateOne) and (op._upsert or "$inc" in op._doc)):
            return super().apply(op)
        found = [d for d in self.docs.values() if matches(d, op._filter)]
        if found:
            doc = found[0]
        elif op._upsert:
            doc = {"_id": op._filter["_id"], **_bson(op._doc.get("$setOnInsert", {}))}
            self.docs[doc["_id"]] = doc
        else:
            return
        for path, amount in op._doc.get("$inc", {}).items():
            target = doc
            *parents, leaf = path.split(".")
            for part in parents:
                target = target.setdefault(part, {})
            target[leaf] = target.get(leaf, 0) + amount
        for path, value in op._doc.get("$set", {}).items():
            doc[path] = _bson(value)


class IncDB(FakeDB):
    def __getitem__(self, name: str) -> FakeCollection:
        return self.collections.setdefault(name, IncCollection())


# -- events ---------------------------------------------------------------------------------------


def at(day: str, clock: str = "10:00:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}+08:00")


def ev(type_: str, subject: str, when: datetime, data: dict) -> Event:
    return make_event(type=type_, subject=subject, time=when, data=data, source="tests", id=f"{type_}-{next(_ids)}")


_numbers: dict[str, int] = {}


def case_no(name: str, case_type: str = "执") -> str:
    """A distinct case number per name."""
    number = _numbers.setdefault(name, len(_numbers) + 1)
    return f"（2025）豫0481{case_type}{number}号"


def filed(case: str, day: str, target: str = "10000.00", case_type: str = "执") -> Event:
    data = dict(EVENT_EXAMPLES["case.filed"], case_no=case, case_type=case_type, filed_on=day, target_amount=target)
    return ev("case.filed", case, at(day, "09:00:00"), data)


def closed(case: str, day: str, mode: str = "performed", recovered: str = "0.00") -> Event:
    return ev("case.closed", case, at(day, "16:00:00"), {"mode": mode, "closed_on": day, "amount_recovered": recovered})


def launched(case: str, when: datetime) -> Event:
    return ev("node.completed", case, when, {"node": "network_inquiry_launched", "done_at": when.isoformat(),
                                             "by": "h-1"})


def found(case: str, when: datetime, value: str = "1000.00", controllable: bool = True) -> Event:
    return ev("property.inquiry.result", case, when, {
        "channel": "network", "returned_at": when.isoformat(),
        "assets": [{"ref": "A1", "kind": "deposit", "value": value, "controllable": controllable}]})


def extended(case: str, when: datetime, new_deadline: str) -> Event:
    return ev("case.term_extended", case, when, {"new_deadline": new_deadline, "approved_by": "院长"})


def team(case: str, when: datetime, name: str, revision: int = 1) -> Event:
    return ev("triage.decided", case, when, {"case_no": case, "track": "simple", "reasons": ["no_property"],
                                             "team": name, "decided_at": when.isoformat(), "revision": revision,
                                             "policy_version": "v1"})


def review(case: str, when: datetime, passed: bool, stage: str = "closed") -> Event:
    return ev("termination.reviewed", case, when, {"case_no": case, "stage": stage, "passed": passed,
                                                   "missing": [] if passed else ["notice"]})


def tick(when: datetime) -> Event:
    return make_event(type="clock.tick", subject="clock", time=when, data={"now": when.isoformat()},
                      source="tests", id=f"tick-{when.isoformat()}")


def day_ticks(first: str, last: str) -> list[Event]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [tick(at((start + timedelta(days=n)).isoformat(), "00:30:00")) for n in range((end - start).days + 1)]


def raised(alert: str, rule: str, team_name: str | None = None, kind_severity: str = "critical") -> Event:
    data = {"alert_id": alert, "rule": rule, "severity": kind_severity, "raised_at": at("2025-04-02").isoformat(),
            "summary": "逾期"}
    if team_name:
        data["team"] = team_name
    return make_event(type="alert.raised", subject=alert, time=at("2025-04-02"), data=data, source="tests",
                      id=f"alert.raised:{alert}")


def resolved(alert: str) -> Event:
    return make_event(type="alert.resolved", subject=alert, time=at("2025-04-03"), source="tests",
                      id=f"alert.resolved:{alert}", data={"alert_id": alert, "resolved_at": at("2025-04-03").isoformat(),
                                                          "reason": "已完成"})


class Metrics:
    def __init__(self, policy=POLICY, db=None):
        self.db = db or IncDB()
        self.store = MetricsStore(self.db)
        self.handler = MetricsHandler(policy, default_calendar(), self.store)
        self.emitted: list[Event] = []

    async def run(self, *events: Event) -> list[Event]:
        effects = Effects()
        await self.handler.handle(list(events), effects)
        self.db.commit(effects)
        new = [e for _topic, e in effects.emitted]
        self.emitted += new
        return new

    async def in_batches(self, events: list[Event], size: int = 7) -> None:
        ordered = sorted(events, key=lambda e: (e.time, e.type == "clock.tick"))
        for i in range(0, len(ordered), size):
            await self.run(*ordered[i:i + size])

    def snapshot(self, scope: str, period: str, as_of: str) -> dict:
        matches_ = [e.data.model_dump(mode="json") for e in self.emitted
                    if e.type == "metrics.snapshot" and e.data.scope == scope and e.data.period == period
                    and e.data.as_of.isoformat() == as_of]
        assert len(matches_) == 1, (scope, period, as_of, len(matches_))
        return matches_[0]

    def snapshot_ids(self) -> list[str]:
        return [e.id for e in self.emitted if e.type == "metrics.snapshot"]

    async def values(self, scope: str = COURT, period: str = "2025-04", as_of: str = "2025-04-30") -> dict:
        """The indicators as the API computes them from the buckets."""
        from services.metrics.api import compute_for
        snaps = await compute_for(self.store, POLICY, [scope], period, date.fromisoformat(as_of))
        return snaps[scope].indicators


# -- the rules file -------------------------------------------------------------------------------


def test_shipped_rules_file_has_the_indicators_of_rules_md():
    assert [i.id for i in POLICY.indicators] == [
        "closure_rate", "performed_rate", "actual_closure_rate", "recovery_rate", "zb_rate", "zb_qualified_rate",
        "legal_period_rate", "inquiry_on_time_rate", "avg_days_to_close"]
    by_id = {i.id: i for i in POLICY.indicators}
    assert by_id["zb_qualified_rate"].target == 0.90 and by_id["legal_period_rate"].target == 0.90
    assert by_id["inquiry_on_time_rate"].target == 1.0 and by_id["zb_rate"].direction == "lower"
    assert POLICY.case_types(by_id["performed_rate"]) == ("执",)
    assert POLICY.case_types(by_id["closure_rate"]) == ("执", "执恢")
    assert by_id["closure_rate"].denominator == ("open_at_start", "filed")
    for indicator in POLICY.indicators:
        assert indicator.name_zh and indicator.name_en and indicator.source


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["indicators"][0].update(numerator=["closings"]), "indicator closure_rate (#1): field numerator"),
    (lambda d: d["indicators"][3].update(denominator=["closed"]), "indicator recovery_rate (#4)"),
    (lambda d: d["indicators"][1].update(scope="全部"), "indicator performed_rate (#2): field scope"),
    (lambda d: d["indicators"][2].pop("direction"), "indicator actual_closure_rate (#3): field direction"),
    (lambda d: d["periods"].update(case_term="6 fortnights"), "field periods.case_term"),
    (lambda d: d["indicators"].append(copy.deepcopy(d["indicators"][0])), "unique"),
    (lambda d: d["indicators"][8].update(denominator=["amount_recovered"]), "indicator avg_days_to_close (#9)"),
])
def test_a_bad_rules_file_names_the_indicator_and_field(change, expected):
    document = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    change(document)
    with pytest.raises(PolicyError) as info:
        parse_policy(document, origin="indicators.yaml")
    assert expected in str(info.value)


# -- snapshots: when --------------------------------------------------------------------------------


def test_snapshot_plan_on_a_day_change_and_across_month_and_year_ends():
    d = date.fromisoformat
    assert snapshot_plan(None, d("2025-04-11")) == []
    assert snapshot_plan(d("2025-04-11"), d("2025-04-11")) == []
    assert snapshot_plan(d("2025-04-10"), d("2025-04-11")) == [(d("2025-04-10"), "2025-04"), (d("2025-04-10"), "2025")]
    assert snapshot_plan(d("2025-04-30"), d("2025-05-01")) == [(d("2025-04-30"), "2025-04"), (d("2025-04-30"), "2025")]
    assert snapshot_plan(d("2025-03-30"), d("2025-05-02")) == [
        (d("2025-03-31"), "2025-03"), (d("2025-04-30"), "2025-04"), (d("2025-05-01"), "2025-05"),
        (d("2025-05-01"), "2025")]
    assert snapshot_plan(d("2024-12-30"), d("2025-01-05")) == [
        (d("2024-12-31"), "2024-12"), (d("2024-12-31"), "2024"), (d("2025-01-04"), "2025-01"),
        (d("2025-01-04"), "2025")]


async def test_a_snapshot_per_scope_and_period_when_the_local_day_changes():
    m = Metrics()
    a = case_no("a")
    await m.run(filed(a, "2025-04-01"), team(a, at("2025-04-02"), "quick"))
    await m.run(tick(at("2025-04-02", "08:00:00")))
    assert m.snapshot_ids() == []  # the first tick only sets the watermark
    await m.run(tick(at("2025-04-02", "20:00:00")), tick(at("2025-04-02", "23:59:59")))
    assert m.snapshot_ids() == []
    await m.run(tick(at("2025-04-03", "00:00:00")))
    assert sorted(m.snapshot_ids()) == sorted([
        f"metrics.snapshot:{COURT}:2025-04:2025-04-02", f"metrics.snapshot:{COURT}:2025:2025-04-02",
        "metrics.snapshot:team:quick:2025-04:2025-04-02", "metrics.snapshot:team:quick:2025:2025-04-02"])
    event = next(e for e in m.emitted if e.id == f"metrics.snapshot:{COURT}:2025-04:2025-04-02")
    assert event.subject == f"{COURT}:2025-04" and event.time == at("2025-04-02", "23:59:59")
    await m.run(tick(at("2025-06-02", "09:00:00")))    # skips the end of April and of May
    assert {(e.data.period, e.data.as_of.isoformat()) for e in m.emitted[4:] if e.data.scope == COURT} == {
        ("2025-04", "2025-04-30"), ("2025-05", "2025-05-31"), ("2025-06", "2025-06-01"), ("2025", "2025-06-01")}
    await m.run(tick(at("2025-06-01", "12:00:00")))    # a tick behind the watermark changes nothing
    assert len(m.emitted) == 12


# -- every indicator, and denominator 0 --------------------------------------------------------------


async def test_every_indicator_is_null_when_its_denominator_is_zero():
    m = Metrics()
    a = case_no("only-open", "执保")   # not counted by any indicator (执保)
    await m.run(filed(a, "2025-04-01", case_type="执保"), *day_ticks("2025-04-01", "2025-04-03"))
    assert m.snapshot_ids() == []      # no counted case yet, no scope
    b = case_no("filed")
    await m.run(filed(b, "2025-04-05"), *day_ticks("2025-04-06", "2025-04-07"))
    snap = m.snapshot(COURT, "2025-04", "2025-04-06")
    assert snap["indicators"] == {
        "closure_rate": 0.0, "performed_rate": None, "actual_closure_rate": None, "recovery_rate": None,
        "zb_rate": None, "zb_qualified_rate": None, "legal_period_rate": None, "inquiry_on_time_rate": 0.0,
        "avg_days_to_close": None}
    assert snap["counts"]["closure_rate"] == {"numerator": 0, "denominator": 1}
    assert snap["counts"]["recovery_rate"] == {"numerator": "0.00", "denominator": "0.00"}
    assert snap["counts"]["zb_qualified_rate"] == {"numerator": 0, "denominator": 0}


async def test_closure_rate_counts_open_at_period_start_plus_filed():
    m = Metrics()
    old, gone, new = case_no("old"), case_no("gone"), case_no("new")
    await m.run(filed(old, "2025-02-10"), filed(gone, "2025-02-11"), closed(gone, "2025-03-05"),
                filed(new, "2025-04-02"), closed(old, "2025-04-09"))
    assert (await m.values())["closure_rate"] == 0.5                      # 1 / (1 open + 1 filed)
    assert (await m.values(period="2025", as_of="2025-04-30"))["closure_rate"] == round(2 / 3, 4)
    assert (await m.values(as_of="2025-04-08"))["closure_rate"] == 0.0      # the closure is dated 04-09


async def test_performed_and_zb_rates_count_first_enforcement_cases_only():
    m = Metrics()
    cases = {n: case_no(n, "执恢" if n.startswith("r") else "执") for n in ("p1", "p2", "z1", "r1")}
    for n, c in cases.items():
        await m.run(filed(c, "2025-01-05", case_type="执恢" if n.startswith("r") else "执"))
    await m.run(closed(cases["p1"], "2025-04-01"), closed(cases["p2"], "2025-04-02", "rejected"),
                closed(cases["z1"], "2025-04-03", "terminated_current"),
                closed(cases["r1"], "2025-04-04", "terminated_current"))
    values = await m.values()
    assert values["performed_rate"] == round(1 / 3, 4)   # p1 of p1, p2, z1 (执恢 r1 not counted)
    assert values["zb_rate"] == round(1 / 3, 4)


async def test_actual_closure_rate_counts_terminated_with_recovery():
    m = Metrics()
    a, b, c, d_ = (case_no(n) for n in ("a1", "b1", "c1", "d1"))
    await m.run(*(filed(x, "2025-03-01") for x in (a, b, c, d_)))
    await m.run(closed(a, "2025-04-01"), closed(b, "2025-04-02", "terminated", "1.00"),
                closed(c, "2025-04-03", "terminated", "0.00"), closed(d_, "2025-04-04", "terminated_current", "9.00"))
    assert (await m.values())["actual_closure_rate"] == 0.5


async def test_recovery_rate_sums_amounts_of_closed_cases():
    m = Metrics()
    a, b, c = case_no("ra"), case_no("rb"), case_no("rc")
    await m.run(filed(a, "2025-03-01", "1000.50"), filed(b, "2025-03-01", "3000.00"), filed(c, "2025-03-01", "999.00"))
    await m.run(closed(a, "2025-04-01", "performed", "1000.50"), closed(b, "2025-04-02", "terminated_current", "0.50"))
    values = await m.values()
    assert values["recovery_rate"] == round(1001.00 / 4000.50, 4)
    await m.run(*day_ticks("2025-04-29", "2025-05-01"))
    assert m.snapshot(COURT, "2025-04", "2025-04-30")["counts"]["recovery_rate"] == {
        "numerator": "1001.00", "denominator": "4000.50"}


async def test_zb_qualified_rate_follows_the_latest_closed_stage_review():
    m = Metrics()
    a, b, c = case_no("za"), case_no("zb"), case_no("zc")
    await m.run(*(filed(x, "2025-01-01") for x in (a, b, c)))
    await m.run(closed(a, "2025-04-01", "terminated_current"), review(a, at("2025-04-01", "17:00:00"), True),
                closed(b, "2025-04-02", "terminated_current"), review(b, at("2025-04-02", "17:00:00"), False),
                review(c, at("2025-03-01"), True, stage="proposed"), closed(c, "2025-04-03", "terminated_current"))
    assert (await m.values())["zb_qualified_rate"] == round(1 / 3, 4)
    await m.run(review(c, at("2025-04-04"), True))   # a review read after the closure still counts
    assert (await m.values())["zb_qualified_rate"] == round(2 / 3, 4)


async def test_legal_period_rate_uses_the_term_or_its_extension():
    m = Metrics()
    in_term, late, extended_case, no_asset, worthless = (case_no(n) for n in ("t1", "t2", "t3", "t4", "t5"))
    for c in (in_term, late, extended_case, no_asset, worthless):
        await m.run(filed(c, "2024-10-08"))
    await m.run(found(in_term, at("2024-10-10")), found(late, at("2024-10-10")), found(extended_case, at("2024-10-10")),
                found(worthless, at("2024-10-10"), value="0.00"),
                found(no_asset, at("2025-04-20"), controllable=False))
    await m.run(extended(extended_case, at("2025-03-01"), "2025-06-30"))
    # filed 2024-10-08: the 6-month term ends 2025-04-08 (a Tuesday)
    await m.run(closed(in_term, "2025-04-08"), closed(late, "2025-04-09"), closed(extended_case, "2025-04-20"),
                closed(no_asset, "2025-04-21"), closed(worthless, "2025-04-22"))
    assert (await m.values())["legal_period_rate"] == round(2 / 3, 4)


async def test_inquiry_on_time_rate_judges_the_launch_against_its_rolled_over_due():
    m = Metrics()
    holiday, normal, late, never = (case_no(n) for n in ("q1", "q2", "q3", "q4"))
    # filed 2025-04-01: due 04-06 falls in the 清明 holiday (04-04..04-06) -> rolls to 04-07
    await m.run(filed(holiday, "2025-04-01"), launched(holiday, at("2025-04-07", "18:00:00")))
    await m.run(filed(normal, "2025-04-02"), launched(normal, at("2025-04-07", "23:59:59")))
    await m.run(filed(late, "2025-04-02"), launched(late, at("2025-04-08", "00:00:01")))
    await m.run(filed(never, "2025-04-03"))
    assert (await m.values())["inquiry_on_time_rate"] == 0.5


async def test_avg_days_to_close_is_the_mean_for_first_enforcement_cases():
    m = Metrics()
    a, b, r = case_no("da"), case_no("db"), case_no("dr", "执恢")
    await m.run(filed(a, "2025-04-01"), filed(b, "2025-03-01"), filed(r, "2025-01-01", case_type="执恢"))
    await m.run(closed(a, "2025-04-11"), closed(b, "2025-04-02"), closed(r, "2025-04-03"))
    assert (await m.values())["avg_days_to_close"] == 21.0        # (10 + 32) / 2


# -- one month worked out by hand ------------------------------------------------------------------


A1, A2, A3, A4, A5, A6, A7 = (case_no(f"A{i}", "执恢" if i == 3 else "执保" if i == 7 else "执") for i in range(1, 8))
B1, B2, B3, B4 = (case_no(f"B{i}", "执恢" if i == 3 else "执") for i in range(1, 5))


def april_2025() -> list[Event]:
    """Court 豫0481, teams quick and fine, April 2025 (values below are worked out by hand)."""
    return [
        # open at the start of April (执 / 执恢): A1, A2, A3, A4, A5; A6 closed in March; A7 is 执保
        filed(A1, "2025-01-10", "100000.00"), team(A1, at("2025-01-11"), "quick"),
        found(A1, at("2025-01-12"), "100000.00"), closed(A1, "2025-04-08", "performed", "100000.00"),
        filed(A2, "2025-02-05", "50000.00"), team(A2, at("2025-02-06"), "fine"),
        closed(A2, "2025-04-15", "terminated_current"), review(A2, at("2025-04-15", "17:00:00"), True),
        filed(A3, "2025-03-01", "20000.00", "执恢"), team(A3, at("2025-03-02"), "fine"),
        closed(A3, "2025-04-20", "terminated", "5000.00"),
        filed(A4, "2025-03-20"), team(A4, at("2025-03-21"), "quick"),
        filed(A5, "2024-10-08", "80000.00"), team(A5, at("2024-10-09"), "fine"),
        found(A5, at("2024-10-10"), "80000.00"), closed(A5, "2025-04-28", "performed", "80000.00"),
        filed(A6, "2025-01-20"), team(A6, at("2025-01-21"), "quick"), closed(A6, "2025-03-15"),
        filed(A7, "2025-03-05", case_type="执保"), team(A7, at("2025-03-05", "12:00:00"), "preservation"),
        closed(A7, "2025-04-10"),
        # filed in April
        filed(B1, "2025-04-01"), team(B1, at("2025-04-01", "12:00:00"), "quick"),
        launched(B1, at("2025-04-03")),                                   # due 04-07 (清明): on time
        filed(B2, "2025-04-02"), team(B2, at("2025-04-02", "12:00:00"), "quick"),
        launched(B2, at("2025-04-08")),                                   # due 04-07: late
        filed(B3, "2025-04-10", "30000.00", "执恢"), team(B3, at("2025-04-10", "12:00:00"), "fine"),
        closed(B3, "2025-04-25", "terminated_current"), review(B3, at("2025-04-25", "17:00:00"), False),
        filed(B4, "2025-04-11", "60000.00"), team(B4, at("2025-04-11", "12:00:00"), "fine"),
        found(B4, at("2025-04-12"), "60000.00"), launched(B4, at("2025-04-16", "15:00:00")),  # due 04-16
        closed(B4, "2025-04-29", "performed", "60000.00"),
    ]


async def test_a_month_of_synthetic_closures_worked_out_by_hand():
    m = Metrics()
    await m.in_batches(april_2025() + day_ticks("2025-04-01", "2025-05-01"))
    court = m.snapshot(COURT, "2025-04", "2025-04-30")
    # Court, April:
    #   open at start 5 (A1 A2 A3 A4 A5) + filed 4 (B1-B4) = 9; closed 6 (A1 A2 A3 A5 B3 B4)   -> 6/9
    #   performed / closed, 执 only: closed 执 = A1 A2 A5 B4, performed A1 A5 B4              -> 3/4
    #   actual: performed 3 + terminated with recovery (A3) = 4 of 6                          -> 4/6
    #   recovery: 100000 + 0 + 5000 + 80000 + 0 + 60000 = 245000
    #             of 100000 + 50000 + 20000 + 80000 + 30000 + 60000 = 340000                   -> 0.7206
    #   zb_rate, 执 only: A2 of A1 A2 A5 B4                                                    -> 1/4
    #   zb_qualified: A2 passed, B3 failed                                                      -> 1/2
    #   legal period: asset found and closed A1 A5 B4; A5's term ended 2025-04-08 (filed
    #                 2024-10-08), it closed 04-28; A1 and B4 performed in term               -> 2/3
    #   inquiry on time: B1 (04-03 ≤ 04-07), B4 (04-16 ≤ 04-16); B2 late, B3 none              -> 2/4
    #   avg days, 执: A1 88 (01-10→04-08), A2 69, A5 202 (2024-10-08→2025-04-28), B4 18 = 377/4 -> 94.25
    assert court["indicators"] == {
        "closure_rate": 0.6667, "performed_rate": 0.75, "actual_closure_rate": 0.6667, "recovery_rate": 0.7206,
        "zb_rate": 0.25, "zb_qualified_rate": 0.5, "legal_period_rate": 0.6667, "inquiry_on_time_rate": 0.5,
        "avg_days_to_close": 94.25}
    assert court["counts"] == {
        "closure_rate": {"numerator": 6, "denominator": 9},
        "performed_rate": {"numerator": 3, "denominator": 4},
        "actual_closure_rate": {"numerator": 4, "denominator": 6},
        "recovery_rate": {"numerator": "245000.00", "denominator": "340000.00"},
        "zb_rate": {"numerator": 1, "denominator": 4},
        "zb_qualified_rate": {"numerator": 1, "denominator": 2},
        "legal_period_rate": {"numerator": 2, "denominator": 3},
        "inquiry_on_time_rate": {"numerator": 2, "denominator": 4},
        "avg_days_to_close": {"numerator": 377, "denominator": 4},
    }
    # Team quick (A1 A4 B1 B2, A6 closed in March): open at start A1 A4, filed B1 B2, closed A1
    quick = m.snapshot("team:quick", "2025-04", "2025-04-30")["indicators"]
    assert quick == {"closure_rate": 0.25, "performed_rate": 1.0, "actual_closure_rate": 1.0, "recovery_rate": 1.0,
                     "zb_rate": 0.0, "zb_qualified_rate": None, "legal_period_rate": 1.0,
                     "inquiry_on_time_rate": 0.5, "avg_days_to_close": 88.0}
    # Team fine (A2 A3 A5 B3 B4): open at start A2 A3 A5, filed B3 B4, all five closed
    fine = m.snapshot("team:fine", "2025-04", "2025-04-30")["indicators"]
    assert fine == {"closure_rate": 1.0, "performed_rate": round(2 / 3, 4), "actual_closure_rate": 0.6,
                    "recovery_rate": round(145000 / 240000, 4), "zb_rate": round(1 / 3, 4), "zb_qualified_rate": 0.5,
                    "legal_period_rate": 0.5, "inquiry_on_time_rate": 0.5, "avg_days_to_close": round(289 / 3, 4)}
    # Year to date: open on 01-01 A5; filed in 2025 A1 A2 A3 A4 A6 B1-B4 (9); closed A6 + the six -> 7/10
    year = m.snapshot(COURT, "2025", "2025-04-30")
    assert year["indicators"]["closure_rate"] == 0.7
    assert year["counts"]["closure_rate"] == {"numerator": 7, "denominator": 10}
    assert year["indicators"]["performed_rate"] == 0.8                 # A6 too: 4 of 5
    # Mid-month: as of 04-15 only A1 and A2 are closed; B1-B4 are filed
    mid = m.snapshot(COURT, "2025-04", "2025-04-15")
    assert mid["counts"]["closure_rate"] == {"numerator": 2, "denominator": 9}
    assert mid["indicators"]["zb_qualified_rate"] == 1.0 and mid["indicators"]["legal_period_rate"] == 1.0


async def test_the_same_month_in_one_batch_or_many_gives_the_same_snapshots():
    events = april_2025() + day_ticks("2025-04-01", "2025-05-01")
    one = Metrics()
    await one.in_batches(events, size=10_000)
    many = Metrics()
    await many.in_batches(events, size=3)
    assert [e.to_bytes() for e in one.emitted] == [e.to_bytes() for e in many.emitted]
    # 30 days x (month, year) x (court, quick, fine); the preservation team counts no 执保 case, so no scope
    assert len(one.emitted) == 30 * 2 * 3


async def test_a_restarted_handler_on_the_same_database_continues_without_double_counting():
    events = sorted(april_2025(), key=lambda e: e.time)
    first = Metrics()
    await first.run(*events[:25], *day_ticks("2025-04-01", "2025-04-10"))
    second = Metrics(db=first.db)       # a new process: nothing kept in memory
    await second.run(*events[25:], *day_ticks("2025-04-11", "2025-05-01"))
    reference = Metrics()
    await reference.in_batches(april_2025() + day_ticks("2025-04-01", "2025-05-01"))
    assert second.snapshot(COURT, "2025-04", "2025-04-30") == reference.snapshot(COURT, "2025-04", "2025-04-30")


async def test_a_triage_decision_read_after_the_closure_moves_it_to_the_team():
    m = Metrics()
    a = case_no("late-team")
    await m.run(filed(a, "2025-04-01"), closed(a, "2025-04-05"))
    assert (await m.values("team:quick"))["closure_rate"] is None
    await m.run(team(a, at("2025-04-02"), "quick"))
    assert (await m.values("team:quick"))["closure_rate"] == 1.0
    await m.run(team(a, at("2025-04-03"), "fine", revision=2))
    assert (await m.values("team:quick"))["closure_rate"] is None
    assert (await m.values("team:fine"))["closure_rate"] == 1.0
    assert (await m.values())["closure_rate"] == 1.0       # the court counts it once


# -- gauges ----------------------------------------------------------------------------------------


def gauge(name: str, **labels) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_case_flow_and_alert_gauges_have_no_case_labels():
    m = Metrics()
    a, b, c = case_no("g1"), case_no("g2", "执保"), case_no("g3")
    await m.run(filed(a, "2025-04-01"), team(a, at("2025-04-02"), "gq"), filed(b, "2025-04-01", case_type="执保"),
                filed(c, "2025-04-01"), closed(c, "2025-04-02"))
    await m.run(raised("node.notice.overdue:X", "node.notice", "gq"), raised("node.notice.overdue:Y", "node.notice"),
                raised("funds.unidentified:R1", "funds.unidentified", kind_severity="warning"),
                resolved("node.notice.overdue:Y"), resolved("node.notice.overdue:Z"))
    await m.handler.refresh_gauges()
    assert gauge("ecc_cases_open", case_type="执", team="gq") == 1
    assert gauge("ecc_cases_open", case_type="执保", team="unassigned") == 1
    assert gauge("ecc_alerts_open", rule="node.notice", kind="overdue", team="gq") == 1
    assert gauge("ecc_alerts_open", rule="node.notice", kind="overdue", team="unassigned") in (None, 0)
    assert gauge("ecc_alerts_open", rule="funds.unidentified", kind="raised", team="unassigned") == 1
    await m.run(raised("node.notice.overdue:X", "node.notice", "gq"))   # raised again while open: no change
    await m.handler.refresh_gauges()
    assert gauge("ecc_alerts_open", rule="node.notice", kind="overdue", team="gq") == 1


def test_alert_kinds_from_alert_ids():
    assert alert_kind("node.notice.overdue:（2025）豫0481执1号", "node.notice") == ("node.notice", "overdue")
    assert alert_kind("termination.recheck.due_soon:X#1", "termination.recheck") == ("termination.recheck", "due_soon")
    assert alert_kind("termination.unqualified:X", "termination.unqualified") == ("termination.unqualified", "raised")


async def test_indicator_gauges_follow_the_newest_snapshot_and_drop_null_values():
    m = Metrics()
    a = case_no("gauge-court")
    await m.run(filed(a, "2025-04-01"), team(a, at("2025-04-01", "12:00:00"), "gauge-team"),
                *day_ticks("2025-04-02", "2025-04-03"))
    assert gauge("ecc_indicator", indicator="closure_rate", scope="team:gauge-team") == 0.0
    assert gauge("ecc_indicator", indicator="zb_rate", scope="team:gauge-team") is None
    await m.run(closed(a, "2025-04-03"), *day_ticks("2025-04-04", "2025-04-04"))
    assert gauge("ecc_indicator", indicator="closure_rate", scope="team:gauge-team") == 1.0
    assert gauge("ecc_indicator_ytd", indicator="performed_rate", scope="team:gauge-team") == 1.0
    await m.handler.restore_gauges()
    assert gauge("ecc_indicator_target", indicator="zb_qualified_rate") == 0.9


async def test_a_snapshot_as_of_a_day_counts_only_what_was_known_by_then():
    m = Metrics()
    a = case_no("known-a")
    await m.run(filed(a, "2025-04-01"), launched(a, at("2025-04-03")), closed(a, "2025-04-05"),
                team(a, at("2025-04-10"), "kq"))
    assert (await m.values(as_of="2025-04-02"))["inquiry_on_time_rate"] == 0.0   # launched 04-03
    assert (await m.values(as_of="2025-04-03"))["inquiry_on_time_rate"] == 1.0
    assert (await m.values("team:kq", as_of="2025-04-09"))["closure_rate"] is None  # the team from 04-10
    assert (await m.values("team:kq", as_of="2025-04-10"))["closure_rate"] == 1.0
