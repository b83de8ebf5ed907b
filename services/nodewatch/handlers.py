"""The BatchHandler of nodewatch: load the batch's cases and deadlines (one query each),
apply each event with rules.py in consumed order, apply the ticks the gate lets through,
raise what fell due, and put every write and alert into Effects."""
from __future__ import annotations

import time
from datetime import datetime

from services.nodewatch.metrics import CASE_EVENTS, CLOCK_HELD_SECONDS, PENDING_CASES, TRIAGE_WAIT_EXPIRED
from services.nodewatch.rules import NodeRules, new_case, triage_expected_at
from services.nodewatch.store import NodeStore
from shared.clock import DEDUPED_BY_WATERMARK
from shared.contract.casenumber import CaseNumberError, parse_case_no
from shared.contract.envelope import Event
from shared.deadline_book import BatchClock, DeadlineBook
from shared.logging import get_logger
from shared.runtime.alignment import InputGate, UpstreamProgress
from shared.runtime.effects import Effects

log = get_logger()


def case_of(event: Event) -> str:
    """The case an event is about: the subject of case events, data.case_no of triage decisions."""
    raw = event.data.case_no if event.type == "triage.decided" else event.subject
    return parse_case_no(raw).normalized


class NodeHandler:
    idempotent = DEDUPED_BY_WATERMARK

    def __init__(self, rules: NodeRules, book: DeadlineBook, store: NodeStore, gate: InputGate | None = None,
                 triage_wait_seconds: float = 30.0, triage: UpstreamProgress | None = None):
        self.rules = rules
        self.triage = triage
        self.book = book
        self.store = store
        self.gate = gate
        self.triage_wait_seconds = triage_wait_seconds
        self._expecting_since: dict[str, float] = {}  # wall time a decision was first expected (liveness only)
        self._gave_up: set[str] = set()

    def triage_bound(self, batch_cases: dict[str, dict]) -> datetime | None:
        """Ticks wait for triage decisions that are due but not read yet (alerts carry the team).

        A decision still missing after triage_wait_seconds of wall time stops holding the clock
        (triage down, or a case it does not decide): alerts then go out without that team.
        triage_wait_seconds <= 0 turns the wait off. Wall time decides only *when* ticks apply.
        """
        if self.store.cache is None or self.triage_wait_seconds <= 0:
            return None
        expected: dict[str, datetime] = {}
        for case_no, doc in self.store.cache.docs.items():
            if case_no not in batch_cases and (at := triage_expected_at(doc)) is not None:
                expected[case_no] = at
        for case_no, doc in batch_cases.items():
            if (at := triage_expected_at(doc)) is not None:
                expected[case_no] = at
        for case_no in [c for c in self._expecting_since if c not in expected]:
            del self._expecting_since[case_no]
            self._gave_up.discard(case_no)
        now = time.monotonic()
        bound = None
        for case_no, at in expected.items():
            since = self._expecting_since.setdefault(case_no, now)
            if now - since > self.triage_wait_seconds:
                if case_no not in self._gave_up:
                    self._gave_up.add(case_no)
                    TRIAGE_WAIT_EXPIRED.inc()
                    log.warning("triage_decision_not_read", case_no=case_no, expected_at=at.isoformat(),
                                waited_seconds=round(now - since, 1))
                continue
            bound = at if bound is None or at < bound else bound
        return bound

    def _apply_ticks(self, clock: BatchClock, cases: dict[str, dict]) -> None:
        """Held ticks apply as far as the gate and triage allow.

        Triage's progress (its group's commits) says exactly what it has handled; before it has
        committed on every partition we read (start-up, triage not running) the first decisions
        nodewatch expects stand in for it (triage_bound)."""
        if self.triage is not None and self.triage.informed():
            hold_all, before = self.triage.bound()
            if hold_all:
                return
        else:
            before = self.triage_bound(cases)
        clock.apply_gated(self.gate, before=before)

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
        self._apply_ticks(ledger.clock, cases)
        await ledger.fire_due(effects)
        self.store.write_cases(effects, list(changed.values()), event_ids)
        clock = ledger.clock
        if clock.clock_now is not None and clock.now is not None:
            CLOCK_HELD_SECONDS.set(max((clock.clock_now - clock.now).total_seconds(), 0.0))
        await self.book.refresh_open_gauge()
