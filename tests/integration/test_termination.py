"""termination in-process against the real embedded broker and database.

Reviews on `ecc.termination.events`, the unqualified, property-found and six-monthly re-check
alerts on `ecc.alerts`, the API, and a restart mid-stream that raises nothing twice. The
streams are checked against the same events run through the handler on an in-memory
database in time order: same events, byte for byte.
"""
from __future__ import annotations

import json

import pytest

from services.termination.main import build
from shared.runtime.service import ServiceProcess
from shared.topics import ALERTS, CASE_EVENTS, CLOCK, TERMINATION_EVENTS, TRIAGE_DECISIONS
from tests.conftest import wait_until
from tests.integration.harness import auth, publish, read_topic, running
from tests.unit.test_termination_rules import (
    CASE, OTHER, Term, at, clue, closed, daily, decided, filed, inquiry, node, proposed, qualified,
)

pytestmark = pytest.mark.integration

DECISIONS = [decided(CASE, at("2025-01-07"), "quick"), decided(OTHER, at("2025-03-02"), "fine")]
PART_ONE = [
    *qualified(), proposed(CASE, "2025-04-30", id_="prop-case"),
    filed(OTHER, "2025-03-01", id_="filed-other"), node(OTHER, "notice_served", at("2025-03-03"), id_="o-notice"),
    proposed(OTHER, "2025-04-01", id_="prop-other"), closed(OTHER, "2025-04-02", id_="close-other"),
    closed(CASE, "2025-05-09", id_="close-case"),
]
PART_TWO = [inquiry(CASE, at("2025-08-01"), id_="recheck-inq"), clue(CASE, "C7", at("2025-09-01"), id_="clue-late")]
EARLY_TICKS = daily("2025-04-01", 91)    # to 2025-06-30
LATE_TICKS = daily("2025-06-20", 134)    # to 2025-10-31, overlapping the first run


async def expected(*events) -> list[bytes]:
    reference = Term()
    await reference.run(*sorted(events, key=lambda e: (e.time, e.type == "clock.tick")))
    return sorted(e.to_bytes() for e in reference.emitted)


def wire(*topics: list[dict]) -> list[bytes]:
    return sorted(json.dumps(m["value"], ensure_ascii=False, separators=(",", ":")).encode()
                  for messages in topics for m in messages)


