"""nodewatch's node rules (rules.md §1) through its handler, on an in-memory database stand-in.

Dates across weekends and holidays, the warning/overdue boundary to the second,
extension and closure, per-item rules, late facts, out-of-order input, and a bad rules file.
"""
from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from services.nodewatch.handlers import NodeHandler
from services.nodewatch.policy import PolicyError, load_policy, parse_policy
from services.nodewatch.rules import NodeRules
from services.nodewatch.store import NodeStore
from shared.calendar import default_calendar
from shared.contract.envelope import Event, make_event
from shared.deadline_book import DeadlineBook
from shared.deadlines import end_of_day
from shared.runtime.effects import Effects
from tests.unit.event_examples import EVENT_EXAMPLES
from tests.unit.fakedb import FakeDB

RULES_FILE = Path(__file__).resolve().parents[2] / "rules" / "nodes.yaml"
POLICY = load_policy(RULES_FILE)
_ids = itertools.count(1)


def at(day: str, clock: str = "10:00:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}+08:00")


def case_no(n: int = 1, case_type: str = "执") -> str:
    return f"（2025）豫0481{case_type}{n}号"


def ev(type_: str, subject: str, when: datetime, data: dict, id_: str | None = None) -> Event:
    return make_event(type=type_, subject=subject, time=when, data=data, source="tests",
                      id=id_ or f"{type_}-{next(_ids)}")


def filed(case: str, when: datetime, case_type: str = "执") -> Event:
    data = dict(EVENT_EXAMPLES["case.filed"], case_no=case, case_type=case_type, filed_on=when.date().isoformat())
    return ev("case.filed", case, when, data)


def node(case: str, code: str, when: datetime, ref: str | None = None, asset_kind: str | None = None) -> Event:
    data = {"node": code, "done_at": when.isoformat(), "by": "h-1"}
    if ref:
        data["ref"] = ref
    if asset_kind:
        data["asset_kind"] = asset_kind
    return ev("node.completed", case, when, data)


def clue(case: str, clue_id: str, when: datetime) -> Event:
    return ev("property.clue.registered", case, when, {"clue_id": clue_id, "kind": "vehicle", "description": "车辆",
                                                       "reported_by": "applicant", "reported_at": when.isoformat()})


def closed(case: str, when: datetime, mode: str = "performed") -> Event:
    return ev("case.closed", case, when, {"mode": mode, "closed_on": when.date().isoformat(),
                                          "amount_recovered": "0.00"})


def extended(case: str, when: datetime, new_deadline: str) -> Event:
    return ev("case.term_extended", case, when, {"new_deadline": new_deadline, "approved_by": "院长"})


def decided(case: str, when: datetime, team: str, revision: int = 1) -> Event:
    return ev("triage.decided", case, when, {"case_no": case, "track": "complex", "reasons": ["needs_disposal"],
                                             "team": team, "decided_at": when.isoformat(), "revision": revision,
                                             "policy_version": "v1"})


def tick(when: datetime) -> Event:
    return ev("clock.tick", "clock", when, {"now": when.isoformat()}, id_=f"tick-{when.isoformat()}")


class Node:
    """nodewatch's handler over a fake database, committing each batch as the runtime would."""

    def __init__(self, policy=POLICY, triage_wait_seconds: float = 0):
        self.db = FakeDB()
        self.book = DeadlineBook(self.db, "nodewatch", calendar=default_calendar())
        self.handler = NodeHandler(NodeRules(policy, default_calendar()), self.book, NodeStore(self.db, self.book),
                                   triage_wait_seconds=triage_wait_seconds)
        self.alerts: list[Event] = []

    async def run(self, *events: Event) -> list[Event]:
        effects = Effects()
        await self.handler.handle(list(events), effects)
        self.db.commit(effects)
        new = [e for _topic, e in effects.emitted]
        self.alerts += new
        return new

    async def each(self, *events: Event) -> None:
        for event in events:
            await self.run(event)

    def deadline(self, rule: str, subject: str) -> dict:
        return self.db["deadlines"].docs[f"{rule}:{subject}"]

    def ids(self) -> list[str]:
        return [a.id for a in self.alerts]


