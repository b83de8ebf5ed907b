"""The BatchHandler of triage: load the batch's cases and the team book, decide in order, store, emit.

Team assignment counts open cases as of the watermark, so a decision depends on which
ticks were handled before it. The handler therefore puts the batch in the order a
time-ordered reading gives (shared/runtime/alignment.window_order, fed by the runtime's
gate over the case-event and clock partitions) and defers what that reading has not
reached yet (Effects.defer: the runtime offers it again with the next batch and does not
commit its offset, so triage's commits mean "decided", which nodewatch relies on). The
decisions are the same however Kafka interleaves the partitions (a backlog after
downtime, a free-running replay).

Reads per batch: one `$in` query for the cases, one for the team documents, one for the
watermark. Writes (through Effects, one transaction with the inbox and outbox): one
replace per changed case, per changed team document and for the watermark.
"""
from __future__ import annotations

from collections.abc import Collection

from services.triage import rules
from services.triage.metrics import DECISIONS, HELD_EVENTS, OPEN_CASES, OPEN_CASES_AT_WATERMARK, REJECTED
from services.triage.policy import TriagePolicy
from services.triage.rules import Asset, CaseState, Decision, Filing, Inquiry, TeamBook, court_time
from services.triage.store import CASES, META, TEAMS, TriageStore, decision_id
from shared.clock import DEDUPED_BY_WATERMARK
from shared.contract.casenumber import CaseNumberError, parse_case_no
from shared.contract.envelope import Event, make_event
from shared.contract.events import TriageDecided
from shared.metrics import WATERMARK
from shared.runtime.alignment import InputGate, window_order
from shared.runtime.effects import Effects
from shared.topics import TRIAGE_DECISIONS

SOURCE = "ecc/triage"
FILED = "case.filed"
INQUIRY = "property.inquiry.result"
CLOSED = "case.closed"
TICK = "clock.tick"
CASE_TYPES = frozenset({FILED, INQUIRY, CLOSED})


def decision_event(decision: Decision) -> Event:
    return make_event(
        type="triage.decided", subject=decision.case_no, time=decision.decided_at, source=SOURCE,
        id=decision_id(decision),
        data=TriageDecided(
            case_no=decision.case_no, track=decision.track, reasons=list(decision.reasons), team=decision.team,
            decided_at=decision.decided_at, revision=decision.revision, policy_version=decision.policy_version,
        ),
    )


def _subject_problem(event: Event) -> str | None:
    try:
        normalised = parse_case_no(event.subject).normalized
    except CaseNumberError as exc:
        return f"subject {event.subject!r} is not a case number: {exc.reason}"
    if normalised != event.subject:
        return f"subject {event.subject!r} is not in normalised form ({normalised})"
    if event.type == FILED and event.data.case_no != event.subject:  # type: ignore[attr-defined]
        return f"data.case_no {event.data.case_no!r} differs from subject {event.subject!r}"  # type: ignore[attr-defined]
    return None


class TriageHandler:
    handles = CASE_TYPES | {TICK}  # the other case events change no decision (runtime BatchHandler)
    idempotent = DEDUPED_BY_WATERMARK

    def __init__(self, store: TriageStore, policy: TriagePolicy, gate: InputGate | None = None,
                 fact_topics: Collection[str] = (), clock_topics: Collection[str] = ()):
        """gate: the runtime's gate over `fact_topics` (case events) and `clock_topics`; without it
        events are handled in consumed order (unit tests)."""
        self.store = store
        self.policy = policy
        self.gate = gate
        self.fact_topics = fact_topics
        self.clock_topics = clock_topics

    async def handle(self, events: list[Event], effects: Effects) -> None:
        relevant = [e for e in events if e.type in self.handles]  # the runtime filters too; tests call directly
        if self.gate is not None:
            relevant, held = window_order(relevant, tick_type=TICK, tick_gate=self.gate.bound(self.fact_topics),
                                          clock_gate=self.gate.bound(self.clock_topics))
            for event in held:
                effects.defer(event)
            HELD_EVENTS.set(len(held))
        if not relevant:
            return
        states = await self.store.load_cases({e.subject for e in relevant if e.type in CASE_TYPES})
        before = book = await self.store.load_book()
        changed: dict[str, CaseState] = {}
        for event in relevant:
            if event.type == TICK:
                book = rules.on_tick(book, event.data.now)  # type: ignore[attr-defined]
                continue
            problem = _subject_problem(event)
            if problem is not None:
                self._reject(effects, event, problem)
                continue
            state = states.get(event.subject) or CaseState(event.subject)
            outcome = self._apply(event, state, book)
            if outcome.rejected is not None:
                self._reject(effects, event, outcome.rejected)
                continue
            book = outcome.book
            if outcome.state != state:
                states[event.subject] = changed[event.subject] = outcome.state
            for decision in outcome.decisions:
                effects.emit(TRIAGE_DECISIONS, decision_event(decision))
                DECISIONS.labels(decision.track, decision.reasons[0],
                                 "first" if decision.revision == 1 else "revised").inc()
        if changed:
            effects.write(CASES, *(self.store.case_write(s) for _, s in sorted(changed.items())))
        team_ops, meta_ops = self.store.book_writes(before, book)
        if team_ops:
            effects.write(TEAMS, *team_ops)
        if meta_ops:
            effects.write(META, *meta_ops)
        self._gauges(book)

    def _apply(self, event: Event, state: CaseState, book: TeamBook) -> rules.Outcome:
        data = event.data
        at = court_time(event.time)
        if event.type == FILED:
            filing = Filing(data.case_type, data.target_amount, len(data.respondents), at)  # type: ignore[attr-defined]
            return rules.on_filed(self.policy, state, filing, book)
        if event.type == INQUIRY:
            assets = tuple(Asset(a.ref, a.kind, a.value, a.controllable) for a in data.assets)  # type: ignore[attr-defined]
            return rules.on_inquiry(self.policy, state, Inquiry(data.channel, at, assets), book)  # type: ignore[attr-defined]
        return rules.on_closed(state, at, book)

    def _reject(self, effects: Effects, event: Event, reason: str) -> None:
        REJECTED.labels(event.type).inc()
        effects.reject(event, reason)

    def _gauges(self, book: TeamBook) -> None:
        if book.watermark is not None:
            WATERMARK.labels("triage").set(book.watermark.timestamp())
        for team, track in self.policy.all_teams:
            OPEN_CASES.labels(team, track).set(book.open.get(team, 0))
            OPEN_CASES_AT_WATERMARK.labels(team, track).set(book.settled.get(team, 0))
