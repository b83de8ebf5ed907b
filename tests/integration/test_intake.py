"""intake against the real embedded broker and database (issue 2's done-means)."""
from __future__ import annotations

import asyncio

import pytest

from services.intake.main import build
from shared.runtime.service import ServiceProcess
from shared.topics import CASE_EVENTS
from tests.conftest import wait_until
from tests.integration.filings import filing
from tests.integration.harness import auth, of_type, read_topic, running

pytestmark = pytest.mark.integration


async def test_valid_filing_is_published_once_with_normalised_case_number(settings):
    process = ServiceProcess("intake", settings)
    app, _ = build(process)
    async with running(process, app) as http:
        first = await http.post("/cases", json=filing(1), headers=auth("window_clerk"))
        assert first.status_code == 201, first.text
        assert first.json()["case_no"] == "（2025）豫0481执1号"
        repeat = await http.post("/cases", json=filing(1), headers=auth("window_clerk"))
        assert repeat.status_code == 200
        assert repeat.json() == first.json()
        different = await http.post("/cases", json=filing(1, target_amount="9.00"), headers=auth("window_clerk"))
        assert different.status_code == 409
        assert different.json()["error"] == "case_conflict"
        messages = await read_topic(settings, CASE_EVENTS, min_count=1)
    filed = of_type(messages, "case.filed")
    assert len(filed) == 1
    assert filed[0]["key"] == "（2025）豫0481执1号"
    assert filed[0]["value"]["subject"] == "（2025）豫0481执1号"
    assert filed[0]["value"]["id"] == first.json()["event_id"]
    assert filed[0]["value"]["data"]["target_amount"] == "125000.50"


BAD_FILINGS = {
    "bad case number": (filing(2, case_no="2025豫0481执2号"), "case_no"),
    "bad ID check digit": (filing(3, applicants=[{"name": "李娜", "kind": "person", "id_no": "410481198001011230"}]),
                           "applicants.0.id_no"),
    "negative amount": (filing(4, target_amount="-5.00"), "target_amount"),
    "float amount": (filing(5, target_amount=125000.5), "target_amount"),
    "three decimals": (filing(6, target_amount="1.005"), "target_amount"),
    "missing field": ({k: v for k, v in filing(7).items() if k != "basis"}, "basis"),
    "boolean as string": (filing(8, case_type=True), "case_type"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILINGS))
async def test_bad_filing_gets_field_level_422_and_nothing_is_stored(settings, name):
    body, field = BAD_FILINGS[name]
    process = ServiceProcess("intake", settings)
    app, store = build(process)
    async with running(process, app) as http:
        answer = await http.post("/cases", json=body, headers=auth("window_clerk"))
        assert answer.status_code == 422, answer.text
        errors = answer.json()["errors"]
        assert any(e["field"].endswith(field) for e in errors), errors
        assert all(e["message"] and e["message_zh"] for e in errors)
        assert await process.db["cases"].count_documents({}) == 0
        assert await process.db["outbox"].count_documents({}) == 0


async def test_later_events_unknown_type_and_oversized_body_are_refused(settings):
    process = ServiceProcess("intake", settings)
    app, _ = build(process)
    async with running(process, app) as http:
        assert (await http.post("/cases", json=filing(10), headers=auth("window_clerk"))).status_code == 201
        case = "(2025)豫0481执10号"
        node = {"type": "node.completed", "id": "flow-1",
                "data": {"node": "notice_served", "done_at": "2025-03-04T10:00:00+08:00", "by": "h01"}}
        ok = await http.post(f"/cases/{case}/events", json=node, headers=auth("window_clerk"))
        assert ok.status_code == 202, ok.text
        assert ok.json() == {"case_no": "（2025）豫0481执10号", "event_id": "flow-1", "type": "node.completed"}
        again = await http.post(f"/cases/{case}/events", json=node, headers=auth("window_clerk"))
        assert again.status_code == 202
        reused = dict(node, data=dict(node["data"], by="h02"))
        assert (await http.post(f"/cases/{case}/events", json=reused, headers=auth("window_clerk"))).status_code == 409
        unknown = await http.post(f"/cases/{case}/events", json={"type": "case.teleported", "data": {}},
                                  headers=auth("window_clerk"))
        assert unknown.status_code == 422
        assert any(e["field"] == "body.type" for e in unknown.json()["errors"])
        bad_node = await http.post(f"/cases/{case}/events", json={"type": "node.completed", "data": {"node": "x"}},
                                   headers=auth("window_clerk"))
        assert bad_node.status_code == 422
        assert {e["field"] for e in bad_node.json()["errors"]} >= {"body.data.node", "body.data.done_at"}
        elsewhere = await http.post("/cases/(2025)豫0481执999号/events", json=node, headers=auth("window_clerk"))
        assert elsewhere.status_code == 409  # the id is taken, by another case
        missing_case = await http.post("/cases/(2025)豫0481执999号/events", json=dict(node, id="flow-2"),
                                       headers=auth("window_clerk"))
        assert missing_case.status_code == 404
        huge = filing(11, basis={"doc_no": "x" * 2_000_000, "issuing_court": "舞钢市人民法院", "kind": "judgment"})
        assert (await http.post("/cases", json=huge, headers=auth("window_clerk"))).status_code == 413
        held = await http.get(f"/cases/{case}", headers=auth("operator"))
        assert held.status_code == 200
        assert [e["id"] for e in held.json()["events"]] == ["case.filed:（2025）豫0481执10号", "flow-1"]
        messages = await read_topic(settings, CASE_EVENTS, min_count=2)
    assert [m["value"]["type"] for m in messages if m["key"] == "（2025）豫0481执10号"] == ["case.filed", "node.completed"]


