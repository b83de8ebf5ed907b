"""funds (一案一账户) against the real embedded broker and database: alerts on the topic, dead letters,
the POST endpoints through the outbox, the ledger API, metrics, and a restart mid-stream."""
from __future__ import annotations

import json
from datetime import datetime

import pytest

from services.funds.main import build
from shared.contract.envelope import Event, make_event
from shared.runtime.service import ServiceProcess
from shared.topics import ALERTS, CASE_EVENTS, CLOCK, DEADLETTER, FUNDS_EVENTS, TRIAGE_DECISIONS
from tests.conftest import wait_until
from tests.integration.filings import credit_code, filing, resident_id
from tests.integration.harness import auth, publish, read_topic, running

pytestmark = pytest.mark.integration

CASE = "（2025）豫0481执1号"
APPLICANT = resident_id(seq="001")
STRANGER = resident_id(region="410482", birth="19900202", seq="456")


def at(day: str, clock: str = "10:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}:00+08:00")


def ev(type_: str, subject: str, time: datetime, data: dict, eid: str) -> Event:
    return make_event(type=type_, subject=subject, time=time, data=data, source="tests", id=eid)


def filed() -> Event:
    data = filing(1, case_no=CASE, applicants=[{"name": "张伟", "kind": "person", "id_no": APPLICANT}],
                  respondents=[{"name": "舞钢市某建材有限公司", "kind": "org", "id_no": credit_code()}])
    return ev("case.filed", CASE, at("2025-03-03"), data, "filed-1")


def received(rid: str, amount: str, when: datetime, case: str | None = CASE, eid: str | None = None) -> Event:
    data = {"receipt_id": rid, "amount": amount, "payer_name": "舞钢市某建材有限公司", "received_at": when.isoformat()}
    if case:
        data["case_no"] = case
    return ev("funds.received", case or f"unmatched:{rid}", when, data, eid or f"rcv-{rid}")


def paid(pid: str, amount: str, when: datetime, payee: str = APPLICANT, eid: str | None = None) -> Event:
    return ev("funds.disbursed", CASE, when, {
        "payout_id": pid, "case_no": CASE, "amount": amount, "payee_name": "张伟", "payee_id_no": payee,
        "approved_by": "fm-01", "disbursed_at": when.isoformat()}, eid or f"pay-{pid}")


def matched(rid: str, when: datetime) -> Event:
    return ev("funds.matched", f"unmatched:{rid}", when,
              {"receipt_id": rid, "case_no": CASE, "matched_at": when.isoformat()}, f"match-{rid}")


def triaged(team: str) -> Event:
    return ev("triage.decided", CASE, at("2025-03-04"), {
        "case_no": CASE, "track": "simple", "reasons": ["full_deposit"], "team": team,
        "decided_at": at("2025-03-04").isoformat(), "revision": 1, "policy_version": "fs-2025.1"}, "triage-1")


def tick(when: datetime) -> Event:
    return ev("clock.tick", "clock", when, {"now": when.isoformat()}, f"tick-{when.isoformat()}")


def funds_stream() -> list[Event]:
    return [
        paid("P0", "50.00", at("2025-03-02"), payee=STRANGER),          # before the filing: judged later
        received("R1", "1000.00", at("2025-04-01")),                     # payout due 05-06 (May Day)
        received("U1", "300.00", at("2025-04-03", "15:00"), case=None),   # Qingming: claim due 04-09
        paid("P1", "400.00", at("2025-04-10")),
        paid("P1", "400", at("2025-04-10"), eid="pay-P1-resent"),       # same payout, another event id
    ]


async def handled(process: ServiceProcess, n: int) -> None:
    async def enough() -> bool:
        return await process.db["inbox"].count_documents({}) >= n
    await wait_until(enough, timeout=30, what=f"{n} events handled")


def alert_ids(messages: list[dict]) -> list[str]:
    return [m["value"]["id"] for m in messages]


EXPECTED_RAISED = {
    f"alert.raised:funds.payee_not_party:{CASE}#P0",
    f"alert.raised:funds.overdrawn:{CASE}#P0",
    "alert.raised:funds.unidentified:U1",
    f"alert.raised:funds.disbursement.due_soon:{CASE}#R1",
    "alert.raised:funds.claim.overdue:U1",
    f"alert.raised:funds.disbursement.overdue:{CASE}#R1",
}


