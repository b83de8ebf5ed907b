"""Loads and validates `rules/funds.yaml` (ECC_RULES overrides): the case-fund rules of rules.md §3.

A bad file raises PolicyError naming the file, the rule and the field; the
service refuses to start (main.py). Each of the six rules must be there once,
with the kind the service implements (a deadline rule cannot be configured
into an immediate one: the code that evaluates it would not match).
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.calendar import CourtCalendar
from shared.deadlines import Period, PeriodError, due_at, warn_at
from shared.rulesfile import describe_validation, read_rules_yaml

POLICY_FILE = "funds.yaml"

UNIDENTIFIED = "funds.unidentified"
CLAIM = "funds.claim"
DISBURSEMENT = "funds.disbursement"
PAYEE_NOT_PARTY = "funds.payee_not_party"
OVERDRAWN = "funds.overdrawn"
CLOSED_WITH_BALANCE = "funds.closed_with_balance"

# The rules the service implements, and whether each has a deadline.
RULE_KINDS: dict[str, str] = {
    UNIDENTIFIED: "immediate",
    CLAIM: "deadline",
    DISBURSEMENT: "deadline",
    PAYEE_NOT_PARTY: "immediate",
    OVERDRAWN: "immediate",
    CLOSED_WITH_BALANCE: "immediate",
}

Severity = Literal["info", "warning", "critical"]
_ONE_LINE = r"^[^\n\r]+$"


class PolicyError(ValueError):
    """rules/funds.yaml cannot be used; the message names the rule and the field."""


class Texts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    raised: str | None = Field(default=None, min_length=1, max_length=200, pattern=_ONE_LINE)
    due_soon: str | None = Field(default=None, min_length=1, max_length=200, pattern=_ONE_LINE)
    overdue: str | None = Field(default=None, min_length=1, max_length=200, pattern=_ONE_LINE)

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Severities(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    raised: Severity | None = None
    due_soon: Severity | None = None
    overdue: Severity | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class FundsRule(BaseModel):
    """One row of rules.md §3."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    code: str = Field(pattern=r"^funds\.[a-z][a-z0-9_]*$")
    name_zh: str = Field(min_length=1, max_length=100, pattern=_ONE_LINE)
    name_en: str = Field(min_length=1, max_length=200, pattern=_ONE_LINE)
    kind: Literal["immediate", "deadline"]
    due: Period | None = None
    warn_before: Period | None = None
    roll_over: bool = True
    severities: Severities = Field(default_factory=Severities)
    texts: Texts
    status: Literal["SPC", "LOCAL", "UNCONFIRMED", "DERIVED"]
    source: str = Field(min_length=1, max_length=500)

    @field_validator("due", mode="before")
    @classmethod
    def _due(cls, value: Any) -> Period | None:
        if value is None:
            return None
        try:
            period = Period.parse(value)
        except PeriodError as exc:
            raise ValueError(str(exc)) from exc
        if period.unit == "hours" or period.amount <= 0:
            raise ValueError("a fund deadline is a whole number > 0 of days, months or working days")
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
    def _consistent(self) -> "FundsRule":
        expected = RULE_KINDS.get(self.code)
        if expected is None:
            raise ValueError(f"code: unknown rule code {self.code}; the funds service implements {sorted(RULE_KINDS)}")
        if self.kind != expected:
            raise ValueError(f"kind: {self.code} is a{'n' if expected == 'immediate' else ''} {expected} rule")
        texts, severities = self.texts.as_dict(), self.severities.as_dict()
        if self.kind == "immediate":
            if self.due is not None or self.warn_before is not None:
                raise ValueError("due/warn_before: an immediate rule has no deadline")
            if "raised" not in texts:
                raise ValueError("texts.raised: an immediate rule needs its alert text")
            if set(texts) - {"raised"} or set(severities) - {"raised"}:
                raise ValueError("texts/severities: an immediate rule raises only kind 'raised'")
        else:
            if self.due is None:
                raise ValueError("due: a deadline rule needs its period, e.g. '30 days'")
            kinds = {"overdue"} | ({"due_soon"} if self.warn_before is not None else set())
            if set(texts) != kinds:
                raise ValueError(f"texts: a deadline rule {'with' if self.warn_before else 'without'} a warning "
                                 f"needs exactly {sorted(kinds)}")
            if set(severities) - kinds:
                raise ValueError(f"severities: only {sorted(kinds)} for this rule")
        return self

    def deadline_times(self, trigger: datetime, calendar: CourtCalendar) -> tuple[datetime, datetime | None]:
        """(due, warn) of a period started by `trigger` (rules.md §0)."""
        assert self.due is not None, f"{self.code} has no deadline"
        due = due_at(trigger, self.due, calendar, roll_over=self.roll_over)
        return due, (warn_at(due, self.warn_before) if self.warn_before is not None else None)


class FundsPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int
    rules: tuple[FundsRule, ...]

    def rule(self, code: str) -> FundsRule:
        for rule in self.rules:
            if rule.code == code:
                return rule
        raise KeyError(code)


def _describe(exc: ValidationError) -> str:
    return describe_validation(exc, whole=None)


def parse_policy(document: Any, origin: str = POLICY_FILE) -> FundsPolicy:
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise PolicyError(f"{origin}: expected a mapping with 'version' and a 'rules' list")
    unknown = set(document) - {"version", "rules"}
    if unknown:
        raise PolicyError(f"{origin}: unknown top-level keys {sorted(map(str, unknown))}")
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise PolicyError(f"{origin}: version must be a whole number")
    rules: list[FundsRule] = []
    for index, raw in enumerate(document["rules"], start=1):
        label = f"#{index}"
        if isinstance(raw, dict) and isinstance(raw.get("code"), str):
            label = f"{raw['code']} (#{index})"
        if not isinstance(raw, dict):
            raise PolicyError(f"{origin}: rule {label}: expected a mapping of fields")
        try:
            rule = FundsRule.model_validate(raw)
        except ValidationError as exc:
            raise PolicyError(f"{origin}: rule {label}: {_describe(exc)}") from exc
        if any(r.code == rule.code for r in rules):
            raise PolicyError(f"{origin}: rule {label}: field code: {rule.code} is defined twice")
        rules.append(rule)
    missing = sorted(set(RULE_KINDS) - {r.code for r in rules})
    if missing:
        raise PolicyError(f"{origin}: rules {missing} are missing (rules.md §3 needs all six)")
    return FundsPolicy(version=version, rules=tuple(rules))


def load_policy(path: Path | str) -> FundsPolicy:
    return parse_policy(read_rules_yaml(path, PolicyError), origin=str(path))
