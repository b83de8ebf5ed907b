"""termination (终本审查与动态管理), rules.md §5, through its handler on an in-memory database stand-in.

Every checklist item passing and missing, its evidence, the order of `missing`, reviews at both
stages, the unqualified alert raised once per breach, restore suggestions within the 5-year
window, the six-monthly re-check deadlines across holidays, out-of-order input, a bad rules file.
"""
from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from services.termination.handlers import TerminationHandler
from services.termination.policy import PolicyError, load_policy, parse_policy
from services.termination.rules import TerminationRules, recheck_periods, review_case, trigger_ref
from services.termination.store import TerminationStore
from shared.calendar import default_calendar
from shared.contract.envelope import Event, make_event
from shared.deadline_book import DeadlineBook
from shared.runtime.effects import Effects
from tests.unit.event_examples import EVENT_EXAMPLES
from tests.unit.fakedb import FakeDB

RULES_FILE = Path(__file__).resolve().parents[2] / "rules" / "termination.yaml"
POLICY = load_policy(RULES_FILE)
CASE = "（2025）豫0481执7号"
OTHER = "（2025）豫0481执8号"
_ids = itertools.count(1)


def at(day: str, clock: str = "10:00:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}+08:00")


def ev(type_: str, subject: str, when: datetime, data: dict, id_: str | None = None) -> Event:
    return make_event(type=type_, subject=subject, time=when, data=data, source="tests",
                      id=id_ or f"{type_}-{next(_ids)}")


def filed(case: str, day: str, id_: str | None = None) -> Event:
    data = dict(EVENT_EXAMPLES["case.filed"], case_no=case, filed_on=day)
    return ev("case.filed", case, at(day, "09:00:00"), data, id_)


def node(case: str, code: str, when: datetime, ref: str | None = None, id_: str | None = None) -> Event:
    data = {"node": code, "done_at": when.isoformat(), "by": "h-1"}
    if ref:
        data["ref"] = ref
    if code == "property_controlled":
        data["asset_kind"] = "deposit"
    return ev("node.completed", case, when, data, id_)


def inquiry(case: str, when: datetime, assets: list[tuple[str, str, bool]] = (), channel: str = "network",
            id_: str | None = None) -> Event:
    data = {"channel": channel, "returned_at": when.isoformat(),
            "assets": [{"ref": ref, "kind": "deposit", "value": value, "controllable": controllable}
                       for ref, value, controllable in assets]}
    return ev("property.inquiry.result", case, when, data, id_)


def clue(case: str, clue_id: str, when: datetime, id_: str | None = None) -> Event:
    return ev("property.clue.registered", case, when, {
        "clue_id": clue_id, "kind": "vehicle", "description": "车辆", "reported_by": "platform_bulk_query",
        "reported_at": when.isoformat()}, id_)


def proposed(case: str, day: str, mode: str = "terminated_current", id_: str | None = None) -> Event:
    return ev("case.closure_proposed", case, at(day, "11:00:00"),
              {"mode": mode, "proposed_on": day, "by": "h-1"}, id_)


def closed(case: str, day: str, mode: str = "terminated_current", id_: str | None = None) -> Event:
    return ev("case.closed", case, at(day, "16:00:00"),
              {"mode": mode, "closed_on": day, "amount_recovered": "0.00"}, id_)


def resumed(case: str, day: str) -> Event:
    return ev("case.resumed", case, at(day), {"new_case_no": "（2027）豫0481执恢3号", "resumed_on": day})


def decided(case: str, when: datetime, team: str) -> Event:
    return ev("triage.decided", case, when, {"case_no": case, "track": "simple", "reasons": ["no_property"],
                                             "team": team, "decided_at": when.isoformat(), "revision": 1,
                                             "policy_version": "v1"})


def tick(when: datetime) -> Event:
    return ev("clock.tick", "clock", when, {"now": when.isoformat()}, id_=f"tick-{when.isoformat()}")


def daily(start: str, days: int, clock: str = "00:30:00") -> list[Event]:
    first = at(start, clock)
    return [tick(first + timedelta(days=d)) for d in range(days)]


