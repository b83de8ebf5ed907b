"""Wiring of oncall: the rules files (roster + routing), the consumer of ecc.alerts, the dispatcher
(sends, escalations, delivery retries on wall time), the channels and the HTTP API."""
from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from services.oncall.api import build_router
from services.oncall.channels import Channel, build_channels
from services.oncall.dispatcher import Dispatcher
from services.oncall.handlers import OncallHandler
from services.oncall.policy import POLICY_FILE, ROSTER_FILE, OncallPolicy, PolicyError, load_policy
from services.oncall.store import OncallStore
from shared.config import ConfigError, env_float
from shared.http.app import create_app
from shared.logging import get_logger
from shared.runtime.service import ServiceProcess
from shared.topics import ALERTS

NAME = "oncall"
log = get_logger()


def poll_interval() -> float:
    """ECC_ONCALL_POLL_SECONDS: how often the dispatcher looks for due steps and deliveries (default 1)."""
    return env_float("ECC_ONCALL_POLL_SECONDS", 1.0, maximum=60)


def wall_clock() -> datetime:
    return datetime.now(UTC)


def load(process: ServiceProcess) -> OncallPolicy:
    """rules/oncall.yaml (ECC_RULES overrides) and rules/roster.yaml (ECC_ONCALL_ROSTER overrides)."""
    roster = os.environ.get("ECC_ONCALL_ROSTER")
    return load_policy(Path(roster) if roster else process.settings.rules_dir / ROSTER_FILE,
                       process.settings.rules_file(POLICY_FILE))


def build(process: ServiceProcess, policy: OncallPolicy | None = None, channels: dict[str, Channel] | None = None,
          clock: Callable[[], datetime] = wall_clock, poll_seconds: float | None = None):
    """Everything but serving; tests pass their own policy, channels and poll interval.
    Returns (app, dispatcher); serve with extra=[dispatcher.run]. A bad rules file raises PolicyError."""
    policy = policy or load(process)
    if channels is None:
        channels = build_channels(httpx.AsyncClient(timeout=policy.routing.delivery.timeout.total_seconds()))
    if poll_seconds is None:
        poll_seconds = poll_interval()
    names = frozenset(channels)
    store = OncallStore(process.db, process.client)
    handler = OncallHandler(policy, store, names, clock)
    process.on_database_ready(store.ensure_indexes)
    process.consume([ALERTS], handler)
    dispatcher = Dispatcher(policy, store, channels, clock, poll_seconds, NAME)
    app = create_app(
        service=NAME, health=process.health, routers=[build_router(policy, store, names, clock)],
        audit_db=process.db,
        description="值班 on-call duty: roster, routing of ecc.alerts and Alertmanager alerts to the people on duty, "
                    "grouping, acknowledgement, escalation to the leader on duty (docs/oncall.md).",
    )
    if not channels:
        log.warning("no_channel_configured", hint="set ECC_ONCALL_WEBHOOK_URL / _SMS_URL / _WECOM_URL (docs/oncall.md)")
    return app, dispatcher


async def run() -> None:
    process = ServiceProcess(NAME)
    try:
        app, dispatcher = build(process)
    except (PolicyError, ConfigError, OSError) as exc:
        log.critical("rules_file_invalid", error=str(exc))
        print(f"oncall: refusing to start: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    await process.serve(app, extra=[dispatcher.run])


def main() -> None:
    asyncio.run(run())
