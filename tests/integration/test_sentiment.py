"""sentiment (舆情) against the real embedded broker and database: alerts on the topic, dead letters
with reasons, the POST endpoints through the outbox, the case team from triage, and a restart."""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import pytest

from services.sentiment.main import build
from shared.contract.envelope import Event, make_event
from shared.runtime.service import ServiceProcess
from shared.topics import ALERTS, CLOCK, DEADLETTER, SENTIMENT_EVENTS, TRIAGE_DECISIONS
from tests.conftest import wait_until
from tests.integration.harness import auth, of_type, publish, read_topic, running

pytestmark = pytest.mark.integration

CASE = "（2025）豫0481执31号"
CAPTURED = datetime.fromisoformat("2025-06-02T08:00:00+08:00")


def ev(type_: str, subject: str, data: dict, when: datetime, id_: str) -> Event:
    return make_event(type=type_, subject=subject, time=when, data=data, source="tests", id=id_)


def registered(item: str, title: str, text: str = "网友发帖", minutes: int = 0, case_no: str | None = None) -> Event:
    captured = CAPTURED + timedelta(minutes=minutes)
    data = {"item_id": item, "captured_at": captured.isoformat(), "channel": "微博", "title": title, "text": text}
    if case_no:
        data["case_no"] = case_no
    return ev("sentiment.registered", item, data, captured + timedelta(minutes=20), f"reg-{item}")


def step(kind: str, item: str, hours: float, tag: str = "", **extra) -> Event:
    when = CAPTURED + timedelta(hours=hours)
    return ev(f"sentiment.{kind}", item, {"item_id": item, "at": when.isoformat(), "by": "局长赵六", **extra},
              when, f"{kind}-{item}{tag}")


def decided(case_no: str, team: str, revision: int = 1) -> Event:
    when = CAPTURED - timedelta(days=10)
    return ev("triage.decided", case_no, {"case_no": case_no, "track": "complex", "reasons": ["needs_disposal"],
                                          "team": team, "decided_at": when.isoformat(), "revision": revision,
                                          "policy_version": "fs-2025.1"}, when, f"triage:{case_no}:{revision}")


def hourly(hours: int, start: int = 0) -> list[Event]:
    return [make_event(type="clock.tick", subject="clock", time=CAPTURED + timedelta(hours=h),
                       data={"now": (CAPTURED + timedelta(hours=h)).isoformat()}, source="tests",
                       id=f"clock.tick:{(CAPTURED + timedelta(hours=h)).isoformat()}") for h in range(start, hours)]


def items() -> list[Event]:
    return [
        registered("Y-1", "当事人扬言跳楼", text="涉(2025)豫0481执31号，申请人情绪激动"),   # major, linked
        registered("Y-2", "网友投诉执行拖延", minutes=10),                              # serious
        registered("Y-3", "咨询执行款发放", minutes=20),                                # general
        step("approved", "Y-2", 3),                                                     # serious approved in time
    ]


EXPECTED = {
    "alert.raised:sentiment.major:Y-1",
    "alert.raised:sentiment.serious:Y-2",
    "alert.raised:sentiment.response.overdue:Y-1",   # 5 hours, not approved
    "alert.raised:sentiment.response.overdue:Y-3",   # 48 hours (ticks to 50 h)
}


def ids_once(messages: list[dict]) -> list[str]:
    ids = [m["value"]["id"] for m in messages]
    twice = [i for i, n in Counter(ids).items() if n > 1]
    assert not twice, f"published twice: {twice}"
    return ids


async def team_known(process: ServiceProcess, case_no: str, team: str) -> bool:
    doc = await process.db["case_teams"].find_one({"_id": case_no})
    return doc is not None and doc["team"] == team


