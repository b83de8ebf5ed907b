"""metrics in-process against the real embedded broker and database.

The hand-worked April of the unit tests, published on the case, triage and termination topics
with a clock, and a restart of the service mid-month: the snapshots on `ecc.metrics.snapshots`
(keyed `<scope>:<period>`) are published once each and are byte for byte those of one run on
the in-memory stand-in; the Prometheus gauges and the API agree.
"""
from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.metrics.main import build
from shared.contract.envelope import Event
from shared.runtime.service import ServiceProcess
from shared.topics import ALERTS, CLOCK, METRICS_SNAPSHOTS, topic_for_event_type
from tests.conftest import wait_until
from tests.integration.harness import auth, publish, read_topic, running
from tests.unit.test_metrics_indicators import COURT, Metrics, april_2025, at, day_ticks, raised, resolved

pytestmark = pytest.mark.integration

EVENTS = sorted(april_2025(), key=lambda e: e.time)
FIRST = [e for e in EVENTS if e.time < at("2025-04-15", "00:00:00")]
SECOND = [e for e in EVENTS if e.time >= at("2025-04-15", "00:00:00")]
EARLY_TICKS = day_ticks("2025-04-01", "2025-04-15")
LATE_TICKS = day_ticks("2025-04-14", "2025-05-01")
ALERT_EVENTS = [raised("node.notice.overdue:（2025）豫0481执9001号", "node.notice", "quick"),
                raised("node.notice.overdue:（2025）豫0481执9002号", "node.notice", "fine"),
                resolved("node.notice.overdue:（2025）豫0481执9002号")]


async def publish_events(settings, events) -> None:
    by_topic: dict = {}
    for event in events:
        by_topic.setdefault(topic_for_event_type(event.type), []).append(event)
    for topic, batch in by_topic.items():
        await publish(settings, topic, batch)


async def applied(process: ServiceProcess, events: list[Event]) -> None:
    """Wait until the inbox holds every event but the ticks (a tick needs no record: the runtime's
    BatchHandler.idempotent) and the watermark reached the last tick."""
    count = sum(1 for e in events if e.type != "clock.tick")
    last_tick = max((e.data.now for e in events if e.type == "clock.tick"), default=None)

    async def done() -> bool:
        if await process.db["inbox"].count_documents({}) < count:
            return False
        if last_tick is None:
            return True
        clock = await process.db["clock"].find_one({})
        return clock is not None and clock.get("now") is not None and clock["now"] >= last_tick

    await wait_until(done, timeout=60, what=f"{count} events handled and the watermark at the last tick")


async def watermark_at(process: ServiceProcess, tick) -> None:
    async def done() -> bool:
        doc = await process.db["clock"].find_one({"_id": "watermark"})
        return bool(doc) and doc["now"] == tick.data.now

    await wait_until(done, timeout=90, what=f"the watermark at {tick.data.now}")


def sample(text: str, name: str, **labels) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


async def test_snapshots_gauges_api_and_a_restart_without_double_counting(settings):
    first = ServiceProcess("metrics", settings)
    app, _ = build(first)
    async with running(first, app):
        await publish_events(settings, FIRST)
        await applied(first, FIRST)
        await publish(settings, CLOCK, EARLY_TICKS)
        await watermark_at(first, EARLY_TICKS[-1])

    second = ServiceProcess("metrics", settings)
    app2, _ = build(second)
    async with running(second, app2) as client:
        # Redelivery of part of the first run (same ids: the inbox drops them), then the rest.
        await publish_events(settings, FIRST[:6] + SECOND)
        await publish(settings, ALERTS, ALERT_EVENTS)
        await applied(second, FIRST + EARLY_TICKS + SECOND + ALERT_EVENTS)
        await publish(settings, CLOCK, LATE_TICKS)
        await watermark_at(second, LATE_TICKS[-1])
        snapshots = await read_topic(settings, METRICS_SNAPSHOTS, min_count=180)
        api = await client.get("/indicators", params={"scope": COURT, "period": "2025-04"}, headers=auth("operator"))
        api_mid = await client.get("/indicators", params={"scope": "team:fine", "period": "2025-04",
                                                          "as_of": "2025-04-15"}, headers=auth("case_handler"))
        bad = await client.get("/indicators", params={"scope": "court", "period": "2025-13"}, headers=auth("operator"))
        scopes = await client.get("/scopes", headers=auth("downstream"))
        anonymous = await client.get("/indicators", params={"scope": COURT, "period": "2025-04"})
        forbidden = await client.get("/scopes", headers=auth("fund_manager"))
        bulletin = await client.get("/bulletin", params={"period": "2025-04"}, headers=auth("case_handler"))
        text = (await client.get("/metrics")).text

    ids = [m["value"]["id"] for m in snapshots]
    assert len(ids) == len(set(ids)), "a snapshot was published twice"
    for message in snapshots:
        value = message["value"]
        assert message["key"] == value["subject"] == f"{value['data']['scope']}:{value['data']['period']}"

    reference = Metrics()
    await reference.in_batches(EVENTS + day_ticks("2025-04-01", "2025-05-01"))
    expected = sorted(e.to_bytes() for e in reference.emitted)
    got = sorted(json.dumps(m["value"], ensure_ascii=False, separators=(",", ":")).encode() for m in snapshots)
    assert got == expected

    court = next(m["value"]["data"] for m in snapshots
                 if m["value"]["id"] == f"metrics.snapshot:{COURT}:2025-04:2025-04-30")
    assert court["indicators"]["closure_rate"] == 0.6667 and court["indicators"]["avg_days_to_close"] == 94.25
    assert court["counts"]["recovery_rate"] == {"numerator": "245000.00", "denominator": "340000.00"}

    assert api.status_code == 200, api.text
    body = api.json()
    assert body["as_of"] == "2025-04-30"
    rows = {r["id"]: r for r in body["indicators"]}
    assert rows["zb_qualified_rate"]["value"] == 0.5 and rows["zb_qualified_rate"]["met"] is False
    assert rows["closure_rate"]["numerator"] == 6 and rows["closure_rate"]["denominator"] == 9
    assert rows["recovery_rate"]["numerator"] == "245000.00"
    assert api_mid.status_code == 200 and api_mid.json()["as_of"] == "2025-04-15"
    assert bad.status_code == 422
    assert scopes.json()["scopes"] == [COURT, "team:fine", "team:quick"]
    assert anonymous.status_code == 401 and forbidden.status_code == 403

    assert bulletin.status_code == 200 and bulletin.headers["content-type"].startswith("text/html")
    assert "执行质效通报（2025年4月）" in bulletin.text and "<svg" in bulletin.text and "66.67%" in bulletin.text

    assert sample(text, "ecc_indicator", indicator="closure_rate", scope=COURT) == 0.6667
    assert sample(text, "ecc_indicator", indicator="zb_qualified_rate", scope="team:quick") is None  # 0/0
    assert sample(text, "ecc_indicator_ytd", indicator="closure_rate", scope=COURT) == 0.7
    assert sample(text, "ecc_indicator_target", indicator="legal_period_rate") == 0.9
    assert sample(text, "ecc_cases_open", case_type="执", team="quick") == 3.0   # A4 B1 B2
    assert sample(text, "ecc_alerts_open", rule="node.notice", kind="overdue", team="quick") == 1.0
    assert sample(text, "ecc_alerts_open", rule="node.notice", kind="overdue", team="fine") in (None, 0.0)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            assert not any("号" in v for v in s.labels.values()), f"a case label in {s.name}"
