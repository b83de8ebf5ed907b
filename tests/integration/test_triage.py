"""triage (繁简分流) against the real embedded broker and database."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
import yaml

from services.triage.main import build
from services.triage.policy import parse_policy
from shared.config import PROJECT_ROOT
from shared.contract.casenumber import normalize_case_no
from shared.contract.envelope import COURT_TZ, Event, make_event
from shared.runtime.service import ServiceProcess
from shared.topics import CASE_EVENTS, CLOCK, DEADLETTER, TRIAGE_DECISIONS
from tests.conftest import wait_until
from tests.integration.filings import filing
from tests.integration.harness import auth, of_type, publish, read_topic, running

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=COURT_TZ)


def case_no(n: int, case_type: str = "执") -> str:
    return normalize_case_no(f"(2025)豫0481{case_type}{n}号")


def filed(n: int, case_type: str = "执", at: datetime = T0, **overrides) -> Event:
    data = filing(n, case_no=case_no(n, case_type), case_type=case_type, **overrides)
    return make_event(type="case.filed", subject=case_no(n, case_type), time=at, data=data,
                      source="tests", id=f"filed-{case_type}-{n}")


def inquiry(n: int, assets: list[dict], *, channel: str = "network", at: datetime, case_type: str = "执",
            tag: str = "") -> Event:
    return make_event(type="property.inquiry.result", subject=case_no(n, case_type), time=at,
                      data={"channel": channel, "returned_at": at.isoformat(), "assets": assets},
                      source="tests", id=f"inquiry-{case_type}-{n}-{channel}{tag}")


def closed(n: int, at: datetime) -> Event:
    return make_event(type="case.closed", subject=case_no(n), time=at, source="tests", id=f"closed-{n}",
                      data={"mode": "performed", "closed_on": at.date().isoformat(), "amount_recovered": "1.00"})


def tick(at: datetime) -> Event:
    return make_event(type="clock.tick", subject="clock", time=at, data={"now": at.isoformat()},
                      source="tests", id=f"clock.tick:{at.isoformat()}")


def deposit(ref: str, value: str) -> dict:
    return {"ref": ref, "kind": "deposit", "value": value, "controllable": True}


DAY = timedelta(days=1)


def first_batch() -> list[Event]:
    """Six cases: each line kind once, a result before its filing, a revision, a closure."""
    return [
        filed(1), inquiry(1, [deposit("D1", "200000.00")], at=T0 + DAY),                        # simple
        filed(2), inquiry(2, [], at=T0 + DAY),                                                   # simple, nothing
        filed(3), inquiry(3, [{"ref": "R1", "kind": "real_estate", "value": "900000.00",
                               "controllable": True}], at=T0 + DAY),                             # complex
        filed(4, "执保"),                                                                         # preservation
        inquiry(5, [deposit("D1", "10.00")], at=T0 + 2 * DAY), filed(5),                         # result first
        filed(6), inquiry(6, [], at=T0 + DAY),
        inquiry(6, [{"ref": "V1", "kind": "vehicle", "value": "30000.00", "controllable": True}],
                channel="traditional", at=T0 + 5 * DAY),                                        # revision 2
        closed(2, T0 + 9 * DAY),
    ]


EXPECTED = {
    f"triage:{case_no(1)}:fs-2025.1:1": ("simple", ["full_deposit"], "quick", 1),
    f"triage:{case_no(2)}:fs-2025.1:1": ("simple", ["no_property"], "quick", 1),
    f"triage:{case_no(3)}:fs-2025.1:1": ("complex", ["needs_disposal"], "fine", 1),
    f"triage:{case_no(4, '执保')}:fs-2025.1:1": ("preservation", ["preservation_case"], "preservation", 1),
    f"triage:{case_no(5)}:fs-2025.1:1": ("complex", ["partial_property"], "fine", 1),
    f"triage:{case_no(6)}:fs-2025.1:1": ("simple", ["no_property"], "quick", 1),
    f"triage:{case_no(6)}:fs-2025.1:2": ("complex", ["needs_disposal"], "fine", 2),
}


def summary(messages: list[dict]) -> dict[str, tuple]:
    out = {}
    for m in of_type(messages, "triage.decided"):
        value = m["value"]
        assert m["key"] == value["subject"] == value["data"]["case_no"]
        assert value["id"] not in out, f"{value['id']} published twice"
        d = value["data"]
        out[value["id"]] = (d["track"], d["reasons"], d["team"], d["revision"])
    return out


def metric(text: str, series: str) -> float:
    """The value of one series in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_decisions_on_the_topic_and_the_api(settings):
    process = ServiceProcess("triage", settings)
    app, _ = build(process)
    async with running(process, app) as http:
        revised_before = metric((await http.get("/metrics")).text, 'ecc_triage_decisions_total{reason='
                                '"needs_disposal",revision="revised",track="complex"}')
        await publish(settings, CASE_EVENTS, first_batch())
        messages = await read_topic(settings, TRIAGE_DECISIONS, min_count=len(EXPECTED))
        assert summary(messages) == EXPECTED
        revised = next(m["value"] for m in messages if m["value"]["id"].endswith(f"{case_no(6)}:fs-2025.1:2"))
        assert revised["data"]["decided_at"] == (T0 + 5 * DAY).isoformat()
        assert revised["time"] == (T0 + 5 * DAY).isoformat()
        assert revised["source"] == "ecc/triage"
        early = next(m["value"] for m in messages if m["value"]["subject"] == case_no(5))
        assert early["data"]["decided_at"] == (T0 + 2 * DAY).isoformat()

        answer = await http.get(f"/cases/(2025)豫0481执6号/triage", headers=auth("operator"))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["status"], body["track"], body["team"], body["revision"]) == ("decided", "complex", "fine", 2)
        assert [d["revision"] for d in body["decisions"]] == [1, 2]
        assert body["decisions"][1]["reasons"] == [
            {"code": "needs_disposal", "name_zh": "需处置财产",
             "name_en": "controllable property other than deposits needs disposal"}]
        assert body["decisions"][1]["id"] == f"triage:{case_no(6)}:fs-2025.1:2"

        teams = (await http.get("/teams", headers=auth("operator"))).json()
        open_cases = {row["team"]: row["open_cases"] for row in teams["teams"]}
        assert open_cases == {"quick": 1, "fine": 3, "preservation": 1}  # case 2 closed, case 6 moved
        assert teams["policy_version"] == "fs-2025.1"

        # A handler of team quick sees quick's cases only; the read is in the audit trail.
        assert (await http.get(f"/cases/{case_no(1)}/triage", headers=auth("case_handler", "quick"))).status_code == 200
        assert (await http.get(f"/cases/{case_no(3)}/triage", headers=auth("case_handler", "quick"))).status_code == 403
        assert (await http.get("/cases/not-a-case/triage", headers=auth("operator"))).status_code == 422
        assert (await http.get(f"/cases/{case_no(99)}/triage", headers=auth("operator"))).status_code == 404
        assert (await http.get(f"/cases/{case_no(1)}/triage")).status_code == 401
        assert (await http.get("/teams", headers=auth("fund_manager"))).status_code == 403

        async def audited() -> bool:
            return await process.db["audit"].count_documents({"case_no": case_no(1)}) >= 1

        await wait_until(audited, what="the audit entry")
        metrics = (await http.get("/metrics")).text
        # Counters are per process and other tests may have run in it: compare with the start.
        revised = 'ecc_triage_decisions_total{reason="needs_disposal",revision="revised",track="complex"}'
        assert metric(metrics, revised) == revised_before + 1
        assert metric(metrics, 'ecc_triage_open_cases{team="fine",track="complex"}') == 3


