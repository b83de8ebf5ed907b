"""Loads and validates `rules/nodes.yaml` (ECC_RULES overrides): the node rules of rules.md §1.

A bad file raises PolicyError naming the file, the rule and the field; the
service refuses to start (main.py).
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.calendar import CourtCalendar
from shared.contract.casenumber import CaseType
from shared.contract.events_vocab import AssetKind, ClosureMode, NodeCode
from shared.deadlines import Period, PeriodError, due_at, warn_at
from shared.rulesfile import describe_validation, read_rules_yaml

POLICY_FILE = "nodes.yaml"
ASSET_KINDS: tuple[str, ...] = get_args(AssetKind)


class PolicyError(ValueError):
    """rules/nodes.yaml cannot be used; the message names the rule and the field."""


class Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event: Literal["case.filed", "property.clue.registered", "node.completed"]
    node: NodeCode | None = None
    per: Literal["case", "clue", "asset"] = "case"

    @model_validator(mode="after")
    def _consistent(self) -> "Trigger":
        if self.event == "node.completed" and self.node is None:
            raise ValueError("a node.completed trigger names its node")
        if self.event != "node.completed" and self.node is not None:
            raise ValueError(f"node is only for node.completed triggers, not {self.event}")
        if self.per == "clue" and self.event != "property.clue.registered":
            raise ValueError("per: clue needs event property.clue.registered")
        if self.event == "property.clue.registered" and self.per != "clue":
            raise ValueError("a property.clue.registered trigger is per: clue")
        if self.per == "asset" and self.event != "node.completed":
            raise ValueError("per: asset needs a node.completed trigger carrying ref and asset_kind")
        return self


class Awaits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event: Literal["node.completed", "case.closed"]
    node: NodeCode | None = None
    same_ref: bool = False
    restarts: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> "Awaits":
        if self.event == "node.completed" and self.node is None:
            raise ValueError("an awaited node.completed names its node")
        if self.event == "case.closed" and (self.node or self.same_ref or self.restarts):
            raise ValueError("case.closed takes no node, same_ref or restarts")
        if self.restarts and not self.same_ref:
            raise ValueError("restarts needs same_ref (the item whose period restarts)")
        return self


class Texts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    due_soon: str = Field(min_length=1, max_length=200, pattern=r"^[^\n\r]+$")
    overdue: str = Field(min_length=1, max_length=200, pattern=r"^[^\n\r]+$")


class NodeRule(BaseModel):
    """One row of rules.md §1."""

    code: str = Field(pattern=r"^node\.[a-z][a-z0-9_]*$")
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=200)
    trigger: Trigger
    awaits: Awaits
    due: int | dict[AssetKind, int]
    unit: Literal["days", "months", "working_days"]
    warn_before: Period | None = None
    case_types: list[CaseType] = Field(min_length=1)
    extended_by: Literal["case.term_extended"] | None = None
    survives_closure: list[ClosureMode] = Field(default_factory=list)
    roll_over: bool = True
    texts: Texts
    status: Literal["SPC", "LOCAL", "UNCONFIRMED"]
    source: str = Field(min_length=1, max_length=500)

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    @field_validator("warn_before", mode="before")
    @classmethod
    def _period(cls, value: Any) -> Period | None:
        if value is None:
            return None
        try:
            period = Period.parse(value)
        except PeriodError as exc:
            raise ValueError(str(exc)) from exc
        if period.unit == "working_days":
            raise ValueError("warn_before is plain calendar arithmetic (rules.md §0): days, months or hours")
        return period

    @field_validator("due")
    @classmethod
    def _positive(cls, value: int | dict[str, int]) -> int | dict[str, int]:
        amounts = value.values() if isinstance(value, dict) else [value]
        if any(isinstance(a, bool) or a <= 0 for a in amounts):
            raise ValueError("every period must be a whole number > 0")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "NodeRule":
        if self.trigger.per == "asset":
            if not isinstance(self.due, dict):
                raise ValueError("due: a per-asset rule gives a period per asset_kind")
            missing = [k for k in ASSET_KINDS if k not in self.due]
            if missing:
                raise ValueError(f"due: no period for asset_kind {missing}")
        elif isinstance(self.due, dict):
            raise ValueError("due: a mapping per asset_kind is only for per: asset rules")
        if self.awaits.same_ref and self.trigger.per == "case":
            raise ValueError("awaits.same_ref needs a per-item trigger (per: clue or asset)")
        if self.extended_by and self.awaits.event != "case.closed":
            raise ValueError("extended_by is for the case term, whose awaited fact is case.closed")
        return self

    def period(self, asset_kind: str | None = None) -> Period:
        amount = self.due[asset_kind or "other"] if isinstance(self.due, dict) else self.due
        return Period(amount, self.unit)

    def deadline_times(self, trigger: datetime, calendar: CourtCalendar,
                       asset_kind: str | None = None) -> tuple[datetime, datetime | None]:
        due = due_at(trigger, self.period(asset_kind), calendar, roll_over=self.roll_over)
        return due, (warn_at(due, self.warn_before) if self.warn_before is not None else None)


class NodePolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int
    rules: tuple[NodeRule, ...]

    def by_code(self, code: str) -> NodeRule:
        for rule in self.rules:
            if rule.code == code:
                return rule
        raise KeyError(code)


def _describe(exc: ValidationError) -> str:
    return describe_validation(exc, whole="(rule)", strip_value_error=False)


def parse_policy(document: Any, origin: str = POLICY_FILE) -> NodePolicy:
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise PolicyError(f"{origin}: expected a mapping with 'version' and a 'rules' list")
    unknown = set(document) - {"version", "rules"}
    if unknown:
        raise PolicyError(f"{origin}: unknown top-level keys {sorted(map(str, unknown))}")
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise PolicyError(f"{origin}: version must be a whole number")
    rules: list[NodeRule] = []
    for index, raw in enumerate(document["rules"], start=1):
        label = f"#{index}"
        if isinstance(raw, dict) and isinstance(raw.get("code"), str):
            label = f"{raw['code']} (#{index})"
        if not isinstance(raw, dict):
            raise PolicyError(f"{origin}: rule {label}: expected a mapping of fields")
        try:
            rule = NodeRule.model_validate(raw)
        except ValidationError as exc:
            raise PolicyError(f"{origin}: rule {label}: {_describe(exc)}") from exc
        if any(r.code == rule.code for r in rules):
            raise PolicyError(f"{origin}: rule {label}: field code: {rule.code} is defined twice")
        rules.append(rule)
    if not rules:
        raise PolicyError(f"{origin}: no rules")
    return NodePolicy(version=version, rules=tuple(rules))


def load_policy(path: Path | str) -> NodePolicy:
    return parse_policy(read_rules_yaml(path, PolicyError), origin=str(path))
