"""Every dashboard query against a real Prometheus (the Debian `prometheus` package) scraping running
services after a workload: the hand-worked April (case, triage and termination topics), read by the
metrics and termination services in-process, with a dead letter and a redelivery.

Scope, honestly: the services run in this test process and share one Prometheus registry, so one
scrape target serves both. nodewatch is not started: alerts of its shape (overdue and due_soon)
are published on ecc.alerts beside termination's own. Panels fed only by services not started here (funds: ecc_funds_*), and
the recovered-errors panel (ecc_errors_total has no sample while nothing fails), are listed in
NOT_COVERED and only checked to be valid queries.
"""
from __future__ import annotations

import asyncio
import shutil
from dataclasses import replace

import pytest

pytest.importorskip("grafana_foundation_sdk", reason="grafana-foundation-sdk==0.0.21 not installed")

from services.metrics.main import build as build_metrics
from services.termination.main import build as build_termination
from shared.runtime.service import ServiceProcess
from shared.topics import ALERTS, CASE_EVENTS, CLOCK
from tests.conftest import wait_until
from tests.integration.harness import publish, running
from tests.integration.monitoring import prometheus_scraping
from tests.integration.test_metrics import ALERT_EVENTS, EVENTS, publish_events
from tests.unit.test_metrics_indicators import day_ticks, raised
from tools.dashboards import build_all  # noqa: E402

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian package prometheus not installed")]

NOT_COVERED = ("ecc_funds_", "ecc_errors_total")


async def test_every_dashboard_query_returns_data_from_prometheus(settings, tmp_path):
    metrics_process = ServiceProcess("metrics", replace(settings, http_port_override=_port()))
    metrics_app, _ = build_metrics(metrics_process)
    termination_process = ServiceProcess("termination", replace(settings, http_port_override=_port()))
    termination_app, _ = build_termination(termination_process)
    async with running(metrics_process, metrics_app), running(termination_process, termination_app):
        await publish_events(settings, EVENTS)
        await publish(settings, CASE_EVENTS, [("（2025）豫0481执1号", b"{not json")])   # a dead letter
        await publish_events(settings, EVENTS[:3])                                    # redelivered: duplicates
        await publish(settings, ALERTS, [*ALERT_EVENTS, raised("node.report_order.due_soon:（2025）豫0481执9003号",
                                                               "node.report_order", "fine", "warning")])

        async def read() -> bool:
            return await metrics_process.db["inbox"].count_documents({}) >= len(EVENTS)

        await wait_until(read, timeout=60, what="the workload read")
        ticks = day_ticks("2025-04-01", "2025-05-01")
        await publish(settings, CLOCK, ticks)

        async def snapshots() -> bool:
            return await metrics_process.db["latest"].count_documents({}) >= 2

        await wait_until(snapshots, timeout=90, what="snapshots")
        async with prometheus_scraping(tmp_path, metrics_process.settings.http_port("metrics")) as prom:
            async def scraped() -> bool:
                body = (await prom.get("/api/v1/query", params={"query": "count(ecc_indicator)"})).json()
                return bool(body["data"]["result"])

            await wait_until(scraped, timeout=30, what="a scrape with the indicators")
            await asyncio.sleep(4)  # a few scrapes, for rate() and increase()
            empty, failed = [], []
            for name, doc in build_all().items():
                for panel in doc["panels"]:
                    for target in panel.get("targets", []):
                        expr = target["expr"].replace("$scope", ".*")
                        body = (await prom.get("/api/v1/query", params={"query": expr})).json()
                        if body.get("status") != "success":
                            failed.append((name, panel["title"], expr, body.get("error")))
                        elif not body["data"]["result"] and not any(m in expr for m in NOT_COVERED):
                            empty.append((name, panel["title"], expr))
    assert failed == [], failed
    assert empty == [], f"panels without data: {empty}"


def _port() -> int:
    from tools import stack
    return stack.free_port()