async def test_alerts_ledger_api_and_metrics(settings):
    process = ServiceProcess("funds", settings)
    funds = build(process)
    async with running(process, funds.app, extra=funds.jobs(interval=0.2)) as http:
        await publish(settings, FUNDS_EVENTS, funds_stream())
        await publish(settings, CASE_EVENTS, [filed()])
        await publish(settings, TRIAGE_DECISIONS, [triaged("quick")])
        await handled(process, 7)
        # Ticks only once the facts are in: the alert stream is then the one a time-ordered read gives.
        await publish(settings, CLOCK, [tick(at("2025-04-10", "00:00")), tick(at("2025-04-17")),
                                        tick(at("2025-05-07", "00:00"))])
        messages = await read_topic(settings, ALERTS, min_count=len(EXPECTED_RAISED) + 1)
        ids = alert_ids(messages)
        assert len(ids) == len(set(ids)), ids
        assert {i for i in ids if i.startswith("alert.raised:")} == EXPECTED_RAISED
        # R1 came in after the overdraft of P0: resolved then.
        assert f"alert.resolved:funds.overdrawn:{CASE}#P0" in ids
        by_id = {m["value"]["id"]: m for m in messages}
        claim = by_id["alert.raised:funds.claim.overdue:U1"]
        assert claim["key"] == "funds.claim.overdue:U1"
        assert claim["value"]["data"]["raised_at"] == "2025-04-10T00:00:00+08:00"
        assert claim["value"]["data"]["severity"] == "critical"
        overdue = by_id[f"alert.raised:funds.disbursement.overdue:{CASE}#R1"]["value"]["data"]
        assert overdue["due_at"] == "2025-05-06T23:59:59+08:00" and overdue["team"] == "quick"
        assert STRANGER not in json.dumps([m["value"] for m in messages], ensure_ascii=False)

        # The ledger: the fund manager sees ID numbers masked, the bureau chief in full.
        answer = await http.get(f"/cases/(2025)豫0481执1号/ledger", headers=auth("fund_manager"))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["received"], body["disbursed"], body["balance"]) == ("1000.00", "450.00", "550.00")
        assert [(e["kind"], e["id"]) for e in body["entries"]] == [("payout", "P0"), ("receipt", "R1"),
                                                                 ("payout", "P1")]
        assert body["pending"] == [{
            "receipt_id": "R1", "amount": "1000.00", "unpaid": "550.00", "received_at": "2025-04-01T10:00:00+08:00",
            "payout_due_at": "2025-05-06T23:59:59+08:00", "warn_at": "2025-04-16T23:59:59+08:00",
            "suspended_until": None, "state": "overdue"}]
        assert APPLICANT not in answer.text and STRANGER not in answer.text
        assert APPLICANT in (await http.get(f"/cases/{CASE}/ledger", headers=auth("bureau_chief"))).text
        assert {a["rule"] for a in body["open_anomalies"]} == {
            "funds.payee_not_party", "funds.disbursement"}
        # Team scope: the case was triaged to team quick.
        assert (await http.get(f"/cases/{CASE}/ledger", headers=auth("case_handler", "quick"))).status_code == 200
        assert (await http.get(f"/cases/{CASE}/ledger", headers=auth("case_handler", "fine"))).status_code == 403
        assert (await http.get(f"/cases/{CASE}/ledger", headers=auth("downstream"))).status_code == 403
        assert (await http.get("/cases/not-a-case/ledger", headers=auth("fund_manager"))).status_code == 422
        assert (await http.get("/cases/（2025）豫0481执99号/ledger", headers=auth("fund_manager"))).status_code == 404

        unidentified = (await http.get("/unidentified", headers=auth("fund_manager"))).json()
        assert unidentified["total"] == 1 and unidentified["amount"] == "300.00"
        item = unidentified["items"][0]
        assert (item["receipt_id"], item["claim_due_at"], item["overdue"]) == ("U1", "2025-04-09T23:59:59+08:00", True)

        anomalies = (await http.get("/anomalies?state=open", headers=auth("fund_manager"))).json()
        assert {i["alert_id"] for i in anomalies["items"]} == {
            f"funds.payee_not_party:{CASE}#P0", "funds.unidentified:U1", f"funds.disbursement.due_soon:{CASE}#R1",
            "funds.claim.overdue:U1", f"funds.disbursement.overdue:{CASE}#R1"}
        assert anomalies["items"][0]["rule_name_zh"]

        async def gauges() -> str | None:
            text = (await http.get("/metrics")).text
            return text if "ecc_funds_overdue_pending_yuan 550.0" in text else None

        text = await wait_until(gauges, what="the overdue gauge")
        assert "ecc_funds_balance_held_yuan 850.0" in text       # 1000 + 300 unidentified − 450
        assert "ecc_funds_unidentified_yuan 300.0" in text and "ecc_funds_unidentified_count 1.0" in text
        assert "ecc_funds_receipts_total_yuan 1300.0" in text and "ecc_funds_payouts_total_yuan 450.0" in text

        # The deposit is claimed: its alerts resolve and it joins the account.
        await publish(settings, FUNDS_EVENTS, [matched("U1", at("2025-05-07", "09:00"))])
        messages = await read_topic(settings, ALERTS, min_count=len(ids) + 2)
        assert {"alert.resolved:funds.unidentified:U1", "alert.resolved:funds.claim.overdue:U1"} <= set(
            alert_ids(messages))
        body = (await http.get(f"/cases/{CASE}/ledger", headers=auth("fund_manager"))).json()
        assert body["balance"] == "850.00"
    assert not await read_topic(settings, DEADLETTER, quiet_seconds=0.5)