# -- the rules file -----------------------------------------------------------------


def test_shipped_rules_file_has_every_rule_of_rules_md():
    assert [r.code for r in POLICY.rules] == [
        "node.notice", "node.report_order", "node.first_network_inquiry", "node.clue_verification",
        "node.investigation", "node.case_term", "node.auction_start", "node.reauction",
        "node.seizure_renewal", "node.preservation"]
    for rule in POLICY.rules:
        assert rule.name_zh and rule.name_en and rule.source and rule.status in ("SPC", "LOCAL", "UNCONFIRMED")
    assert POLICY.by_code("node.preservation").case_types == ["执保"]
    renewal = POLICY.by_code("node.seizure_renewal")
    assert (str(renewal.period("deposit")), str(renewal.period("vehicle")), str(renewal.period("real_estate"))) == (
        "12 months", "24 months", "36 months")


def _doc(**changes):
    import yaml
    document = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    for code, field, value in changes.get("edits", []):
        rule = next(r for r in document["rules"] if r["code"] == code)
        if value is ...:
            rule.pop(field)
        else:
            rule[field] = value
    return document


@pytest.mark.parametrize("code, field, value, expected", [
    ("node.notice", "due", ..., "rule node.notice (#1): field due"),
    ("node.report_order", "awaits", {"event": "node.completed", "node": "notice_sent"}, "rule node.report_order (#2): field awaits.node"),
    ("node.investigation", "unit", "weeks", "rule node.investigation (#5): field unit"),
    ("node.first_network_inquiry", "warn_before", "2 working days", "field warn_before"),
    ("node.seizure_renewal", "due", {"deposit": 12}, "rule node.seizure_renewal (#9): field (rule): Value error, due: no period for asset_kind"),
    ("node.preservation", "case_types", ["执行"], "rule node.preservation (#10): field case_types.0"),
    ("node.case_term", "status", "OFFICIAL", "rule node.case_term (#6): field status"),
    ("node.notice", "colour", "red", "field colour: Extra inputs are not permitted"),
])
def test_a_bad_rules_file_names_the_rule_and_the_field(code, field, value, expected):
    with pytest.raises(PolicyError) as info:
        parse_policy(_doc(edits=[(code, field, value)]), origin="nodes.yaml")
    assert expected in str(info.value)
    assert str(info.value).startswith("nodes.yaml: rule ")


