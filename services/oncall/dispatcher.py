"""The dispatcher: oncall's timer and postman, a background job beside the consumer.

Each cycle (every ECC_ONCALL_POLL_SECONDS of wall time):
1. notifications whose durable `next_action_at` has come: rules.dispatch() decides the send or the
   escalation; the new notification state and its deliveries are stored in ONE transaction
   (expecting the version read), so a step happens once even across restarts and replicas;
2. pending deliveries whose attempt is due: leased (so no second sender takes them), sent through
   their channel, the attempt recorded; a failure is retried with backoff, never dropped.
Nothing lives only in memory: a restart picks up exactly where the database says.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from services.oncall import rules
from services.oncall.channels import Channel, DeliveryError, Message, Recipient
from services.oncall.metrics import (
    DELIVERIES_GIVEN_UP, DELIVERIES_PENDING, DELIVERY_FAILURES, ESCALATIONS, NOTIFICATIONS_OPEN, NOTIFICATIONS_SENT,
)
from services.oncall.policy import OncallPolicy
from services.oncall.store import Conflict, OncallStore
from shared.logging import get_logger
from shared.metrics import ERRORS
from shared.runtime.mongo import is_transient

log = get_logger()
GAUGE_EVERY_SECONDS = 5.0
SEND_CONCURRENCY = 8


def _step_label(step: str) -> str:
    return step.split(".", 1)[0]  # escalation.3 -> escalation: bounded label values


class Dispatcher:
    def __init__(self, policy: OncallPolicy, store: OncallStore, channels: dict[str, Channel],
                 clock: Callable[[], datetime], poll_seconds: float = 1.0, service: str = "oncall"):
        self.policy = policy
        self.store = store
        self.channels = channels
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.service = service
        self._gauges_at = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.cycle()
            except Exception as exc:
                ERRORS.labels(self.service, "database" if is_transient(exc) else "dispatcher").inc()
                log.warning("dispatch_cycle_failed", error=repr(exc))
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.poll_seconds)
            except TimeoutError:
                pass

    async def cycle(self) -> None:
        await self.step_due()
        await self.deliver_due()
        if time.monotonic() - self._gauges_at >= GAUGE_EVERY_SECONDS:
            await self.refresh_gauges()

    async def step_due(self) -> int:
        """Send or escalate every notification whose time has come; returns the steps taken."""
        now = self.clock()
        due = await self.store.due_notifications(now)
        if not due:
            return 0
        changes = await self.store.roster_changes()
        roster = self.policy.roster

        def duty_at(at: datetime) -> rules.Duty:
            return rules.on_duty(roster, changes, at)

        taken = 0
        channels = frozenset(self.channels)
        for ntf in due:
            step = rules.dispatch(self.policy, channels, ntf, now, duty_at)
            if step.notification is ntf:
                continue
            docs = [spec.document(now) for spec in step.deliveries]
            try:
                await self.store.save_step(step.notification, docs)
            except Conflict:
                continue  # an ack or an alert changed it meanwhile: judged again next cycle
            taken += 1
            if step.kind == "escalation":
                ESCALATIONS.labels(ntf["severity"]).inc()
            for doc in docs:
                if doc["state"] == "failed":
                    DELIVERIES_GIVEN_UP.labels("none").inc()
                    log.error("delivery_unreachable", notification_id=ntf["_id"], person=doc["person"],
                              role=doc["role"], step=doc["step"])
            if step.kind is not None:
                log.info("notification_step", notification_id=ntf["_id"], step=step.kind,
                         escalations=step.notification["escalations"], alerts=ntf["alert_count"],
                         to=sorted({d["person"] for d in docs}))
        return taken

    async def deliver_due(self) -> int:
        """Attempt every due delivery (a few at a time); returns how many were attempted."""
        now = self.clock()
        pending = await self.store.due_deliveries(now)
        if not pending:
            return 0
        gate = asyncio.Semaphore(SEND_CONCURRENCY)

        async def one(delivery: dict[str, Any]) -> bool:
            async with gate:
                return await self._attempt(delivery, now)

        return sum(await asyncio.gather(*(one(d) for d in pending)))

    async def _attempt(self, delivery: dict[str, Any], now: datetime) -> bool:
        timeout = self.policy.routing.delivery.timeout
        # Lease beyond the send timeout: a crash mid-send leaves it for a retry, not for loss.
        if not await self.store.claim(delivery, now + 3 * timeout):
            return False
        channel_name = delivery["channel"]
        channel = self.channels.get(channel_name)
        person = self.policy.roster.people.get(delivery["person"])
        started = self.clock()
        error: str | None = None
        try:
            if channel is None:
                raise DeliveryError(f"channel {channel_name} is not configured")
            if person is None:
                raise DeliveryError(f"person {delivery['person']} is no longer in the roster")
            to = Recipient(delivery["person"], person.name, delivery["role"], person.phone, person.wecom_userid)
            message = Message(delivery["_id"], delivery["notification_id"], delivery["step"], delivery["severity"],
                              delivery["title"], delivery["text"])
            await asyncio.wait_for(channel.send(message, to), timeout=timeout.total_seconds())
        except DeliveryError as exc:
            error = exc.reason
        except TimeoutError:
            error = f"no answer within {timeout.total_seconds():g} s"
        attempt_no = delivery["attempt_count"] + 1
        attempt = {"at": started, "outcome": "sent" if error is None else "failed", "error": error}
        step = _step_label(delivery["step"])
        if error is None:
            await self.store.record_attempt(delivery["_id"], attempt, "sent", None, None)
            NOTIFICATIONS_SENT.labels(channel_name, delivery["role"], step, "sent").inc()
            log.info("delivered", delivery_id=delivery["_id"], notification_id=delivery["notification_id"],
                     channel=channel_name, person=delivery["person"], attempt=attempt_no)
            return True
        DELIVERY_FAILURES.labels(channel_name).inc()
        if attempt_no >= self.policy.routing.delivery.max_attempts:
            await self.store.record_attempt(delivery["_id"], attempt, "failed", None, error)
            NOTIFICATIONS_SENT.labels(channel_name, delivery["role"], step, "failed").inc()
            DELIVERIES_GIVEN_UP.labels(channel_name).inc()
            log.error("delivery_failed", delivery_id=delivery["_id"], notification_id=delivery["notification_id"],
                      channel=channel_name, person=delivery["person"], attempts=attempt_no, error=error)
            return True
        retry_at = self.clock() + rules.retry_delay(self.policy, attempt_no)
        await self.store.record_attempt(delivery["_id"], attempt, "pending", retry_at, error)
        NOTIFICATIONS_SENT.labels(channel_name, delivery["role"], step, "retry").inc()
        log.warning("delivery_retrying", delivery_id=delivery["_id"], channel=channel_name,
                    person=delivery["person"], attempt=attempt_no, retry_at=retry_at.isoformat(), error=error)
        return True

    async def refresh_gauges(self) -> None:
        counts = await self.store.counts()
        NOTIFICATIONS_OPEN.labels("open").set(counts["open"])
        NOTIFICATIONS_OPEN.labels("acknowledged").set(counts["acknowledged"])
        DELIVERIES_PENDING.set(counts["deliveries_pending"])
        self._gauges_at = time.monotonic()
