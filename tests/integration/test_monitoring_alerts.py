"""A stalled consumer is paged: running services → real Prometheus with the deployed alert rules → real
Alertmanager with the deployed routing → the webhook (Alertmanager payload v4, bearer token) → (second
test) the oncall service → the technician on duty through oncall's webhook channel.

intake and triage run in-process against the embedded broker and database. Filings go through intake's
API, so its outbox publishes them (ecc_events_produced_total rises: input arrives for triage). triage's
handler is then made to hang inside a batch — a handler waiting on a call without a timeout, the
"stalled consumer" failure mode — while filings keep arriving. ECCConsumerStalled must fire for triage
(and only triage), reach the receiver through the critical route, and resolve once triage resumes.
The first test receives Alertmanager's delivery itself (the raw v4 payload); the second points
Alertmanager at oncall (in-process) and receives what oncall sends to the person on duty.

Time runs 60x faster (tests/integration/monitoring.py `shrink_*`): the rules and routing are the
checked-in files with every duration divided by 60, so `for: 2m` is 2 s and `[5m]` is 5 s.
"""
from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml

import pytest

from services.intake.main import build as build_intake
from services.oncall import rules as oncall_rules
from services.oncall.channels import build_channels
from services.oncall.main import build as build_oncall
from services.oncall.policy import parse_policy
from services.triage.main import build as build_triage
from shared.config import PROJECT_ROOT
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


async def _firing(prom: httpx.AsyncClient, alertname: str) -> list[dict]:
    body = (await prom.get("/api/v1/alerts")).json()
    return [a for a in body["data"]["alerts"] if a["labels"]["alertname"] == alertname and a["state"] == "firing"]


@dataclass
class Stack:
    prom: httpx.AsyncClient
    triage: ServiceProcess
    gate: StallableHandler
    file_case: Callable[[], Awaitable[None]]
    bearer: str
    filed: list[int]          # [cases filed through intake so far]


@contextlib.asynccontextmanager
async def monitored_stack(settings, tmp_path: Path, webhook_url: str) -> AsyncIterator[Stack]:
    """intake + triage running and healthy, scraped by Prometheus with the (shrunk) rules, alerts routed
    by Alertmanager with the (shrunk) routing to `webhook_url` with the monitoring role's bearer token."""
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
    am_config = shrink_alertmanager(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"), webhook_url, credentials)
    filed = [0]

    async with (running(intake, intake_app) as window, running(triage, triage_app),
                alertmanager_server(tmp_path, am_config) as (_am, am_port),
                prometheus_server(tmp_path, intake.settings.http_port("intake"), rules=rules,
                                  alertmanager_port=am_port) as prom):
        async def file_case() -> None:
            filed[0] += 1
            answer = await window.post("/cases", json=filing(filed[0]), headers=auth("window_clerk"))
            assert answer.status_code == 201, answer.text

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
        stack = Stack(prom, triage, gate, file_case, bearer, filed)
        try:
            yield stack
        finally:
            gate.release()  # never leave a batch hanging at shutdown


async def _stall_until(stack: Stack, delivered: Callable[[], Awaitable[object] | object], what: str) -> float:
    """Stall triage and keep filing cases until `delivered`; returns the seconds it took."""
    stack.gate.stall()
    started = asyncio.get_running_loop().time()

    async def check() -> object:
        await stack.file_case()
        result = delivered()
        return await result if asyncio.iscoroutine(result) else result

    await wait_until(check, timeout=60, interval=0.5, what=what)
    assert stack.gate.stalled_batches >= 1
    return asyncio.get_running_loop().time() - started


async def test_stalled_consumer_is_paged_through_alertmanager(settings, tmp_path):
    with webhook_receiver() as receiver:
        async with monitored_stack(settings, tmp_path, receiver.url) as stack:
            paged_after = await _stall_until(stack, lambda: receiver.alerts("ECCConsumerStalled", "firing"),
                                             "ECCConsumerStalled delivered to the webhook")
            [(delivery, alert)] = receiver.alerts("ECCConsumerStalled", "firing")[:1]
            assert delivery.headers["Authorization"] == f"Bearer {stack.bearer}"
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
            stack.gate.release()
            await wait_until(lambda: receiver.alerts("ECCConsumerStalled", "resolved"), timeout=60, interval=0.5,
                             what="the resolved notification")
            [(done, _)] = receiver.alerts("ECCConsumerStalled", "resolved")[:1]
            assert done.body["status"] == "resolved" and done.body["receiver"] == "oncall-critical"

            async def caught_up() -> bool:  # nothing was lost while stalled
                return await stack.triage.db["inbox"].count_documents({}) >= stack.filed[0]

            await wait_until(caught_up, timeout=60, what="triage to read every filing after the stall")
    print(f"paged {paged_after:.1f}s after the stall (rules at 1/60 time)")


def _oncall_policy():
    """The checked-in roster and routing, with oncall's grouping wait shortened (escalation left as is)."""
    roster = yaml.safe_load((PROJECT_ROOT / "rules" / "roster.yaml").read_text(encoding="utf-8"))
    routing = copy.deepcopy(yaml.safe_load((PROJECT_ROOT / "rules" / "oncall.yaml").read_text(encoding="utf-8")))
    routing["grouping"]["wait"] = "0.5 seconds"
    routing["delivery"].update(base_delay="0.2 seconds", max_delay="1 seconds", timeout="3 seconds")
    return parse_policy(roster, routing)


async def test_stalled_consumer_reaches_the_technician_on_duty_through_oncall(settings, tmp_path):
    policy = _oncall_policy()
    technician = oncall_rules.on_duty(policy.roster, [], datetime.now(UTC)).people["technician"]
    with webhook_receiver() as gateway:   # the court's webhook gateway, oncall's channel for technicians
        oncall = ServiceProcess("oncall", replace(settings, http_port_override=_port()))
        client = httpx.AsyncClient(timeout=5)
        app, dispatcher = build_oncall(oncall, policy=policy, poll_seconds=0.1,
                                       channels=build_channels(client, {"ECC_ONCALL_WEBHOOK_URL": gateway.url}))
        webhook = f"http://127.0.0.1:{oncall.settings.http_port('oncall')}/alertmanager/webhook"
        try:
            async with (running(oncall, app, extra=[dispatcher.run]) as oncall_http,
                        monitored_stack(settings, tmp_path, webhook) as stack):
                def to_technician() -> list[dict]:
                    return [d.body for d in gateway.deliveries
                            if d.body.get("to", {}).get("person") == technician
                            and "ECCConsumerStalled" in d.body.get("notification_id", "")]

                paged_after = await _stall_until(stack, to_technician, "oncall to page the technician on duty")
                [message] = to_technician()[:1]
                assert message["to"]["role"] == "technician" and message["severity"] == "critical"
                assert message["step"] == "initial"
                assert "triage" in message["title"] + message["text"]
                ntf = (await oncall_http.get(f"/notifications/{message['notification_id']}",
                                             headers=auth("technician"))).json()
                assert ntf["source"] == "alertmanager" and ntf["state"] in ("open", "sending", "sent"), ntf

                # Resume: Alertmanager's resolved notification closes oncall's notification.
                stack.gate.release()

                async def closed() -> bool:
                    got = await oncall_http.get(f"/notifications/{message['notification_id']}",
                                                headers=auth("technician"))
                    return got.json()["state"] == "closed"

                await wait_until(closed, timeout=60, interval=0.5, what="oncall to close the notification")
        finally:
            await client.aclose()
    print(f"technician {technician} paged {paged_after:.1f}s after the stall (rules at 1/60 time)")
