"""Issue 3 on the real intake: every role against every intake endpoint, bad tokens, masking, audit."""
from __future__ import annotations

import asyncio
import time

import jwt
import pytest

from services.intake.handlers import TEAMS
from services.intake.main import build
from shared.runtime.service import ServiceProcess
from shared.security import Permission, Role, mint_token, recent_audit
from shared.security.access import get_policy
from tests.integration.filings import filing
from tests.integration.harness import auth, running

pytestmark = pytest.mark.integration

CASE = "（2025）豫0481执40号"
NODE = {"type": "node.completed", "data": {"node": "notice_served", "done_at": "2025-03-04T10:00:00+08:00", "by": "h01"}}


async def test_every_role_against_every_intake_endpoint(settings):
    policy = get_policy()
    process = ServiceProcess("intake", settings)
    app, _ = build(process)
    async with running(process, app) as http:
        assert (await http.post("/cases", json=filing(40), headers=auth("window_clerk"))).status_code == 201
        # The case was triaged to team "quick" (what intake learns from ecc.triage.decisions).
        await process.db[TEAMS].insert_one({"_id": CASE, "team": "quick", "track": "simple", "revision": 1})
        seq = 100
        for role in Role:
            team = "quick" if role is Role.CASE_HANDLER else None
            granted = policy.permissions[role]
            seq += 1
            filed = await http.post("/cases", json=filing(seq), headers=auth(role.value, team=team))
            assert filed.status_code == (201 if Permission.CASE_WRITE in granted else 403), (role, filed.text)
            added = await http.post(f"/cases/{CASE}/events", json=dict(NODE, id=f"n-{role.value}"),
                                    headers=auth(role.value, team=team))
            assert added.status_code == (202 if Permission.CASE_EVENTS_WRITE in granted else 403), (role, added.text)
            read = await http.get(f"/cases/{CASE}", headers=auth(role.value, team=team))
            assert read.status_code == (200 if Permission.CASE_READ in granted else 403), (role, read.text)
        # A handler of another team is refused on this case, in both directions.
        other = auth("case_handler", team="fine")
        assert (await http.get(f"/cases/{CASE}", headers=other)).status_code == 403
        assert (await http.post(f"/cases/{CASE}/events", json=dict(NODE, id="n-x"), headers=other)).status_code == 403


async def test_missing_forged_expired_and_none_tokens_get_401(settings):
    process = ServiceProcess("intake", settings)
    app, _ = build(process)
    valid = mint_token("clerk", ["window_clerk"])
    forged = jwt.encode(jwt.decode(valid, options={"verify_signature": False}), "another-secret-of-32-bytes-000000",
                        algorithm="HS256")
    expired = mint_token("clerk", ["window_clerk"], ttl_seconds=1, now=time.time() - 3600)
    unsigned = jwt.encode(jwt.decode(valid, options={"verify_signature": False}), None, algorithm="none")
    async with running(process, app) as http:
        assert (await http.post("/cases", json=filing(50))).status_code == 401
        for bad in (forged, expired, unsigned, "garbage"):
            answer = await http.post("/cases", json=filing(50), headers={"Authorization": f"Bearer {bad}"})
            assert answer.status_code == 401, answer.text
            assert answer.headers.get("www-authenticate", "").lower().startswith("bearer")
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/metrics")).status_code == 200
        assert await process.db["cases"].count_documents({}) == 0


async def test_personal_data_masked_for_operator_and_audit_records_actor(settings):
    process = ServiceProcess("intake", settings)
    app, _ = build(process)
    body = filing(60)
    id_no = body["applicants"][0]["id_no"]
    async with running(process, app) as http:
        assert (await http.post("/cases", json=body, headers=auth("window_clerk", sub="clerk-7"))).status_code == 201
        as_operator = await http.get("/cases/(2025)豫0481执60号", headers=auth("operator", sub="op-3"))
        as_clerk = await http.get("/cases/(2025)豫0481执60号", headers=auth("window_clerk", sub="clerk-7"))
        assert id_no not in as_operator.text and "13812345678" not in as_operator.text
        assert as_operator.json()["filing"]["applicants"][0]["id_no"].startswith(id_no[:3])
        assert as_clerk.json()["filing"]["applicants"][0]["id_no"] == id_no

        async def audited():
            entries = await recent_audit(process.db, "（2025）豫0481执60号")
            return entries if len(entries) >= 3 else None

        entries = await asyncio.wait_for(_poll(audited), timeout=10)
    actions = {(e["actor"] if "actor" in e else e.get("sub"), e["action"]) for e in entries}
    assert ("clerk-7", "write") in actions and ("op-3", "read") in actions and ("clerk-7", "read") in actions


async def _poll(probe):
    while True:
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.2)