def test_a_duplicate_code_and_unreadable_files_are_refused(tmp_path):
    document = _doc()
    document["rules"].append(dict(document["rules"][0]))
    with pytest.raises(PolicyError, match="node.notice .#11.: field code: node.notice is defined twice"):
        parse_policy(document)
    bad = tmp_path / "nodes.yaml"
    bad.write_text("rules: [unclosed", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")


def test_service_refuses_to_start_with_a_bad_rules_file(tmp_path, monkeypatch):
    from dataclasses import replace

    from services.nodewatch.main import build
    from shared.config import Settings
    from shared.runtime.service import ServiceProcess
    bad = tmp_path / "nodes.yaml"
    bad.write_text(RULES_FILE.read_text(encoding="utf-8").replace("due: 10\n", "due: ten\n", 1), encoding="utf-8")
    process = ServiceProcess("nodewatch", replace(Settings.from_env(), rules_path=bad))
    with pytest.raises(PolicyError, match=r"rule node.notice \(#1\): field due"):
        build(process)


# -- dates across weekends and holidays -------------------------------------------------


async def test_filed_before_national_day_rolls_notice_and_first_inquiry_to_2025_10_09():
    n, case = Node(), case_no()
    await n.run(filed(case, at("2025-09-26", "15:00:00")))
    nine_oct = end_of_day(date(2025, 10, 9))
    assert n.deadline("node.notice", case)["due_at"] == nine_oct
    assert n.deadline("node.report_order", case)["due_at"] == nine_oct
    assert n.deadline("node.first_network_inquiry", case)["due_at"] == nine_oct
    # warnings: due minus warn_before, plain arithmetic (no roll-over)
    assert n.deadline("node.notice", case)["warn_at"] == end_of_day(date(2025, 10, 2))
    assert n.deadline("node.first_network_inquiry", case)["warn_at"] == end_of_day(date(2025, 10, 7))
    # 1 month: 2025-10-26 is a Sunday -> Monday 10-27; 6 months: 2026-03-26 (Thursday)
    assert n.deadline("node.investigation", case)["due_at"] == end_of_day(date(2025, 10, 27))
    assert n.deadline("node.case_term", case)["due_at"] == end_of_day(date(2026, 3, 26))
    assert n.deadline("node.case_term", case)["warn_at"] == end_of_day(date(2026, 2, 24))


async def test_weekend_rolls_to_monday_and_filing_day_is_not_counted():
    n, case = Node(), case_no()
    await n.run(filed(case, at("2025-03-03", "09:00:00")))  # Monday
    assert n.deadline("node.first_network_inquiry", case)["due_at"] == end_of_day(date(2025, 3, 10))  # 03-08 Sat
    assert n.deadline("node.notice", case)["due_at"] == end_of_day(date(2025, 3, 13))


async def test_filing_recorded_later_counts_from_filed_on():
    n, case = Node(), case_no()
    late = filed(case, at("2025-03-05", "11:00:00"))
    data = dict(late.data.model_dump(mode="json"), filed_on="2025-03-03")
    await n.run(ev("case.filed", case, at("2025-03-05", "11:00:00"), data))
    assert n.deadline("node.notice", case)["due_at"] == end_of_day(date(2025, 3, 13))


# -- every node rule: warning, overdue, resolution ---------------------------------------

# rule -> (case type, trigger events, subject suffix, awaited fact, due date of a 2025-03-03 10:00 trigger)
T = at("2025-03-03")
EVERY_RULE = {
    "node.notice": ("执", [], "", lambda c, w: node(c, "notice_served", w), date(2025, 3, 13)),
    "node.report_order": ("执", [], "", lambda c, w: node(c, "property_report_order_served", w), date(2025, 3, 13)),
    "node.first_network_inquiry": ("执", [], "", lambda c, w: node(c, "network_inquiry_launched", w),
                                   date(2025, 3, 10)),
    "node.clue_verification": ("执", [lambda c: clue(c, "C1", T)], "#C1",
                               lambda c, w: node(c, "clue_verified", w, ref="C1"), date(2025, 3, 10)),
    "node.investigation": ("执", [], "", lambda c, w: node(c, "investigation_completed", w), date(2025, 4, 3)),
    "node.case_term": ("执恢", [], "", lambda c, w: closed(c, w), date(2025, 9, 3)),
    "node.auction_start": ("执", [lambda c: node(c, "valuation_completed", T)], "",
                           lambda c, w: node(c, "auction_listed", w), date(2025, 4, 2)),
    "node.reauction": ("执", [lambda c: node(c, "auction_failed", T)], "",
                       lambda c, w: node(c, "auction_listed", w), date(2025, 4, 2)),
    "node.seizure_renewal": ("执", [lambda c: node(c, "property_controlled", T, ref="A1", asset_kind="deposit")],
                             "#A1", None, date(2026, 3, 3)),
    "node.preservation": ("执保", [], "", lambda c, w: node(c, "property_controlled", w, ref="A9",
                                                            asset_kind="vehicle"), date(2025, 3, 10)),
}


@pytest.mark.parametrize("code", list(EVERY_RULE))
async def test_every_rule_warns_then_goes_overdue_then_resolves(code):
    case_type, triggers, suffix, fact, due_day = EVERY_RULE[code]
    rule = POLICY.by_code(code)
    n, case = Node(), case_no(7, case_type)
    subject = case + suffix
    await n.run(filed(case, at("2025-03-03", "08:00:00"), case_type), *[make(case) for make in triggers])
    doc = n.deadline(code, subject)
    due = end_of_day(due_day)
    assert doc["due_at"] == due and doc["state"] == "open"
    warn = doc["warn_at"]
    assert warn == datetime.combine(due.date() - timedelta(days=rule.warn_before.amount), due.timetz())

    before = [a.data.alert_id for a in await n.run(tick(warn - timedelta(seconds=1)))]
    assert f"{code}.due_soon:{subject}" not in before
    soon = [a for a in await n.run(tick(warn)) if a.data.alert_id == f"{code}.due_soon:{subject}"]
    assert len(soon) == 1 and soon[0].data.severity == "warning" and soon[0].data.raised_at == warn
    assert soon[0].id == f"alert.raised:{code}.due_soon:{subject}" and soon[0].data.case_no == case
    assert soon[0].data.summary.endswith(f"（应于{due_day.isoformat()}前）")
    on_time = [a.data.alert_id for a in await n.run(tick(due))]
    assert f"{code}.overdue:{subject}" not in on_time  # the whole last second is on time
    late = [a for a in await n.run(tick(due + timedelta(seconds=1))) if a.data.alert_id == f"{code}.overdue:{subject}"]
    assert len(late) == 1 and late[0].data.severity == "critical" and late[0].data.due_at == due
    assert n.deadline(code, subject)["state"] == "overdue"

    if fact is None:  # seizure renewal: the renewal restarts the period instead
        renewal = due + timedelta(days=2)
        resolved = await n.run(node(case, "control_renewed", renewal, ref="A1"))
        assert {a.data.alert_id for a in resolved} == {f"{code}.due_soon:{subject}", f"{code}.overdue:{subject}"}
        doc = n.deadline(code, subject)
        assert doc["state"] == "open" and doc["cycle"] == 2
        assert doc["due_at"] == end_of_day(date(2027, 3, 5))  # 12 months from the renewal (a Friday)
        return
    resolved = await n.run(fact(case, due + timedelta(days=2)))
    mine = [a for a in resolved if a.data.alert_id in (f"{code}.due_soon:{subject}", f"{code}.overdue:{subject}")]
    assert sorted(a.id for a in mine) == [f"alert.resolved:{code}.due_soon:{subject}",
                                         f"alert.resolved:{code}.overdue:{subject}"]
    assert all(a.data.resolved_at == due + timedelta(days=2) for a in mine)
    assert n.deadline(code, subject)["state"] == "resolved"
    assert n.deadline(code, subject)["resolution"]["on_time"] is False
    assert not [a for a in await n.run(tick(due + timedelta(days=40))) if a.data.rule == code]


async def test_summary_line_in_chinese():
    n, case = Node(), case_no()
    await n.run(filed(case, at("2025-03-03")))
    alerts = await n.run(tick(at("2025-03-14", "00:00:00")))
    by_id = {a.data.alert_id: a for a in alerts}
    assert by_id[f"node.notice.overdue:{case}"].data.summary == "执行通知书逾期未发出（应于2025-03-13前）"
    assert by_id[f"node.notice.due_soon:{case}"].data.summary == "执行通知书临近期限未发出（应于2025-03-13前）"


async def test_fact_in_time_raises_nothing_for_that_rule():
    n, case = Node(), case_no()
    await n.run(filed(case, at("2025-03-03")), node(case, "notice_served", at("2025-03-04")))
    await n.run(*[tick(at("2025-03-03") + timedelta(hours=h)) for h in range(0, 24 * 20, 6)])
    assert not [a for a in n.alerts if a.data.rule == "node.notice"]
    assert n.deadline("node.notice", case)["resolution"]["on_time"] is True


# -- extension and closure ---------------------------------------------------------------


async def test_term_extension_replaces_the_case_term():
    n, case = Node(), case_no()
    await n.run(filed(case, at("2025-03-03")))
    await n.run(tick(at("2025-08-10")))  # the term's warning (due 2025-09-03) is out
    assert f"node.case_term.due_soon:{case}" in [a.data.alert_id for a in n.alerts]
    resolved = await n.run(extended(case, at("2025-08-20"), "2025-12-31"))
    assert [(a.type, a.data.alert_id) for a in resolved] == [("alert.resolved", f"node.case_term.due_soon:{case}")]
    assert resolved[0].data.reason == "执行期限已延长至2025-12-31"
    doc = n.deadline("node.case_term", case)
    assert doc["due_at"] == end_of_day(date(2025, 12, 31)) and doc["cycle"] == 2
    assert doc["warn_at"] == end_of_day(date(2025, 12, 1))
    assert not [a for a in await n.run(tick(at("2025-09-10"))) if a.data.rule == "node.case_term"]
    again = [a for a in await n.run(tick(at("2026-01-01", "00:00:00"))) if a.data.rule == "node.case_term"]
    assert [a.id for a in again] == [f"alert.raised:node.case_term.due_soon:{case}:2",
                                     f"alert.raised:node.case_term.overdue:{case}:2"]
    assert again[1].data.summary == "超过法定执行期限未结案（应于2025-12-31前）"


async def test_closure_resolves_every_open_alert_of_the_case_once():
    n, case = Node(), case_no()
    await n.run(filed(case, at("2025-03-03")), node(case, "property_controlled", at("2025-03-05"), "A1", "deposit"))
    await n.run(tick(at("2025-03-20")))
    raised = {a.data.alert_id for a in n.alerts if a.type == "alert.raised"}
    assert {f"node.notice.overdue:{case}", f"node.first_network_inquiry.overdue:{case}"} <= raised
    resolved = await n.run(closed(case, at("2025-03-21"), "performed"))
    assert {a.data.alert_id for a in resolved} == raised
    assert all(a.type == "alert.resolved" and "案件已结案" in a.data.reason for a in resolved)
    assert n.deadline("node.case_term", case)["state"] == "resolved"
    assert n.deadline("node.investigation", case)["state"] == "cancelled"
    assert n.deadline("node.seizure_renewal", f"{case}#A1")["state"] == "cancelled"
    assert await n.run(closed(case, at("2025-03-22"))) == []
    assert await n.run(tick(at("2026-06-01"))) == []


async def test_seizure_renewal_survives_a_terminated_current_closure():
    n, case = Node(), case_no()
    await n.run(filed(case, at("2025-01-06")), node(case, "property_controlled", at("2025-01-10"), "V1", "vehicle"),
                node(case, "property_controlled", at("2025-01-10"), "H1", "real_estate"))
    assert n.deadline("node.seizure_renewal", f"{case}#V1")["due_at"] == end_of_day(date(2027, 1, 11))  # 01-10 Sun
    assert n.deadline("node.seizure_renewal", f"{case}#H1")["due_at"] == end_of_day(date(2028, 1, 10))
    await n.run(closed(case, at("2025-05-20"), "terminated_current"))
    assert n.deadline("node.seizure_renewal", f"{case}#V1")["state"] == "open"
    assert n.deadline("node.notice", case)["state"] == "cancelled"
    alerts = await n.run(tick(at("2026-12-20")))
    # 2027 is not in the calendar yet (rules/calendar.yaml): within 60 days of it, the coverage alert
    assert sorted(a.data.alert_id for a in alerts) == ["calendar.coverage:2027",
                                                       f"node.seizure_renewal.due_soon:{case}#V1"]
    alerts = [a for a in alerts if a.data.rule == "node.seizure_renewal"]
    assert alerts[0].data.summary == "查控财产V1期限即将届满未续行（应于2027-01-11前）"
    # a renewal after the closure restarts the period (controls stay in force after 终本)
    resolved = await n.run(node(case, "control_renewed", at("2026-12-28"), ref="V1"))
    assert [a.id for a in resolved] == [f"alert.resolved:node.seizure_renewal.due_soon:{case}#V1"]
    assert n.deadline("node.seizure_renewal", f"{case}#V1")["due_at"] == end_of_day(date(2028, 12, 28))


# -- per-item rules, late facts, out-of-order input --------------------------------------


async def test_each_clue_is_its_own_deadline():
    n, case = Node(), case_no()
    await n.run(filed(case, at("2025-03-03")), clue(case, "C1", at("2025-03-04")), clue(case, "C2", at("2025-03-05")))
    await n.run(node(case, "clue_verified", at("2025-03-06"), ref="C1"))
    await n.run(tick(at("2025-03-20")))
    clue_alerts = {a.data.alert_id for a in n.alerts if a.data.rule == "node.clue_verification"}
    assert clue_alerts == {f"node.clue_verification.due_soon:{case}#C2", f"node.clue_verification.overdue:{case}#C2"}
    assert n.deadline("node.clue_verification", f"{case}#C1")["state"] == "resolved"
    overdue = next(a for a in n.alerts if a.data.alert_id == f"node.clue_verification.overdue:{case}#C2")
    assert overdue.data.summary == "财产线索C2逾期未核查（应于2025-03-12前）"
    assert overdue.data.details["ref"] == "C2"


async def test_late_fact_resolves_the_alert_and_records_lateness():
    n, case = Node(), case_no()
    await n.run(filed(case, at("2025-03-03")))
    await n.run(tick(at("2025-03-14", "08:00:00")))  # notice overdue raised
    # served on 03-12 (in time), recorded after the overdue alert went out
    resolved = await n.run(node(case, "notice_served", at("2025-03-12", "16:00:00")))
    notice = {a.data.alert_id: a for a in resolved if a.data.alert_id.startswith("node.notice.")}
    overdue = notice[f"node.notice.overdue:{case}"]
    assert "晚到登记" in overdue.data.reason and "2025-03-12 16:00" in overdue.data.reason
    assert overdue.data.resolved_at == at("2025-03-14", "08:00:00")
    doc = n.deadline("node.notice", case)
    assert doc["resolution"]["on_time"] is True
    assert f"node.notice.overdue:{case}" in doc["resolution"]["late_fact"]["alerts"]
    # Read in time order (the fact before that tick), neither alert would exist: both are late-fact alerts.
    assert "晚到登记" in notice[f"node.notice.due_soon:{case}"].data.reason


async def test_events_before_the_filing_are_kept_and_applied():
    n, case = Node(), case_no()
    await n.run(node(case, "notice_served", at("2025-03-04")), clue(case, "C1", at("2025-03-04")))
    await n.run(node(case, "clue_verified", at("2025-03-05"), ref="C1"))
    assert n.alerts == [] and "node.notice:" + case not in n.db["deadlines"].docs
    await n.run(filed(case, at("2025-03-03")))
    assert n.deadline("node.notice", case)["state"] == "resolved"
    assert n.deadline("node.clue_verification", f"{case}#C1")["state"] == "resolved"
    await n.run(tick(at("2025-04-30")))
    assert {a.data.rule for a in n.alerts} == {"node.report_order", "node.first_network_inquiry", "node.investigation"}


async def test_closure_read_before_filing():
    n, case = Node(), case_no()
    await n.run(closed(case, at("2025-03-05")))
    await n.run(filed(case, at("2025-03-03")))
    await n.run(tick(at("2025-12-30")))
    assert n.alerts == []


async def test_preservation_cases_get_only_the_preservation_rule():
    n, case = Node(), case_no(3, "执保")
    await n.run(filed(case, at("2025-03-03"), "执保"))
    assert sorted(d["rule"] for d in n.db["deadlines"].docs.values()) == ["node.preservation"]
    await n.run(node(case, "property_controlled", at("2025-03-05"), "A1", "deposit"))
    await n.run(tick(at("2025-04-30")))
    assert n.alerts == []


async def test_reauction_after_each_failed_auction():
    n, case = Node(), case_no()
    await n.run(filed(case, at("2025-03-03")), node(case, "valuation_completed", at("2025-04-01")),
                node(case, "auction_listed", at("2025-04-10")), node(case, "auction_failed", at("2025-05-12")))
    assert n.deadline("node.auction_start", case)["state"] == "resolved"
    doc = n.deadline("node.reauction", case)
    assert doc["state"] == "open" and doc["due_at"] == end_of_day(date(2025, 6, 11))  # the earlier listing doesn't count
    await n.run(node(case, "auction_listed", at("2025-06-01")), node(case, "auction_failed", at("2025-07-01")))
    doc = n.deadline("node.reauction", case)
    assert doc["state"] == "open" and doc["cycle"] == 2 and doc["due_at"] == end_of_day(date(2025, 7, 31))


async def test_alerts_carry_the_team_in_force():
    n, case = Node(), case_no()
    await n.run(filed(case, at("2025-03-03")), decided(case, at("2025-03-05"), "fine"))
    alerts = await n.run(tick(at("2025-03-07")))
    assert {a.data.team for a in alerts} == {"fine"}
    await n.run(decided(case, at("2025-03-09"), "quick", revision=2))
    later = await n.run(tick(at("2025-03-14")))
    assert {a.data.team for a in later} == {"quick"}


async def test_stream_is_the_same_in_one_batch_or_one_event_per_batch():
    events = []
    for k in range(1, 6):
        case = case_no(k)
        start = at("2025-03-03") + timedelta(days=k)
        events += [filed(case, start), clue(case, "C1", start + timedelta(hours=5)),
                   node(case, "notice_served", start + timedelta(days=k)),
                   node(case, "property_controlled", start + timedelta(days=2), "A1", "deposit"),
                   decided(case, start + timedelta(days=1), "fine")]
        if k % 2:
            events.append(closed(case, start + timedelta(days=40)))
    ticks = [tick(at("2025-03-03") + timedelta(hours=h)) for h in range(0, 24 * 400, 3)]
    timeline = sorted(events + ticks, key=lambda e: (e.time, e.type == "clock.tick"))
    whole, single = Node(), Node()
    await whole.run(*timeline)
    await single.each(*timeline)
    assert [a.to_bytes() for a in whole.alerts] != []
    assert sorted(a.to_bytes() for a in whole.alerts) == sorted(a.to_bytes() for a in single.alerts)


def network_result(case: str, when: datetime) -> Event:
    return ev("property.inquiry.result", case, when, {"channel": "network", "returned_at": when.isoformat(),
                                                      "assets": []})


async def test_ticks_wait_for_the_triage_decision_that_is_due():
    """rules.md §2: triage decides at the first network result; alerts after it carry the team,
    even when the decision is read after the ticks (triage runs behind nodewatch)."""
    n, case = Node(triage_wait_seconds=60), case_no()
    await n.run(filed(case, at("2025-03-03")), network_result(case, at("2025-03-05", "09:00:00")))
    assert await n.run(tick(at("2025-03-05", "08:00:00"))) == []
    assert await n.run(tick(at("2025-03-07", "00:00:00"))) == []  # held: the decision is not read yet
    assert n.db["clock"].docs["watermark"]["now"] == at("2025-03-05", "08:00:00")
    alerts = await n.run(decided(case, at("2025-03-05", "09:00:00"), "fine"))
    assert alerts and {a.data.team for a in alerts} == {"fine"}
    assert {a.data.raised_at for a in alerts} == {at("2025-03-07", "00:00:00")}


async def test_a_decision_that_never_comes_stops_holding_after_the_wait():
    n, case = Node(triage_wait_seconds=0.05), case_no(2, "执保")
    await n.run(filed(case, at("2025-03-03"), "执保"))
    assert await n.run(tick(at("2025-03-20"))) == []
    import asyncio
    await asyncio.sleep(0.1)
    alerts = await n.run(tick(at("2025-03-20", "01:00:00")))
    assert {a.data.rule for a in alerts} == {"node.preservation"} and {a.data.team for a in alerts} == {None}
