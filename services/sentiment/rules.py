"""Pure decisions of sentiment (舆情), rules.md §6: no database, no broker, no wall clock.

`decide(policy, calendar, state, event, teams)` applies one sentiment event to its item's state
(a plain dict, None when unknown) and returns a `Step`: the new state and the
deadlines to open and resolve, or a `Refusal` (impossible in that state: dead letter,
never applied). The lifecycle is the table TRANSITIONS. `teams` is the case-team book
built from triage decisions (`CaseTeams`): the latest revision of a case's decision wins.

Registration grades the item (keywords and patterns of rules/sentiment.yaml, in its
title and text), links it to the case numbers it names (normalised: half-width
parentheses and full-width digits are accepted) and to the explicit case_no, raises
sentiment.major / sentiment.serious at once, and opens sentiment.response (due
captured_at + 5 / 24 / 48 hours, no warning), which sentiment.approved (审签) resolves.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.sentiment.policy import SentimentPolicy
from shared.calendar import CourtCalendar
from shared.contract.casenumber import find_case_numbers
from shared.contract.envelope import COURT_TZ, Event
from shared.deadline_book import Deadline, ms
from shared.deadlines import due_at, warn_at

STATES: dict[str, str] = {
    "registered": "已登记",     # awaiting the bureau head's sign-off (审签)
    "approved": "已审签",
    "transferred": "已移交",    # to the case team
    "resolved": "已办结",       # terminal
}
TRANSITIONS: dict[tuple[str | None, str], str] = {
    (None, "sentiment.registered"): "registered",
    ("registered", "sentiment.approved"): "approved",
    ("approved", "sentiment.transferred"): "transferred",
    ("transferred", "sentiment.transferred"): "transferred",  # handed on to another team
    ("approved", "sentiment.resolved"): "resolved",
    ("transferred", "sentiment.resolved"): "resolved",
}
OPEN_STATES: frozenset[str] = frozenset({"registered", "approved", "transferred"})
LEVEL_RANK: dict[str, int] = {"major": 0, "serious": 1, "general": 2}
EVENT_ZH: dict[str, str] = {"sentiment.registered": "登记", "sentiment.approved": "审签",
                            "sentiment.transferred": "移交", "sentiment.resolved": "办结"}
TITLE_MAX = 60  # characters of the title quoted in an alert summary


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str
    message_zh: str

    @property
    def reason(self) -> str:
        return f"{self.message} / {self.message_zh}"


@dataclass(frozen=True)
class Resolve:
    rule: str
    subject: str
    at: datetime
    reason: str


@dataclass
class Step:
    state: dict[str, Any] | None
    refusal: Refusal | None = None
    opens: list[Deadline] = field(default_factory=list)
    resolves: list[Resolve] = field(default_factory=list)


def local_text(moment: datetime) -> str:
    return moment.astimezone(COURT_TZ).strftime("%Y-%m-%d %H:%M")


# -- case teams (from triage decisions) ---------------------------------------------------


def new_case_team(case_no: str) -> dict[str, Any]:
    """The team book entry of a case (collection `case_teams`): decisions as [decided_at, revision, team]."""
    return {"_id": case_no, "team": None, "revision": 0, "decided_at": None, "teams": []}


def apply_decision(doc: dict[str, Any], event: Event) -> bool:
    """Record a triage.decided in the case's entry; the latest revision wins. True when it changed."""
    data = event.data
    entry = [ms(data.decided_at), data.revision, data.team]  # type: ignore[attr-defined]
    if any(t[1] == entry[1] for t in doc["teams"]):
        return False  # this revision is known (a replay, or the same decision under another id)
    doc["teams"] = sorted([*doc["teams"], entry], key=lambda t: (t[1], t[0]))
    latest = doc["teams"][-1]
    doc.update(team=latest[2], revision=latest[1], decided_at=latest[0])
    return True


class CaseTeams:
    """The team of each case known so far: a read-only view for decide()."""

    def __init__(self, docs: dict[str, dict[str, Any]]):
        self.docs = docs

    def team(self, case_no: str | None) -> str | None:
        doc = self.docs.get(case_no) if case_no else None
        return doc["team"] if doc else None

    def history(self, case_no: str | None) -> list[tuple[datetime, int, str]]:
        doc = self.docs.get(case_no) if case_no else None
        return [(t[0], t[1], t[2]) for t in doc["teams"]] if doc else []


# -- classification and linkage -------------------------------------------------------------


