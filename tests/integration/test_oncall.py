"""oncall against the real embedded broker and database, with a local HTTP receiver standing in for the
court's webhook, SMS gateway and WeChat Work bot: routing to the person on duty, grouping of a flood,
escalation to the leader with repeats, ack, close on resolve, Alertmanager's webhook, delivery retries,
and a restart mid-stream that sends nothing twice.

Timing is the rules file's, shortened (grouping wait 0.4 s, escalation after 1.5 s, repeats every 1 s):
the dispatcher runs on wall time, so the tests drive it with small values rather than a fake clock."""
from __future__ import annotations

import asyncio
import copy
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web
from prometheus_client import REGISTRY

from services.oncall import rules
from services.oncall.channels import build_channels
from services.oncall.main import build
from services.oncall.policy import parse_policy
from shared.alerts import alert_raised, alert_resolved
from shared.config import PROJECT_ROOT
from shared.runtime.service import ServiceProcess
from shared.topics import ALERTS, DEADLETTER
from tests.conftest import wait_until
from tests.integration.harness import auth, publish, read_topic, running

pytestmark = pytest.mark.integration

ROSTER_RAW = yaml.safe_load((PROJECT_ROOT / "rules" / "roster.yaml").read_text(encoding="utf-8"))
ROUTING_RAW = yaml.safe_load((PROJECT_ROOT / "rules" / "oncall.yaml").read_text(encoding="utf-8"))


def fast_policy(max_repeats: int = 2, wait: str = "0.4 seconds"):
    routing = copy.deepcopy(ROUTING_RAW)
    routing["grouping"]["wait"] = wait
    routing["escalation"].update(after="1.5 seconds", repeat_every="1 seconds", max_repeats=max_repeats)
    routing["delivery"].update(base_delay="0.2 seconds", max_delay="1 seconds", max_attempts=5, timeout="3 seconds")
    return parse_policy(ROSTER_RAW, routing)


POLICY = fast_policy()
PHONES = {p.phone: pid for pid, p in POLICY.roster.people.items()}
USERIDS = {p.wecom_userid: pid for pid, p in POLICY.roster.people.items() if p.wecom_userid}


