"""The BatchHandler of nodewatch: load the batch's cases and deadlines (one query each),
apply each event with rules.py in consumed order, apply the ticks the gate lets through,
raise what fell due, and put every write and alert into Effects."""
from __future__ import annotations

from services.nodewatch.alignment import InputGate
from services.nodewatch.metrics import CASE_EVENTS, CLOCK_HELD_SECONDS, PENDING_CASES
from services.nodewatch.rules import NodeRules, new_case
from services.nodewatch.store import NodeStore
from shared.contract.casenumber import CaseNumberError, parse_case_no
from shared.contract.envelope import Event
from shared.deadline_book import DeadlineBook
from shared.logging import get_logger
from shared.runtime.effects import Effects

log = get_logger()


def case_of(event: Event) -> str:
    """The case an event is about: the subject of case events, data.case_no of triage decisions."""
    raw = event.data.case_no if event.type == "triage.decided" else event.subject
    return parse_case_no(raw).normalized


class NodeHandler:
    def __init__(self, rules: NodeRules, book: DeadlineBook, store: NodeStore, gate: InputGate | None = None):
        self.rules = rules
        self.book = book
        self.store = store
        self.gate = gate

    async def handle(self, events: list[Event], effects: Effects) -> None:
        subjects: dict[str, str] = {}
        for event in events:
            if event.type == "clock.tick":
                continue
            try:
                subjects[event.id] = case_of(event)
            except CaseNumberError as exc:
                effects.reject(event, f"not a case number: {exc.reason}")
        case_nos = set(subjects.values())
        event_ids = [e.id for e in events]
        cases = await self.store.load_cases(case_nos, event_ids)
        ledger = await self.book.load(case_nos=case_nos, event_ids=event_ids)
        changed: dict[str, dict] = {}
        for event in events:
            if event.type == "clock.tick":
                ledger.clock.observe(event.data.now)
                continue
            case_no = subjects.get(event.id)
            if case_no is None:
                continue
            case = cases.get(case_no) or cases.setdefault(case_no, new_case(case_no))
            if case["filed_at"] is None and event.type not in ("case.filed", "triage.decided"):
                PENDING_CASES.inc()
            if self.rules.apply(case, event, ledger, effects) or "v" not in case:
                changed[case_no] = case
            CASE_EVENTS.labels(event.type).inc()
        hold_all, bound = self.gate.bound() if self.gate is not None else (False, None)
        if not hold_all:
            ledger.clock.apply(bound)
        await ledger.fire_due(effects)
        self.store.write_cases(effects, list(changed.values()), event_ids)
        clock = ledger.clock
        if clock.clock_now is not None and clock.now is not None:
            CLOCK_HELD_SECONDS.set(max((clock.clock_now - clock.now).total_seconds(), 0.0))
        await self.book.refresh_open_gauge()
