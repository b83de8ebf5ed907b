"""The BatchHandler of sentiment: load the batch's items, the case teams they need and their
deadlines (one query each), apply triage decisions and sentiment events in consumed order with
rules.py, apply the ticks, raise what fell due, and put every write, alert and refusal into Effects."""
from __future__ import annotations

from services.sentiment import rules
from services.sentiment.metrics import EVENTS, REFUSED, REGISTERED
from services.sentiment.policy import SentimentPolicy
from services.sentiment.store import CASE_TEAMS, ITEMS, SentimentStore
from shared.calendar import CourtCalendar
from shared.clock import DEDUPED_BY_WATERMARK
from shared.contract.envelope import Event
from shared.deadline_book import DeadlineBook, key_of
from shared.runtime.alignment import InputGate
from shared.runtime.effects import Effects

TICK = "clock.tick"
DECIDED = "triage.decided"


class SentimentHandler:
    idempotent = DEDUPED_BY_WATERMARK

    def __init__(self, policy: SentimentPolicy, calendar: CourtCalendar, book: DeadlineBook, store: SentimentStore,
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
        item_ids = {e.subject for e in events if e.type.startswith("sentiment.")}
        decided = {e.data.case_no for e in events if e.type == DECIDED}  # type: ignore[attr-defined]
        items = await self.store.load_items(item_ids)
        # The teams of every case the batch may touch: decided now, named by a new item, or an item's own.
        case_nos = set(decided) | {d["case_no"] for d in items.values() if d.get("case_no")}
        for event in events:
            if event.type == "sentiment.registered":
                data = event.data
                case_nos.update(rules.linked_cases(data.title, data.text, data.case_no)[:1])  # type: ignore[attr-defined]
        team_docs = await self.store.load_teams(case_nos)
        teams = rules.CaseTeams(team_docs)
        ledger = await self.book.load(case_nos=decided,
                                      keys={key_of(code, i) for i in item_ids for code in self.policy.codes},
                                      event_ids=[e.id for e in events])  # the cache tells a re-run batch by them
        changed_items: dict[str, dict] = {}
        changed_teams: dict[str, dict] = {}
        for event in events:
            if event.type == TICK:
                ledger.clock.observe(event.data.now)  # type: ignore[attr-defined]
                continue
            if event.type == DECIDED:
                case_no = event.data.case_no  # type: ignore[attr-defined]
                doc = team_docs.get(case_no) or team_docs.setdefault(case_no, rules.new_case_team(case_no))
                if rules.apply_decision(doc, event):
                    changed_teams[case_no] = doc
                    ledger.set_team(case_no, event.data.team, event.data.decided_at,  # type: ignore[attr-defined]
                                    event.data.revision)  # type: ignore[attr-defined]
                continue
            step = rules.decide(self.policy, self.calendar, items.get(event.subject), event, teams)
            if step.refusal is not None:
                REFUSED.labels(event.type, step.refusal.code).inc()
                effects.reject(event, step.refusal.reason)
                continue
            assert step.state is not None
            items[event.subject] = changed_items[event.subject] = step.state
            for resolve in step.resolves:
                ledger.resolve(effects, resolve.rule, resolve.subject, at=resolve.at, reason=resolve.reason)
            for deadline in step.opens:
                ledger.open(effects, deadline)
            EVENTS.labels(event.type).inc()
            if event.type == "sentiment.registered":
                REGISTERED.labels(step.state["level"]).inc()
        ledger.clock.apply_gated(self.gate)
        await ledger.fire_due(effects)
        self.store.write(effects, ITEMS, list(changed_items.values()))
        self.store.write(effects, CASE_TEAMS, list(changed_teams.values()))
        await self.book.refresh_open_gauge()
