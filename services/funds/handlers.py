"""The BatchHandler of funds: load what the batch touches (one query per collection), apply each
event with rules.py in consumed order, reconcile each touched case's deadlines with its account,
apply the ticks, raise what fell due, and put every write, alert and rejection into Effects."""
from __future__ import annotations

from services.funds.metrics import EVENTS, REJECTED
from services.funds.rules import FundsRules, deadline_keys_for_receipt
from services.funds.store import FundsStore
from shared.clock import DEDUPED_BY_WATERMARK, TICK
from shared.contract.casenumber import CaseNumberError, parse_case_no
from shared.contract.envelope import Event
from shared.deadline_book import DeadlineBook
from shared.logging import get_logger
from shared.runtime.alignment import InputGate
from shared.runtime.effects import Effects

log = get_logger()

# Case events funds reads; the others (nodes, inquiries, clues...) are skipped unread.
CASE_TYPES = frozenset({"case.filed", "case.closed"})
FUND_TYPES = frozenset({"funds.received", "funds.disbursed", "funds.matched", "funds.delay_approved"})


class FundsHandler:
    handles = CASE_TYPES | FUND_TYPES | {"triage.decided", TICK}  # the rest changes nothing here
    idempotent = DEDUPED_BY_WATERMARK

    def __init__(self, rules: FundsRules, book: DeadlineBook, store: FundsStore, gate: InputGate | None = None):
        self.rules = rules
        self.book = book
        self.store = store
        # The gate holds ticks back while fund/case/triage partitions still hold facts timed before
        # them (main.py). Without one every observed tick is applied at the end of its batch, and a
        # fact read after a tick that already raised its alert resolves it as a late fact.
        self.gate = gate

    async def handle(self, events: list[Event], effects: Effects) -> None:
        case_nos: set[str] = set()
        receipt_ids: set[str] = set()
        payout_ids: set[str] = set()
        keys: set[str] = set()
        relevant: list[Event] = []
        for event in events:
            kind = event.type
            if kind == "clock.tick":
                relevant.append(event)
                continue
            if kind in FUND_TYPES:
                data = event.data
                if kind in ("funds.received", "funds.matched"):
                    receipt_ids.add(data.receipt_id)
                    keys.update(deadline_keys_for_receipt(data.receipt_id))
                if kind == "funds.disbursed":
                    payout_ids.add(data.payout_id)
                if data.case_no is not None:
                    case_nos.add(data.case_no)
            elif kind in CASE_TYPES:
                try:
                    case_nos.add(parse_case_no(event.subject).normalized)
                except CaseNumberError as exc:
                    effects.reject(event, f"not a case number: {exc.reason}")
                    continue
            elif kind == "triage.decided":
                case_nos.add(event.data.case_no)
            else:
                continue
            relevant.append(event)
        state = await self.store.load(case_nos, receipt_ids, payout_ids)
        deadlines = await self.book.load(case_nos=case_nos, keys=keys, event_ids=[e.id for e in events])
        for event in relevant:
            if event.type == "clock.tick":
                deadlines.clock.observe(event.data.now)
                continue
            reason = self.rules.apply(state, event, deadlines, effects)
            if reason is not None:
                effects.reject(event, reason)
                REJECTED.labels(event.type).inc()
                log.warning("funds_event_rejected", event_id=event.id, type=event.type, reason=reason)
            else:
                EVENTS.labels(event.type).inc()
        for case_no in sorted(state.changed_ledgers):
            self.rules.reconcile(state.ledgers[case_no], deadlines, effects)
        deadlines.clock.apply_gated(self.gate)
        await deadlines.fire_due(effects)
        self.store.write(effects, state)
        await self.book.refresh_open_gauge()
