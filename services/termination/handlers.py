"""The BatchHandler of termination: load the batch's cases and deadlines (one query each), apply
each event with rules.py in consumed order, apply the ticks, raise what fell due, and put every
write, review and alert into Effects."""
from __future__ import annotations

import time as wall_time

from services.termination.metrics import EVENTS, IN_RECHECK, MISSING_ITEMS, RESTORE_SUGGESTIONS, REVIEWS
from services.termination.rules import TerminationRules, new_case
from services.termination.store import TerminationStore
from shared.clock import DEDUPED_BY_WATERMARK
from shared.contract.casenumber import CaseNumberError, parse_case_no
from shared.contract.envelope import Event
from shared.deadline_book import DeadlineBook
from shared.runtime.effects import Effects

CASE_TYPES = frozenset({
    "case.filed", "node.completed", "property.inquiry.result", "property.clue.registered",
    "case.closure_proposed", "case.closed", "case.resumed", "triage.decided",
})
GAUGE_INTERVAL_SECONDS = 5.0


def case_of(event: Event) -> str:
    """The case an event is about: the subject of case events, data.case_no of triage decisions."""
    raw = event.data.case_no if event.type == "triage.decided" else event.subject  # type: ignore[attr-defined]
    return parse_case_no(raw).normalized


class TerminationHandler:
    idempotent = DEDUPED_BY_WATERMARK

    def __init__(self, rules: TerminationRules, book: DeadlineBook, store: TerminationStore):
        self.rules = rules
        self.book = book
        self.store = store
        self._gauge_at = 0.0

    async def handle(self, events: list[Event], effects: Effects) -> None:
        subjects: dict[str, str] = {}
        for event in events:
            if event.type not in CASE_TYPES:
                continue
            try:
                subjects[event.id] = case_of(event)
            except CaseNumberError as exc:
                effects.reject(event, f"not a case number: {exc.reason}")
        case_nos = set(subjects.values())
        cases = await self.store.load_cases(case_nos)
        # The event ids tell the book's cache a new batch from a re-run of one that did not commit.
        ledger = await self.book.load(case_nos=case_nos, event_ids=[e.id for e in events])
        changed: dict[str, dict] = {}
        reviews: list[dict] = []
        for event in events:
            if event.type == "clock.tick":
                ledger.clock.observe(event.data.now)  # type: ignore[attr-defined]
                continue
            case_no = subjects.get(event.id)
            if case_no is None:
                continue
            case = cases.get(case_no) or cases.setdefault(case_no, new_case(case_no))
            reviews += self.rules.apply(case, event, ledger, effects)
            changed[case_no] = case
            EVENTS.labels(event.type).inc()
        ledger.clock.apply()
        await ledger.fire_due(effects)
        self.store.write_cases(effects, list(changed.values()))
        self.store.write_reviews(effects, reviews)
        self._count(reviews, effects)
        await self.book.refresh_open_gauge()
        await self._refresh_gauge()

    @staticmethod
    def _count(reviews: list[dict], effects: Effects) -> None:
        for review in reviews:
            REVIEWS.labels(review["stage"], str(review["passed"]).lower()).inc()
            for item in review["missing"]:
                MISSING_ITEMS.labels(item).inc()
        for _topic, event in effects.emitted:
            if event.type == "termination.restore_suggested":
                RESTORE_SUGGESTIONS.inc()

    async def _refresh_gauge(self) -> None:
        if wall_time.monotonic() - self._gauge_at < GAUGE_INTERVAL_SECONDS:
            return
        self._gauge_at = wall_time.monotonic()
        IN_RECHECK.set(await self.store.count_in_recheck())
