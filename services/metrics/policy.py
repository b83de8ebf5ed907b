"""Loads and validates `rules/indicators.yaml` (ECC_RULES overrides): the indicators of rules.md §7.

A bad file raises PolicyError naming the file, the indicator and the field; the service
refuses to start (main.py). What each counter counts is code (rules.py); the file says which
counters make an indicator, which case types it counts, its target and direction.
"""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.contract.casenumber import CaseType
from shared.contract.types import parse_money
from shared.deadlines import Period, PeriodError
from shared.rulesfile import describe_validation, read_rules_yaml

POLICY_FILE = "indicators.yaml"

# Counter → unit. `open_at_start` is derived from the filed/closed counts of earlier months.
COUNTERS: dict[str, str] = {
    "filed": "count", "open_at_start": "count", "closed": "count", "closed_performed": "count",
    "closed_actual": "count", "closed_zb": "count", "zb_qualified": "count", "asset_closed": "count",
    "asset_performed_in_term": "count", "inquiry_on_time": "count",
    "amount_recovered": "money", "target_amount_closed": "money", "days_to_close": "days",
}
STORED_COUNTERS: tuple[str, ...] = tuple(c for c in COUNTERS if c != "open_at_start")
_ONE_LINE = r"^[^\n\r]+$"


class PolicyError(ValueError):
    """rules/indicators.yaml cannot be used; the message names the indicator and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class Indicator(_Model):
    """One row of rules.md §7."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=100)
    name_zh: str = Field(min_length=1, max_length=100, pattern=_ONE_LINE)
    name_en: str = Field(min_length=1, max_length=200, pattern=_ONE_LINE)
    numerator: tuple[str, ...] = Field(min_length=1)
    denominator: tuple[str, ...] = Field(min_length=1)
    kind: Literal["rate", "mean"]
    scope: str = Field(min_length=1, max_length=50)
    target: float | None = None
    direction: Literal["higher", "lower"]
    status: Literal["SPC", "LOCAL", "UNCONFIRMED", "DERIVED"]
    source: str = Field(min_length=1, max_length=500)

    @field_validator("numerator", "denominator")
    @classmethod
    def _known(cls, counters: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [c for c in counters if c not in COUNTERS]
        if unknown:
            raise ValueError(f"unknown counters {unknown}; known: {sorted(COUNTERS)}")
        if len({COUNTERS[c] for c in counters}) > 1:
            raise ValueError(f"counters {list(counters)} mix units (case counts, yuan, days)")
        return counters

    @model_validator(mode="after")
    def _units(self) -> "Indicator":
        top, bottom = COUNTERS[self.numerator[0]], COUNTERS[self.denominator[0]]
        if self.kind == "rate" and top != bottom:
            raise ValueError(f"a rate divides like by like: numerator is {top}, denominator {bottom}")
        if self.kind == "mean" and bottom != "count":
            raise ValueError("a mean divides by a count of cases")
        return self

    @property
    def money(self) -> bool:
        return COUNTERS[self.numerator[0]] == "money"


class Periods(_Model):
    network_inquiry_due: Period
    case_term: Period

    @field_validator("network_inquiry_due", "case_term", mode="before")
    @classmethod
    def _period(cls, value: Any) -> Period:
        try:
            period = Period.parse(value)
        except PeriodError as exc:
            raise ValueError(str(exc)) from exc
        if period.unit == "hours" or period.amount <= 0:
            raise ValueError("use days, months or working days, more than 0")
        return period


class IndicatorPolicy(_Model):
    version: int = Field(ge=1, strict=True)
    case_scopes: dict[str, tuple[CaseType, ...]]
    periods: Periods
    asset_value_above: Decimal = Decimal("0.00")
    indicators: tuple[Indicator, ...] = Field(min_length=1)

    @field_validator("asset_value_above", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Decimal:
        return parse_money(value)

    @model_validator(mode="after")
    def _scopes(self) -> "IndicatorPolicy":
        for name, types in self.case_scopes.items():
            if not types:
                raise ValueError(f"case_scopes.{name}: no case types")
        ids = [i.id for i in self.indicators]
        if len(ids) != len(set(ids)):
            raise ValueError(f"indicator ids must be unique: {ids}")
        return self

    def case_types(self, indicator: Indicator) -> tuple[str, ...]:
        return self.case_scopes[indicator.scope]

    @property
    def counted_types(self) -> frozenset[str]:
        return frozenset(t for types in self.case_scopes.values() for t in types)

    def by_id(self, indicator_id: str) -> Indicator:
        for indicator in self.indicators:
            if indicator.id == indicator_id:
                return indicator
        raise KeyError(indicator_id)


def _describe(exc: ValidationError) -> str:
    return describe_validation(exc, whole="(entry)", strip_value_error=False)


def parse_policy(document: Any, origin: str = POLICY_FILE) -> IndicatorPolicy:
    if not isinstance(document, dict) or not isinstance(document.get("indicators"), list):
        raise PolicyError(f"{origin}: expected a mapping with version, case_scopes, periods and an indicators list")
    scopes = document.get("case_scopes")
    scope_names = set(scopes) if isinstance(scopes, dict) else set()
    for index, raw in enumerate(document["indicators"], start=1):
        label = f"#{index}"
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            label = f"{raw['id']} (#{index})"
        if not isinstance(raw, dict):
            raise PolicyError(f"{origin}: indicator {label}: expected a mapping of fields")
        try:
            indicator = Indicator.model_validate(raw)
        except ValidationError as exc:
            raise PolicyError(f"{origin}: indicator {label}: {_describe(exc)}") from exc
        if indicator.scope not in scope_names:
            raise PolicyError(f"{origin}: indicator {label}: field scope: {indicator.scope!r} is not one of "
                              f"case_scopes {sorted(scope_names)}")
    try:
        return IndicatorPolicy.model_validate(document)
    except ValidationError as exc:
        raise PolicyError(f"{origin}: {_describe(exc)}") from exc


def load_policy(path: Path | str) -> IndicatorPolicy:
    return parse_policy(read_rules_yaml(path, PolicyError), origin=str(path))
