"""The BatchHandler of entrust: load the batch's entrust ids, supervision items and their
deadlines (one query each), decide each event in consumed order with rules.py, apply the
ticks, raise what fell due, and put every write, alert and refusal into Effects."""
from __future__ import annotations

from services.entrust import rules
from services.entrust.metrics import EVENTS, REFUSED
from services.entrust.policy import EntrustPolicy, entity_of
from services.entrust.store import EntrustStore
from shared.calendar import CourtCalendar
from shared.clock import DEDUPED_BY_WATERMARK
from shared.contract.envelope import Event
from shared.deadline_book import FINISHED, DeadlineBatch, DeadlineBook, key_of
from shared.runtime.alignment import InputGate
from shared.runtime.effects import Effects

TICK = "clock.tick"


class EntrustHandler:
    idempotent = DEDUPED_BY_WATERMARK

    def __init__(self, policy: EntrustPolicy, calendar: CourtCalendar, book: DeadlineBook, store: EntrustStore,
                 gate: InputGate | None = None):
        self.policy = policy
        self.calendar = calendar
        self.book = book
        self.store = store
        # Ticks wait while an input partition still has unread facts timed before them, so that a
        # catch-up (restart, replay) raises what a time-ordered read would. Without a gate every tick
        # is applied at the end of its batch and a fact read after it resolves its alert as late.
        self.gate = gate

    async def handle(self, events: list[Event], effects: Effects) -> None:
        ids: dict[str, set[str]] = {"entrust": set(), "supervision": set()}
        for event in events:
            if event.type != TICK:
                ids[entity_of(event.type)].add(event.subject)
        states = {entity: await self.store.load(entity, subjects) for entity, subjects in ids.items()}
        keys = {key_of(code, subject) for entity, subjects in ids.items()
                for code in self.policy.codes_for(entity) for subject in subjects}
        ledger = await self.book.load(keys=keys, event_ids=[e.id for e in events])
        changed: dict[str, dict[str, dict]] = {"entrust": {}, "supervision": {}}
        for event in events:
            if event.type == TICK:
                ledger.clock.observe(event.data.now)  # type: ignore[attr-defined]
                continue
            entity = entity_of(event.type)
            step = rules.decide(self.policy, self.calendar, states[entity].get(event.subject), event)
            if step.refusal is not None:
                REFUSED.labels(event.type, step.refusal.code).inc()
                effects.reject(event, step.refusal.reason)
                continue
            assert step.state is not None
            states[entity][event.subject] = changed[entity][event.subject] = step.state
            self._deadlines(ledger, effects, step)
            EVENTS.labels(event.type).inc()
        ledger.clock.apply_gated(self.gate)
        await ledger.fire_due(effects)
        for entity, docs in changed.items():
            self.store.write(effects, entity, list(docs.values()))
        await self.book.refresh_open_gauge()

    @staticmethod
    def _deadlines(ledger: DeadlineBatch, effects: Effects, step: rules.Step) -> None:
        for resolve in step.resolves:
            ledger.resolve(effects, resolve.rule, resolve.subject, at=resolve.at, reason=resolve.reason)
        for deadline in step.opens:
            existing = ledger.get(deadline.rule, deadline.subject)
            if existing is None:
                ledger.open(effects, deadline)
            elif existing["state"] in FINISHED:
                # Triggered again (a further supplement request): a new period, a new cycle of alerts.
                assert deadline.due_at is not None
                ledger.rearm(effects, deadline.rule, deadline.subject, at=deadline.opened_at,
                             due_at=deadline.due_at, warn_at=deadline.warn_at, reason="再次触发", reopen=True,
                             details=deadline.details)