async def test_impossible_facts_are_dead_lettered_with_their_reason(settings):
    process = ServiceProcess("funds", settings)
    funds = build(process)
    async with running(process, funds.app):
        await publish(settings, FUNDS_EVENTS, [
            received("R1", "100.00", at("2025-03-03")),
            paid("P1", "60.00", at("2025-03-04")),
            paid("P1", "60.00", at("2025-03-04"), eid="pay-P1-resent"),        # idempotent
            paid("P1", "70.00", at("2025-03-05"), eid="pay-P1-different"),     # a different payout, same id
            matched("NOPE", at("2025-03-05")),                                 # no such receipt
        ])
        letters = await read_topic(settings, DEADLETTER, min_count=2)
        await handled(process, 5)
        ledger = await process.db["ledgers"].find_one({"_id": CASE})
    reasons = {json.loads(m["value"]["value"])["id"]: m["value"]["error"] for m in letters}
    assert set(reasons) == {"pay-P1-different", "match-NOPE"}, reasons
    assert "payout_id P1 was already used for a different payout" in reasons["pay-P1-different"]
    assert "unknown receipt NOPE" in reasons["match-NOPE"]
    assert all(m["value"]["service"] == "funds" for m in letters)
    assert ledger["balance"] == "40.00" and len(ledger["payouts"]) == 1