def linked_cases(title: str, text: str, explicit: str | None) -> list[str]:
    """The explicit case number first, then every case number named in the title and text (normalised)."""
    found = [explicit] if explicit else []
    for case_no in find_case_numbers(f"{title}\n{text}"):
        if case_no not in found:
            found.append(case_no)
    return found


def grade(policy: SentimentPolicy, title: str, text: str) -> tuple[str, list[str]]:
    return policy.classify(f"{title}\n{text}")


# -- the decision --------------------------------------------------------------------------


def check(state: dict[str, Any] | None, event: Event, teams: CaseTeams) -> Refusal | None:
    """None when the table allows `event` in `state` (and its facts are consistent), else why not."""
    the_id = event.data.item_id  # type: ignore[attr-defined]
    if event.subject != the_id:
        return Refusal("subject_mismatch", f"subject {event.subject!r} differs from data.item_id {the_id!r} "
                       "(contract §3: the key is the item id)",
                       f"事件主体 {event.subject!r} 与 data.item_id {the_id!r} 不一致")
    current = state["state"] if state is not None else None
    what_zh = EVENT_ZH[event.type]
    if (current, event.type) not in TRANSITIONS:
        if state is None:
            return Refusal("unknown_id", f"{event.type} for unknown sentiment item {the_id}: it was never registered",
                           f"舆情 {the_id} 未登记，无法{what_zh}")
        if event.type == "sentiment.registered":
            return Refusal("already_registered", f"sentiment item {the_id} is registered already",
                           f"舆情 {the_id} 已登记，不能重复登记")
        if current == "resolved":
            return Refusal("after_resolution", f"{event.type} after resolution: item {the_id} was resolved "
                           f"at {local_text(state['resolved']['at'])}",
                           f"舆情 {the_id} 已于 {local_text(state['resolved']['at'])} 办结，不能再{what_zh}")
        if event.type == "sentiment.approved":
            return Refusal("already_approved", f"a second approval: item {the_id} was approved at "
                           f"{local_text(state['approved']['at'])} by {state['approved']['by']}",
                           f"舆情 {the_id} 已于 {local_text(state['approved']['at'])} 审签，不能重复审签")
        if current == "registered":
            return Refusal("not_approved", f"{event.type} before approval: item {the_id} has not been signed off "
                           "by the bureau head (seed art. 10)",
                           f"舆情 {the_id} 尚未经执行局负责人审签，不能{what_zh}")
        return Refusal("not_allowed", f"{event.type} is not allowed for item {the_id} in state {current}",
                       f"舆情 {the_id} 当前为{STATES.get(current or '', current)}，不能{what_zh}")
    if state is not None:
        at = ms(event.data.at)  # type: ignore[attr-defined]
        if at < state["captured_at"]:
            return Refusal("before_capture", f"{event.type} at {local_text(at)} is before item {the_id} was "
                           f"captured ({local_text(state['captured_at'])})",
                           f"{what_zh}时间 {local_text(at)} 早于舆情 {the_id} 的发现时间 "
                           f"{local_text(state['captured_at'])}")
    if event.type == "sentiment.transferred" and transfer_team(state, event, teams) is None:
        return Refusal("no_team", f"transfer of item {the_id}: no to_team given and no triage decision names the "
                       f"team of case {(state or {}).get('case_no') or '(no linked case)'}",
                       f"舆情 {the_id} 移交：未指定承办团队，且关联案件尚无繁简分流结果")
    return None


def transfer_team(state: dict[str, Any] | None, event: Event, teams: CaseTeams) -> str | None:
    """The team a transfer goes to: the one it names, else the linked case's team from triage."""
    named = event.data.to_team  # type: ignore[attr-defined]
    if named:
        return named
    return teams.team((state or {}).get("case_no"))