def qualified(case: str = CASE, filed_on: str = "2025-01-06") -> list[Event]:
    """A case whose record satisfies every checklist item by 2025-04-30."""
    return [
        filed(case, filed_on, id_=f"filed-{case}"),
        node(case, "notice_served", at("2025-01-08"), id_="n-notice"),
        node(case, "property_report_order_served", at("2025-01-08", "10:05:00"), id_="n-report"),
        node(case, "network_inquiry_launched", at("2025-01-09"), id_="n-launch"),
        inquiry(case, at("2025-01-10"), [("D1", "1200.00", True), ("D0", "0.00", True), ("X1", "900.00", False)],
                id_="inq-1"),
        node(case, "traditional_inquiry_done", at("2025-02-10"), id_="n-trad"),
        clue(case, "C1", at("2025-02-11"), id_="clue-1"),
        node(case, "clue_verified", at("2025-02-20"), ref="C1", id_="n-clue"),
        node(case, "property_controlled", at("2025-01-12"), ref="D1", id_="n-ctl"),
        node(case, "disposal_concluded", at("2025-03-01"), id_="n-disp"),
        node(case, "consumption_restricted", at("2025-01-15"), id_="n-xf"),
        node(case, "applicant_interviewed", at("2025-04-01"), id_="n-talk"),
    ]


class Term:
    """termination's handler over a fake database, committing each batch as the runtime would."""

    def __init__(self, policy=POLICY):
        self.db = FakeDB()
        self.book = DeadlineBook(self.db, "termination")
        self.store = TerminationStore(self.db, self.book)
        self.handler = TerminationHandler(TerminationRules(policy, default_calendar()), self.book, self.store)
        self.emitted: list[Event] = []

    async def run(self, *events: Event) -> list[Event]:
        effects = Effects()
        await self.handler.handle(list(events), effects)
        self.db.commit(effects)
        new = [e for _topic, e in effects.emitted]
        self.emitted += new
        return new

    async def each(self, *events: Event) -> None:
        for event in events:
            await self.run(event)

    def of_type(self, event_type: str) -> list[Event]:
        return [e for e in self.emitted if e.type == event_type]

    def reviews(self) -> list[dict]:
        return [e.data.model_dump(mode="json") for e in self.of_type("termination.reviewed")]

    def ids(self) -> list[str]:
        return [e.id for e in self.emitted]

    def review_doc(self, stage: str = "proposed", seq: int = 1, case: str = CASE) -> dict:
        return self.db["reviews"].docs[f"termination.reviewed:{case}:{stage}:{seq}"]

    def deadline(self, rule: str, subject: str) -> dict:
        return self.db["deadlines"].docs[f"{rule}:{subject}"]


# -- the rules file -------------------------------------------------------------------------


def test_shipped_rules_file_holds_the_checklist_of_rules_md_in_order():
    assert [i.code for i in POLICY.checklist] == [
        "notice", "report_order", "consumption_restricted", "network_inquiry", "traditional_inquiry",
        "clues_verified", "property_disposed", "applicant_interviewed", "min_duration"]
    for item in POLICY.checklist:
        assert item.name_zh and item.name_en and item.source and item.status in ("SPC", "LOCAL", "UNCONFIRMED")
        assert item.required
    assert "373号" in POLICY.item("notice").source
    assert str(POLICY.min_duration) == "3 months"
    assert (str(POLICY.recheck.every), POLICY.recheck.periods, str(POLICY.recheck.warn_before)) == (
        "6 months", 10, "30 days")
    assert str(POLICY.restore.window) == "60 months"


def _document() -> dict:
    return yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))


def _broken(change) -> dict:
    document = _document()
    change(document)
    return document


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["checklist"].reverse(), "field checklist: the items must be"),
    (lambda d: d["checklist"].pop(3), "field checklist: the items must be"),
    (lambda d: d["checklist"][2].pop("source"), "checklist item consumption_restricted (#3): field source"),
    (lambda d: d["checklist"][0].update(code="notice_sent"), "checklist item notice_sent (#1): field code"),
    (lambda d: d.update(min_duration="3 fortnights"), "field min_duration"),
    (lambda d: d["recheck"].update(periods=0), "field recheck.periods"),
    (lambda d: d["recheck"].update(warn_before="5 working days"), "field recheck.warn_before"),
    (lambda d: d["restore"]["texts"].update(raised="两行\n文字"), "field restore.texts.raised"),
    (lambda d: d.update(asset_value_above="-1"), "field asset_value_above"),
])
def test_a_bad_rules_file_names_the_item_and_field(change, expected):
    with pytest.raises(PolicyError) as info:
        parse_policy(_broken(change), origin="termination.yaml")
    assert expected in str(info.value)


