"""Pure decisions of entrust (事项委托 / 督办), rules.md §4: no database, no broker, no wall clock.

`decide(policy, calendar, state, event)` applies one event to the state of its
entrust id or supervision item (a plain dict, None when unknown) and returns a
`Step`: the new state and the deadlines to open and resolve, or a `Refusal`
(the event is impossible in that state: it goes to the dead-letter topic, never
applied). The lifecycles are the tables ENTRUST_TRANSITIONS and
SUPERVISION_TRANSITIONS; a (state, event type) pair not in a table is refused.

Per key order holds (contract §3: the key of ecc.entrust.events is the entrust or
item id), so a step on an id never arrives before the event that opened it from
the same producer: a reply to an unknown id is an impossible fact, not an early one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from services.entrust.policy import EntrustPolicy, EntrustRule, entity_of
from shared.calendar import CourtCalendar
from shared.contract.envelope import COURT_TZ, Event
from shared.deadline_book import Deadline, ms
from shared.deadlines import court_date

Entity = Literal["entrust", "supervision"]

# -- the lifecycles (状态机), as data ----------------------------------------------

ENTRUST_STATES: dict[str, str] = {
    "pending": "待回复",                  # sent (委托发出) or received (收到委托), awaiting the reply
    "supplement_requested": "待补正",     # supplementary material requested
    "replied": "已回复",
    "returned": "已退回",                 # terminal
    "completed": "已办结",                # terminal
}
ENTRUST_TRANSITIONS: dict[tuple[str | None, str], str] = {
    (None, "entrust.sent"): "pending",
    (None, "entrust.received"): "pending",
    ("pending", "entrust.supplement_requested"): "supplement_requested",
    ("pending", "entrust.replied"): "replied",
    ("pending", "entrust.returned"): "returned",
    ("pending", "entrust.completed"): "completed",
    # A further request restarts the supplement period.
    ("supplement_requested", "entrust.supplement_requested"): "supplement_requested",
    ("supplement_requested", "entrust.replied"): "replied",
    ("supplement_requested", "entrust.returned"): "returned",
    ("supplement_requested", "entrust.completed"): "completed",
    # Feedback may come in several replies; material may still be asked for after one.
    ("replied", "entrust.replied"): "replied",
    ("replied", "entrust.supplement_requested"): "supplement_requested",
    ("replied", "entrust.returned"): "returned",
    ("replied", "entrust.completed"): "completed",
}
SUPERVISION_STATES: dict[str, str] = {"issued": "待回复", "replied": "已回复"}
SUPERVISION_TRANSITIONS: dict[tuple[str | None, str], str] = {
    (None, "supervision.issued"): "issued",
    ("issued", "supervision.replied"): "replied",
}
ENTRUST_FINAL: frozenset[str] = frozenset({"returned", "completed"})
SUPERVISION_FINAL: frozenset[str] = frozenset({"replied"})

# 督办层级, highest first: a reply goes up level by level (逐级回复) from our team to the issuer.
LEVELS: tuple[str, ...] = ("supreme", "high", "intermediate", "own")
LEVEL_ZH: dict[str, str] = {"supreme": "最高人民法院", "high": "高级人民法院", "intermediate": "中级人民法院",
                            "own": "本院"}
EVENT_ZH: dict[str, str] = {
    "entrust.sent": "委托发出", "entrust.received": "收到委托", "entrust.supplement_requested": "要求补正",
    "entrust.returned": "退回", "entrust.replied": "回复", "entrust.completed": "办结",
    "supervision.issued": "督办下发", "supervision.replied": "督办回复",
}


def transitions(entity: Entity) -> dict[tuple[str | None, str], str]:
    return ENTRUST_TRANSITIONS if entity == "entrust" else SUPERVISION_TRANSITIONS


def reply_path(level: str) -> list[str]:
    """The levels a reply passes on its way up (逐级回复), from our court to the issuing level."""
    return list(reversed(LEVELS[LEVELS.index(level):]))


# -- outcomes -----------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why an event is impossible in the state of its id (English and Chinese), with a stable code."""

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


def subject_id(event: Event) -> str:
    """The entrust id or item id an event is about (its data; the subject must agree)."""
    data = event.data
    return data.entrust_id if event.type.startswith("entrust.") else data.item_id  # type: ignore[attr-defined]


