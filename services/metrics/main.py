"""Wiring of metrics: rules file, the consumer of case events, triage decisions, 终本 reviews, alerts
and the clock, the gauges restored from MongoDB at start, and the HTTP API."""
from __future__ import annotations

import asyncio
import sys

from services.metrics.api import build_router
from services.metrics.bulletin import build_router as build_bulletin_router
from services.metrics.handlers import NAME, MetricsHandler
from services.metrics.policy import POLICY_FILE, IndicatorPolicy, PolicyError, load_policy
from services.metrics.store import MetricsStore
from shared.calendar import CourtCalendar, default_calendar
from shared.http.app import create_app
from shared.logging import get_logger
from shared.runtime.service import ServiceProcess
from shared.topics import ALERTS, CASE_EVENTS, CLOCK, TERMINATION_EVENTS, TRIAGE_DECISIONS

log = get_logger()


def build(process: ServiceProcess, policy: IndicatorPolicy | None = None, calendar: CourtCalendar | None = None):
    """Everything but serving; tests call this with their own settings. A bad rules file raises PolicyError."""
    policy = policy or load_policy(process.settings.rules_file(POLICY_FILE))
    calendar = calendar or default_calendar()
    store = MetricsStore(process.db)
    handler = MetricsHandler(policy, calendar, store)
    process.on_database_ready(store.ensure_indexes)
    process.on_database_ready(handler.restore_gauges)
    process.consume([CASE_EVENTS, TRIAGE_DECISIONS, TERMINATION_EVENTS, ALERTS, CLOCK], handler)
    routers = [build_router(store, policy), build_bulletin_router(store, policy)]
    app = create_app(
        service=NAME, health=process.health, routers=routers, audit_db=process.db,
        description="质效指标: the indicators of rules.md §7 per court and team, month and year to date; "
                    "metrics.snapshot on ecc.metrics.snapshots; Prometheus gauges.",
    )
    return app, handler


async def run() -> None:
    process = ServiceProcess(NAME)
    try:
        app, _handler = build(process)
    except PolicyError as exc:
        log.critical("rules_file_invalid", error=str(exc))
        print(f"metrics: refusing to start: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    await process.serve(app)


def main() -> None:
    asyncio.run(run())