@pytest.mark.slow
async def test_filing_accepted_while_broker_is_down_is_published_after_it_returns(settings, embedded):
    process = ServiceProcess("intake", settings)
    app, _ = build(process)

    async def unsent() -> int:
        return await process.db["outbox"].count_documents({"sent_at": None})

    async with running(process, app) as http:
        embedded.pause_broker()
        try:
            answer = await http.post("/cases", json=filing(20), headers=auth("window_clerk"))
            assert answer.status_code == 201, answer.text
            await asyncio.sleep(12)  # longer than the producer's request timeout: the relay has failed by now
            assert await unsent() == 1
        finally:
            embedded.resume_broker()

        async def drained() -> bool:
            return await unsent() == 0

        await wait_until(drained, timeout=60, what="the outbox to drain")
        messages = await read_topic(settings, CASE_EVENTS, min_count=1)
    assert [m["value"]["id"] for m in of_type(messages, "case.filed")] == [answer.json()["event_id"]]


async def test_importer_stores_valid_lines_and_reports_rejected_ones(settings, tmp_path):
    import json

    from services.intake.importer import run_import
    lines = [
        {"type": "case.filed", "data": filing(30)},
        {"type": "case.filed", "data": filing(31)},
        {"type": "node.completed", "case_no": "(2025)豫0481执30号", "id": "flow-30",
         "data": {"node": "notice_served", "done_at": "2025-03-04T10:00:00+08:00", "by": "h01"}},
        {"type": "case.filed", "data": filing(32, target_amount=12.5)},
        {"type": "node.completed", "case_no": "(2025)豫0481执77号", "id": "flow-77",
         "data": {"node": "notice_served", "done_at": "2025-03-04T10:00:00+08:00", "by": "h01"}},
        {"type": "case.filed", "data": filing(30)},
    ]
    export = tmp_path / "export.jsonl"
    export.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n{broken\n", encoding="utf-8")
    report = tmp_path / "rejected.jsonl"
    counts = await run_import(export, report, batch_size=2, settings=settings)
    assert (counts["created"], counts["repeat"], counts["invalid"], counts["unknown_case"]) == (3, 1, 2, 1)
    rejected = [json.loads(x) for x in report.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["line"] for r in rejected) == [4, 5, 7]
    assert any(e["field"] == "data.target_amount" for r in rejected for e in r["errors"])
    messages = await read_topic(settings, CASE_EVENTS, min_count=3)
    assert sorted(m["value"]["id"] for m in messages) == sorted(
        ["case.filed:（2025）豫0481执30号", "case.filed:（2025）豫0481执31号", "flow-30"])


async def test_concurrent_posts_share_transactions_and_keep_each_answer(settings):
    """Group commit: 60 concurrent filings (10 of them the same case) → 51 created, 9 repeats, one event each."""
    process = ServiceProcess("intake", settings)
    app, _ = build(process)
    bodies = [filing(200 + n) for n in range(50)] + [filing(300)] * 10
    async with running(process, app) as http:
        answers = await asyncio.gather(*(http.post("/cases", json=b, headers=auth("window_clerk")) for b in bodies))
        codes = sorted(a.status_code for a in answers)
        assert codes == [200] * 9 + [201] * 51
        assert len({a.json()["event_id"] for a in answers}) == 51
        messages = await read_topic(settings, CASE_EVENTS, min_count=51)
    assert len(of_type(messages, "case.filed")) == 51