class Receiver:
    """The court's gateways on one local port: /webhook, /sms, /wecom; records what arrives."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_next: Counter[str] = Counter()
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        channel = request.path.strip("/")
        body = await request.json()
        if self.fail_next[channel] > 0:
            self.fail_next[channel] -= 1
            return web.json_response({"error": "gateway busy"}, status=503)
        self.received.append({"channel": channel, "body": body, "person": self.person_of(channel, body),
                               "key": request.headers.get("Idempotency-Key")})
        return web.json_response({"errcode": 0, "errmsg": "ok"} if channel == "wecom" else {"code": "0"})

    @staticmethod
    def person_of(channel: str, body: dict[str, Any]) -> str | None:
        if channel == "webhook":
            return body["to"]["person"]
        if channel == "sms":
            return PHONES.get(body["mobile"])
        mentioned = body["text"].get("mentioned_list") or []
        if mentioned:
            return USERIDS.get(mentioned[0])
        return PHONES.get((body["text"].get("mentioned_mobile_list") or [None])[0])

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{channel}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def env(self) -> dict[str, str]:
        base = f"http://127.0.0.1:{self.port}"
        return {"ECC_ONCALL_WEBHOOK_URL": f"{base}/webhook", "ECC_ONCALL_SMS_URL": f"{base}/sms",
                "ECC_ONCALL_WECOM_URL": f"{base}/wecom"}

    def titles(self, person: str | None = None) -> list[str]:
        out = []
        for r in self.received:
            if person is not None and r["person"] != person:
                continue
            body = r["body"]
            out.append(body.get("title") or body.get("content") or body.get("text", {}).get("content", ""))
        return out


@pytest.fixture
async def receiver():
    rec = Receiver()
    await rec.start()
    yield rec
    await rec.runner.cleanup()


def start(settings, receiver: Receiver, policy=POLICY):
    process = ServiceProcess("oncall", settings)
    client = httpx.AsyncClient(timeout=5)
    app, dispatcher = build(process, policy=policy, channels=build_channels(client, receiver.env()),
                            poll_seconds=0.1)
    return process, app, dispatcher


def raised(n: int, rule: str = "node.notice", severity: str = "critical", team: str | None = "quick"):
    kind = "overdue" if severity == "critical" else "due_soon"
    case_no = f"（2026）豫0481执{n + 1}号"
    return alert_raised(source="tests", alert=f"{rule}.{kind}:{case_no}", rule=rule, severity=severity,
                        raised_at=datetime(2026, 11, 20, 9, tzinfo=UTC), summary=f"{case_no} 逾期未发出执行通知书",
                        case_no=case_no, team=team)


def resolved(event):
    return alert_resolved(source="tests", alert=event.data.alert_id, resolved_at=datetime(2026, 11, 21, tzinfo=UTC),
                          reason="已送达")


def on_duty_now() -> dict[str, str]:
    return rules.on_duty(POLICY.roster, [], datetime.now(UTC)).people


async def deliveries(process: ServiceProcess, **query) -> list[dict[str, Any]]:
    return await process.db["deliveries"].find(query).to_list(None)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_flood_of_one_rule_is_one_notification_to_the_officer_and_leader(settings, receiver):
    flood = [raised(n) for n in range(500)]
    warning = raised(900, rule="funds.closed_with_balance", severity="warning")
    await publish(settings, ALERTS, [*flood, warning])
    # A longer grouping wait here: the whole flood joins before the first send, whatever the batching.
    process, app, dispatcher = start(settings, receiver, fast_policy(wait="2 seconds"))
    async with running(process, app, extra=[dispatcher.run]) as http:
        duty = on_duty_now()

        async def all_sent():
            docs = await deliveries(process)
            return len(docs) >= 5 and all(d["state"] == "sent" for d in docs)
        await wait_until(all_sent, timeout=60, what="the initial deliveries")
        await asyncio.sleep(0.5)  # anything extra would arrive now
        ntfs = (await http.get("/notifications", params={"state": "open"}, headers=auth("operator"))).json()
        assert ntfs["total"] == 2
        flood_ntf = next(n for n in ntfs["items"] if n["rule"] == "node.notice")
        assert flood_ntf["alert_count"] == 500 and flood_ntf["roles"] == ["officer", "leader"]
        initial = [r for r in receiver.received if "node.notice" in json.dumps(r["body"], ensure_ascii=False)
                   and "升级" not in json.dumps(r["body"], ensure_ascii=False)]
        # One message per recipient and channel: officer (wecom, sms) and leader (sms, wecom), not 500 each.
        assert Counter((r["person"], r["channel"]) for r in initial) == Counter({
            (duty["officer"], "wecom"): 1, (duty["officer"], "sms"): 1,
            (duty["leader"], "sms"): 1, (duty["leader"], "wecom"): 1})
        assert any("×500" in t for t in receiver.titles(duty["officer"]))
        # The warning (a business rule) went to the officer only.
        funds = [r for r in receiver.received if "funds.closed_with_balance" in json.dumps(r["body"], ensure_ascii=False)]
        assert {r["person"] for r in funds} == {duty["officer"]}
        assert (await http.get("/notifications", headers=auth("case_handler"))).status_code == 403


async def test_unacknowledged_critical_escalates_to_the_leader_and_repeats_until_acked(settings, receiver):
    await publish(settings, ALERTS, [raised(1, rule="funds.overdrawn")])
    process, app, dispatcher = start(settings, receiver, fast_policy(max_repeats=5))
    async with running(process, app, extra=[dispatcher.run]) as http:
        leader = on_duty_now()["leader"]

        def escalations() -> list[str]:
            return [t for t in receiver.titles(leader) if "升级" in t]
        await wait_until(lambda: len(escalations()) >= 2 * 2, timeout=30, what="two escalation steps (sms + wecom)")
        ntf_id = "funds.overdrawn:critical:quick:1"
        detail = (await http.get(f"/notifications/{ntf_id}", headers=auth("technician"))).json()
        assert detail["escalations"] >= 2 and detail["state"] == "open"
        assert {d["step"] for d in detail["deliveries"]} >= {"initial", "escalation.1", "escalation.2"}
        acked = await http.post(f"/notifications/{ntf_id}/ack", json={"note": "已处理"},
                                headers=auth("bureau_chief", sub="leader.zhou"))
        assert acked.status_code == 200, acked.text
        assert acked.json()["acknowledged"]["by"] == "leader.zhou" and acked.json()["outcome"] == "acknowledged"
        count = len(escalations())
        await asyncio.sleep(2.5)  # more than two repeat intervals
        assert len(escalations()) == count, "escalation went on after the ack"
        again = await http.post(f"/notifications/{ntf_id}/ack", json={}, headers=auth("operator", sub="op2"))
        assert again.json()["outcome"] == "repeat" and again.json()["acknowledged"]["by"] == "leader.zhou"
        assert (await http.post("/notifications/nope/ack", json={}, headers=auth("operator"))).status_code == 404
        assert (await http.post(f"/notifications/{ntf_id}/ack", json={},
                                headers=auth("downstream"))).status_code == 403
        assert metric("ecc_oncall_escalations_total", severity="critical") >= 2


async def test_resolving_every_alert_closes_the_notification(settings, receiver):
    first, second = raised(1), raised(2)
    await publish(settings, ALERTS, [first, second])
    process, app, dispatcher = start(settings, receiver)
    async with running(process, app, extra=[dispatcher.run]) as http:
        await wait_until(lambda: len(receiver.received) >= 4, timeout=30, what="the initial sends")
        await publish(settings, ALERTS, [("junk", b"{not json"), resolved(first), resolved(second)])
        ntf_id = "node.notice:critical:quick:1"

        async def closed():
            doc = (await http.get(f"/notifications/{ntf_id}", headers=auth("operator"))).json()
            return doc if doc["state"] == "closed" else None
        doc = await wait_until(closed, timeout=30, what="the notification closed")
        assert doc["open_alerts"] == 0 and doc["close_reason"] == "all alerts resolved"
        await wait_until(lambda: any("已恢复" in t for t in receiver.titles()), timeout=15, what="the resolved notice")
        assert (await http.post(f"/notifications/{ntf_id}/ack", json={}, headers=auth("operator"))).status_code == 409
        history = (await http.get("/notifications/history", headers=auth("operator"))).json()
        assert history["total"] == 1 and history["items"][0]["state"] == "closed"
        letters = await read_topic(settings, DEADLETTER, min_count=1)
        assert [m["value"]["value"] for m in letters] == ["{not json"]
        assert letters[0]["value"]["service"] == "oncall" and letters[0]["value"]["error"]


def am_payload(status: str = "firing", **labels: str) -> dict[str, Any]:
    alert_labels = {"alertname": "ServiceDown", "severity": "critical", "family": "infrastructure",
                    "service": "nodewatch", "instance": "nodewatch:8003", **labels}
    return {
        "version": "4", "groupKey": "{}:{alertname=\"ServiceDown\"}", "truncatedAlerts": 0, "status": status,
        "receiver": "ecc-oncall", "groupLabels": {"alertname": "ServiceDown"}, "commonLabels": alert_labels,
        "commonAnnotations": {"summary": "nodewatch 无响应"}, "externalURL": "http://alertmanager:9093",
        "alerts": [{"status": status, "labels": alert_labels, "annotations": {"summary": "nodewatch 无响应"},
                    "startsAt": "2026-11-27T08:00:00Z",
                    "endsAt": "2026-11-27T08:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus:9090/graph", "fingerprint": "a1b2c3d4e5f60718"}],
    }


async def test_alertmanager_webhook_reaches_the_technician_with_retries(settings, receiver):
    receiver.fail_next["webhook"] = 2  # the court's webhook is down for two attempts
    failures_before = metric("ecc_oncall_delivery_failures_total", channel="webhook")
    process, app, dispatcher = start(settings, receiver)
    async with running(process, app, extra=[dispatcher.run]) as http:
        duty = on_duty_now()
        monitoring = auth("monitoring", sub="alertmanager")
        assert (await http.post("/alertmanager/webhook", json=am_payload(),
                                headers=auth("operator"))).status_code == 403
        assert (await http.post("/alertmanager/webhook", json=am_payload())).status_code == 401
        bad = await http.post("/alertmanager/webhook", json={**am_payload(), "version": "3"}, headers=monitoring)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"].endswith("version")
        nameless = am_payload(alertname="")
        bad = await http.post("/alertmanager/webhook", json=nameless, headers=monitoring)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.alerts.0.labels.alertname"

        first = await http.post("/alertmanager/webhook", json=am_payload(), headers=monitoring)
        assert first.status_code == 200 and first.json()["outcomes"] == {"opened": 1}
        repeat = await http.post("/alertmanager/webhook", json=am_payload(), headers=monitoring)  # repeat_interval
        assert repeat.json()["outcomes"] == {"already_open": 1}
        ntf_id = "ServiceDown:critical:-:1"

        async def technician_reached():
            docs = await deliveries(process, notification_id=ntf_id, step="initial", person=duty["technician"])
            return docs if docs and all(d["state"] == "sent" for d in docs) else None
        docs = await wait_until(technician_reached, timeout=30, what="the technician's deliveries")
        assert {d["channel"] for d in docs} == {"wecom", "webhook"}
        webhook = next(d for d in docs if d["channel"] == "webhook")
        assert [a["outcome"] for a in webhook["attempts"]] == ["failed", "failed", "sent"]
        assert metric("ecc_oncall_delivery_failures_total", channel="webhook") - failures_before == 2
        got = [r for r in receiver.received if r["channel"] == "webhook"]
        assert got[0]["key"] == webhook["_id"] and got[0]["body"]["to"]["role"] == "technician"

        done = await http.post("/alertmanager/webhook", json=am_payload("resolved"), headers=monitoring)
        assert done.json()["outcomes"] == {"closed": 1}
        detail = (await http.get(f"/notifications/{ntf_id}", headers=auth("technician"))).json()
        assert detail["state"] == "closed" and detail["source"] == "alertmanager"
        # An unknown severity must not lose the alert (Alertmanager does not retry a 4xx): taken as a warning.
        odd = am_payload(severity="page", alertname="ECCDiskFilling")
        odd["alerts"][0]["fingerprint"] = "ffff0000aaaa1111"
        taken = await http.post("/alertmanager/webhook", json=odd, headers=monitoring)
        assert taken.status_code == 200 and taken.json()["outcomes"] == {"opened": 1}
        assert (await http.get("/notifications/ECCDiskFilling:warning:-:1",
                               headers=auth("technician"))).json()["roles"] == ["technician"]


async def test_roster_override_and_duty_api(settings, receiver):
    process, app, dispatcher = start(settings, receiver)
    async with running(process, app, extra=[dispatcher.run]) as http:
        now = datetime.now(UTC)
        before = (await http.get("/duty/now", headers=auth("operator"))).json()
        assert set(before["on_duty"]) == {"officer", "technician", "leader"}
        assert "****" in before["on_duty"]["officer"]["phone"]  # operators see masked phone numbers
        other = next(p for p in POLICY.roster.rotations["officer"].people if p != before["on_duty"]["officer"]["id"])
        body = {"id": "cover-1", "role": "officer", "person": other, "reason": "病假顶班",
                "start": (now - timedelta(minutes=1)).isoformat(), "end": (now + timedelta(hours=1)).isoformat()}
        assert (await http.post("/roster/overrides", json=body, headers=auth("technician"))).status_code == 403
        made = await http.post("/roster/overrides", json=body, headers=auth("operator"))
        assert made.status_code == 201, made.text
        assert (await http.post("/roster/overrides", json=body, headers=auth("operator"))).status_code == 200
        someone_else = next(p for p in POLICY.roster.rotations["officer"].people if p != other)
        clash = await http.post("/roster/overrides", json={**body, "person": someone_else}, headers=auth("operator"))
        assert clash.status_code == 409
        bad = await http.post("/roster/overrides", json={**body, "id": "x2", "person": "nobody"},
                              headers=auth("operator"))
        assert bad.status_code == 422 and "nobody" in bad.json()["errors"][0]["message"]
        after = (await http.get("/duty/now", headers=auth("bureau_chief"))).json()
        assert after["on_duty"]["officer"]["id"] == other and after["on_duty"]["officer"]["because"] == "override:cover-1"
        assert "****" not in after["on_duty"]["officer"]["phone"]  # bureau chief: case_read_personal
        later = (await http.get("/duty/now", params={"at": (now + timedelta(hours=2)).isoformat()},
                                headers=auth("operator"))).json()
        assert later["on_duty"]["officer"]["because"] == "rotation"
        # A critical alert now goes to the person covering.
        await publish(settings, ALERTS, [raised(5)])
        await wait_until(lambda: any(r["person"] == other for r in receiver.received), timeout=30,
                         what="the covering officer reached")
        assert (await http.delete("/roster/changes/cover-1", headers=auth("operator"))).status_code == 204
        assert (await http.delete("/roster/changes/cover-1", headers=auth("operator"))).status_code == 404


async def test_restart_mid_stream_sends_nothing_twice(settings, receiver):
    first_half = [raised(n) for n in range(150)] + [raised(n, rule="entrust.supplement") for n in range(50)]
    second_half = [raised(n) for n in range(150, 300)] + [resolved(e) for e in first_half[150:]]
    await publish(settings, ALERTS, first_half)
    process, app, dispatcher = start(settings, receiver)
    async with running(process, app, extra=[dispatcher.run]):
        await wait_until(lambda: len(receiver.received) >= 8, timeout=45, what="the first sends")
        # Stop right after the first escalation step was stored, before its messages all went out.
        await wait_until(lambda: process.db["notifications"].count_documents({"escalations": {"$gte": 1}}),
                         timeout=30, what="an escalation")
    await publish(settings, ALERTS, second_half + first_half[:20])  # redelivered old events too
    process, app, dispatcher = start(settings, receiver)
    async with running(process, app, extra=[dispatcher.run]):
        async def settled():
            docs = await process.db["notifications"].find({}).to_list(None)
            pending = await process.db["deliveries"].count_documents({"state": "pending"})
            return docs if pending == 0 and any(d["state"] == "closed" for d in docs) else None
        ntfs = await wait_until(settled, timeout=45, what="resolves applied and deliveries sent")
        by_id = {n["_id"]: n for n in ntfs}
        assert set(by_id) == {"node.notice:critical:quick:1", "entrust.supplement:critical:quick:1"}
        assert by_id["node.notice:critical:quick:1"]["alert_count"] == 300
        assert by_id["entrust.supplement:critical:quick:1"]["state"] == "closed"
        sent = await deliveries(process, state="sent")
        assert all(d["attempt_count"] == 1 for d in sent)
        # Every message the gateways got belongs to exactly one stored delivery: nothing went twice.
        assert len(receiver.received) == len(sent)
        keys = [r["key"] for r in receiver.received if r["channel"] == "webhook"]
        assert len(keys) == len(set(keys))
        initial = Counter((d["notification_id"], d["person"], d["channel"]) for d in sent if d["step"] == "initial")
        assert set(initial.values()) == {1}