def test_an_unreadable_rules_file_is_refused(tmp_path):
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("checklist: [", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)


# -- the checklist: every item ----------------------------------------------------------------


async def test_a_qualified_case_passes_with_evidence_for_every_item():
    term = Term()
    await term.run(*qualified(), proposed(CASE, "2025-04-30", id_="prop-1"))
    [review] = term.of_type("termination.reviewed")
    assert review.id == f"termination.reviewed:{CASE}:proposed:1"
    assert review.subject == CASE and review.time == at("2025-04-30", "11:00:00")
    assert review.data.model_dump(mode="json") == {"case_no": CASE, "stage": "proposed", "passed": True,
                                                    "missing": []}
    assert term.of_type("alert.raised") == []
    items = {i["code"]: i for i in term.review_doc()["items"]}
    assert [i["code"] for i in term.review_doc()["items"]] == [i.code for i in POLICY.checklist]
    assert all(i["passed"] for i in items.values())
    evidence = {code: [e["event_id"] for e in item["evidence"]] for code, item in items.items()}
    assert evidence == {
        "notice": ["n-notice"], "report_order": ["n-report"], "consumption_restricted": ["n-xf"],
        "network_inquiry": ["n-launch", "inq-1"], "traditional_inquiry": ["n-trad"], "clues_verified": ["n-clue"],
        "property_disposed": ["n-ctl", "n-disp"], "applicant_interviewed": ["n-talk"],
        "min_duration": [f"filed-{CASE}"],
    }
    assert items["notice"]["evidence"][0]["at"] == "2025-01-08T10:00:00+08:00"
    assert term.review_doc()["trigger"] == "prop-1"


MISSING_ONE = {
    "notice": lambda evs: [e for e in evs if e.id != "n-notice"],
    "report_order": lambda evs: [e for e in evs if e.id != "n-report"],
    "consumption_restricted": lambda evs: [e for e in evs if e.id != "n-xf"],
    "network_inquiry": lambda evs: [e for e in evs if e.id != "n-launch"],
    "traditional_inquiry": lambda evs: [e for e in evs if e.id != "n-trad"],
    "clues_verified": lambda evs: [e for e in evs if e.id != "n-clue"],
    "property_disposed": lambda evs: [e for e in evs if e.id != "n-disp"],
    "applicant_interviewed": lambda evs: [e for e in evs if e.id != "n-talk"],
    "min_duration": lambda evs: [filed(CASE, "2025-02-01", id_=f"filed-{CASE}")] + evs[1:],
}


@pytest.mark.parametrize("code", list(MISSING_ONE))
async def test_each_checklist_item_missing_fails_the_review_and_raises_unqualified(code):
    term = Term()
    await term.run(*MISSING_ONE[code](qualified()), proposed(CASE, "2025-04-30"))
    assert term.reviews() == [{"case_no": CASE, "stage": "proposed", "passed": False, "missing": [code]}]
    [alert] = term.of_type("alert.raised")
    assert alert.id == f"alert.raised:termination.unqualified:{CASE}"
    data = alert.data
    assert (data.alert_id, data.rule, data.severity, data.case_no) == (
        f"termination.unqualified:{CASE}", "termination.unqualified", "warning", CASE)
    assert data.raised_at == at("2025-04-30", "11:00:00") and data.due_at is None
    assert POLICY.item(code).name_zh in data.summary and "拟终本审查" in data.summary
    assert data.details["missing"] == [code] and data.details["stage"] == "proposed"
    item = next(i for i in term.review_doc()["items"] if i["code"] == code)
    assert not item["passed"] and item["note"]


