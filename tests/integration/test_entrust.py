"""entrust (事项委托 / 督办) against the real embedded broker and database: alerts on the topic,
dead letters with reasons, the POST endpoints through the outbox, and a restart mid-stream."""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import pytest

from services.entrust.main import build
from shared.contract.envelope import Event, make_event
from shared.runtime.service import ServiceProcess
from shared.topics import ALERTS, CLOCK, DEADLETTER, ENTRUST_EVENTS
from tests.conftest import wait_until
from tests.integration.harness import auth, of_type, publish, read_topic, running

pytestmark = pytest.mark.integration

CASE = "（2025）豫0481执21号"


def at(day: str, clock: str = "10:00:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}+08:00")


def ev(type_: str, subject: str, data: dict, when: datetime, id_: str) -> Event:
    return make_event(type=type_, subject=subject, time=when, data=data, source="tests", id=id_)


def received(eid: str, when: datetime) -> Event:
    return ev("entrust.received", eid, {"entrust_id": eid, "case_no": "（2025）粤0106执88号",
                                        "counterpart_court": "广州市天河区人民法院", "matter": "送达执行通知书",
                                        "at": when.isoformat()}, when, f"recv-{eid}")


def sent(eid: str, when: datetime, due_on: str) -> Event:
    return ev("entrust.sent", eid, {"entrust_id": eid, "case_no": CASE, "counterpart_court": "郑州市金水区人民法院",
                                    "matter": "查询被执行人房产", "at": when.isoformat(), "due_on": due_on},
              when, f"sent-{eid}")


def step(kind: str, eid: str, when: datetime, tag: str = "") -> Event:
    return ev(f"entrust.{kind}", eid, {"entrust_id": eid, "at": when.isoformat()}, when, f"{kind}-{eid}{tag}")


def issued(item: str, when: datetime, due_on: str, level: str = "high", team: str = "fine") -> Event:
    return ev("supervision.issued", item, {"item_id": item, "case_no": CASE, "level": level, "to_team": team,
                                           "issued_at": when.isoformat(), "due_on": due_on}, when, f"issued-{item}")


def replied(item: str, when: datetime, tag: str = "") -> Event:
    return ev("supervision.replied", item, {"item_id": item, "replied_at": when.isoformat(), "by": "h-017"},
              when, f"replied-{item}{tag}")


def tick(when: datetime) -> Event:
    return make_event(type="clock.tick", subject="clock", time=when, data={"now": when.isoformat()},
                      source="tests", id=f"clock.tick:{when.isoformat()}")


def daily(start: str, days: int) -> list[Event]:
    first = at(start, "12:00:00")
    return [tick(first + timedelta(days=n)) for n in range(days)]


def facts() -> list[Event]:
    return [
        received("E-2", at("2025-03-03")),                       # incoming: warn 03-18, due 04-02
        sent("E-1", at("2025-03-03"), "2025-03-20"),             # outgoing: warn 03-13, due 03-20
        issued("S-1", at("2025-03-04"), "2025-03-10"),           # supervision: warn 03-07, due 03-10
        step("replied", "E-1", at("2025-03-12")),                # E-1 answered before its warning
    ]


EXPECTED_ALERTS = {
    "alert.raised:entrust.incoming_reply.due_soon:E-2",
    "alert.raised:entrust.incoming_reply.overdue:E-2",
    "alert.raised:supervision.reply.due_soon:S-1",
    "alert.raised:supervision.reply.overdue:S-1",
}


def ids_once(messages: list[dict]) -> list[str]:
    ids = [m["value"]["id"] for m in messages]
    twice = [i for i, n in Counter(ids).items() if n > 1]
    assert not twice, f"published twice: {twice}"
    return ids