async def test_alerts_dead_letters_and_the_open_list(settings):
    process = ServiceProcess("sentiment", settings)
    app, _ = build(process)
    async with running(process, app) as http:
        await publish(settings, TRIAGE_DECISIONS, [decided(CASE, "fine")])
        await wait_until(lambda: team_known(process, CASE, "fine"), what="the case team")
        await publish(settings, SENTIMENT_EVENTS, items())

        async def registered_all() -> bool:
            return await process.db["items"].count_documents({}) == 3

        await wait_until(registered_all, what="the items stored")
        await publish(settings, CLOCK, hourly(10))

        async def caught_up() -> bool:
            clock = await process.db["clock"].find_one({"_id": "watermark"})
            return clock is not None and clock["now"] == CAPTURED + timedelta(hours=9)

        await wait_until(caught_up, what="the watermark at 17:00")
        assert await process.db["alerts"].count_documents({"rule": "sentiment.response"}) == 1
        listing = (await http.get("/sentiment/items", headers=auth("operator"))).json()
        assert [i["item_id"] for i in listing["items"]] == ["Y-1", "Y-2", "Y-3"]   # by severity
        y1, y2, y3 = listing["items"]
        assert listing["watermark"] == "2025-06-02T17:00:00+08:00"
        assert (y1["level"], y1["response"]["state"], y1["response"]["seconds_left"]) == ("major", "overdue", -4 * 3600)
        assert y1["case_no"] == CASE and y1["matched"] == ["跳楼"]
        assert (y2["response"]["state"], y2["response"]["seconds_left"]) == ("on_time", None)
        assert y3["response"]["seconds_left"] == (48 * 3600 + 20 * 60) - 9 * 3600
        assert listing["by_level"] == {"major": 1, "serious": 1, "general": 1}

        await publish(settings, CLOCK, hourly(50, start=10))
        alerts = await read_topic(settings, ALERTS, min_count=len(EXPECTED))
        assert set(ids_once(alerts)) == EXPECTED
        major = next(m["value"] for m in alerts if m["value"]["id"] == "alert.raised:sentiment.major:Y-1")
        assert major["data"]["severity"] == "critical" and major["data"]["case_no"] == CASE
        assert major["data"]["team"] == "fine" and "跳楼" in major["data"]["summary"]
        assert major["data"]["raised_at"] == "2025-06-02T08:20:00+08:00"
        overdue = next(m["value"] for m in alerts if m["value"]["id"].endswith("response.overdue:Y-1"))
        assert overdue["data"]["due_at"] == "2025-06-02T13:00:00+08:00"
        assert overdue["data"]["raised_at"] == "2025-06-02T14:00:00+08:00" and overdue["data"]["team"] == "fine"

        await publish(settings, SENTIMENT_EVENTS, [
            step("approved", "Y-404", 1),                       # unknown item
            step("transferred", "Y-3", 51, to_team="quick"),    # before approval
            step("approved", "Y-2", 4, tag="-again"),           # a second approval
            step("approved", "Y-1", 52), step("transferred", "Y-1", 53), step("resolved", "Y-1", 60),
            step("approved", "Y-1", 61, tag="-late"),           # after resolution
        ])
        letters = await read_topic(settings, DEADLETTER, min_count=4)
        reasons = {json.loads(m["value"]["value"])["id"]: m["value"]["error"] for m in letters}
        assert set(reasons) == {"approved-Y-404", "transferred-Y-3", "approved-Y-2-again", "approved-Y-1-late"}
        assert "unknown sentiment item" in reasons["approved-Y-404"]
        assert "before approval" in reasons["transferred-Y-3"] and "审签" in reasons["transferred-Y-3"]
        assert reasons["approved-Y-2-again"].startswith("a second approval")
        assert "after resolution" in reasons["approved-Y-1-late"]
        alerts = await read_topic(settings, ALERTS, min_count=len(EXPECTED) + 2)
        assert {"alert.resolved:sentiment.response.overdue:Y-1", "alert.resolved:sentiment.major:Y-1"} <= set(
            ids_once(alerts))
        y1 = (await http.get("/sentiment/items/Y-1", headers=auth("operator"))).json()
        assert y1["state"] == "resolved" and y1["team"] == "fine"           # transferred to the triage team
        assert y1["response"]["state"] == "late"
        assert (await http.get("/sentiment/items/Y-1", headers=auth("case_handler", "fine"))).status_code == 200
        assert (await http.get("/sentiment/items/Y-1", headers=auth("case_handler", "quick"))).status_code == 403
        assert (await http.get("/sentiment/items", headers=auth("downstream"))).status_code == 403


REGISTER = {"item_id": "Y-20", "captured_at": "2025-06-02T08:00:00+08:00", "channel": "抖音",
            "title": "被执行人家属围堵法院", "text": "视频称（2025）豫0481执31号执行现场有人围堵",
            "url": "https://video.example/v/20"}