async def test_missing_items_are_listed_in_checklist_order():
    term = Term()
    await term.run(filed(CASE, "2025-03-01"), node(CASE, "applicant_interviewed", at("2025-03-05")),
                   node(CASE, "notice_served", at("2025-03-02")), proposed(CASE, "2025-04-01"))
    assert term.reviews()[0]["missing"] == [
        "report_order", "consumption_restricted", "network_inquiry", "traditional_inquiry", "min_duration"]


async def test_network_inquiry_needs_a_network_result_after_the_launch():
    def case(*extra):
        base = [e for e in qualified() if e.id not in ("n-launch", "inq-1")]
        return base + list(extra)

    cases = {
        "launch only": case(node(CASE, "network_inquiry_launched", at("2025-01-09"))),
        "result before the launch": case(inquiry(CASE, at("2025-01-08")),
                                         node(CASE, "network_inquiry_launched", at("2025-01-09"))),
        "traditional result after": case(node(CASE, "network_inquiry_launched", at("2025-01-09")),
                                         inquiry(CASE, at("2025-01-10"), channel="traditional")),
        "result only": case(inquiry(CASE, at("2025-01-10"))),
    }
    for label, events in cases.items():
        term = Term()
        await term.run(*events, proposed(CASE, "2025-04-30"))
        assert term.reviews()[0]["missing"] == ["network_inquiry"], label
    term = Term()
    await term.run(*case(node(CASE, "network_inquiry_launched", at("2025-01-09")),
                         inquiry(CASE, at("2025-01-09"))), proposed(CASE, "2025-04-30"))  # empty result counts
    assert term.reviews()[0]["passed"]


async def test_clues_verified_needs_every_clue_verified_with_its_ref():
    term = Term()
    await term.run(*qualified(), clue(CASE, "C2", at("2025-03-01")), node(CASE, "clue_verified", at("2025-03-02"),
                                                                             ref="C9"),
                   proposed(CASE, "2025-04-30"))
    assert term.reviews()[0]["missing"] == ["clues_verified"]
    item = next(i for i in term.review_doc()["items"] if i["code"] == "clues_verified")
    assert item["note"] == "未核查的线索：C2"
    no_clues = Term()
    await no_clues.run(*[e for e in qualified() if e.id not in ("clue-1", "n-clue")], proposed(CASE, "2025-04-30"))
    assert no_clues.reviews()[0]["passed"]


async def test_property_disposed_controls_every_countable_asset_and_concludes_disposal():
    base = [e for e in qualified() if e.id not in ("inq-1", "n-ctl", "n-disp")]
    launch_result = inquiry(CASE, at("2025-01-10"))

    async def missing(*extra) -> list[str]:
        term = Term()
        await term.run(*base, launch_result, *extra, proposed(CASE, "2025-04-30"))
        return term.reviews()[0]["missing"]

    # nothing found (or only worthless / uncontrollable assets): nothing to dispose
    assert await missing() == []
    assert await missing(inquiry(CASE, at("2025-01-11"), [("Z", "0.00", True), ("U", "50.00", False)])) == []
    found = inquiry(CASE, at("2025-01-11"), [("A1", "5000.00", True)], channel="traditional")
    assert await missing(found) == ["property_disposed"]
    assert await missing(found, node(CASE, "property_controlled", at("2025-01-12"), ref="A1")) == [
        "property_disposed"]
    assert await missing(found, node(CASE, "disposal_concluded", at("2025-03-01"))) == ["property_disposed"]
    assert await missing(found, node(CASE, "property_controlled", at("2025-01-12"), ref="A1"),
                         node(CASE, "disposal_concluded", at("2025-03-01"))) == []
    # a controlled asset counts as found: it needs the disposal too
    assert await missing(node(CASE, "property_controlled", at("2025-01-12"), ref="B7")) == ["property_disposed"]


@pytest.mark.parametrize("filed_on, proposed_on, ok", [
    ("2025-01-31", "2025-04-29", False),
    ("2025-01-31", "2025-04-30", True),    # 3 months from 01-31 is 04-30 (month end)
    ("2025-02-15", "2025-05-14", False),
    ("2025-02-15", "2025-05-15", True),
])
async def test_min_duration_counts_calendar_months_from_filed_on(filed_on, proposed_on, ok):
    term = Term()
    events = [filed(CASE, filed_on)] + qualified()[1:]
    await term.run(*events, proposed(CASE, proposed_on))
    assert ("min_duration" not in term.reviews()[0]["missing"]) is ok