async def test_alerts_dead_letters_and_the_read_api(settings):
    process = ServiceProcess("entrust", settings)
    app, _ = build(process)
    async with running(process, app) as http:
        impossible = [
            step("replied", "E-404", at("2025-03-05")),           # reply to an unknown entrust id
            step("returned", "E-2", at("2025-04-20")),
            step("returned", "E-2", at("2025-04-21"), tag="-2"),  # a second return
            step("replied", "E-2", at("2025-04-22")),             # after the return
            replied("S-404", at("2025-03-05")),                   # supervision reply to an unknown item
        ]
        await publish(settings, ENTRUST_EVENTS, facts())

        async def opened() -> bool:
            return await process.db["entrusts"].count_documents({}) == 2

        await wait_until(opened, what="the entrusts stored")
        await publish(settings, CLOCK, daily("2025-03-05", 30))      # to 04-03: past every due
        alerts = await read_topic(settings, ALERTS, min_count=len(EXPECTED_ALERTS))
        assert set(ids_once(alerts)) == EXPECTED_ALERTS
        overdue = next(m["value"] for m in alerts if m["value"]["id"].endswith("supervision.reply.overdue:S-1"))
        assert m_key(alerts, overdue["id"]) == "supervision.reply.overdue:S-1"
        data = overdue["data"]
        assert data["severity"] == "critical" and data["team"] == "fine" and data["case_no"] == CASE
        assert data["raised_at"] == "2025-03-11T12:00:00+08:00" and data["due_at"] == "2025-03-10T23:59:59+08:00"
        assert data["summary"] == "督办事项S-1逾期未回复（应于2025-03-10前）"

        await publish(settings, ENTRUST_EVENTS, impossible)
        letters = await read_topic(settings, DEADLETTER, min_count=4)
        reasons = {json.loads(m["value"]["value"])["id"]: m["value"]["error"] for m in letters}
        assert set(reasons) == {"replied-E-404", "returned-E-2-2", "replied-E-2", "replied-S-404"}
        assert "unknown entrust E-404" in reasons["replied-E-404"]
        assert reasons["returned-E-2-2"].startswith("a second return")
        assert "after return" in reasons["replied-E-2"]
        assert "unknown supervision item S-404" in reasons["replied-S-404"]
        assert all(m["value"]["service"] == "entrust" for m in letters)

        # The return resolved E-2's alerts.
        alerts = await read_topic(settings, ALERTS, min_count=len(EXPECTED_ALERTS) + 2)
        assert {"alert.resolved:entrust.incoming_reply.due_soon:E-2",
                "alert.resolved:entrust.incoming_reply.overdue:E-2"} <= set(ids_once(alerts))

        listing = await http.get("/entrusts", params={"direction": "incoming"}, headers=auth("operator"))
        assert listing.status_code == 200, listing.text
        (item,) = listing.json()["items"]
        assert (item["entrust_id"], item["state"], item["direction_zh"]) == ("E-2", "returned", "受托")
        (deadline,) = item["deadlines"]
        assert deadline["due_at"] == "2025-04-02T23:59:59+08:00" and deadline["state"] == "resolved"
        outgoing = (await http.get("/entrusts", params={"direction": "outgoing"}, headers=auth("operator"))).json()
        assert outgoing["items"][0]["state"] == "replied" and outgoing["items"][0]["due_on"] == "2025-03-20"
        one = (await http.get("/supervision/S-1", headers=auth("bureau_chief"))).json()
        assert one["overdue"] is True and one["chain"]["reply_path"][-1]["level"] == "high"
        assert (await http.get("/supervision", headers=auth("case_handler", "fine"))).json()["total"] == 1
        assert (await http.get("/supervision", headers=auth("case_handler", "quick"))).json()["total"] == 0
        assert (await http.get("/supervision/S-1", headers=auth("case_handler", "quick"))).status_code == 403
        open_alerts = (await http.get("/alerts", headers=auth("operator"))).json()
        assert {a["alert_id"] for a in open_alerts["items"]} == {
            "supervision.reply.due_soon:S-1", "supervision.reply.overdue:S-1"}
        assert (await http.get("/entrusts")).status_code == 401