def decide(policy: SentimentPolicy, calendar: CourtCalendar, state: dict[str, Any] | None, event: Event,
           teams: CaseTeams) -> Step:
    refusal = check(state, event, teams)
    if refusal is not None:
        return Step(state, refusal)
    if event.type == "sentiment.registered":
        return _registered(policy, calendar, event, teams)
    assert state is not None
    data = event.data
    at = ms(data.at)  # type: ignore[attr-defined]
    after = {**state, "history": list(state.get("history") or []),
             "transfers": list(state.get("transfers") or [])}
    after["state"] = TRANSITIONS[(state["state"], event.type)]
    entry: dict[str, Any] = {"id": event.id, "type": event.type, "at": at, "by": data.by}  # type: ignore[attr-defined]
    if data.note:  # type: ignore[attr-defined]
        entry["note"] = data.note  # type: ignore[attr-defined]
    step = Step(after)
    item = state["_id"]
    if event.type == "sentiment.approved":
        after["approved"] = {"at": at, "by": data.by}  # type: ignore[attr-defined]
        step.resolves.append(Resolve(policy.response.code, item, at,
                                     f"已审签（{data.by}，{local_text(at)}）"))  # type: ignore[attr-defined]
    elif event.type == "sentiment.transferred":
        team = transfer_team(state, event, teams)
        entry["to_team"] = team
        after["team"] = team
        after["transfers"].append({"at": at, "by": data.by, "to_team": team})  # type: ignore[attr-defined]
    elif event.type == "sentiment.resolved":
        after["resolved"] = {"at": at, "by": data.by, "note": data.note}  # type: ignore[attr-defined]
        reason = f"舆情已办结（{local_text(at)}）"
        for rule in policy.alerts:
            step.resolves.append(Resolve(rule.code, item, at, reason))
        step.resolves.append(Resolve(policy.response.code, item, at, reason))
    after["history"].append(entry)
    return step


def _registered(policy: SentimentPolicy, calendar: CourtCalendar, event: Event, teams: CaseTeams) -> Step:
    data = event.data
    item = data.item_id  # type: ignore[attr-defined]
    captured = ms(data.captured_at)  # type: ignore[attr-defined]
    registered = ms(event.time)
    level, matched = grade(policy, data.title, data.text)  # type: ignore[attr-defined]
    cases = linked_cases(data.title, data.text, data.case_no)  # type: ignore[attr-defined]
    case_no = cases[0] if cases else None
    rule = policy.response
    due = due_at(captured, rule.due[level], calendar)  # hours: exact, no roll-over (shared.deadlines)
    warn = warn_at(due, rule.warn_before) if rule.warn_before is not None else None
    state: dict[str, Any] = {
        "_id": item, "state": "registered", "level": level, "matched": matched, "case_no": case_no,
        "case_nos": cases, "captured_at": captured, "registered_at": registered, "channel": data.channel,  # type: ignore[attr-defined]
        "title": data.title, "text": data.text, "url": data.url, "response_due_at": due,  # type: ignore[attr-defined]
        "approved": None, "transfers": [], "team": None, "resolved": None,
        "history": [{"id": event.id, "type": event.type, "at": registered}],
    }
    level_zh = policy.level(level).name_zh
    history = teams.history(case_no)
    details = {"level": level, "level_zh": level_zh, "matched": matched[:20], "channel": data.channel,  # type: ignore[attr-defined]
               "title": data.title[:200], "captured_at": captured.astimezone(COURT_TZ).isoformat(),  # type: ignore[attr-defined]
               "linked_cases": cases[:20]}
    if data.url:  # type: ignore[attr-defined]
        details["url"] = data.url  # type: ignore[attr-defined]
    step = Step(state)
    alert = policy.alert_for(level)
    if alert is not None:
        title = data.title[:TITLE_MAX]  # type: ignore[attr-defined]
        summary = _fill(alert.text, title=title, level_zh=level_zh, subject=item, case_no=case_no or "")
        step.opens.append(Deadline(
            rule=alert.code, subject=item, case_no=case_no, opened_at=registered, due_at=None,
            name_zh=alert.name_zh, texts={"raised": summary}, severities={"raised": alert.severity},
            teams=history, details=details))
    step.opens.append(Deadline(
        rule=rule.code, subject=item, case_no=case_no, opened_at=captured, due_at=due, warn_at=warn,
        name_zh=rule.name_zh,
        texts={"overdue": _fill(rule.text, title=data.title[:TITLE_MAX], level_zh=level_zh,  # type: ignore[attr-defined]
                                subject=item, case_no=case_no or ""),
               "due_soon": _fill(rule.text, title=data.title[:TITLE_MAX], level_zh=level_zh,  # type: ignore[attr-defined]
                                 subject=item, case_no=case_no or "")},
        teams=history, details={**details, "response_within": str(rule.due[level])}))
    return step


def _fill(template: str, **values: str) -> str:
    """Fill our placeholders; braces in the values are escaped, so the deadline book's own fill keeps them."""
    escaped = {k: v.replace("{", "{{").replace("}", "}}") for k, v in values.items()}
    try:
        return template.format(**escaped)
    except (KeyError, IndexError, ValueError):
        return template


def time_left(state: dict[str, Any], now: datetime | None) -> float | None:
    """Seconds from the watermark to the response due (negative when overdue); None once approved."""
    if state.get("approved") is not None or now is None:
        return None
    return (state["response_due_at"] - now).total_seconds()