async def test_facts_dated_after_the_stage_date_do_not_count():
    term = Term()
    events = [e for e in qualified() if e.id != "n-talk"]
    await term.run(*events, node(CASE, "applicant_interviewed", at("2025-05-02")), proposed(CASE, "2025-04-30"))
    assert term.reviews()[0]["missing"] == ["applicant_interviewed"]
    same_day = Term()
    await same_day.run(*events, node(CASE, "applicant_interviewed", at("2025-04-30", "23:00:00")),
                       proposed(CASE, "2025-04-30"))
    assert same_day.reviews()[0]["passed"]  # the whole stage day counts


async def test_an_item_not_required_is_shown_but_never_missing():
    document = _document()
    document["checklist"][4]["required"] = False
    term = Term(parse_policy(document))
    await term.run(*[e for e in qualified() if e.id != "n-trad"], proposed(CASE, "2025-04-30"))
    assert term.reviews()[0] == {"case_no": CASE, "stage": "proposed", "passed": True, "missing": []}
    item = next(i for i in term.review_doc()["items"] if i["code"] == "traditional_inquiry")
    assert item["passed"] is False and item["required"] is False


def test_review_case_is_a_pure_function_of_the_state():
    from services.termination.rules import new_case
    case = new_case(CASE)
    case.update(filed_on="2025-01-01", filed_event={"event_id": "f", "at": at("2025-01-01")})
    review = review_case(POLICY, case, "closed", date(2025, 4, 1))
    assert review.missing == ["notice", "report_order", "consumption_restricted", "network_inquiry",
                              "traditional_inquiry", "applicant_interviewed"]
    assert not review.passed


# -- stages, the unqualified alert ----------------------------------------------------------


async def test_only_terminated_current_proposals_and_closures_are_reviewed():
    term = Term()
    await term.run(*qualified(), proposed(CASE, "2025-04-30", mode="performed"),
                   closed(CASE, "2025-05-06", mode="performed"))
    assert term.of_type("termination.reviewed") == []
    assert term.db["deadlines"].docs == {}


async def test_proposal_fails_then_passes_then_closure_passes():
    term = Term()
    events = [e for e in qualified() if e.id != "n-talk"]
    await term.run(*events, proposed(CASE, "2025-04-30"))
    await term.run(node(CASE, "applicant_interviewed", at("2025-05-06")), proposed(CASE, "2025-05-07"))
    assert term.of_type("alert.resolved") == []   # a passing re-proposal: the closure's review decides
    await term.run(closed(CASE, "2025-05-09"))
    assert [(r["stage"], r["passed"]) for r in term.reviews()] == [
        ("proposed", False), ("proposed", True), ("closed", True)]
    assert [e.id for e in term.of_type("termination.reviewed")] == [
        f"termination.reviewed:{CASE}:proposed:1", f"termination.reviewed:{CASE}:proposed:2",
        f"termination.reviewed:{CASE}:closed:1"]
    [resolved] = term.of_type("alert.resolved")
    assert resolved.id == f"alert.resolved:termination.unqualified:{CASE}"
    assert resolved.data.resolved_at == at("2025-05-09", "16:00:00")
    assert resolved.data.reason == "终本结案审查已通过（2025-05-09）"


async def test_a_failed_review_while_the_alert_is_open_raises_nothing_new():
    term = Term()
    events = [e for e in qualified() if e.id != "n-talk"]
    await term.run(*events, proposed(CASE, "2025-04-30"))
    await term.run(closed(CASE, "2025-05-09"))
    assert [r["passed"] for r in term.reviews()] == [False, False]
    assert [e.id for e in term.of_type("alert.raised") if "unqualified" in e.id] == [
        f"alert.raised:termination.unqualified:{CASE}"]