async def test_post_endpoints_validate_and_write_through_the_outbox(settings):
    process = ServiceProcess("funds", settings)
    funds = build(process)
    async with running(process, funds.app) as http:
        fm = auth("fund_manager")
        receipt = {"receipt_id": "W1", "case_no": "(2025)豫0481执1号", "amount": "1200.5",
                   "payer_name": "舞钢市某建材有限公司", "received_at": "2025-04-01T10:00:00+08:00"}
        first = await http.post("/receipts", json=receipt, headers=fm)
        assert first.status_code == 201, first.text
        assert first.json() == {"event_id": "funds.received:W1", "type": "funds.received", "subject": CASE}
        again = await http.post("/receipts", json=receipt, headers=fm)
        assert again.status_code == 200 and again.json()["event_id"] == "funds.received:W1"
        conflict = await http.post("/receipts", json={**receipt, "amount": "1.00"}, headers=fm)
        assert conflict.status_code == 409 and conflict.json()["message_zh"]

        bad = await http.post("/receipts", json={**receipt, "receipt_id": "W9", "amount": 12.5,
                                                 "received_at": "2025-04-01"}, headers=fm)
        assert bad.status_code == 422
        fields = {e["field"]: e for e in bad.json()["errors"]}
        assert set(fields) == {"body.amount", "body.received_at"}
        assert fields["body.amount"]["message"] and fields["body.amount"]["message_zh"]

        unidentified = {"receipt_id": "W2", "amount": "80.00", "payer_name": "李四",
                        "received_at": "2025-04-02T09:00:00+08:00"}
        assert (await http.post("/receipts", json=unidentified, headers=fm)).json()["subject"] == "unmatched:W2"
        payout = {"payout_id": "WP1", "case_no": CASE, "amount": "200.00", "payee_name": "张伟",
                  "payee_id_no": APPLICANT, "approved_by": "fm-01", "disbursed_at": "2025-04-05T10:00:00+08:00"}
        assert (await http.post("/payouts", json=payout, headers=fm)).status_code == 201
        wrong_digit = APPLICANT[:-1] + ("1" if APPLICANT[-1] != "1" else "2")
        bad_id = await http.post("/payouts", json={**payout, "payout_id": "WP2", "payee_id_no": wrong_digit},
                                 headers=fm)
        assert bad_id.status_code == 422 and bad_id.json()["errors"][0]["field"] == "body.payee_id_no"
        match = {"receipt_id": "W2", "case_no": CASE, "matched_at": "2025-04-03T09:00:00+08:00"}
        assert (await http.post("/matches", json={**match, "receipt_id": "NONE"}, headers=fm)).status_code == 404
        early = await http.post("/matches", json={**match, "matched_at": "2025-04-01T09:00:00+08:00"}, headers=fm)
        assert early.status_code == 422 and early.json()["errors"][0]["field"] == "body.matched_at"
        assert (await http.post("/matches", json=match, headers=fm)).status_code == 201

        delay = {"case_no": CASE, "until": "2099-12-31", "reason": "需进行案款分配", "approved_by": "局长王某"}
        assert (await http.post("/delays", json=delay, headers=fm)).status_code == 403       # needs funds_approve
        chief = auth("bureau_chief")
        assert (await http.post("/delays", json=delay, headers=chief)).status_code == 201
        assert (await http.post("/delays", json=delay, headers=chief)).status_code == 200
        past = await http.post("/delays", json={**delay, "until": "2020-01-01"}, headers=chief)
        assert past.status_code == 422 and past.json()["errors"][0]["field"] == "body.until"
        assert (await http.post("/receipts", json=receipt)).status_code == 401
        assert (await http.post("/receipts", json=receipt, headers=auth("operator"))).status_code == 403

        # Funds consumes its own events like any other: the account reflects every POST once.
        async def account() -> dict | None:
            doc = await process.db["ledgers"].find_one({"_id": CASE})
            return doc if doc and len(doc["receipts"]) == 2 and doc["delays"] and doc["payouts"] else None

        doc = await wait_until(account, what="the POSTed facts consumed")
        assert (doc["received"], doc["disbursed"], doc["balance"]) == ("1280.50", "200.00", "1080.50")
        assert doc["delays"][0]["until"] == "2099-12-31"
        on_topic = await read_topic(settings, FUNDS_EVENTS, min_count=5)
        assert sorted(m["value"]["id"] for m in on_topic) == sorted([
            "funds.received:W1", "funds.received:W2", "funds.disbursed:WP1", "funds.matched:W2",
            next(m["value"]["id"] for m in on_topic if m["value"]["type"] == "funds.delay_approved")])
        ledger = (await http.get(f"/cases/{CASE}/ledger", headers=fm)).json()
        assert ledger["pending"][0]["suspended_until"] == "2099-12-31"
        assert ledger["pending"][0]["payout_due_at"] == "2099-12-31T23:59:59+08:00"
    assert not await read_topic(settings, DEADLETTER, quiet_seconds=0.5)


@pytest.mark.slow
async def test_a_restart_mid_stream_raises_nothing_twice(settings):
    stream = [filed(), *funds_stream(), received("R2", "20.00", at("2025-04-20")), paid("P2", "10.00", at("2025-04-21"))]
    ticks = [tick(at("2025-04-10", "00:00")), tick(at("2025-04-17")), tick(at("2025-05-07", "00:00")),
             tick(at("2025-06-01"))]
    first = ServiceProcess("funds", settings)
    funds = build(first)
    async with running(first, funds.app):
        await publish(settings, CASE_EVENTS, stream[:1])
        await publish(settings, FUNDS_EVENTS, stream[1:5])
        await handled(first, 5)
        await publish(settings, CLOCK, ticks[:2])
        await read_topic(settings, ALERTS, min_count=4)
    # A new process on the same database and group: it resumes from the committed offsets;
    # the overlap is redelivered (inbox) and resent under new ids (content compared).
    second = ServiceProcess("funds", settings)
    funds2 = build(second)
    async with running(second, funds2.app):
        await publish(settings, FUNDS_EVENTS, stream[3:])
        await publish(settings, FUNDS_EVENTS, [received("R1", "1000.00", at("2025-04-01"), eid="rcv-R1-resent")])
        await handled(second, len(stream) + 1)
        await publish(settings, CLOCK, ticks)
        messages = await read_topic(settings, ALERTS, min_count=len(EXPECTED_RAISED) + 2, quiet_seconds=1.5)
    ids = alert_ids(messages)
    assert len(ids) == len(set(ids)), sorted(ids)
    # R2 (04-20, due 05-20): its warning at the 05-07 tick, overdue at the 06-01 tick.
    assert {i for i in ids if i.startswith("alert.raised:")} == EXPECTED_RAISED | {
        f"alert.raised:funds.disbursement.due_soon:{CASE}#R2", f"alert.raised:funds.disbursement.overdue:{CASE}#R2"}
    assert not await read_topic(settings, DEADLETTER, quiet_seconds=0.5)