async def test_reviews_rechecks_api_and_a_restart_that_raises_nothing_twice(settings):
    first = ServiceProcess("termination", settings)
    app, _ = build(first)
    async with running(first, app):
        # Teams first: an alert carries the team known when it is raised (topics are not ordered
        # against each other), and the reference reads in time order.
        await publish(settings, TRIAGE_DECISIONS, DECISIONS)

        async def teams_read() -> bool:
            return await first.db["cases"].count_documents({"team": {"$ne": None}}) == 2

        await wait_until(teams_read, what="the triage decisions")
        await publish(settings, CASE_EVENTS, PART_ONE)

        async def reviewed() -> bool:
            return await first.db["reviews"].count_documents({}) == 4

        await wait_until(reviewed, what="four reviews")
        await publish(settings, CLOCK, EARLY_TICKS)

        async def first_ticks() -> bool:
            doc = await first.db["clock"].find_one({"_id": "watermark"})
            return bool(doc) and doc["now"] == EARLY_TICKS[-1].data.now

        await wait_until(first_ticks, timeout=60, what="the first run's ticks")

    second = ServiceProcess("termination", settings)
    app2, _ = build(second)
    async with running(second, app2) as client:
        # Redelivery: part of the first run again (same ids), then what is new.
        await publish(settings, CASE_EVENTS, PART_ONE[:3] + PART_TWO)

        async def part_two_read() -> bool:
            case = await second.db["cases"].find_one({"_id": CASE})
            return bool(case) and len(case["suggestions"]) == 1

        await wait_until(part_two_read, what="the second part's case events")
        await publish(settings, CLOCK, LATE_TICKS)

        async def caught_up() -> bool:
            doc = await second.db["clock"].find_one({"_id": "watermark"})
            return bool(doc) and doc["now"] == LATE_TICKS[-1].data.now

        await wait_until(caught_up, timeout=90, what="the last tick applied")
        termination = await read_topic(settings, TERMINATION_EVENTS, min_count=5)
        alerts = await read_topic(settings, ALERTS, min_count=1)

        review = await client.get(f"/cases/{CASE}/review", headers=auth("operator"))
        other_review = await client.get(f"/cases/{OTHER}/review", headers=auth("case_handler", team="fine"))
        wrong_team = await client.get(f"/cases/{OTHER}/review", headers=auth("case_handler", team="quick"))
        unknown = await client.get("/cases/（2025）豫0481执999号/review", headers=auth("operator"))
        malformed = await client.get("/cases/nonsense/review", headers=auth("operator"))
        due = await client.get("/terminated", params={"recheck_due": "true"}, headers=auth("operator"))
        every = await client.get("/terminated", headers=auth("operator"))
        scoped = await client.get("/terminated", headers=auth("case_handler", team="quick"))
        anonymous = await client.get("/terminated")
        forbidden = await client.get("/terminated", headers=auth("fund_manager"))
        metrics = (await client.get("/metrics")).text

    ids = [m["value"]["id"] for m in termination + alerts]
    assert len(ids) == len(set(ids)), "an event was published twice"
    assert wire(termination, alerts) == await expected(*DECISIONS, *PART_ONE, *PART_TWO, *EARLY_TICKS, *LATE_TICKS)
    for message in termination:
        assert message["key"] == message["value"]["subject"] == message["value"]["data"]["case_no"]
    for message in alerts:
        assert message["key"] == message["value"]["subject"] == message["value"]["data"]["alert_id"]

    reviews = {m["value"]["id"]: m["value"]["data"] for m in termination
               if m["value"]["type"] == "termination.reviewed"}
    assert reviews[f"termination.reviewed:{CASE}:proposed:1"]["passed"] is True
    assert reviews[f"termination.reviewed:{CASE}:closed:1"]["passed"] is True
    assert reviews[f"termination.reviewed:{OTHER}:proposed:1"]["missing"] == [
        "report_order", "consumption_restricted", "network_inquiry", "traditional_inquiry",
        "applicant_interviewed", "min_duration"]
    suggestion = next(m["value"] for m in termination if m["value"]["type"] == "termination.restore_suggested")
    assert suggestion["id"] == f"termination.restore_suggested:{CASE}:clue-late"
    raised = {m["value"]["data"]["alert_id"]: m["value"]["data"] for m in alerts
              if m["value"]["type"] == "alert.raised"}
    assert raised[f"termination.unqualified:{OTHER}"]["team"] == "fine"
    assert raised[f"termination.property_found:{CASE}#clue-late"]["team"] == "quick"
    # OTHER closed 2025-04-02: period 1 ends 2025-10-02, in the National Day holiday -> 2025-10-09
    overdue = raised[f"termination.recheck.overdue:{OTHER}#1"]
    assert overdue["due_at"] == "2025-10-09T23:59:59+08:00" and overdue["raised_at"] == "2025-10-10T00:30:00+08:00"
    assert raised[f"termination.recheck.due_soon:{OTHER}#1"]["raised_at"] == "2025-09-10T00:30:00+08:00"
    assert not any(a.startswith("termination.recheck") and CASE in a for a in raised)

    assert review.status_code == 200, review.text
    body = review.json()
    assert body["team"] == "quick" and body["closed"]["mode"] == "terminated_current"
    proposal = body["reviews"]["proposed"]
    assert proposal["passed"] is True and proposal["trigger"] == "prop-case"
    items = {i["code"]: i for i in proposal["items"]}
    assert [e["event_id"] for e in items["network_inquiry"]["evidence"]] == ["n-launch", "inq-1"]
    assert body["reviews"]["closed"]["review_id"] == f"termination.reviewed:{CASE}:closed:1"
    periods = body["recheck"]["periods"]
    assert [p["n"] for p in periods] == list(range(1, 11))
    assert periods[0]["state"] == "resolved" and periods[0]["resolution"]["on_time"] is True
    assert body["restore_suggestions"][0]["trigger"] == "clue-late"
    assert other_review.status_code == 200 and other_review.json()["reviews"]["closed"]["passed"] is False
    assert wrong_team.status_code == 403
    assert unknown.status_code == 404 and malformed.status_code == 422
    assert due.status_code == 200, due.text
    assert [i["case_no"] for i in due.json()["items"]] == [OTHER]
    assert due.json()["items"][0]["due_periods"][0]["state"] == "overdue"
    assert {i["case_no"] for i in every.json()["items"]} == {CASE, OTHER} and every.json()["total"] == 2
    assert [i["case_no"] for i in scoped.json()["items"]] == [CASE]
    assert anonymous.status_code == 401 and forbidden.status_code == 403
    assert 'ecc_termination_reviews_total{passed="false",stage="proposed"}' in metrics
    assert 'ecc_alerts_raised_total{rule="termination.recheck",service="termination",severity="critical"}' in metrics
