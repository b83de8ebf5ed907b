"""Wiring of entrust: rules file, deadline book, the consumer of ecc.entrust.events and the
clock, the HTTP API (its POSTs go through the outbox to ecc.entrust.events, read back here)."""
from __future__ import annotations

import asyncio
import sys

from services.entrust.api import build_router
from services.entrust.handlers import EntrustHandler
from services.entrust.policy import POLICY_FILE, EntrustPolicy, PolicyError, load_policy
from services.entrust.store import EntrustStore
from shared.calendar import CourtCalendar, default_calendar
from shared.deadline_book import DeadlineBook
from shared.http.app import create_app
from shared.logging import get_logger
from shared.runtime.alignment import InputGate
from shared.runtime.service import ServiceProcess
from shared.topics import CLOCK, ENTRUST_EVENTS

NAME = "entrust"
log = get_logger()


def build(process: ServiceProcess, policy: EntrustPolicy | None = None, calendar: CourtCalendar | None = None):
    """Everything but serving; tests call this with their own settings. A bad rules file raises PolicyError."""
    policy = policy or load_policy(process.settings.rules_file(POLICY_FILE))
    calendar = calendar or default_calendar()
    book = DeadlineBook(process.db, NAME)  # no calendar=: only nodewatch raises calendar.coverage
    store = EntrustStore(process.db, book, process.client, process.outbox, process.settings)
    gate = InputGate()
    handler = EntrustHandler(policy, calendar, book, store, gate)
    process.on_database_ready(store.ensure_indexes)
    # A tick waits while entrust partitions still hold unread facts timed before it.
    process.consume([ENTRUST_EVENTS, CLOCK], handler, gate=gate, gated=[ENTRUST_EVENTS])
    app = create_app(
        service=NAME, health=process.health, routers=[build_router(store, book, policy, calendar)],
        audit_db=process.db,
        description="事项委托 / 督办: entrusted matters and supervision items, their deadlines on event time, "
                    "alerts on ecc.alerts; impossible steps go to ecc.deadletter with the reason.",
    )
    return app, handler


async def run() -> None:
    process = ServiceProcess(NAME)
    try:
        app, _handler = build(process)
    except PolicyError as exc:
        log.critical("rules_file_invalid", error=str(exc))
        print(f"entrust: refusing to start: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    await process.serve(app)


def main() -> None:
    asyncio.run(run())