async def test_a_passed_proposal_then_a_failed_closure_raises_the_alert_once_at_the_closure():
    term = Term()
    await term.run(*qualified(), proposed(CASE, "2025-04-30"))
    await term.run(clue(CASE, "C5", at("2025-05-08")), closed(CASE, "2025-05-09"))
    [alert] = [e for e in term.of_type("alert.raised") if "unqualified" in e.id]
    assert alert.id == f"alert.raised:termination.unqualified:{CASE}"
    assert alert.data.details["missing"] == ["clues_verified"] and "终本结案审查" in alert.data.summary
    assert alert.data.raised_at == at("2025-05-09", "16:00:00")
    # a proposal read after the closure is not reviewed (the first closure counts)
    await term.run(proposed(CASE, "2025-05-10"), closed(CASE, "2025-05-11"))
    assert len(term.of_type("termination.reviewed")) == 2
    assert len([e for e in term.of_type("alert.raised") if "unqualified" in e.id]) == 1


async def test_closure_in_another_mode_cancels_the_unqualified_alert():
    term = Term()
    await term.run(*[e for e in qualified() if e.id != "n-talk"], proposed(CASE, "2025-04-30"))
    await term.run(closed(CASE, "2025-06-01", mode="performed"))
    [resolved] = term.of_type("alert.resolved")
    assert resolved.data.reason == "案件以执行完毕方式结案，终本审查不再适用"
    assert term.deadline("termination.unqualified", CASE)["state"] == "cancelled"


async def test_a_review_read_before_the_filing_waits_for_it():
    term = Term()
    events = qualified()
    await term.run(*events[1:], proposed(CASE, "2025-04-30"))
    assert term.of_type("termination.reviewed") == []
    assert term.db["cases"].docs[CASE]["pending_reviews"][0]["stage"] == "proposed"
    await term.run(events[0])
    assert term.reviews() == [{"case_no": CASE, "stage": "proposed", "passed": True, "missing": []}]
    assert term.of_type("termination.reviewed")[0].time == at("2025-04-30", "11:00:00")


async def test_alerts_carry_the_team_from_triage():
    term = Term()
    await term.run(decided(CASE, at("2025-01-10"), "quick"), *qualified()[:-1], proposed(CASE, "2025-04-30"))
    [alert] = term.of_type("alert.raised")
    assert alert.data.team == "quick"
    assert term.db["cases"].docs[CASE]["team"] == "quick"


async def test_batching_does_not_change_what_is_published():
    events = [decided(CASE, at("2025-01-07"), "quick"), *qualified(), clue(CASE, "C2", at("2025-04-02")),
              proposed(CASE, "2025-04-30"), node(CASE, "clue_verified", at("2025-05-01"), ref="C2"),
              closed(CASE, "2025-05-09"), *daily("2025-05-10", 200), clue(CASE, "C3", at("2025-09-01"))]
    events.sort(key=lambda e: e.time)
    one = Term()
    await one.run(*events)
    each = Term()
    await each.each(*events)
    assert [e.to_bytes() for e in one.emitted] == [e.to_bytes() for e in each.emitted]
    assert len(one.of_type("termination.reviewed")) == 2


# -- the re-check: restore suggestions -------------------------------------------------------


async def closed_case(term: Term, day: str = "2025-05-09") -> None:
    await term.run(*qualified(), closed(CASE, day, id_="close-1"))


async def test_a_clue_after_a_terminated_closure_suggests_restoring_enforcement():
    term = Term()
    await closed_case(term)
    await term.run(clue(CASE, "C7", at("2026-02-03"), id_="clue-late"))
    [suggestion] = term.of_type("termination.restore_suggested")
    assert suggestion.id == f"termination.restore_suggested:{CASE}:clue-late"
    assert suggestion.subject == CASE and suggestion.time == at("2026-02-03")
    assert suggestion.data.trigger == "clue-late" and "C7" in suggestion.data.reason
    [alert] = [e for e in term.of_type("alert.raised") if "property_found" in e.id]
    assert alert.data.alert_id == f"termination.property_found:{CASE}#clue-late"
    assert alert.data.severity == "warning" and alert.data.raised_at == at("2026-02-03")
    assert alert.data.summary.startswith("终本案件发现可供执行财产或线索，建议恢复执行")


