"""Case funds (一案一账户), rules.md §3: every rule, holidays, Decimal edges, idempotence, the rules file.

The handler runs for real on the in-memory database stand-in (tests/unit/fakedb.py), one call per
batch, with its writes committed like the runtime's transaction: what is tested is the decisions
(alerts, rejections, state), not MongoDB.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from services.funds.handlers import FundsHandler
from services.funds.policy import PolicyError, load_policy, parse_policy
from services.funds.rules import FundsRules, account_view, fingerprint, new_ledger
from services.funds.store import LEDGERS, RECEIPTS, TOTALS, FundsStore
from shared.calendar import default_calendar
from shared.config import PROJECT_ROOT, Settings
from shared.deadline_book import DeadlineBook, expand
from shared.contract.envelope import Event, make_event
from shared.runtime.effects import Effects
from tests.unit.event_examples import ORG_USCC, with_check_digit
from tests.unit.fakedb import FakeDB

RULES_FILE = PROJECT_ROOT / "rules" / "funds.yaml"
POLICY = load_policy(RULES_FILE)
CAL = default_calendar()
CASE = "（2025）豫0481执1号"
OTHER = "（2025）豫0481执2号"
APPLICANT = with_check_digit("41048119800101123")
RESPONDENT = ORG_USCC
STRANGER = with_check_digit("41048119900202456")


def at(day: str, clock: str = "10:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}:00+08:00")


def end(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T23:59:59+08:00")


# -- events ------------------------------------------------------------------------------

def ev(type_: str, subject: str, time: datetime, data: dict, eid: str) -> Event:
    return make_event(type=type_, subject=subject, time=time, data=data, source="tests", id=eid)


def received(rid: str, amount: str, when: datetime, case: str | None = CASE, eid: str | None = None,
             payer: str = "舞钢市某建材有限公司") -> Event:
    subject = case if case is not None else f"unmatched:{rid}"
    data = {"receipt_id": rid, "amount": amount, "payer_name": payer, "received_at": when.isoformat()}
    if case is not None:
        data["case_no"] = case
    return ev("funds.received", subject, when, data, eid or f"rcv-{rid}")


def paid(pid: str, amount: str, when: datetime, case: str = CASE, payee: str = APPLICANT,
         eid: str | None = None, approver: str = "fm-01") -> Event:
    return ev("funds.disbursed", case, when, {
        "payout_id": pid, "case_no": case, "amount": amount, "payee_name": "张伟", "payee_id_no": payee,
        "approved_by": approver, "disbursed_at": when.isoformat()}, eid or f"pay-{pid}")


def matched(rid: str, when: datetime, case: str = CASE, eid: str | None = None) -> Event:
    return ev("funds.matched", f"unmatched:{rid}", when,
              {"receipt_id": rid, "case_no": case, "matched_at": when.isoformat()}, eid or f"match-{rid}")


def delayed(until: str, when: datetime, case: str = CASE, eid: str | None = None) -> Event:
    return ev("funds.delay_approved", case, when, {"case_no": case, "until": until, "reason": "需进行案款分配",
                                                   "approved_by": "局长王某"}, eid or f"delay-{until}-{when.isoformat()}")


def filed(case: str = CASE, when: datetime = at("2025-03-03"), applicant: str = APPLICANT) -> Event:
    return ev("case.filed", case, when, {
        "case_no": case, "case_type": "执", "court_code": "豫0481", "filed_on": when.date().isoformat(),
        "target_amount": "100000.00",
        "applicants": [{"name": "张伟", "kind": "person", "id_no": applicant}],
        "respondents": [{"name": "舞钢市某建材有限公司", "kind": "org", "id_no": RESPONDENT}],
        "basis": {"doc_no": "（2024）豫0481民初88号", "issuing_court": "舞钢市人民法院", "kind": "judgment"},
    }, f"filed-{case}-{when.isoformat()}")


def closed(when: datetime, case: str = CASE) -> Event:
    return ev("case.closed", case, when, {"mode": "performed", "closed_on": when.date().isoformat(),
                                          "amount_recovered": "100.00"}, f"closed-{case}")


def tick(when: datetime) -> Event:
    return ev("clock.tick", "clock", when, {"now": when.isoformat()}, f"tick-{when.isoformat()}")


# -- the driver ----------------------------------------------------------------------------

class Driver:
    """The real handler over an in-memory database, one handle() per batch, committed like the runtime."""

    def __init__(self, policy=POLICY):
        self.db = FakeDB()
        self.book = DeadlineBook(self.db, "funds")
        self.store = FundsStore(None, self.db, self.book, None, Settings())  # type: ignore[arg-type]
        self.rules = FundsRules(policy, CAL)
        self.handler = FundsHandler(self.rules, self.book, self.store)
        self.emitted: list[Event] = []
        self.rejected: dict[str, str] = {}

    async def run(self, *events: Event) -> Effects:
        effects = Effects()
        await self.handler.handle(list(events), effects)
        self.db.commit(effects)
        self.emitted += [event for _topic, event in effects.emitted]
        self.rejected.update(effects.rejected)
        return effects

    async def each(self, *events: Event) -> None:
        for event in events:
            await self.run(event)

    def ids(self) -> list[str]:
        return [e.id for e in self.emitted]

    def raised(self) -> dict[str, Event]:
        return {e.data.alert_id: e for e in self.emitted if e.type == "alert.raised"}

    def resolved(self) -> dict[str, Event]:
        return {e.data.alert_id: e for e in self.emitted if e.type == "alert.resolved"}

    def deadline(self, key: str) -> dict:
        """A stored deadline document with every field present (the book stores them compacted)."""
        return expand(self.db["deadlines"].docs[key])

    def ledger(self, case: str = CASE) -> dict:
        return self.db[LEDGERS].docs[case]

    def totals(self) -> dict:
        return self.db[TOTALS].docs["funds"]


def disb(kind: str, rid: str, case: str = CASE) -> str:
    return f"funds.disbursement.{kind}:{case}#{rid}"


# -- the rules file ------------------------------------------------------------------------

def test_rules_file_holds_every_rule_of_rules_md_section_3():
    rules = {r.code: r for r in POLICY.rules}
    assert set(rules) == {"funds.unidentified", "funds.claim", "funds.disbursement", "funds.payee_not_party",
                          "funds.overdrawn", "funds.closed_with_balance"}
    for rule in rules.values():
        assert rule.name_zh and rule.name_en and rule.source and rule.status
    assert str(rules["funds.claim"].due) == "3 working_days" and rules["funds.claim"].warn_before is None
    assert str(rules["funds.disbursement"].due) == "30 days"
    assert str(rules["funds.disbursement"].warn_before) == "20 days"
    assert rules["funds.disbursement"].status == "SPC"
    assert rules["funds.closed_with_balance"].status == "UNCONFIRMED"
    assert rules["funds.payee_not_party"].severities.raised == "critical"
    assert rules["funds.closed_with_balance"].severities.raised == "warning"


def _document() -> dict:
    return yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("change, message", [
    (lambda d: d["rules"][1].update(due="3 weeks"), "funds.claim (#2): field due"),
    (lambda d: d["rules"][2].update(warn_before="5 working days"), "funds.disbursement (#3): field warn_before"),
    (lambda d: d["rules"][0].update(kind="deadline"), "funds.unidentified (#1)"),
    (lambda d: d["rules"][3].update(status="MAYBE"), "funds.payee_not_party (#4): field status"),
    (lambda d: d["rules"].pop(4), "funds.overdrawn"),
    (lambda d: d["rules"][5].update(code="funds.closed_with_money"), "unknown rule code"),
    (lambda d: d["rules"][2]["texts"].pop("due_soon"), "funds.disbursement (#3): field texts"),
    (lambda d: d["rules"].append(dict(d["rules"][0])), "defined twice"),
])
def test_a_bad_rules_file_names_the_rule_and_the_field(change, message):
    document = _document()
    change(document)
    with pytest.raises(PolicyError) as info:
        parse_policy(document, origin="funds.yaml")
    assert message in str(info.value)


def test_an_unreadable_rules_file_refuses_to_start(tmp_path: Path):
    bad = tmp_path / "funds.yaml"
    bad.write_text("rules: [\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")


# -- funds.unidentified and funds.claim ----------------------------------------------------------

async def test_unidentified_deposit_over_qingming_is_overdue_after_april_9():
    d = Driver()
    thursday = at("2025-04-03", "15:20")  # Qingming holiday Fri 04-04 .. Sun 04-06
    await d.run(received("R1", "5000.00", thursday, case=None))
    raised = d.raised()
    assert list(raised) == ["funds.unidentified:R1"]
    alert = raised["funds.unidentified:R1"]
    assert alert.data.severity == "warning" and alert.data.raised_at == thursday and alert.data.case_no is None
    assert alert.data.summary == "收到不明款5000.00元（付款人：舞钢市某建材有限公司，收款编号R1），待认领"
    claim = d.deadline("funds.claim:R1")
    assert claim["due_at"] == end("2025-04-09") and claim["warn_at"] is None
    await d.run(tick(at("2025-04-08", "09:00")), tick(end("2025-04-09")))
    assert len(d.emitted) == 1  # no warning rule, and the whole last second is on time
    await d.run(tick(at("2025-04-10", "00:00")))
    overdue = d.raised()["funds.claim.overdue:R1"]
    assert overdue.data.severity == "critical" and overdue.data.raised_at == at("2025-04-10", "00:00")
    assert overdue.data.summary == "不明款5000.00元（收款编号R1）逾期未认领（应于2025-04-09前）"
    assert not any(".due_soon:" in i for i in d.raised())
    assert d.totals()["unidentified_amount"] == "5000.00" and d.totals()["unidentified_count"] == 1
    # Claimed for a case: both alerts resolved, the money joins the case's account.
    await d.run(matched("R1", at("2025-04-11", "09:30")))
    resolved = d.resolved()
    assert set(resolved) == {"funds.unidentified:R1", "funds.claim.overdue:R1"}
    assert resolved["funds.claim.overdue:R1"].data.resolved_at == at("2025-04-11", "09:30")
    assert f"不明款已认领至{CASE}" in resolved["funds.unidentified:R1"].data.reason
    assert d.totals()["unidentified_amount"] == "0.00" and d.totals()["unidentified_count"] == 0
    assert d.ledger()["balance"] == "5000.00"
    assert d.db[RECEIPTS].docs["R1"]["state"] == "matched"
    # Its payout period runs from when it was received, not from the match.
    assert d.deadline(f"funds.disbursement:{CASE}#R1")["due_at"] == end("2025-05-06")


async def test_claim_matched_in_time_raises_no_overdue():
    d = Driver()
    await d.run(received("R1", "10.00", at("2025-04-03"), case=None))
    await d.run(matched("R1", at("2025-04-09", "16:00")))
    await d.run(tick(at("2025-04-20")))
    assert [i for i in d.ids() if "claim" in i] == []
    assert d.deadline("funds.claim:R1")["resolution"]["on_time"] is True


# -- funds.disbursement ------------------------------------------------------------------------------

async def test_payout_due_of_a_receipt_on_april_1_rolls_over_may_day_to_may_6():
    d = Driver()
    await d.run(filed(), received("R1", "1000.00", at("2025-04-01")))
    doc = d.deadline(f"funds.disbursement:{CASE}#R1")
    assert doc["due_at"] == end("2025-05-06")       # 05-01 falls in the May Day holiday (05-01..05-05)
    assert doc["warn_at"] == end("2025-04-16")      # 20 days before, plain arithmetic
    await d.run(tick(at("2025-04-16", "23:59")))
    assert d.emitted == []
    await d.run(tick(end("2025-04-16")))
    assert list(d.raised()) == [disb("due_soon", "R1")]
    assert d.raised()[disb("due_soon", "R1")].data.severity == "warning"
    await d.run(tick(end("2025-05-06")))
    assert len(d.emitted) == 1
    await d.run(tick(at("2025-05-07", "00:00")))
    overdue = d.raised()[disb("overdue", "R1")]
    assert overdue.data.severity == "critical" and overdue.data.due_at == end("2025-05-06")
    assert overdue.data.summary == "案款1000.00元（收款编号R1）超期未发放（应于2025-05-06前）"
    await d.run(paid("P1", "1000.00", at("2025-05-08")))
    assert set(d.resolved()) == {disb("due_soon", "R1"), disb("overdue", "R1")}


async def test_payouts_cover_receipts_cumulatively_oldest_first():
    d = Driver()
    await d.run(filed(), received("R1", "100.00", at("2025-03-03")), received("R2", "50.00", at("2025-03-05")))
    await d.run(paid("P1", "120.00", at("2025-03-10")))
    r1 = d.deadline(f"funds.disbursement:{CASE}#R1")
    r2 = d.deadline(f"funds.disbursement:{CASE}#R2")
    assert r1["state"] == "resolved" and r1["resolution"]["at"] == at("2025-03-10")
    assert r2["state"] == "open"
    view = d.rules.view(d.ledger())
    assert [(r.receipt_id, r.cumulative, r.uncovered) for r in view.pending] == [("R2", Decimal("150.00"),
                                                                                   Decimal("30.00"))]
    await d.run(paid("P2", "30.00", at("2025-03-12")))
    assert d.deadline(f"funds.disbursement:{CASE}#R2")["state"] == "resolved"
    assert d.ledger()["balance"] == "0.00"
    await d.run(tick(at("2025-06-01")))
    assert [e for e in d.emitted if e.type == "alert.raised"] == []


async def test_decimal_edges_cents_exactly_and_large_amounts():
    d = Driver()
    await d.run(filed(), received("R1", "0.10", at("2025-03-03")), received("R2", "0.20", at("2025-03-03", "11:00")))
    await d.run(paid("P1", "0.30", at("2025-03-04")))
    assert d.ledger()["balance"] == "0.00"  # 0.1 + 0.2 == 0.3 in Decimal, never 0.30000000000000004
    assert d.rules.view(d.ledger()).pending == ()
    # Three payouts of 33.33 cover 99.99; one cent short leaves 0.01 unpaid.
    await d.run(received("R3", "99.99", at("2025-03-05")))
    await d.run(paid("P2", "33.33", at("2025-03-06")), paid("P3", "33.33", at("2025-03-06", "11:00")))
    await d.run(paid("P4", "33.32", at("2025-03-06", "12:00")))
    pending = d.rules.view(d.ledger()).pending
    assert [(r.receipt_id, r.uncovered) for r in pending] == [("R3", Decimal("0.01"))]
    assert d.ledger()["balance"] == "0.01"
    await d.run(paid("P5", "0.01", at("2025-03-07")))
    assert d.rules.view(d.ledger()).pending == ()
    # 15 integer digits, summed without loss.
    await d.run(received("R4", "999999999999999.99", at("2025-03-08"), case=OTHER),
                received("R5", "0.01", at("2025-03-08", "11:00"), case=OTHER))
    assert d.ledger(OTHER)["received"] == "1000000000000000.00"
    assert d.totals()["received"] == "1000000000000100.29"   # 0.10 + 0.20 + 99.99 + 10^15
    assert d.totals()["disbursed"] == "100.29"
    # One amount, one spelling; one instant, one time: "100" and "100.00", Z and +08:00 are the same fact.
    a = paid("P9", "100", at("2025-03-09")).data
    b = make_event(type="funds.disbursed", subject=CASE, time=at("2025-03-09"), source="t", id="x", data={
        **a.model_dump(mode="json"), "amount": "100.00", "disbursed_at": "2025-03-09T02:00:00Z"}).data
    assert fingerprint(a) == fingerprint(b)


async def test_a_delay_resolves_a_raised_alert_and_rearms_until_the_approved_date():
    d = Driver()
    await d.run(filed(), received("R1", "800.00", at("2025-03-03")))
    await d.run(tick(at("2025-03-20")))  # warning from 03-13 (due 04-02)
    assert list(d.raised()) == [disb("due_soon", "R1")]
    await d.run(delayed("2025-05-30", at("2025-03-21")))
    resolved = d.resolved()[disb("due_soon", "R1")]
    assert resolved.data.resolved_at == at("2025-03-21")
    assert resolved.data.reason == "已批准延缓发放至2025-05-30（局长王某：需进行案款分配）"
    doc = d.deadline(f"funds.disbursement:{CASE}#R1")
    assert (doc["cycle"], doc["state"], doc["due_at"]) == (2, "open", end("2025-05-30"))
    assert doc["warn_at"] == end("2025-05-10") and doc["details"]["suspended_until"] == "2025-05-30"
    # Suspended: nothing in April, the new cycle's warning in May, overdue after 05-30.
    await d.run(tick(at("2025-04-30")))
    assert len(d.emitted) == 2
    await d.run(tick(at("2025-05-11")))
    assert d.emitted[-1].id == f"alert.raised:{disb('due_soon', 'R1')}:2"
    await d.run(tick(at("2025-05-31", "00:00")))
    assert d.emitted[-1].id == f"alert.raised:{disb('overdue', 'R1')}:2"
    assert d.emitted[-1].data.due_at == end("2025-05-30")


async def test_a_delay_known_before_the_receipt_sets_its_due_and_a_short_one_has_no_warning():
    d = Driver()
    await d.run(filed(), delayed("2025-06-30", at("2025-03-01")), received("R1", "10.00", at("2025-03-03")))
    doc = d.deadline(f"funds.disbursement:{CASE}#R1")
    assert (doc["cycle"], doc["due_at"]) == (1, end("2025-06-30"))
    # A delay that ends before the receipt's own due changes nothing; one ending within 20 days: no warning.
    d2 = Driver()
    await d2.run(filed(), received("R1", "10.00", at("2025-03-03")), delayed("2025-03-20", at("2025-03-04")))
    assert d2.deadline(f"funds.disbursement:{CASE}#R1")["due_at"] == end("2025-04-02")
    d3 = Driver()
    await d3.run(filed(), received("R1", "10.00", at("2025-03-03")))
    await d3.run(delayed("2025-04-10", at("2025-04-01")))
    doc = d3.deadline(f"funds.disbursement:{CASE}#R1")
    assert (doc["cycle"], doc["due_at"], doc["warn_at"]) == (2, end("2025-04-10"), None)


async def test_a_delay_ending_before_its_approval_is_refused_and_a_repeat_is_harmless():
    d = Driver()
    await d.run(filed(), delayed("2025-03-01", at("2025-03-05")))
    assert "before the approval date" in d.rejected["delay-2025-03-01-2025-03-05T10:00:00+08:00"]
    await d.run(delayed("2025-06-30", at("2025-03-05"), eid="D1"), delayed("2025-06-30", at("2025-03-05"), eid="D2"))
    assert len(d.ledger()["delays"]) == 1


async def test_a_late_receipt_sorting_first_reopens_a_covered_receipt():
    d = Driver()
    await d.run(filed(), received("R2", "100.00", at("2025-03-10")), paid("P1", "100.00", at("2025-03-12")))
    assert d.deadline(f"funds.disbursement:{CASE}#R2")["state"] == "resolved"
    # A deposit received 03-01, unidentified, claimed for the case on 03-05: credited before R2.
    await d.run(received("R1", "60.00", at("2025-03-01"), case=None))
    await d.run(matched("R1", at("2025-03-05")))
    r1 = d.deadline(f"funds.disbursement:{CASE}#R1")
    r2 = d.deadline(f"funds.disbursement:{CASE}#R2")
    assert r1["state"] == "resolved" and r1["resolution"]["at"] == at("2025-03-12")
    assert (r2["state"], r2["cycle"]) == ("open", 2)
    await d.run(tick(at("2025-04-20")))  # R2 due 04-09
    assert d.emitted[-1].id == f"alert.raised:{disb('overdue', 'R2')}:2"


# -- funds.payee_not_party ----------------------------------------------------------------------

async def test_a_payout_before_the_filing_is_kept_and_judged_when_the_filing_arrives():
    d = Driver()
    await d.run(received("R1", "500.00", at("2025-03-05")), paid("P1", "200.00", at("2025-03-06"), payee=STRANGER),
                paid("P2", "100.00", at("2025-03-06", "11:00"), payee=APPLICANT))
    assert d.raised() == {}
    assert d.ledger()["filed"] is None and len(d.ledger()["payouts"]) == 2
    await d.run(filed())
    raised = d.raised()
    assert list(raised) == [f"funds.payee_not_party:{CASE}#P1"]
    alert = raised[f"funds.payee_not_party:{CASE}#P1"]
    assert alert.data.severity == "critical" and alert.data.raised_at == at("2025-03-06")
    assert STRANGER not in alert.to_bytes().decode()  # the ID number is masked in the alert
    assert alert.data.details["payee_id_no"] == STRANGER[:3] + "*" * 11 + STRANGER[-4:]
    # The respondent (an organisation's credit code) is a party too.
    await d.run(paid("P3", "10.00", at("2025-03-07"), payee=RESPONDENT))
    assert len(d.raised()) == 1


# -- funds.overdrawn --------------------------------------------------------------------------------

async def test_overdraft_raised_at_the_payout_and_resolved_when_money_comes_in():
    d = Driver()
    await d.run(filed(), received("R1", "100.00", at("2025-03-03")))
    await d.run(paid("P1", "150.00", at("2025-03-04")))
    alert = d.raised()[f"funds.overdrawn:{CASE}#P1"]
    assert alert.data.severity == "critical" and alert.data.raised_at == at("2025-03-04")
    assert alert.data.summary == "超额发放：发放150.00元后案款余额为-50.00元（发放编号P1）"
    assert d.ledger()["balance"] == "-50.00"
    await d.run(received("R2", "30.00", at("2025-03-05")))
    assert f"funds.overdrawn:{CASE}#P1" not in d.resolved()
    await d.run(received("R3", "20.00", at("2025-03-06")))
    assert d.resolved()[f"funds.overdrawn:{CASE}#P1"].data.resolved_at == at("2025-03-06")


async def test_a_receipt_read_late_shows_there_was_no_overdraft():
    d = Driver()
    await d.run(filed(), paid("P1", "100.00", at("2025-03-04")))
    assert f"funds.overdrawn:{CASE}#P1" in d.raised()
    await d.run(received("R1", "100.00", at("2025-03-03")))  # timed before the payout, read after it
    resolved = d.resolved()[f"funds.overdrawn:{CASE}#P1"]
    assert resolved.data.resolved_at == at("2025-03-04")
    assert "晚到" in resolved.data.reason
    assert d.deadline(f"funds.overdrawn:{CASE}#P1")["resolution"]["late_fact"]


# -- funds.closed_with_balance --------------------------------------------------------------------

async def test_closed_with_balance_raised_and_resolved_when_paid_out():
    d = Driver()
    await d.run(filed(), received("R1", "300.00", at("2025-03-03")), paid("P1", "200.00", at("2025-03-05")))
    await d.run(closed(at("2025-03-10")))
    alert = d.raised()[f"funds.closed_with_balance:{CASE}"]
    assert alert.data.severity == "warning" and alert.data.raised_at == at("2025-03-10")
    assert alert.data.summary == "案件已结案，账户仍有余额100.00元未发放"
    # The payout deadline keeps running after closure: the money must still go out.
    assert d.deadline(f"funds.disbursement:{CASE}#R1")["state"] == "open"
    await d.run(paid("P2", "100.00", at("2025-03-12")))
    assert d.resolved()[f"funds.closed_with_balance:{CASE}"].data.resolved_at == at("2025-03-12")
    assert d.deadline(f"funds.disbursement:{CASE}#R1")["state"] == "resolved"


async def test_closed_with_zero_balance_raises_nothing():
    d = Driver()
    await d.run(filed(), received("R1", "300.00", at("2025-03-03")), paid("P1", "300.00", at("2025-03-05")),
                closed(at("2025-03-10")))
    assert d.raised() == {}


# -- impossible facts and repeats -----------------------------------------------------------------

async def test_a_payout_repeated_with_its_id_is_idempotent_and_a_different_one_is_refused():
    d = Driver()
    await d.run(filed(), received("R1", "500.00", at("2025-03-03")), paid("P1", "200.00", at("2025-03-05")))
    # The fund system sends the same payout again under a new event id: nothing happens.
    await d.run(paid("P1", "200", at("2025-03-05"), eid="resent-P1"))
    assert d.rejected == {}
    assert len(d.ledger()["payouts"]) == 1 and d.ledger()["balance"] == "300.00"
    assert d.totals()["disbursed"] == "200.00" and d.totals()["payouts"] == 1
    # Another payout reusing the id: a dead letter, and the account does not move.
    await d.run(paid("P1", "250.00", at("2025-03-06"), eid="other-P1"))
    assert "payout_id P1 was already used for a different payout" in d.rejected["other-P1"]
    assert d.ledger()["balance"] == "300.00" and d.totals()["disbursed"] == "200.00"
    # Within one batch too.
    await d.run(paid("P7", "1.00", at("2025-03-07"), eid="a"), paid("P7", "2.00", at("2025-03-07"), eid="b"))
    assert "P7" in d.rejected["b"] and "a" not in d.rejected


async def test_impossible_receipts_and_matches_are_refused():
    d = Driver()
    await d.run(received("R1", "10.00", at("2025-03-03")), received("U1", "20.00", at("2025-03-03"), case=None))
    cases = [
        (received("R1", "11.00", at("2025-03-03"), eid="r1-again"), "receipt_id R1 was already used"),
        (matched("NOPE", at("2025-03-04")), "unknown receipt NOPE"),
        (matched("R1", at("2025-03-04"), eid="m-r1"), "was received for case"),
        (matched("U1", at("2025-03-02"), eid="m-early"), "before the receipt's received_at"),
        (ev("funds.received", CASE, at("2025-03-03"), {"receipt_id": "U2", "amount": "1.00", "payer_name": "x",
                                                        "received_at": at("2025-03-03").isoformat()}, "u2-keyed"),
         "must be 'unmatched:U2'"),
    ]
    for event, reason in cases:
        await d.run(event)
        assert reason in d.rejected[event.id], (event.id, d.rejected.get(event.id))
    await d.run(matched("U1", at("2025-03-04"), eid="m1"))
    await d.run(matched("U1", at("2025-03-04"), eid="m1-resent"))
    assert "m1" not in d.rejected and "m1-resent" not in d.rejected
    await d.run(matched("U1", at("2025-03-05"), case=OTHER, eid="m1-other"))
    assert f"already matched to case {CASE}" in d.rejected["m1-other"]
    assert d.ledger()["received"] == "30.00" and OTHER not in d.db[LEDGERS].docs
    assert d.totals()["received"] == "30.00"


async def test_a_refiling_with_other_parties_is_refused():
    d = Driver()
    await d.run(filed())
    await d.run(filed(when=at("2025-03-04")))  # same parties, another event: the first counts
    await d.run(filed(when=at("2025-03-05"), applicant=STRANGER))
    assert list(d.rejected) == [f"filed-{CASE}-{at('2025-03-05').isoformat()}"]


# -- order and batching do not change the outcome --------------------------------------------------

def _story() -> list[Event]:
    return [
        paid("P0", "10.00", at("2025-03-02"), payee=STRANGER),      # before the filing and any money
        filed(),
        received("R1", "100.00", at("2025-03-03")),
        received("U1", "40.00", at("2025-03-03", "12:00"), case=None),
        tick(at("2025-03-05")),
        matched("U1", at("2025-03-07")),
        paid("P1", "50.00", at("2025-03-10")),
        tick(at("2025-03-20")),
        delayed("2025-05-20", at("2025-03-25")),
        tick(at("2025-04-15")),
        paid("P2", "80.00", at("2025-04-20")),
        closed(at("2025-04-21")),
        tick(at("2025-05-25")),
    ]


async def test_one_batch_or_one_event_at_a_time_give_the_same_alerts():
    whole, single = Driver(), Driver()
    story = _story()
    await whole.run(*story[:8])
    await whole.run(*story[8:])
    await single.each(*story)
    # The same events, byte for byte; per alert id in the same order (alerts are keyed by alert id,
    # so the order across alert ids is not a property of the topic anyway).
    assert sorted(e.to_bytes() for e in whole.emitted) == sorted(e.to_bytes() for e in single.emitted)
    for driver in (whole, single):
        per_alert: dict[str, list[str]] = {}
        for e in driver.emitted:
            per_alert.setdefault(e.data.alert_id, []).append(e.type)
        assert per_alert.pop(f"funds.payee_not_party:{CASE}#P0") == ["alert.raised"]  # stays open
        assert all(types == ["alert.raised", "alert.resolved"] for types in per_alert.values()), per_alert
    assert set(whole.raised()) == {
        f"funds.payee_not_party:{CASE}#P0", f"funds.overdrawn:{CASE}#P0", "funds.unidentified:U1",
        disb("due_soon", "R1"), disb("due_soon", "U1"),
    }
    # P0 went out before any money: overdrawn until R1 came in on 03-03.
    assert whole.resolved()[f"funds.overdrawn:{CASE}#P0"].data.resolved_at == at("2025-03-03")
    # The delay excused both warnings; P2 then paid everything out before the new due.
    assert whole.resolved()[disb("due_soon", "R1")].data.reason.startswith("已批准延缓发放至2025-05-20")
    assert whole.ledger()["balance"] == "0.00" and whole.ledger()["received"] == "140.00"
    assert f"funds.closed_with_balance:{CASE}" not in whole.raised()  # nothing held at closure


async def test_the_account_view_is_pure_arithmetic():
    ledger = new_ledger(CASE)
    ledger["receipts"] = [
        {"receipt_id": "R2", "amount": "20.00", "received_at": at("2025-03-05"), "credited_at": at("2025-03-05"),
         "payer_name": "x", "via": "direct"},
        {"receipt_id": "R1", "amount": "10.00", "received_at": at("2025-03-03"), "credited_at": at("2025-03-03"),
         "payer_name": "x", "via": "direct"},
    ]
    ledger["payouts"] = [{"payout_id": "P1", "amount": "15.00", "payee_name": "张伟", "payee_id_no": APPLICANT,
                          "approved_by": "fm", "disbursed_at": at("2025-03-06")}]
    view = account_view(ledger, POLICY.rule("funds.disbursement"), CAL)
    assert [r.receipt_id for r in view.receipts] == ["R1", "R2"]
    assert [r.covered_at for r in view.receipts] == [at("2025-03-06"), None]
    assert view.balance == Decimal("15.00") and view.receipts[1].uncovered == Decimal("15.00")
    assert view.payouts[0].payee_is_party is None  # no filing read yet
    assert view.receipts[0].due_at == end("2025-04-02")
    assert isinstance(view.balance, Decimal)

