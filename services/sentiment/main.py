"""Wiring of sentiment: rules file, deadline book, the consumer of ecc.sentiment.events, triage
decisions and the clock, the HTTP API (its POSTs go through the outbox to ecc.sentiment.events)."""
from __future__ import annotations

import asyncio
import sys

from services.sentiment.api import build_router
from services.sentiment.handlers import SentimentHandler
from services.sentiment.policy import POLICY_FILE, PolicyError, SentimentPolicy, load_policy
from services.sentiment.store import SentimentStore
from shared.calendar import CourtCalendar, default_calendar
from shared.deadline_book import DeadlineBook
from shared.http.app import create_app
from shared.logging import get_logger
from shared.runtime.alignment import InputGate
from shared.runtime.service import ServiceProcess
from shared.topics import CLOCK, SENTIMENT_EVENTS, TRIAGE_DECISIONS

NAME = "sentiment"
log = get_logger()


def build(process: ServiceProcess, policy: SentimentPolicy | None = None, calendar: CourtCalendar | None = None):
    """Everything but serving; tests call this with their own settings. A bad rules file raises PolicyError."""
    policy = policy or load_policy(process.settings.rules_file(POLICY_FILE))
    calendar = calendar or default_calendar()
    book = DeadlineBook(process.db, NAME)
    store = SentimentStore(process.db, book, process.client, process.outbox, process.settings)
    gate = InputGate()
    handler = SentimentHandler(policy, calendar, book, store, gate)
    process.on_database_ready(store.ensure_indexes)
    # A tick waits while sentiment or triage partitions still hold unread facts timed before it.
    process.consume([SENTIMENT_EVENTS, TRIAGE_DECISIONS, CLOCK], handler,
                    gate=gate, gated=[SENTIMENT_EVENTS, TRIAGE_DECISIONS])
    app = create_app(
        service=NAME, health=process.health, routers=[build_router(store, book, policy, calendar)],
        audit_db=process.db,
        description="舆情 public sentiment: registration, grading, linkage to cases, sign-off and transfer to the "
                    "case team; sentiment.major / sentiment.serious and the response deadline on ecc.alerts.",
    )
    return app, handler


async def run() -> None:
    process = ServiceProcess(NAME)
    try:
        app, _handler = build(process)
    except PolicyError as exc:
        log.critical("rules_file_invalid", error=str(exc))
        print(f"sentiment: refusing to start: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    await process.serve(app)


def main() -> None:
    asyncio.run(run())
