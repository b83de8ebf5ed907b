"""Wiring of termination: rules file, deadline book, the consumer of case events, triage decisions
and the clock, and the HTTP API."""
from __future__ import annotations

import asyncio
import sys

from services.termination.api import build_router
from services.termination.handlers import TerminationHandler
from services.termination.policy import POLICY_FILE, PolicyError, TerminationPolicy, load_policy
from services.termination.rules import TerminationRules
from services.termination.store import TerminationStore
from shared.calendar import CourtCalendar, default_calendar
from shared.deadline_book import DeadlineBook
from shared.http.app import create_app
from shared.logging import get_logger
from shared.runtime.service import ServiceProcess
from shared.topics import CASE_EVENTS, CLOCK, TRIAGE_DECISIONS

NAME = "termination"
log = get_logger()


def build(process: ServiceProcess, policy: TerminationPolicy | None = None, calendar: CourtCalendar | None = None):
    """Everything but serving; tests call this with their own settings. A bad rules file raises PolicyError."""
    policy = policy or load_policy(process.settings.rules_file(POLICY_FILE))
    calendar = calendar or default_calendar()
    book = DeadlineBook(process.db, NAME)  # calendar coverage is nodewatch's alert, not ours
    store = TerminationStore(process.db, book)
    handler = TerminationHandler(TerminationRules(policy, calendar), book, store)
    process.on_database_ready(store.ensure_indexes)
    process.consume([CASE_EVENTS, TRIAGE_DECISIONS, CLOCK], handler)
    app = create_app(
        service=NAME, health=process.health, routers=[build_router(store, book, policy)], audit_db=process.db,
        description="终本审查与动态管理: the 终本 checklist at proposal and closure, restore suggestions and "
                    "the six-monthly network re-check (rules.md §5).",
    )
    return app, handler


async def run() -> None:
    process = ServiceProcess(NAME)
    try:
        app, _handler = build(process)
    except PolicyError as exc:
        log.critical("rules_file_invalid", error=str(exc))
        print(f"termination: refusing to start: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    await process.serve(app)


def main() -> None:
    asyncio.run(run())
