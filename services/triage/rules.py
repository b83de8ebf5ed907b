"""Triage decisions (繁简分流), rules.md §2: pure functions of a case's events so far.

No database, broker or wall clock here: the handler turns events into the facts
below, calls these functions in consumed order and stores what they return.

Reading of rules.md §2 (where the table leaves room, and why):
- The assets of a case are every asset its inquiry results have reported, network
  and traditional, the latest result per asset `ref` winning. A later result adds to
  what earlier ones found; it does not wipe it (a re-inquiry that finds nothing new
  does not make a house disappear).
- "Found" means value > 0: line 6 says an asset of value 0 is no asset, so an asset of
  value 0 counts for no line. `full_deposit` needs controllable deposits > 0 that reach
  the target; `partial_property` as an additional reason means controllable deposits
  > 0 and below the target (the parenthesis of line 7); as the matching line it is
  "otherwise".
- The property lines (2, 3, 6, 7) hold only once an inquiry result has come back: a 执保
  case decided at filing has no `no_property` reason, nobody has looked yet.
- Decision time: the event time of the event that triggers it, and never before the
  filing: `decided_at = max(filing time, result time)`, so a result that reached us
  before its filing gives the same decision as in the usual order.
- A result that arrives before the filing is kept and applied, in order, right after
  the filing: the decisions are the ones the usual order would have given.
- Triage ends at closure: results after `case.closed` decide nothing (a resumed case is a
  new 执恢 case with its own filing and triage).

Team assignment: the team of the track with the fewest open cases, ties by the
policy's team order. Open cases are counted **as of the clock watermark**
(`TeamBook.settled`): a change (assignment, move, closure) at event time t counts
once the watermark reaches t. That keeps the choice independent of the order in
which the service happens to read different cases' events between two ticks, which
Kafka does not fix across partitions, so a replay gives the same teams. Before the
first tick the live counts are used (balanced, but order-dependent).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from shared.contract.envelope import COURT_TZ

if TYPE_CHECKING:
    from services.triage.policy import TriagePolicy

PRESERVATION_TYPE = "执保"
RESUMED_TYPE = "执恢"
NETWORK = "network"
DEPOSIT = "deposit"


def court_time(moment: datetime) -> datetime:
    """Every time the service keeps or emits is in the court's zone, so one instant has one spelling."""
    return moment.astimezone(COURT_TZ)


# ---------------------------------------------------------------- facts

@dataclass(frozen=True)
class Filing:
    """What triage needs of a `case.filed`."""

    case_type: str
    target_amount: Decimal
    respondents: int
    at: datetime


@dataclass(frozen=True)
class Asset:
    ref: str
    kind: str
    value: Decimal
    controllable: bool


@dataclass(frozen=True)
class Inquiry:
    """A `property.inquiry.result`."""

    channel: str
    at: datetime
    assets: tuple[Asset, ...]


@dataclass(frozen=True)
class Verdict:
    track: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    """One `triage.decided` (revision 1 first; a changed track is the next revision)."""

    case_no: str
    revision: int
    track: str
    reasons: tuple[str, ...]
    team: str
    decided_at: datetime
    policy_version: str


# ---------------------------------------------------------------- the table

def conditions(policy: TriagePolicy, filing: Filing, assets: Iterable[Asset], inquired: bool) -> dict[str, bool]:
    """Every reason code of rules.md §2 → whether its condition holds for this case now."""
    found = [a for a in assets if a.value > 0]
    deposits = sum((a.value for a in found if a.kind == DEPOSIT and a.controllable), Decimal(0))
    thresholds = policy.thresholds
    return {
        "preservation_case": filing.case_type == PRESERVATION_TYPE,
        "full_deposit": inquired and deposits > 0 and deposits >= filing.target_amount,
        "needs_disposal": inquired and any(a.controllable and a.kind != DEPOSIT for a in found),
        "many_respondents": filing.respondents >= thresholds.many_respondents,
        "large_amount": filing.target_amount >= thresholds.large_amount,
        "resumed_case": filing.case_type == RESUMED_TYPE,
        "no_property": inquired and not found,
        "partial_property": inquired and Decimal(0) < deposits < filing.target_amount,
    }


def classify(policy: TriagePolicy, filing: Filing, assets: Iterable[Asset], inquired: bool) -> Verdict:
    """First matching line wins; reasons = that line's code, then every other holding code of lines 2-7."""
    holds = conditions(policy, filing, assets, inquired)
    match = next((line.code for line in policy.lines if holds[line.code]), "partial_property")  # line 7: otherwise
    others = [line.code for line in policy.lines if line.line >= 2 and line.code != match and holds[line.code]]
    return Verdict(policy.track_of(match), (match, *others))


# ---------------------------------------------------------------- open cases per team

@dataclass(frozen=True)
class TeamChange:
    team: str
    delta: int
    at: datetime