def m_key(messages: list[dict], event_id: str) -> str | None:
    return next(m["key"] for m in messages if m["value"]["id"] == event_id)


SENT_BODY = {"entrust_id": "E-10", "case_no": "(2025)豫0481执21号", "counterpart_court": "郑州市金水区人民法院",
             "matter": "冻结被执行人银行账户", "at": "2025-06-03T09:00:00+08:00"}


async def test_post_endpoints_write_through_the_outbox_and_the_service_reads_them_back(settings):
    process = ServiceProcess("entrust", settings)
    app, _ = build(process)
    operator = auth("operator")
    async with running(process, app) as http:
        first = await http.post("/entrusts/outgoing", json=SENT_BODY, headers=operator)
        assert first.status_code == 202, first.text
        assert first.json() == {"event_id": "entrust.sent:E-10", "type": "entrust.sent", "subject": "E-10",
                                "state": "pending"}
        assert (await http.post("/entrusts/outgoing", json=SENT_BODY, headers=operator)).status_code == 200
        other = await http.post("/entrusts/outgoing", json={**SENT_BODY, "matter": "另一事项"}, headers=operator)
        assert other.status_code == 409 and other.json()["error"] == "event_conflict"
        as_incoming = await http.post("/entrusts/incoming", json=SENT_BODY, headers=operator)
        assert as_incoming.status_code == 409 and as_incoming.json()["error"] == "already_opened"

        # Steps judged at once, before the service has read the opening back.
        reply = await http.post("/entrusts/E-10/events", json={"type": "entrust.replied", "id": "reply-1",
                                                               "at": "2025-06-10T10:00:00+08:00"}, headers=operator)
        assert reply.status_code == 202 and reply.json()["state"] == "replied"
        again = await http.post("/entrusts/E-10/events", json={"type": "entrust.replied", "id": "reply-1",
                                                               "at": "2025-06-10T10:00:00+08:00"}, headers=operator)
        assert again.status_code == 200
        done = await http.post("/entrusts/E-10/events", json={"type": "entrust.returned", "note": "无可执行财产"},
                               headers=operator)
        assert done.status_code == 202 and done.json()["state"] == "returned"
        twice = await http.post("/entrusts/E-10/events", json={"type": "entrust.returned"}, headers=operator)
        assert twice.status_code == 409 and twice.json()["error"] == "second_return"
        assert "不能重复退回" in twice.json()["message_zh"]
        unknown = await http.post("/entrusts/E-99/events", json={"type": "entrust.completed"}, headers=operator)
        assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_id"

        bad = await http.post("/entrusts/outgoing", json={**SENT_BODY, "case_no": "2025豫0481执21号",
                                                          "at": "2025-06-03 09:00", "due_on": "20250703"},
                              headers=operator)
        assert bad.status_code == 422
        fields = {e["field"]: e for e in bad.json()["errors"]}
        assert {"body.case_no", "body.at", "body.due_on"} <= set(fields)
        assert all(e["message"] and e["message_zh"] for e in fields.values())
        past = await http.post("/entrusts/outgoing", json={**SENT_BODY, "entrust_id": "E-11", "due_on": "2025-06-01"},
                               headers=operator)
        assert past.status_code == 422 and past.json()["errors"][0]["field"] == "body.due_on"
        bad_step = await http.post("/entrusts/E-10/events", json={"type": "entrust.teleported"}, headers=operator)
        assert bad_step.status_code == 422 and bad_step.json()["errors"][0]["field"] == "body.type"

        # Supervision: issued, replied; a chain of two levels on one case.
        issued_body = {"item_id": "S-10", "case_no": CASE, "level": "high", "to_team": "fine",
                       "issued_at": "2025-06-03T09:00:00+08:00", "due_on": "2025-06-13"}
        assert (await http.post("/supervision", json=issued_body, headers=operator)).status_code == 202
        own = {**issued_body, "item_id": "S-11", "level": "own", "due_on": "2025-06-10"}
        assert (await http.post("/supervision", json=own, headers=operator)).status_code == 202
        answer = await http.post("/supervision/S-11/reply", json={"replied_at": "2025-06-09T16:00:00+08:00"},
                                 headers=auth("operator", sub="h-017"))
        assert answer.status_code == 202 and answer.json()["state"] == "replied"
        second = await http.post("/supervision/S-11/reply", json={}, headers=operator)
        assert second.status_code == 409 and second.json()["error"] == "second_reply"
        assert (await http.post("/supervision", json=issued_body, headers=auth("bureau_chief"))).status_code == 403
        assert (await http.post("/supervision/S-99/reply", json={}, headers=operator)).status_code == 404

        async def applied() -> bool:
            e10 = await process.db["entrusts"].find_one({"_id": "E-10"})
            s11 = await process.db["supervision"].find_one({"_id": "S-11"})
            return bool(e10 and e10["state"] == "returned" and s11 and s11["state"] == "replied")

        await wait_until(applied, what="the service to read its own events back")

        async def audited() -> bool:  # every write names its case in the audit trail, applied yet or not
            return await process.db["audit"].count_documents({"case_no": CASE, "action": "write"}) >= 8

        await wait_until(audited, what="the audit entries of the writes")
        body = (await http.get("/entrusts/E-10", headers=operator)).json()
        assert [h["type"] for h in body["history"]] == ["entrust.sent", "entrust.replied", "entrust.returned"]
        assert body["history"][-1]["note"] == "无可执行财产"
        chain = (await http.get("/supervision/S-10", headers=operator)).json()["chain"]
        assert [i["level"] for i in chain["items"]] == ["high", "own"]
        assert [i["state"] for i in chain["items"]] == ["issued", "replied"]
        assert chain["waiting_at"] == "high" and chain["complete"] is False
        assert [p["level"] for p in chain["reply_path"]] == ["own", "intermediate", "high"]
        assert (await http.get("/supervision/S-11", headers=operator)).json()["replied"]["by"] == "h-017"

        published = await read_topic(settings, ENTRUST_EVENTS, min_count=6)
        ids = ids_once(published)
        assert len(ids) == 6
        e10 = [m["value"]["type"] for m in published if m["key"] == "E-10"]   # per key: in the order accepted
        assert e10 == ["entrust.sent", "entrust.replied", "entrust.returned"]
        assert all(m["key"] == m["value"]["subject"] for m in published)
        assert all(m["value"]["source"] == "ecc/entrust" for m in published)
        letters = await read_topic(settings, DEADLETTER, quiet_seconds=0.5)
        assert letters == []  # the API refused what the lifecycle refuses: nothing impossible was written


@pytest.mark.slow
async def test_a_restart_mid_stream_raises_nothing_twice(settings):
    stream = facts() + daily("2025-03-05", 12)
    first = ServiceProcess("entrust", settings)
    app, _ = build(first)
    async with running(first, app):
        await publish(settings, ENTRUST_EVENTS, facts())
        await publish(settings, CLOCK, stream[4:12])

        async def some_raised() -> bool:
            return await first.db["alerts"].count_documents({}) >= 2

        await wait_until(some_raised, what="the first alerts")
    second = ServiceProcess("entrust", settings)
    app2, _ = build(second)
    async with running(second, app2):
        await publish(settings, ENTRUST_EVENTS, facts())               # redelivered facts (same ids)
        await publish(settings, CLOCK, stream[8:] + daily("2025-03-17", 20))
        alerts = await read_topic(settings, ALERTS, min_count=len(EXPECTED_ALERTS), quiet_seconds=1.5)
    assert set(ids_once(alerts)) == EXPECTED_ALERTS
    assert of_type(alerts, "alert.resolved") == []
