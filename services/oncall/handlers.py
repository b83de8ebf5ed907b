"""The BatchHandler of oncall: the batch's alerts, their groups and live notifications (one query
each), then every alert.raised / alert.resolved in consumed order through rules.Ledger, and every
change into Effects (one transaction with the inbox ids). Sending happens later, in dispatcher.py,
from the durable `next_action_at` this writes."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from services.oncall import rules
from services.oncall.metrics import ALERTS_INGESTED
from services.oncall.policy import OncallPolicy
from services.oncall.store import OncallStore
from shared.config import Settings
from shared.contract.envelope import Event
from shared.logging import get_logger
from shared.runtime.effects import Effects
from shared.topics import ALERTS

# The contract name of the topic these alerts come from: a metric label and the notification's source.
SOURCE = Settings.topic_prefix + ALERTS.suffix
log = get_logger()


def alert_input(policy: OncallPolicy, event: Event) -> rules.AlertInput:
    data = event.data
    return rules.AlertInput(
        alert_id=data.alert_id, rule=data.rule, severity=data.severity,  # type: ignore[attr-defined]
        family=policy.routing.family_of(data.rule), team=data.team,  # type: ignore[attr-defined]
        summary=data.summary, raised_at=data.raised_at, source=SOURCE, case_no=data.case_no)  # type: ignore[attr-defined]


class OncallHandler:
    def __init__(self, policy: OncallPolicy, store: OncallStore, channels: frozenset[str],
                 clock: Callable[[], datetime]):
        self.policy = policy
        self.store = store
        self.channels = channels
        # Wall time: notification timing is about people answering now (docs/oncall.md "Time").
        self.clock = clock

    async def handle(self, events: list[Event], effects: Effects) -> None:
        now = self.clock()
        raised = {e.id: alert_input(self.policy, e) for e in events if e.type == "alert.raised"}
        ledger = await self.store.load_ledger(
            self.policy, self.channels, {e.data.alert_id for e in events},  # type: ignore[attr-defined]
            {rules.group_key(a.rule, a.severity, a.team) for a in raised.values()})
        for event in events:
            if event.type == "alert.raised":
                alert = raised[event.id]
                outcome = ledger.raise_alert(alert, now)
                family = alert.family
            else:
                data = event.data
                outcome = ledger.resolve_alert(data.alert_id, data.resolved_at, data.reason, now)  # type: ignore[attr-defined]
                family = (ledger.alerts.get(data.alert_id) or {}).get("family", "unknown")  # type: ignore[attr-defined]
            ALERTS_INGESTED.labels(SOURCE, family, outcome).inc()
            if outcome in ("unknown", "unrouted"):
                log.info("alert_not_notified", event_id=event.id, alert_id=event.subject, outcome=outcome,
                         case_no=getattr(event.data, "case_no", None))
        self.store.write_effects(effects, ledger, now)