@dataclass(frozen=True)
class TeamBook:
    """Open cases per team: live, and as of the watermark (what assignment uses)."""

    open: Mapping[str, int] = field(default_factory=dict)
    settled: Mapping[str, int] = field(default_factory=dict)
    pending: tuple[TeamChange, ...] = ()  # changes timed after the watermark
    watermark: datetime | None = None

    def counts_for_choice(self) -> Mapping[str, int]:
        return self.settled if self.watermark is not None else self.open

    def choose(self, teams: Sequence[str]) -> str:
        """The team with the fewest open cases; ties go to the one listed first."""
        counts = self.counts_for_choice()
        return min(teams, key=lambda team: (counts.get(team, 0), teams.index(team)))

    def moved(self, team: str, delta: int, at: datetime) -> TeamBook:
        open_ = dict(self.open)
        open_[team] = open_.get(team, 0) + delta
        if self.watermark is not None and at <= self.watermark:  # a late fact: already in the past
            settled = dict(self.settled)
            settled[team] = settled.get(team, 0) + delta
            return replace(self, open=open_, settled=settled)
        return replace(self, open=open_, pending=(*self.pending, TeamChange(team, delta, at)))

    def advanced(self, now: datetime) -> TeamBook:
        """The watermark moves to `now` (never back): changes timed up to it count from now on."""
        if self.watermark is not None and now <= self.watermark:
            return self
        settled = dict(self.settled)
        keep = []
        for change in self.pending:
            if change.at <= now:
                settled[change.team] = settled.get(change.team, 0) + change.delta
            else:
                keep.append(change)
        return replace(self, settled=settled, pending=tuple(keep), watermark=now)


# ---------------------------------------------------------------- one case

@dataclass(frozen=True)
class CaseState:
    case_no: str
    filing: Filing | None = None
    assets: tuple[Asset, ...] = ()          # every asset found so far, latest result per ref
    results: int = 0                        # inquiry results applied
    network_at: datetime | None = None      # the first network result's time
    early: tuple[Inquiry, ...] = ()         # results that came before the filing
    closed_at: datetime | None = None
    decisions: tuple[Decision, ...] = ()

    @property
    def current(self) -> Decision | None:
        return self.decisions[-1] if self.decisions else None


@dataclass(frozen=True)
class Outcome:
    state: CaseState
    book: TeamBook
    decisions: tuple[Decision, ...] = ()
    rejected: str | None = None  # the event is impossible: dead-letter it with this reason


def _merge(assets: tuple[Asset, ...], found: Iterable[Asset]) -> tuple[Asset, ...]:
    by_ref = {a.ref: a for a in assets}
    for asset in found:
        by_ref[asset.ref] = asset
    return tuple(by_ref.values())


def _decide(policy: TriagePolicy, state: CaseState, book: TeamBook, at: datetime) -> Outcome:
    """Classify now; a first decision, or a new revision when the track changed, else nothing."""
    assert state.filing is not None
    verdict = classify(policy, state.filing, state.assets, inquired=state.results > 0)
    current = state.current
    if current is not None and current.track == verdict.track:
        return Outcome(state, book)
    team = book.choose(policy.teams_of(verdict.track))
    if current is not None:
        book = book.moved(current.team, -1, at)
    book = book.moved(team, +1, at)
    decision = Decision(
        case_no=state.case_no, revision=current.revision + 1 if current else 1, track=verdict.track,
        reasons=verdict.reasons, team=team, decided_at=at, policy_version=policy.policy_version,
    )
    return Outcome(replace(state, decisions=(*state.decisions, decision)), book, (decision,))


def _apply_inquiry(policy: TriagePolicy, state: CaseState, book: TeamBook, inquiry: Inquiry) -> Outcome:
    if state.closed_at is not None:
        return Outcome(state, book)
    if state.filing is None:
        return Outcome(replace(state, early=(*state.early, inquiry)), book)
    first_network = state.network_at is None and inquiry.channel == NETWORK
    state = replace(
        state, assets=_merge(state.assets, inquiry.assets), results=state.results + 1,
        network_at=inquiry.at if first_network else state.network_at,
    )
    if state.current is None and state.network_at is None:
        return Outcome(state, book)  # a traditional result first: wait for the network one
    return _decide(policy, state, book, max(inquiry.at, state.filing.at))


def on_filed(policy: TriagePolicy, state: CaseState, filing: Filing, book: TeamBook) -> Outcome:
    """`case.filed`: 执保 is decided now; results that came first are applied in their order."""
    if state.filing is not None:
        if replace(filing, at=state.filing.at) == state.filing:
            return Outcome(state, book)  # the same filing again under another id: nothing new
        return Outcome(state, book, rejected=f"case {state.case_no} was already filed with different content")
    early = state.early
    state = replace(state, filing=filing, early=())
    if state.closed_at is not None:
        return Outcome(state, book)
    decisions: list[Decision] = []
    if filing.case_type == PRESERVATION_TYPE:
        outcome = _decide(policy, state, book, filing.at)
        state, book, decisions = outcome.state, outcome.book, [*outcome.decisions]
    for inquiry in early:
        outcome = _apply_inquiry(policy, state, book, inquiry)
        state, book = outcome.state, outcome.book
        decisions += outcome.decisions
    return Outcome(state, book, tuple(decisions))


def on_inquiry(policy: TriagePolicy, state: CaseState, inquiry: Inquiry, book: TeamBook) -> Outcome:
    """`property.inquiry.result`: the first network result decides; later ones revise a changed track."""
    return _apply_inquiry(policy, state, book, inquiry)


def on_closed(state: CaseState, at: datetime, book: TeamBook) -> Outcome:
    """`case.closed`: the case leaves its team's open cases; triage is over for it."""
    if state.closed_at is not None:
        return Outcome(state, book)
    current = state.current
    if current is not None:
        book = book.moved(current.team, -1, at)
    return Outcome(replace(state, closed_at=at), book)


def on_tick(book: TeamBook, now: datetime) -> TeamBook:
    return book.advanced(court_time(now))