async def test_duplicates_and_a_replay_add_nothing_and_bad_events_are_dead_lettered(settings):
    process = ServiceProcess("triage", settings)
    app, _ = build(process)
    async with running(process, app):
        await publish(settings, CASE_EVENTS, first_batch())
        await read_topic(settings, TRIAGE_DECISIONS, min_count=len(EXPECTED))
        # The whole stream again (same ids), plus the same facts under new ids, plus impossible ones.
        await publish(settings, CASE_EVENTS, first_batch())
        same_fact_new_id = inquiry(6, [], at=T0 + 20 * DAY, tag="-again")
        bad_subject = ("（2025）豫0481执7号", json.dumps(
            {**filed(7).to_json_dict(), "subject": "（2025）豫0481执7号",
             "data": {**filed(7).to_json_dict()["data"], "case_no": "（2025）豫0481执8号"}},
            ensure_ascii=False).encode())
        refiled = filed(1, target_amount="1.00")
        refiled = make_event(type="case.filed", subject=refiled.subject, time=refiled.time, source="tests",
                             id="filed-again-1", data=refiled.data)
        await publish(settings, CASE_EVENTS, [same_fact_new_id, refiled])
        await publish(settings, CASE_EVENTS, [bad_subject])

        async def handled() -> bool:
            return await process.db["inbox"].count_documents({}) >= len(first_batch()) + 3

        await wait_until(handled, what="every distinct event handled")
        letters = await read_topic(settings, DEADLETTER, min_count=2)
        messages = await read_topic(settings, TRIAGE_DECISIONS, min_count=len(EXPECTED))
    assert summary(messages) == EXPECTED
    reasons = sorted(m["value"]["error"] for m in letters)
    assert len(reasons) == 2, reasons
    assert any("already filed with different content" in r for r in reasons)
    assert any("differs from subject" in r for r in reasons)


