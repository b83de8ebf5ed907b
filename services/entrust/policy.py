"""Loads and validates `rules/entrust.yaml` (ECC_RULES overrides): the deadline rules of rules.md §4.

A bad file raises PolicyError naming the file, the rule and the field; the
service refuses to start (main.py).
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.calendar import CourtCalendar
from shared.deadlines import Period, PeriodError, due_at, end_of_day, warn_at
from shared.topics import ENTRUST_EVENTS
from shared.rulesfile import describe_validation, read_rules_yaml

POLICY_FILE = "entrust.yaml"

# rules.md §4: every one of these must be in the file.
REQUIRED_CODES: tuple[str, ...] = (
    "entrust.incoming_reply", "entrust.outgoing_feedback", "entrust.supplement", "supervision.reply",
)
ENTRUST_TYPES: frozenset[str] = frozenset(t for t in ENTRUST_EVENTS.event_types if t.startswith("entrust."))
SUPERVISION_TYPES: frozenset[str] = frozenset(t for t in ENTRUST_EVENTS.event_types if t.startswith("supervision."))
# Events that carry a due_on date (contract §6).
WITH_DUE_ON: frozenset[str] = frozenset({"entrust.sent", "entrust.received", "supervision.issued"})


class PolicyError(ValueError):
    """rules/entrust.yaml cannot be used; the message names the rule and the field."""


def entity_of(event_type: str) -> Literal["entrust", "supervision"]:
    """Which lifecycle an event type belongs to: an entrust id or a supervision item id."""
    if event_type in ENTRUST_TYPES:
        return "entrust"
    if event_type in SUPERVISION_TYPES:
        return "supervision"
    raise ValueError(f"{event_type} is not an entrustment or supervision event (contract §6)")


class Texts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    due_soon: str = Field(min_length=1, max_length=200, pattern=r"^[^\n\r]+$")
    overdue: str = Field(min_length=1, max_length=200, pattern=r"^[^\n\r]+$")


class EntrustRule(BaseModel):
    """One row of rules.md §4."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    code: str = Field(pattern=r"^(entrust|supervision)\.[a-z][a-z0-9_]*$")
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=200)
    trigger: str
    awaits: list[str] | Literal["any"]
    due: Period | Literal["due_on"]
    due_on_replaces: bool = False
    warn_before: Period | None = None
    texts: Texts
    status: Literal["SPC", "LOCAL", "UNCONFIRMED"]
    source: str = Field(min_length=1, max_length=500)

    @field_validator("trigger")
    @classmethod
    def _known_trigger(cls, value: str) -> str:
        if value not in ENTRUST_EVENTS.event_types:
            raise ValueError(f"{value!r} is not an event type of ecc.entrust.events "
                             f"({', '.join(sorted(ENTRUST_EVENTS.event_types))})")
        return value

    @field_validator("due", mode="before")
    @classmethod
    def _due(cls, value: Any) -> Period | str:
        if value == "due_on":
            return value
        try:
            period = Period.parse(value)
        except PeriodError as exc:
            raise ValueError(f"{exc} (or `due_on`: the event's due date)") from exc
        if period.amount <= 0:
            raise ValueError("the period must be longer than 0")
        return period

    @field_validator("warn_before", mode="before")
    @classmethod
    def _warn(cls, value: Any) -> Period | None:
        if value is None:
            return None
        try:
            period = Period.parse(value)
        except PeriodError as exc:
            raise ValueError(str(exc)) from exc
        if period.unit == "working_days":
            raise ValueError("warn_before is plain calendar arithmetic (rules.md §0): days, months or hours")
        return period

    @model_validator(mode="after")
    def _consistent(self) -> "EntrustRule":
        entity = entity_of(self.trigger)
        if not self.code.startswith(entity + "."):
            raise ValueError(f"code: a rule triggered by {self.trigger} is named {entity}.<name>")
        if self.awaits != "any":
            if not self.awaits:
                raise ValueError("awaits: name at least one event type, or `any`")
            for awaited in self.awaits:
                if awaited not in ENTRUST_EVENTS.event_types:
                    raise ValueError(f"awaits: {awaited!r} is not an event type of ecc.entrust.events")
                if entity_of(awaited) != entity:
                    raise ValueError(f"awaits: {awaited} is about another kind of item than {self.trigger}")
                if awaited == self.trigger:
                    raise ValueError(f"awaits: {awaited} is the trigger itself")
        if (self.due == "due_on" or self.due_on_replaces) and self.trigger not in WITH_DUE_ON:
            raise ValueError(f"due: {self.trigger} carries no due_on date")
        if self.due == "due_on" and self.due_on_replaces:
            raise ValueError("due_on_replaces: due is already the event's due_on")
        return self

    def awaited_by(self, event_type: str) -> bool:
        """Does an event of this type (on the same id, after the trigger) end the period?"""
        if self.awaits == "any":
            return entity_of(event_type) == entity_of(self.trigger)
        return event_type in self.awaits

    def deadline_times(self, trigger_at: datetime, due_on, calendar: CourtCalendar) -> tuple[datetime, datetime | None]:
        """(due, warn) of a period started at `trigger_at`; `due_on` is the event's date, if any."""
        if self.due == "due_on" or (self.due_on_replaces and due_on is not None):
            if due_on is None:
                raise ValueError(f"{self.code}: the trigger event has no due_on")
            due = end_of_day(due_on)  # the issuing court's own date: taken as given, no roll-over
        else:
            due = due_at(trigger_at, self.due, calendar)  # type: ignore[arg-type]
        warn = warn_at(due, self.warn_before) if self.warn_before is not None else None
        return due, warn


class EntrustPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int
    rules: tuple[EntrustRule, ...]

    def by_code(self, code: str) -> EntrustRule:
        for rule in self.rules:
            if rule.code == code:
                return rule
        raise KeyError(code)

    def triggered_by(self, event_type: str) -> list[EntrustRule]:
        return [r for r in self.rules if r.trigger == event_type]

    def awaiting(self, event_type: str) -> list[EntrustRule]:
        return [r for r in self.rules if r.awaited_by(event_type)]

    def codes_for(self, entity: str) -> list[str]:
        return [r.code for r in self.rules if entity_of(r.trigger) == entity]


def _describe(exc: ValidationError) -> str:
    return describe_validation(exc, whole="(rule)")


def parse_policy(document: Any, origin: str = POLICY_FILE) -> EntrustPolicy:
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise PolicyError(f"{origin}: expected a mapping with 'version' and a 'rules' list")
    unknown = set(document) - {"version", "rules"}
    if unknown:
        raise PolicyError(f"{origin}: unknown top-level keys {sorted(map(str, unknown))}")
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise PolicyError(f"{origin}: version must be a whole number")
    rules: list[EntrustRule] = []
    for index, raw in enumerate(document["rules"], start=1):
        label = f"#{index}"
        if isinstance(raw, dict) and isinstance(raw.get("code"), str):
            label = f"{raw['code']} (#{index})"
        if not isinstance(raw, dict):
            raise PolicyError(f"{origin}: rule {label}: expected a mapping of fields")
        try:
            rule = EntrustRule.model_validate(raw)
        except ValidationError as exc:
            raise PolicyError(f"{origin}: rule {label}: {_describe(exc)}") from exc
        if any(r.code == rule.code for r in rules):
            raise PolicyError(f"{origin}: rule {label}: field code: {rule.code} is defined twice")
        rules.append(rule)
    missing = [code for code in REQUIRED_CODES if not any(r.code == code for r in rules)]
    if missing:
        raise PolicyError(f"{origin}: rules of rules.md §4 missing: {', '.join(missing)}")
    return EntrustPolicy(version=version, rules=tuple(rules))


def load_policy(path: Path | str) -> EntrustPolicy:
    return parse_policy(read_rules_yaml(path, PolicyError), origin=str(path))