def fact_time(event: Event) -> datetime:
    """When the fact happened: data.at / issued_at / replied_at (not when it was read)."""
    data = event.data
    if event.type == "supervision.issued":
        return data.issued_at  # type: ignore[attr-defined]
    if event.type == "supervision.replied":
        return data.replied_at  # type: ignore[attr-defined]
    return data.at  # type: ignore[attr-defined]


def new_state(event: Event) -> dict[str, Any]:
    """The state document of an id opened by `event` (before the transition is applied)."""
    data = event.data
    at = ms(fact_time(event))
    if event.type == "supervision.issued":
        return {"_id": data.item_id, "case_no": data.case_no, "level": data.level,  # type: ignore[attr-defined]
                "to_team": data.to_team, "issued_at": at,  # type: ignore[attr-defined]
                "due_on": data.due_on.isoformat(), "state": None, "replied": None,  # type: ignore[attr-defined]
                "history": []}
    return {"_id": data.entrust_id, "direction": "outgoing" if event.type == "entrust.sent" else "incoming",  # type: ignore[attr-defined]
            "case_no": data.case_no, "counterpart_court": data.counterpart_court,  # type: ignore[attr-defined]
            "matter": data.matter, "opened_at": at,  # type: ignore[attr-defined]
            "due_on": data.due_on.isoformat() if data.due_on else None,  # type: ignore[attr-defined]
            "state": None, "replies": 0, "closed_at": None, "history": []}


# -- the decision --------------------------------------------------------------------


def check(state: dict[str, Any] | None, event: Event) -> Refusal | None:
    """None when `event` may be applied to `state` (the table says so), else why not."""
    entity = entity_of(event.type)
    the_id = subject_id(event)
    if event.subject != the_id:
        field_name = "entrust_id" if entity == "entrust" else "item_id"
        return Refusal("subject_mismatch",
                       f"subject {event.subject!r} differs from data.{field_name} {the_id!r} "
                       f"(contract §3: the key is the {field_name})",
                       f"事件主体 {event.subject!r} 与 data.{field_name} {the_id!r} 不一致")
    current = state["state"] if state is not None else None
    if (current, event.type) in transitions(entity):
        due_on = getattr(event.data, "due_on", None)
        opened_on = court_date(fact_time(event))
        if state is None and due_on is not None and due_on < opened_on:
            return Refusal("due_before_opening",
                           f"due_on {due_on.isoformat()} is before the {event.type} date {opened_on.isoformat()}",
                           f"期限 {due_on.isoformat()} 早于{EVENT_ZH[event.type]}日期 {opened_on.isoformat()}")
        if state is not None:
            opened = state["opened_at"] if entity == "entrust" else state["issued_at"]
            at = ms(fact_time(event))
            if at < opened:
                return Refusal("before_opening",
                               f"{event.type} at {local_text(at)} is before {entity} {the_id} "
                               f"was opened ({local_text(opened)})",
                               f"{EVENT_ZH[event.type]}时间 {local_text(at)} 早于事项 {the_id} 的登记时间 "
                               f"{local_text(opened)}")
        return None
    return _refusal(entity, the_id, state, event)


