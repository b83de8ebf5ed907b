"""A stalled consumer is paged: running services → real Prometheus with the deployed alert rules → real
Alertmanager with the deployed routing → the webhook (Alertmanager payload v4, bearer token).

intake and triage run in-process against the embedded broker and database. Filings go through intake's
API, so its outbox publishes them (ecc_events_produced_total rises: input arrives for triage). triage's
handler is then made to hang inside a batch — a handler waiting on a call without a timeout, the
"stalled consumer" failure mode — while filings keep arriving. ECCConsumerStalled must fire for triage
(and only triage), reach the receiver through the critical route, and resolve once triage resumes.

Time runs 60x faster (tests/integration/monitoring.py `shrink_*`): the rules and routing are the
checked-in files with every duration divided by 60, so `for: 2m` is 2 s and `[5m]` is 5 s.
"""
from __future__ import annotations

import asyncio
import shutil
from dataclasses import replace

import pytest

from services.intake.main import build as build_intake
from services.triage.main import build as build_triage
from shared.runtime.service import ServiceProcess
from tests.conftest import wait_until
from tests.integration.filings import filing
from tests.integration.harness import auth, running, token
from tests.integration.monitoring import (
    ALERTMANAGER, ALERTMANAGER_CONFIG, PROMETHEUS, RULES_DIR, alertmanager_server, prometheus_server,
    shrink_alertmanager, shrink_rules, webhook_receiver,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(PROMETHEUS is None or ALERTMANAGER is None,
                       reason="Debian packages prometheus and prometheus-alertmanager not installed"),
]


class StallableHandler:
    """Wraps a service's batch handler; after `stall()` the next batch hangs in handle() until `release()`."""

    def __init__(self, inner):
        self.inner = inner
        self._go = asyncio.Event()
        self._go.set()
        self.stalled_batches = 0

    def stall(self) -> None:
        self._go.clear()

    def release(self) -> None:
        self._go.set()

    async def handle(self, events, effects) -> None:
        if not self._go.is_set():
            self.stalled_batches += 1
            await self._go.wait()
        await self.inner.handle(events, effects)


def _port() -> int:
    from tools import stack
    return stack.free_port()


async def _firing(prom, alertname: str) -> list[dict]:
    body = (await prom.get("/api/v1/alerts")).json()
    return [a for a in body["data"]["alerts"] if a["labels"]["alertname"] == alertname and a["state"] == "firing"]


async def test_stalled_consumer_is_paged_through_alertmanager(settings, tmp_path):
    intake = ServiceProcess("intake", replace(settings, http_port_override=_port()))
    intake_app, _ = build_intake(intake)
    triage = ServiceProcess("triage", replace(settings, http_port_override=_port()))
    triage_app, _ = build_triage(triage)
    [consumer] = triage.consumers
    gate = consumer.handler = StallableHandler(consumer.handler)
    credentials = tmp_path / "oncall-token"
    bearer = token("monitoring", sub="alertmanager")
    credentials.write_text(bearer + "\n", encoding="utf-8")
    rules = "\n".join(shrink_rules(p.read_text(encoding="utf-8")) for p in sorted(RULES_DIR.glob("*.yml")))
    seq = iter(range(1, 10_000))

    async def file_case() -> None:
        answer = await window.post("/cases", json=filing(next(seq)), headers=auth("window_clerk"))
        assert answer.status_code == 201, answer.text

    with webhook_receiver() as receiver:
        am_config = shrink_alertmanager(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"), receiver.url, credentials)
        async with (running(intake, intake_app) as window, running(triage, triage_app),
                    alertmanager_server(tmp_path, am_config) as (_am, am_port),
                    prometheus_server(tmp_path, intake.settings.http_port("intake"), rules=rules,
                                      alertmanager_port=am_port) as prom):
            # Healthy: triage reads the filings intake publishes.
            for _ in range(3):
                await file_case()

            async def triaged() -> bool:
                return await triage.db["inbox"].count_documents({}) >= 3

            await wait_until(triaged, timeout=60, what="triage to read the first filings")

            async def scraped() -> bool:
                query = 'ecc_last_event_processed_timestamp_seconds{service="triage"}'
                body = (await prom.get("/api/v1/query", params={"query": query})).json()
                return bool(body["data"]["result"])

            await wait_until(scraped, timeout=30, what="triage's series in Prometheus")
            await asyncio.sleep(8)  # longer than the (shrunk) 5 s window + 2 s hold: a quiet, healthy stack
            assert await _firing(prom, "ECCConsumerStalled") == []

            # Stall triage while filings keep arriving.
            gate.stall()
            started = asyncio.get_running_loop().time()

            async def paged() -> bool:
                await file_case()
                return bool(receiver.alerts("ECCConsumerStalled", "firing"))

            await wait_until(paged, timeout=60, interval=0.5, what="ECCConsumerStalled delivered to the webhook")
            paged_after = asyncio.get_running_loop().time() - started
            assert gate.stalled_batches >= 1

            [(delivery, alert)] = receiver.alerts("ECCConsumerStalled", "firing")[:1]
            assert delivery.headers["Authorization"] == f"Bearer {bearer}"
            payload = delivery.body
            assert payload["version"] == "4" and payload["status"] == "firing"
            assert payload["receiver"] == "oncall-critical"
            assert payload["groupLabels"] == {"alertname": "ECCConsumerStalled", "service": "triage"}
            assert alert["labels"]["service"] == "triage"
            assert alert["labels"]["severity"] == "critical" and alert["labels"]["family"] == "pipeline"
            assert alert["annotations"]["runbook_url"] == "docs/alerts.md#eccconsumerstalled"
            assert "消费停滞" in alert["annotations"]["summary"]
            # Only the stalled service: intake kept working (it had no input: triage emitted nothing).
            assert {a["labels"]["service"] for _, a in receiver.alerts("ECCConsumerStalled")} == {"triage"}

            # Resume: the held batch is stored, the alert resolves and the resolution is delivered.
            gate.release()

            async def resolved() -> bool:
                return bool(receiver.alerts("ECCConsumerStalled", "resolved"))

            await wait_until(resolved, timeout=60, interval=0.5, what="the resolved notification")
            [(done, _)] = receiver.alerts("ECCConsumerStalled", "resolved")[:1]
            assert done.body["status"] == "resolved" and done.body["receiver"] == "oncall-critical"
            filed = next(seq) - 1

            async def caught_up() -> bool:  # nothing was lost while stalled
                return await triage.db["inbox"].count_documents({}) >= filed

            await wait_until(caught_up, timeout=60, what="triage to read every filing after the stall")
    print(f"paged {paged_after:.1f}s after the stall (rules at 1/60 time); {filed} filings")
