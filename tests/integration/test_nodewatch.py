"""nodewatch in-process against the real embedded broker and database.

A case's alerts raised and resolved on `ecc.alerts` (keyed by alert id), the API,
and a restart mid-stream that raises nothing twice. The stream is checked against
the same events run through the handler on an in-memory database: one run, any
batching, same alerts byte for byte.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.nodewatch.main import build
from shared.contract.envelope import Event
from shared.runtime.service import ServiceProcess
from shared.topics import ALERTS, CASE_EVENTS, CLOCK, TRIAGE_DECISIONS
from tests.conftest import wait_until
from tests.integration.harness import auth, publish, read_topic, running
from tests.unit.test_nodewatch_rules import Node, at, clue, closed, decided, filed, node, tick

pytestmark = pytest.mark.integration

CASE = "（2025）豫0481执41号"
OTHER = "（2025）豫0481执42号"


def hourly(start: datetime, hours: int) -> list[Event]:
    return [tick(start + timedelta(hours=h)) for h in range(hours)]


async def expected(*events: Event) -> list[bytes]:
    """The alerts of these events read in time order in one batch, on the in-memory stand-in."""
    reference = Node()
    await reference.run(*sorted(events, key=lambda e: (e.time, e.type == "clock.tick")))
    return sorted(a.to_bytes() for a in reference.alerts)


def wire(messages: list[dict]) -> list[bytes]:
    import json
    return sorted(json.dumps(m["value"], ensure_ascii=False, separators=(",", ":")).encode() for m in messages)


async def test_alerts_raised_and_resolved_on_the_topic(settings):
    process = ServiceProcess("nodewatch", settings)
    app, _handler = build(process)
    case_events = [filed(CASE, at("2025-03-03")), clue(CASE, "C1", at("2025-03-04")),
                   filed(OTHER, at("2025-03-03"))]
    decisions = [decided(CASE, at("2025-03-05"), "fine")]
    ticks = hourly(at("2025-03-03", "00:00:00"), 24 * 12)  # to 2025-03-14 23:00
    fact = node(CASE, "notice_served", at("2025-03-15", "09:00:00"))
    async with running(process, app) as client:
        await publish(settings, CASE_EVENTS, case_events)
        await publish(settings, TRIAGE_DECISIONS, decisions)
        await publish(settings, CLOCK, ticks)

        async def overdue_raised() -> bool:
            return await process.db["alerts"].count_documents({"alert_id": f"node.notice.overdue:{CASE}"}) == 1

        await wait_until(overdue_raised, what="the notice overdue alert")
        await publish(settings, CASE_EVENTS, [fact])
        await publish(settings, CLOCK, [tick(at("2025-03-15", "10:00:00"))])

        async def notice_resolved() -> bool:
            return await process.db["alerts"].count_documents(
                {"rule": "node.notice", "case_no": CASE, "state": "resolved"}) == 2

        await wait_until(notice_resolved, what="the notice alerts resolved")
        messages = await read_topic(settings, ALERTS, min_count=1)

        deadlines = await client.get(f"/cases/{CASE}/deadlines", headers=auth("operator"))
        listing = await client.get("/alerts", params={"state": "open", "rule": "node.first_network_inquiry"},
                                   headers=auth("operator"))
        summary = await client.get("/overdue/summary", headers=auth("operator"))
        other_team = await client.get(f"/cases/{CASE}/deadlines", headers=auth("case_handler", team="quick"))
        own_team = await client.get(f"/cases/{CASE}/deadlines", headers=auth("case_handler", team="fine"))
        anonymous = await client.get("/alerts")
        metrics = (await client.get("/metrics")).text

    assert wire(messages) == await expected(*case_events, *decisions, *ticks, fact,
                                            tick(at("2025-03-15", "10:00:00")))
    for message in messages:
        assert message["key"] == message["value"]["data"]["alert_id"] == message["value"]["subject"]
    by_id = {m["value"]["id"]: m["value"] for m in messages}
    overdue = by_id[f"alert.raised:node.notice.overdue:{CASE}"]["data"]
    assert overdue["summary"] == "执行通知书逾期未发出（应于2025-03-13前）"
    assert overdue["raised_at"] == "2025-03-14T00:00:00+08:00" and overdue["team"] == "fine"
    assert overdue["severity"] == "critical" and overdue["due_at"] == "2025-03-13T23:59:59+08:00"
    resolved = by_id[f"alert.resolved:node.notice.overdue:{CASE}"]["data"]
    assert resolved["resolved_at"] == "2025-03-15T09:00:00+08:00"
    assert f"alert.raised:node.clue_verification.due_soon:{CASE}#C1" in by_id
    assert f"alert.raised:node.notice.overdue:{OTHER}" in by_id
    assert f"alert.resolved:node.notice.overdue:{OTHER}" not in by_id

    assert deadlines.status_code == 200, deadlines.text
    body = deadlines.json()
    rules = {d["rule"]: d for d in body["deadlines"] if d["subject"] == CASE}
    assert rules["node.notice"]["state"] == "resolved"
    assert rules["node.notice"]["due_at"] == "2025-03-13T23:59:59+08:00"
    assert rules["node.notice"]["warn_at"] == "2025-03-06T23:59:59+08:00"
    assert rules["node.first_network_inquiry"]["state"] == "overdue"
    assert rules["node.auction_start"]["state"] == "not_started"
    assert body["team"] == "fine" and body["watermark"] == "2025-03-15T10:00:00+08:00"
    assert listing.status_code == 200 and listing.json()["total"] == 4  # due_soon + overdue, two cases
    assert {i["rule"] for i in listing.json()["items"]} == {"node.first_network_inquiry"}
    assert summary.status_code == 200
    notice_row = next(r for r in summary.json()["rules"] if r["rule"] == "node.first_network_inquiry")
    assert notice_row["overdue"] == 2 and notice_row["by_team"]["fine"]["overdue"] == 1
    assert other_team.status_code == 403 and own_team.status_code == 200
    assert anonymous.status_code == 401
    assert 'ecc_alerts_raised_total{rule="node.notice",service="nodewatch",severity="critical"}' in metrics
    assert "ecc_watermark_timestamp_seconds" in metrics and "ecc_deadlines_open" in metrics


async def test_restart_mid_stream_raises_nothing_twice(settings):
    first_part = [filed(CASE, at("2025-03-03")), node(CASE, "property_controlled", at("2025-03-06"), "A1", "deposit"),
                  filed(OTHER, at("2025-03-05"))]
    second_part = [node(CASE, "notice_served", at("2025-03-20")), clue(OTHER, "C9", at("2025-03-21")),
                   closed(OTHER, at("2025-04-20"), "terminated_current")]
    early_ticks = hourly(at("2025-03-03", "00:00:00"), 24 * 14)   # to 03-16 23:00
    late_ticks = hourly(at("2025-03-16", "00:00:00"), 24 * 40)    # overlaps the first run by a day

    first = ServiceProcess("nodewatch", settings)
    app, _ = build(first)
    async with running(first, app):
        await publish(settings, CASE_EVENTS, first_part)
        await publish(settings, CLOCK, early_ticks)

        async def some_raised() -> bool:
            return await first.db["alerts"].count_documents({}) >= 4

        await wait_until(some_raised, what="the first alerts")
    # A new process on the same database and consumer group; some events come again (redelivery).
    second = ServiceProcess("nodewatch", settings)
    app2, _ = build(second)
    async with running(second, app2):
        await publish(settings, CASE_EVENTS, first_part[:1] + second_part)
        await publish(settings, CLOCK, early_ticks[-30:] + late_ticks)
        final_tick = late_ticks[-1].data.now

        async def caught_up() -> bool:
            doc = await second.db["clock"].find_one({"_id": "watermark"})
            return bool(doc) and doc["now"] == final_tick

        await wait_until(caught_up, timeout=60, what="the last tick applied")
        messages = await read_topic(settings, ALERTS, min_count=1)
    ids = [m["value"]["id"] for m in messages]
    assert len(ids) == len(set(ids)), "an alert event was published twice"
    assert wire(messages) == await expected(*first_part, *second_part, *early_ticks, *late_ticks)
    assert f"alert.resolved:node.notice.overdue:{CASE}" in ids
    assert f"alert.raised:node.clue_verification.overdue:{OTHER}#C9" in ids