async def test_an_inquiry_with_a_controllable_valuable_asset_suggests_restoring():
    term = Term()
    await closed_case(term)
    await term.run(inquiry(CASE, at("2025-08-01"), [("Z", "0.00", True), ("U", "99.00", False)], id_="inq-a"),
                   inquiry(CASE, at("2025-09-01"), [("V1", "30000.00", True)], channel="traditional", id_="inq-b"))
    assert [s.data.trigger for s in term.of_type("termination.restore_suggested")] == ["inq-b"]
    assert "V1" in term.of_type("termination.restore_suggested")[0].data.reason
    assert f"alert.raised:termination.property_found:{CASE}#inq-b" in term.ids()


async def test_no_suggestion_before_the_closure_after_the_window_or_for_other_closures():
    term = Term()
    await term.run(*qualified(), clue(CASE, "C8", at("2025-05-01")), closed(CASE, "2025-05-09"))
    await term.run(clue(CASE, "C9", at("2030-05-10")))   # 5 years after 2025-05-09 ends 2030-05-09
    await term.run(clue(CASE, "C10", at("2030-05-09", "18:00:00")))
    assert [s.data.reason for s in term.of_type("termination.restore_suggested")] == [
        "终本后登记财产线索C10（车辆，执行指挥平台统查）"]
    performed = Term()
    await performed.run(*qualified(), closed(CASE, "2025-05-09", mode="performed"),
                        clue(CASE, "C1", at("2025-07-01")))
    assert performed.of_type("termination.restore_suggested") == []


async def test_resumption_resolves_suggestions_and_ends_the_recheck():
    term = Term()
    await closed_case(term)
    await term.run(clue(CASE, "C7", at("2026-02-03"), id_="clue-late"))
    await term.run(resumed(CASE, "2026-03-01"), clue(CASE, "C8", at("2026-04-01")))
    resolved = {e.data.alert_id: e.data.reason for e in term.of_type("alert.resolved")}
    assert resolved[f"termination.property_found:{CASE}#clue-late"] == "已恢复执行（（2027）豫0481执恢3号，2026-03-01）"
    assert term.deadline("termination.recheck", f"{CASE}#3")["state"] == "cancelled"
    assert term.deadline("termination.recheck", f"{CASE}#1")["state"] == "cancelled"
    assert len(term.of_type("termination.restore_suggested")) == 1


def test_trigger_refs_have_no_whitespace_and_stay_short():
    assert trigger_ref("intake:abc") == "intake:abc"
    assert trigger_ref("a b\tc") == "a_b_c"
    long = trigger_ref("x" * 400)
    assert long.startswith("sha1-") and len(long) < 60


# -- the re-check: six-monthly deadlines -----------------------------------------------------


def test_recheck_periods_roll_over_holidays_and_chain():
    closure = at("2025-04-01", "16:00:00")
    periods = recheck_periods(POLICY, date(2025, 4, 1), closure, default_calendar())
    assert len(periods) == 10
    # 2025-10-01 is National Day: the holiday runs to 10-08, so the period ends 10-09
    assert periods[0].due == at("2025-10-09", "23:59:59") and periods[0].start == closure
    assert periods[0].warn == at("2025-09-09", "23:59:59")
    assert periods[1].start == periods[0].due
    assert periods[1].due == at("2026-04-01", "23:59:59")
    assert periods[9].due.date() >= date(2030, 4, 1)


async def test_ten_recheck_deadlines_open_at_the_closure():
    term = Term()
    await closed_case(term, "2025-01-15")
    docs = sorted((d for d in term.db["deadlines"].docs.values() if d["rule"] == "termination.recheck"),
                  key=lambda d: int(d["ref"]))
    assert [d["subject"] for d in docs] == [f"{CASE}#{n}" for n in range(1, 11)]
    first = docs[0]
    assert first["due_at"] == at("2025-07-15", "23:59:59") and first["warn_at"] == at("2025-06-15", "23:59:59")
    assert docs[1]["due_at"] == at("2026-01-15", "23:59:59")


