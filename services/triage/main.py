"""Wiring of triage: policy, store, the case-event and clock consumer, the HTTP API."""
from __future__ import annotations

import asyncio
import sys

from services.triage.api import build_router
from services.triage.handlers import TriageHandler
from services.triage.policy import RULES_FILE_NAME, PolicyError, TriagePolicy, load_policy
from services.triage.store import TriageStore
from shared.http.app import create_app
from shared.runtime.alignment import InputGate
from shared.runtime.service import ServiceProcess
from shared.topics import CASE_EVENTS, CLOCK

NAME = "triage"


def build(process: ServiceProcess, policy: TriagePolicy | None = None):
    """The app and the store; a bad rules file raises PolicyError here, before anything starts."""
    policy = policy or load_policy(process.settings.rules_file(RULES_FILE_NAME))
    store = TriageStore(process.db, policy)
    process.on_database_ready(store.ensure_indexes)
    gate = InputGate()
    settings = process.settings
    handler = TriageHandler(store, policy, gate, fact_topics={settings.topic(CASE_EVENTS.suffix)},
                            clock_topics={settings.topic(CLOCK.suffix)})
    # Events and ticks are handled in time order whatever order the partitions are read in (handlers.py).
    process.consume([CASE_EVENTS, CLOCK], handler, gate=gate, gated=[CASE_EVENTS, CLOCK])
    app = create_app(
        service=NAME, health=process.health, routers=[build_router(store, policy)], audit_db=process.db,
        description="繁简分流 triage: tracks and team assignment from filings and property-inquiry results "
                    f"(policy {policy.policy_version}).",
    )
    return app, store


async def run() -> None:
    process = ServiceProcess(NAME)
    app, _store = build(process)
    await process.serve(app)


def main() -> None:
    try:
        asyncio.run(run())
    except PolicyError as exc:  # a bad rules file: say which field, and do not start
        print(f"triage: refusing to start: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