@pytest.mark.slow
async def test_a_restart_mid_stream_decides_everything_once(settings):
    events = first_batch()
    first = ServiceProcess("triage", settings)
    app, _ = build(first)
    async with running(first, app):
        await publish(settings, CASE_EVENTS, events[:7])

        async def some() -> bool:
            return await first.db["cases"].count_documents({"decisions.0": {"$exists": True}}) >= 3

        await wait_until(some, what="the first decisions")
    second = ServiceProcess("triage", settings)
    app2, _ = build(second)
    async with running(second, app2):
        await publish(settings, CASE_EVENTS, events[4:])  # overlaps what the first process handled
        messages = await read_topic(settings, TRIAGE_DECISIONS, min_count=len(EXPECTED), quiet_seconds=1.5)
    assert summary(messages) == EXPECTED


async def watermark_is(process: ServiceProcess, now: datetime) -> bool:
    doc = await process.db["meta"].find_one({"_id": "watermark"})
    return doc is not None and doc["now"] == now.isoformat()


async def test_several_teams_per_track_balance_on_the_watermark(settings):
    document = yaml.safe_load((PROJECT_ROOT / "rules" / "triage.yaml").read_text(encoding="utf-8"))
    document["teams"]["simple"] = ["quick-1", "quick-2"]
    document["policy_version"] = "two-quick"
    process = ServiceProcess("triage", settings)
    app, _ = build(process, parse_policy(document))
    async with running(process, app) as http:
        # Hour by hour: two cases in hour 1 (both see 0:0 at the 09:00 watermark), one in hour 2.
        await publish(settings, CLOCK, [tick(T0)])
        await wait_until(lambda: watermark_is(process, T0), what="the 09:00 tick")
        await publish(settings, CASE_EVENTS, [filed(1), inquiry(1, [], at=T0 + timedelta(minutes=10)),
                                              filed(2), inquiry(2, [], at=T0 + timedelta(minutes=20))])
        await read_topic(settings, TRIAGE_DECISIONS, min_count=2)
        await publish(settings, CLOCK, [tick(T0 + timedelta(hours=1))])

        await wait_until(lambda: watermark_is(process, T0 + timedelta(hours=1)), what="the 10:00 tick")
        await publish(settings, CASE_EVENTS, [filed(3), inquiry(3, [], at=T0 + timedelta(hours=1, minutes=5))])
        messages = await read_topic(settings, TRIAGE_DECISIONS, min_count=3)
        teams = (await http.get("/teams", headers=auth("operator"))).json()
    assert {v["subject"]: v["data"]["team"] for v in (m["value"] for m in messages)} == {
        case_no(1): "quick-1", case_no(2): "quick-1", case_no(3): "quick-2"}
    rows = {row["team"]: (row["open_cases"], row["open_cases_at_watermark"]) for row in teams["teams"]}
    assert rows["quick-1"] == (2, 2) and rows["quick-2"] == (1, 0)