def _refusal(entity: Entity, the_id: str, state: dict[str, Any] | None, event: Event) -> Refusal:
    noun, noun_zh = ("entrust", "委托事项") if entity == "entrust" else ("supervision item", "督办事项")
    what_zh = EVENT_ZH[event.type]
    if state is None:
        return Refusal("unknown_id",
                       f"{event.type} for unknown {noun} {the_id}: nothing opened it "
                       f"({'entrust.sent / entrust.received' if entity == 'entrust' else 'supervision.issued'})",
                       f"{noun_zh} {the_id} 不存在，无法{what_zh}")
    current = state["state"]
    if (None, event.type) in transitions(entity):
        return Refusal("already_opened", f"{noun} {the_id} exists already (state {current}); "
                       f"{event.type} cannot open it again",
                       f"{noun_zh} {the_id} 已存在（{_state_zh(entity, current)}），不能重复{what_zh}")
    last = state["history"][-1] if state.get("history") else None
    when = f" at {local_text(last['at'])}" if last else ""
    when_zh = f" {local_text(last['at'])} " if last else ""
    if event.type == "entrust.returned" and current == "returned":
        return Refusal("second_return", f"a second return: entrust {the_id} was returned already{when}",
                       f"委托事项 {the_id} 已于{when_zh}退回，不能重复退回")
    if event.type == "supervision.replied" and current == "replied":
        return Refusal("second_reply", f"a second reply: supervision item {the_id} was replied to already{when}",
                       f"督办事项 {the_id} 已于{when_zh}回复，不能重复回复")
    if current == "completed":
        return Refusal("after_completion", f"{event.type} after completion: entrust {the_id} was completed{when}",
                       f"委托事项 {the_id} 已于{when_zh}办结，不能再{what_zh}")
    if current == "returned":
        return Refusal("after_return", f"{event.type} after return: entrust {the_id} was returned{when}",
                       f"委托事项 {the_id} 已于{when_zh}退回，不能再{what_zh}")
    return Refusal("not_allowed", f"{event.type} is not allowed for {noun} {the_id} in state {current}",
                   f"{noun_zh} {the_id} 当前为{_state_zh(entity, current)}，不能{what_zh}")


def _state_zh(entity: Entity, state: str | None) -> str:
    names = ENTRUST_STATES if entity == "entrust" else SUPERVISION_STATES
    return names.get(state or "", state or "未登记")


def decide(policy: EntrustPolicy, calendar: CourtCalendar, state: dict[str, Any] | None, event: Event) -> Step:
    """Apply one event to its id's state: the new state and its deadlines, or a refusal."""
    refusal = check(state, event)
    if refusal is not None:
        return Step(state, refusal)
    entity = entity_of(event.type)
    the_id = subject_id(event)
    base = state if state is not None else new_state(event)
    after = {**base, "history": list(base.get("history") or [])}
    at = ms(fact_time(event))
    after["state"] = transitions(entity)[(base["state"], event.type)]
    entry: dict[str, Any] = {"id": event.id, "type": event.type, "at": at}
    note = getattr(event.data, "note", None)
    if note:
        entry["note"] = note
    if event.type == "supervision.replied":
        entry["by"] = event.data.by  # type: ignore[attr-defined]
        after["replied"] = {"at": at, "by": event.data.by}  # type: ignore[attr-defined]
    if event.type == "entrust.replied":
        after["replies"] = after.get("replies", 0) + 1
    if entity == "entrust" and after["state"] in ENTRUST_FINAL:
        after["closed_at"] = at
    after["history"].append(entry)
    step = Step(after)
    # The awaited facts first: a trigger that is also "any later event" ends the old period, then opens anew.
    for rule in policy.awaiting(event.type):
        if rule.trigger == event.type and rule.awaits == "any":
            step.resolves.append(Resolve(rule.code, the_id, at, f"已再次{EVENT_ZH[event.type]}（{local_text(at)}）"))
        elif rule.trigger != event.type:
            step.resolves.append(Resolve(rule.code, the_id, at, f"{EVENT_ZH[event.type]}（{local_text(at)}）"))
    for rule in policy.triggered_by(event.type):
        step.opens.append(_deadline(rule, calendar, after, event, at))
    return step


def _deadline(rule: EntrustRule, calendar: CourtCalendar, state: dict[str, Any], event: Event,
              at: datetime) -> Deadline:
    due_on = date.fromisoformat(state["due_on"]) if state.get("due_on") else None
    due, warn = rule.deadline_times(at, due_on, calendar)
    details: dict[str, Any] = {"trigger": event.type}
    teams: list[tuple[datetime, str]] = []
    if entity_of(rule.trigger) == "entrust":
        details.update(direction=state["direction"], counterpart_court=state["counterpart_court"],
                       matter=state["matter"][:200])
    else:
        details.update(level=state["level"], to_team=state["to_team"])
        teams = [(state["issued_at"], state["to_team"])]
    if state.get("due_on"):
        details["due_on"] = state["due_on"]
    return Deadline(rule=rule.code, subject=state["_id"], case_no=state.get("case_no"), opened_at=at,
                    due_at=due, warn_at=warn, name_zh=rule.name_zh,
                    texts={"due_soon": rule.texts.due_soon, "overdue": rule.texts.overdue},
                    teams=teams, details=details)
