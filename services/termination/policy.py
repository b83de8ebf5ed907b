"""Loads and validates `rules/termination.yaml` (ECC_RULES overrides): the 终本 checklist and
re-check of rules.md §5.

A bad file raises PolicyError naming the file, the item and the field; the service
refuses to start (main.py). The checklist must hold the nine codes of rules.md §5, each
once and in rules.md's order: the order is the order of `missing`, so it is checked,
not configured.
"""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.contract.events_vocab import ChecklistCode
from shared.contract.types import parse_money
from shared.deadlines import Period, PeriodError
from shared.rulesfile import describe_validation, read_rules_yaml

POLICY_FILE = "termination.yaml"
CHECKLIST_ORDER: tuple[str, ...] = get_args(ChecklistCode)

UNQUALIFIED = "termination.unqualified"
PROPERTY_FOUND = "termination.property_found"
RECHECK = "termination.recheck"

Status = Literal["SPC", "LOCAL", "UNCONFIRMED"]
Severity = Literal["info", "warning", "critical"]
_ONE_LINE = r"^[^\n\r]+$"


class PolicyError(ValueError):
    """rules/termination.yaml cannot be used; the message names the item and the field."""


def _period(value: Any, *, calendar_only: bool = False) -> Period:
    try:
        period = Period.parse(value)
    except PeriodError as exc:
        raise ValueError(str(exc)) from exc
    if period.amount <= 0:
        raise ValueError("the period must be longer than 0")
    if calendar_only and period.unit not in ("days", "months"):
        raise ValueError("use days or months (plain calendar arithmetic, rules.md §0)")
    return period


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class ChecklistItem(_Model):
    """One line of the rules.md §5 checklist."""

    code: ChecklistCode
    name_zh: str = Field(min_length=1, max_length=100, pattern=_ONE_LINE)
    name_en: str = Field(min_length=1, max_length=200, pattern=_ONE_LINE)
    required: bool = True
    status: Status
    source: str = Field(min_length=1, max_length=500)


class UnqualifiedRule(_Model):
    code: Literal["termination.unqualified"]
    name_zh: str = Field(min_length=1, max_length=100, pattern=_ONE_LINE)
    severity: Severity = "warning"
    status: Status
    source: str = Field(min_length=1, max_length=500)


class RestoreTexts(_Model):
    raised: str = Field(min_length=1, max_length=200, pattern=_ONE_LINE)


class RestoreRule(_Model):
    code: Literal["termination.property_found"]
    name_zh: str = Field(min_length=1, max_length=100, pattern=_ONE_LINE)
    window: Period
    severity: Severity = "warning"
    texts: RestoreTexts
    status: Status
    source: str = Field(min_length=1, max_length=500)

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> Period:
        return _period(value, calendar_only=True)


class RecheckTexts(_Model):
    due_soon: str = Field(min_length=1, max_length=200, pattern=_ONE_LINE)
    overdue: str = Field(min_length=1, max_length=200, pattern=_ONE_LINE)


class RecheckRule(_Model):
    code: Literal["termination.recheck"]
    name_zh: str = Field(min_length=1, max_length=100, pattern=_ONE_LINE)
    every: Period
    periods: int = Field(ge=1, le=100, strict=True)
    warn_before: Period | None = None
    texts: RecheckTexts
    status: Status
    source: str = Field(min_length=1, max_length=500)

    @field_validator("every", mode="before")
    @classmethod
    def _every(cls, value: Any) -> Period:
        return _period(value)

    @field_validator("warn_before", mode="before")
    @classmethod
    def _warn(cls, value: Any) -> Period | None:
        return None if value is None else _period(value, calendar_only=True)


class TerminationPolicy(_Model):
    version: int = Field(ge=1, strict=True)
    checklist: tuple[ChecklistItem, ...]
    min_duration: Period
    asset_value_above: Decimal = Decimal("0.00")
    unqualified: UnqualifiedRule
    restore: RestoreRule
    recheck: RecheckRule

    @field_validator("min_duration", mode="before")
    @classmethod
    def _min_duration(cls, value: Any) -> Period:
        return _period(value, calendar_only=True)

    @field_validator("asset_value_above", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Decimal:
        return parse_money(value)

    def item(self, code: str) -> ChecklistItem:
        for item in self.checklist:
            if item.code == code:
                return item
        raise KeyError(code)


def _describe(exc: ValidationError) -> str:
    return describe_validation(exc, whole="(document)", strip_value_error=False)


def parse_policy(document: Any, origin: str = POLICY_FILE) -> TerminationPolicy:
    if not isinstance(document, dict):
        raise PolicyError(f"{origin}: expected a mapping with version, checklist, min_duration, "
                          "unqualified, restore and recheck")
    checklist = document.get("checklist")
    if not isinstance(checklist, list):
        raise PolicyError(f"{origin}: field checklist: expected a list of items")
    for index, raw in enumerate(checklist, start=1):
        label = f"#{index}"
        if isinstance(raw, dict) and isinstance(raw.get("code"), str):
            label = f"{raw['code']} (#{index})"
        if not isinstance(raw, dict):
            raise PolicyError(f"{origin}: checklist item {label}: expected a mapping of fields")
        try:
            ChecklistItem.model_validate(raw)
        except ValidationError as exc:
            raise PolicyError(f"{origin}: checklist item {label}: {_describe(exc)}") from exc
    codes = [raw["code"] for raw in checklist]
    if tuple(codes) != CHECKLIST_ORDER:
        raise PolicyError(
            f"{origin}: field checklist: the items must be {list(CHECKLIST_ORDER)}, each once, in rules.md §5 "
            f"order; found {codes}")
    try:
        return TerminationPolicy.model_validate(document)
    except ValidationError as exc:
        raise PolicyError(f"{origin}: {_describe(exc)}") from exc


def load_policy(path: Path | str) -> TerminationPolicy:
    return parse_policy(read_rules_yaml(path, PolicyError), origin=str(path))