async def test_a_missed_period_raises_due_soon_then_overdue():
    term = Term()
    await closed_case(term, "2025-01-15")
    await term.run(*daily("2025-06-10", 40))
    raised = {e.data.alert_id: e.data for e in term.of_type("alert.raised")}
    soon = raised[f"termination.recheck.due_soon:{CASE}#1"]
    late = raised[f"termination.recheck.overdue:{CASE}#1"]
    assert soon.severity == "warning" and soon.raised_at == at("2025-06-16", "00:30:00")
    assert late.severity == "critical" and late.raised_at == at("2025-07-16", "00:30:00")
    assert late.summary == "终本案件第1期网络查控复查逾期未查（应于2025-07-15前）"
    assert late.due_at == at("2025-07-15", "23:59:59")
    assert not any("#2" in a for a in raised)
    assert term.deadline("termination.recheck", f"{CASE}#1")["state"] == "overdue"


async def test_a_network_result_inside_the_period_answers_only_that_period():
    term = Term()
    await closed_case(term, "2025-01-15")
    await term.run(inquiry(CASE, at("2025-05-20"), channel="traditional"))
    await term.run(inquiry(CASE, at("2025-05-21")), *daily("2025-06-10", 40))
    assert [e for e in term.of_type("alert.raised") if "recheck" in e.id] == []
    first = term.deadline("termination.recheck", f"{CASE}#1")
    assert first["state"] == "resolved" and first["resolution"]["on_time"] is True
    assert first["resolution"]["reason"] == "第1期网络查控复查已完成（2025-05-21 10:00）"
    assert term.deadline("termination.recheck", f"{CASE}#2")["state"] == "open"


async def test_a_later_network_result_makes_up_a_missed_period():
    term = Term()
    await closed_case(term, "2025-01-15")
    await term.run(*daily("2025-07-14", 5))
    await term.run(inquiry(CASE, at("2025-08-01")), tick(at("2025-08-02")))
    resolved = {e.data.alert_id: e.data for e in term.of_type("alert.resolved")}
    assert resolved[f"termination.recheck.overdue:{CASE}#1"].resolved_at == at("2025-08-01")
    assert resolved[f"termination.recheck.overdue:{CASE}#1"].reason == "第1期网络查控复查逾期，已于2025-08-01 10:00补查"
    assert term.deadline("termination.recheck", f"{CASE}#1")["resolution"]["on_time"] is False
    assert term.deadline("termination.recheck", f"{CASE}#2")["state"] == "resolved"


async def test_a_result_read_after_the_ticks_that_passed_its_time_is_a_late_fact():
    term = Term()
    await closed_case(term, "2025-01-15")
    await term.run(*daily("2025-06-10", 40))              # overdue raised 07-16
    await term.run(inquiry(CASE, at("2025-07-10")))       # timed inside period 1, read late
    resolved = {e.data.alert_id: e.data for e in term.of_type("alert.resolved")}
    assert resolved[f"termination.recheck.overdue:{CASE}#1"].resolved_at == at("2025-07-16", "00:30:00")
    assert "晚到登记" in resolved[f"termination.recheck.overdue:{CASE}#1"].reason
    assert term.deadline("termination.recheck", f"{CASE}#2")["state"] == "open"


async def test_replayed_ticks_and_a_restart_raise_nothing_twice():
    term = Term()
    await closed_case(term, "2025-01-15")
    ticks = daily("2025-06-10", 40)
    await term.run(*ticks[:20])
    # A replay publishes overlapping ticks under new ids (the same ids would be dropped by the inbox)
    replayed = [ev("clock.tick", "clock", t.time, {"now": t.data.now.isoformat()}) for t in ticks[10:20]]
    await term.run(*replayed, *ticks[20:])
    second = Term()
    second.db = term.db            # a restarted process: the same database, nothing in memory
    second.book = DeadlineBook(second.db, "termination")
    second.store = TerminationStore(second.db, second.book)
    second.handler = TerminationHandler(TerminationRules(POLICY, default_calendar()), second.book, second.store)
    await second.run(*daily("2025-07-01", 30, clock="12:00:00"))
    term.emitted += second.emitted
    ids = term.ids()
    assert len(ids) == len(set(ids))
    assert ids.count(f"alert.raised:termination.recheck.overdue:{CASE}#1") == 1
