"""Wiring of nodewatch: rules file, deadline book, the gated consumer of case events,
triage decisions and the clock, and the HTTP API."""
from __future__ import annotations

import asyncio
import sys

from services.nodewatch.api import build_router
from services.nodewatch.handlers import NodeHandler
from services.nodewatch.policy import POLICY_FILE, NodePolicy, PolicyError, load_policy
from services.nodewatch.rules import NodeRules
from services.nodewatch.store import NodeStore
from shared.calendar import CourtCalendar, default_calendar
from shared.config import env_float
from shared.deadline_book import DeadlineBook
from shared.http.app import create_app
from shared.logging import get_logger
from shared.runtime.alignment import InputGate, UpstreamProgress
from shared.runtime.consumer import group_id_for
from shared.runtime.service import ServiceProcess
from shared.topics import CASE_EVENTS, CLOCK, TRIAGE_DECISIONS

NAME = "nodewatch"
log = get_logger()


def build(process: ServiceProcess, policy: NodePolicy | None = None, calendar: CourtCalendar | None = None):
    """Everything but serving; tests call this with their own settings. A bad rules file raises PolicyError."""
    policy = policy or load_policy(process.settings.rules_file(POLICY_FILE))
    calendar = calendar or default_calendar()
    book = DeadlineBook(process.db, NAME, calendar=calendar)
    store = NodeStore(process.db, book)
    gate = InputGate()
    triage_wait = env_float("ECC_NODEWATCH_TRIAGE_WAIT_SECONDS", 30.0, allow_zero=True)
    settings = process.settings
    # A tick waits while triage has not handled a case event timed before it that we have read.
    triage = UpstreamProgress(group_id_for("triage"), reads=[settings.topic(CASE_EVENTS.suffix)],
                              outputs=[settings.topic(TRIAGE_DECISIONS.suffix)], wait_seconds=triage_wait)
    handler = NodeHandler(NodeRules(policy, calendar), book, store, gate, triage_wait_seconds=triage_wait,
                          triage=triage)
    process.on_database_ready(store.ensure_indexes)
    # A tick waits while case-event or triage partitions hold unread facts timed before it.
    process.consume([CASE_EVENTS, TRIAGE_DECISIONS, CLOCK], handler, gate=gate, gated=[CASE_EVENTS, TRIAGE_DECISIONS],
                    upstream=triage)
    app = create_app(
        service=NAME, health=process.health, routers=[build_router(store, book, policy)], audit_db=process.db,
        description="Node-deadline supervision (流程节点监管): durable deadlines on event time, alerts on ecc.alerts.",
    )
    return app, handler


async def run() -> None:
    process = ServiceProcess(NAME)
    try:
        app, _handler = build(process)
    except PolicyError as exc:
        log.critical("rules_file_invalid", error=str(exc))
        print(f"nodewatch: refusing to start: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    await process.serve(app)


def main() -> None:
    asyncio.run(run())