async def test_post_endpoints_write_through_the_outbox_and_are_judged_in_order(settings):
    process = ServiceProcess("sentiment", settings)
    app, _ = build(process)
    operator, chief = auth("operator"), auth("bureau_chief", sub="局长赵六")
    async with running(process, app) as http:
        await publish(settings, TRIAGE_DECISIONS, [decided(CASE, "quick"), decided(CASE, "fine", revision=2)])
        await wait_until(lambda: team_known(process, CASE, "fine"), what="the case team")
        first = await http.post("/sentiment/items", json=REGISTER, headers=operator)
        assert first.status_code == 202, first.text
        assert first.json() == {"event_id": "sentiment.registered:Y-20", "type": "sentiment.registered",
                                "item_id": "Y-20", "state": "registered", "level": "major", "case_nos": [CASE]}
        assert (await http.post("/sentiment/items", json=REGISTER, headers=operator)).status_code == 200
        changed = await http.post("/sentiment/items", json={**REGISTER, "title": "另一条"}, headers=operator)
        assert changed.status_code == 409 and changed.json()["error"] == "event_conflict"

        early = await http.post("/sentiment/items/Y-20/transfer", json={}, headers=operator)
        assert early.status_code == 409 and early.json()["error"] == "not_approved"
        assert (await http.post("/sentiment/items/Y-20/approve", json={}, headers=operator)).status_code == 403
        approved = await http.post("/sentiment/items/Y-20/approve", json={"at": "2025-06-02T10:00:00+08:00"},
                                   headers=chief)
        assert approved.status_code == 202 and approved.json()["state"] == "approved"
        twice = await http.post("/sentiment/items/Y-20/approve", json={}, headers=chief)
        assert twice.status_code == 409 and twice.json()["error"] == "already_approved"
        moved = await http.post("/sentiment/items/Y-20/transfer", json={"at": "2025-06-02T10:30:00+08:00"},
                                headers=operator)
        assert moved.status_code == 202 and moved.json()["to_team"] == "fine"   # revision 2 of the triage decision
        done = await http.post("/sentiment/items/Y-20/resolve", json={"note": "已回应并澄清"}, headers=operator)
        assert done.status_code == 202 and done.json()["state"] == "resolved"
        assert (await http.post("/sentiment/items/Y-99/approve", json={}, headers=chief)).status_code == 404

        bad = await http.post("/sentiment/items", json={**REGISTER, "item_id": "Y-21", "url": "ftp://x",
                                                        "captured_at": "yesterday", "title": ""}, headers=operator)
        assert bad.status_code == 422
        fields = {e["field"] for e in bad.json()["errors"]}
        assert {"body.url", "body.captured_at", "body.title"} <= fields
        assert all(e["message_zh"] for e in bad.json()["errors"])
        bad_step = await http.post("/sentiment/items/Y-20/resolve", json={"at": "2025-06-02"}, headers=operator)
        assert bad_step.status_code == 422 and bad_step.json()["errors"][0]["field"] == "body.at"

        async def applied() -> bool:
            doc = await process.db["items"].find_one({"_id": "Y-20"})
            return bool(doc and doc["state"] == "resolved")

        await wait_until(applied, what="the service to read its own events back")

        async def audited() -> bool:  # register, approve, transfer, resolve: each names the linked case
            return await process.db["audit"].count_documents({"case_no": CASE, "action": "write"}) >= 4

        await wait_until(audited, what="the audit entries of the writes")
        body = (await http.get("/sentiment/items/Y-20", headers=operator)).json()
        assert [h["type"] for h in body["history"]] == [
            "sentiment.registered", "sentiment.approved", "sentiment.transferred", "sentiment.resolved"]
        assert body["approved"]["by"] == "局长赵六" and body["team"] == "fine"
        assert body["text"].startswith("视频称")
        published = await read_topic(settings, SENTIMENT_EVENTS, min_count=4)
        assert len(ids_once(published)) == 4 and all(m["key"] == "Y-20" for m in published)
        alerts = await read_topic(settings, ALERTS, min_count=2)
        assert set(ids_once(alerts)) == {"alert.raised:sentiment.major:Y-20", "alert.resolved:sentiment.major:Y-20"}
        resolved_list = (await http.get("/sentiment/items", params={"state": "resolved"}, headers=operator)).json()
        assert [i["item_id"] for i in resolved_list["items"]] == ["Y-20"]
        assert (await read_topic(settings, DEADLETTER, quiet_seconds=0.5)) == []


@pytest.mark.slow
async def test_a_restart_mid_stream_raises_nothing_twice(settings):
    first = ServiceProcess("sentiment", settings)
    app, _ = build(first)
    async with running(first, app):
        await publish(settings, TRIAGE_DECISIONS, [decided(CASE, "fine")])
        await publish(settings, SENTIMENT_EVENTS, items())
        await publish(settings, CLOCK, hourly(8))

        async def some_raised() -> bool:
            return await first.db["alerts"].count_documents({}) >= 3

        await wait_until(some_raised, what="the first alerts")
    second = ServiceProcess("sentiment", settings)
    app2, _ = build(second)
    async with running(second, app2):
        await publish(settings, SENTIMENT_EVENTS, items())            # redelivered (same ids)
        await publish(settings, CLOCK, hourly(50, start=4))            # overlaps the ticks already read
        alerts = await read_topic(settings, ALERTS, min_count=len(EXPECTED), quiet_seconds=1.5)
    assert set(ids_once(alerts)) == EXPECTED
    assert of_type(alerts, "alert.resolved") == []
