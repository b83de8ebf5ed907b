"""Wiring of funds: rules file, deadline book, the consumer of fund events, case events, triage
decisions and the clock, the metrics refresher, and the HTTP API."""
from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

from fastapi import FastAPI

from services.funds import metrics
from services.funds.api import build_router
from services.funds.handlers import FundsHandler
from services.funds.policy import POLICY_FILE, FundsPolicy, PolicyError, load_policy
from services.funds.rules import FundsRules
from services.funds.store import FundsStore
from shared.calendar import CourtCalendar, default_calendar
from shared.deadline_book import DeadlineBook
from shared.http.app import create_app
from shared.logging import get_logger
from shared.runtime.alignment import InputGate
from shared.runtime.service import ServiceProcess
from shared.topics import CASE_EVENTS, CLOCK, FUNDS_EVENTS, TRIAGE_DECISIONS

NAME = "funds"
METRICS_INTERVAL_SECONDS = 5.0
log = get_logger()


@dataclass
class Funds:
    """What build() wires, for main and for tests."""

    app: FastAPI
    handler: FundsHandler
    store: FundsStore
    rules: FundsRules

    async def refresh_metrics(self) -> None:
        """Set the amount gauges from the state in MongoDB (Decimal sums; floats only for exposition)."""
        totals = await self.store.totals()
        received, disbursed = totals["received"], totals["disbursed"]
        metrics.RECEIPTS_TOTAL.set(float(Decimal(received)))
        metrics.PAYOUTS_TOTAL.set(float(Decimal(disbursed)))
        metrics.BALANCE_HELD.set(float(Decimal(received) - Decimal(disbursed)))
        metrics.RECEIPTS_COUNT.set(int(totals.get("receipts", 0)))
        metrics.PAYOUTS_COUNT.set(int(totals.get("payouts", 0)))
        metrics.UNIDENTIFIED_AMOUNT.set(float(Decimal(totals["unidentified_amount"])))
        metrics.UNIDENTIFIED_COUNT.set(int(totals["unidentified_count"]))
        overdue, count = await self.store.overdue_pending(self.rules)
        metrics.OVERDUE_PENDING.set(float(overdue))
        metrics.OVERDUE_RECEIPTS.set(count)

    def jobs(self, interval: float = METRICS_INTERVAL_SECONDS) -> list[Callable[[asyncio.Event], Awaitable[object]]]:
        """Background jobs for ServiceProcess.serve(extra=...)."""

        async def funds_metrics(stop: asyncio.Event) -> None:
            while not stop.is_set():
                try:
                    await self.refresh_metrics()
                except Exception as exc:  # the database may be away; the gauges keep their last values
                    log.warning("funds_metrics_refresh_failed", error=str(exc) or repr(exc))
                try:
                    await asyncio.wait_for(stop.wait(), timeout=interval)
                except TimeoutError:
                    pass

        return [funds_metrics]


def build(process: ServiceProcess, policy: FundsPolicy | None = None, calendar: CourtCalendar | None = None) -> Funds:
    """Everything but serving; tests call this with their own settings. A bad rules file raises PolicyError."""
    policy = policy or load_policy(process.settings.rules_file(POLICY_FILE))
    calendar = calendar or default_calendar()
    # No calendar= here: nodewatch alone raises calendar.coverage (docs/deadlines.md).
    book = DeadlineBook(process.db, NAME)
    store = FundsStore(process.client, process.db, book, process.outbox, process.settings)
    rules = FundsRules(policy, calendar)
    gate = InputGate()
    handler = FundsHandler(rules, book, store, gate)
    process.on_database_ready(store.ensure_indexes)
    # A tick waits while fund, case or triage partitions still hold unread facts timed before it.
    process.consume([FUNDS_EVENTS, CASE_EVENTS, TRIAGE_DECISIONS, CLOCK], handler,
                    gate=gate, gated=[FUNDS_EVENTS, CASE_EVENTS, TRIAGE_DECISIONS])
    app = create_app(
        service=NAME, health=process.health, routers=[build_router(store, book, rules, policy)], audit_db=process.db,
        description="Case funds (一案一账户): per-case ledger, fund anomaly and payout-deadline alerts on ecc.alerts.",
    )
    return Funds(app=app, handler=handler, store=store, rules=rules)


async def run() -> None:
    process = ServiceProcess(NAME)
    try:
        funds = build(process)
    except PolicyError as exc:
        log.critical("rules_file_invalid", error=str(exc))
        print(f"funds: refusing to start: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    await process.serve(funds.app, extra=funds.jobs())


def main() -> None:
    asyncio.run(run())
