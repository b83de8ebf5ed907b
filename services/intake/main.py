"""Wiring of intake: database, outbox relay, HTTP API, and the triage decisions it reads for team scope."""
from __future__ import annotations

import asyncio

from services.intake.api import build_router
from services.intake.handlers import TeamHandler
from services.intake.store import IntakeStore
from shared.http.app import create_app
from shared.runtime.service import ServiceProcess
from shared.topics import TRIAGE_DECISIONS

NAME = "intake"


def build(process: ServiceProcess):
    store = IntakeStore(process.client, process.db, process.outbox, process.settings)
    process.on_database_ready(store.ensure_indexes)
    process.consume([TRIAGE_DECISIONS], TeamHandler(process.db))
    app = create_app(
        service=NAME, health=process.health, routers=[build_router(store)], audit_db=process.db,
        description="Service window (立案窗口): case filings and later case events, stored through a transactional outbox.",
    )
    return app, store


async def run() -> None:
    process = ServiceProcess(NAME)
    app, _store = build(process)
    await process.serve(app)


def main() -> None:
    asyncio.run(run())
