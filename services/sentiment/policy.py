"""Loads and validates `rules/sentiment.yaml` (ECC_RULES overrides): grading and rules of rules.md §6.

A bad file raises PolicyError naming the file, the level or rule and the field; the
service refuses to start (main.py). Patterns are compiled here, so a bad regular
expression is caught at start-up, not on the first item that reaches it.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from shared.deadlines import Period, PeriodError
from shared.rulesfile import describe_validation, read_rules_yaml

POLICY_FILE = "sentiment.yaml"
LEVELS: tuple[str, ...] = ("major", "serious", "general")
"""重大 major, 较大 serious, 一般 general, most severe first (the order is rules.md §6's)."""
REQUIRED_CODES: tuple[str, ...] = ("sentiment.major", "sentiment.serious", "sentiment.response")

Level = Literal["major", "serious", "general"]


class PolicyError(ValueError):
    """rules/sentiment.yaml cannot be used; the message names the level or rule and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LevelSpec(_Strict):
    """One severity level and what marks an item as of that level."""

    level: Level
    name_zh: str = Field(min_length=1, max_length=20)
    name_en: str = Field(min_length=1, max_length=50)
    keywords: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    _compiled: list[re.Pattern[str]] = PrivateAttr(default_factory=list)

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        for index, word in enumerate(value):
            if not isinstance(word, str) or not word.strip():
                raise ValueError(f"keyword #{index + 1} is empty")
        if len(set(value)) != len(value):
            raise ValueError("a keyword is listed twice")
        return [w.strip() for w in value]

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for index, pattern in enumerate(value):
            try:
                compiled = re.compile(pattern, re.IGNORECASE)
            except re.error as exc:
                raise ValueError(f"pattern #{index + 1} {pattern!r} is not a valid regular expression: {exc}") from None
            if compiled.search(""):
                raise ValueError(f"pattern #{index + 1} {pattern!r} matches empty text, so it would match every item")
        return value

    def model_post_init(self, _context: Any) -> None:
        self._compiled = [re.compile(p, re.IGNORECASE) for p in self.patterns]

    def matches(self, text: str) -> list[str]:
        """The keywords and pattern matches of this level found in `text` (empty: none)."""
        lowered = text.casefold()
        found = [w for w in self.keywords if w.casefold() in lowered]
        for compiled in self._compiled:
            hit = compiled.search(text)
            if hit:
                found.append(hit.group(0))
        return found


class AlertRule(_Strict):
    """sentiment.major / sentiment.serious: raised at registration, no deadline."""

    code: str = Field(pattern=r"^sentiment\.[a-z][a-z0-9_]*$")
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=200)
    raised_for: Level
    severity: Literal["info", "warning", "critical"]
    text: str = Field(min_length=1, max_length=200, pattern=r"^[^\n\r]+$")
    status: Literal["SPC", "LOCAL", "UNCONFIRMED"]
    source: str = Field(min_length=1, max_length=1000)


class ResponseRule(_Strict):
    """sentiment.response: awaits sentiment.approved, due hours after captured_at per level."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    code: str = Field(pattern=r"^sentiment\.[a-z][a-z0-9_]*$")
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=200)
    awaits: Literal["sentiment.approved"]
    due: dict[Level, Period]
    warn_before: Period | None = None
    text: str = Field(min_length=1, max_length=200, pattern=r"^[^\n\r]+$")
    status: Literal["SPC", "LOCAL", "UNCONFIRMED"]
    source: str = Field(min_length=1, max_length=1000)

    @field_validator("due", mode="before")
    @classmethod
    def _due(cls, value: Any) -> dict[str, Period]:
        if not isinstance(value, dict):
            raise ValueError("give a period per level, e.g. {major: 5 hours, serious: 24 hours, general: 48 hours}")
        out = {}
        for level, raw in value.items():
            try:
                period = Period.parse(raw)
            except PeriodError as exc:
                raise ValueError(f"{level}: {exc}") from None
            if period.amount <= 0:
                raise ValueError(f"{level}: the period must be longer than 0")
            out[level] = period
        return out

    @field_validator("warn_before", mode="before")
    @classmethod
    def _warn(cls, value: Any) -> Period | None:
        if value is None:
            return None
        try:
            period = Period.parse(value)
        except PeriodError as exc:
            raise ValueError(str(exc)) from None
        if period.unit == "working_days":
            raise ValueError("warn_before is plain calendar arithmetic (rules.md §0): days, months or hours")
        return period

    @model_validator(mode="after")
    def _every_level(self) -> "ResponseRule":
        missing = [lv for lv in LEVELS if lv not in self.due]
        if missing:
            raise ValueError(f"due: no period for level {', '.join(missing)}")
        return self


class SentimentPolicy(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    version: int
    levels: tuple[LevelSpec, ...]
    alerts: tuple[AlertRule, ...]
    response: ResponseRule

    def level(self, name: str) -> LevelSpec:
        return next(spec for spec in self.levels if spec.level == name)

    def classify(self, text: str) -> tuple[str, list[str]]:
        """(level, what matched): the first level, most severe first, with a keyword or pattern in `text`."""
        for spec in self.levels[:-1]:
            found = spec.matches(text)
            if found:
                return spec.level, found
        return self.levels[-1].level, []

    def alert_for(self, level: str) -> AlertRule | None:
        return next((rule for rule in self.alerts if rule.raised_for == level), None)

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.alerts] + [self.response.code]


def _describe(exc: ValidationError) -> str:
    return describe_validation(exc, whole="(rule)")


def parse_policy(document: Any, origin: str = POLICY_FILE) -> SentimentPolicy:
    if not isinstance(document, dict):
        raise PolicyError(f"{origin}: expected a mapping with 'version', 'levels' and 'rules'")
    unknown = set(document) - {"version", "levels", "rules"}
    if unknown:
        raise PolicyError(f"{origin}: unknown top-level keys {sorted(map(str, unknown))}")
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise PolicyError(f"{origin}: version must be a whole number")
    raw_levels, raw_rules = document.get("levels"), document.get("rules")
    if not isinstance(raw_levels, list) or not isinstance(raw_rules, list):
        raise PolicyError(f"{origin}: 'levels' and 'rules' must be lists")
    levels: list[LevelSpec] = []
    for index, raw in enumerate(raw_levels, start=1):
        label = f"{raw.get('level')} (#{index})" if isinstance(raw, dict) else f"#{index}"
        try:
            levels.append(LevelSpec.model_validate(raw))
        except ValidationError as exc:
            raise PolicyError(f"{origin}: level {label}: {_describe(exc)}") from exc
    if tuple(spec.level for spec in levels) != LEVELS:
        raise PolicyError(f"{origin}: levels must be {', '.join(LEVELS)} in this order (most severe first), "
                          f"got {', '.join(spec.level for spec in levels) or 'none'}")
    if levels[-1].keywords or levels[-1].patterns:
        raise PolicyError(f"{origin}: level general: field keywords: the last level takes every item "
                          "no other level matched; it has no keywords or patterns")
    alerts: list[AlertRule] = []
    response: ResponseRule | None = None
    seen: set[str] = set()
    for index, raw in enumerate(raw_rules, start=1):
        code = raw.get("code") if isinstance(raw, dict) else None
        label = f"{code} (#{index})" if isinstance(code, str) else f"#{index}"
        if not isinstance(raw, dict):
            raise PolicyError(f"{origin}: rule {label}: expected a mapping of fields")
        if code in seen:
            raise PolicyError(f"{origin}: rule {label}: field code: {code} is defined twice")
        try:
            if "awaits" in raw:
                if response is not None:
                    raise PolicyError(f"{origin}: rule {label}: only one response rule (with awaits) is allowed")
                response = ResponseRule.model_validate(raw)
            else:
                alerts.append(AlertRule.model_validate(raw))
        except ValidationError as exc:
            raise PolicyError(f"{origin}: rule {label}: {_describe(exc)}") from exc
        seen.add(code)  # type: ignore[arg-type]
    missing = [code for code in REQUIRED_CODES if code not in seen]
    if missing:
        raise PolicyError(f"{origin}: rules of rules.md §6 missing: {', '.join(missing)}")
    for_levels = [a.raised_for for a in alerts]
    if len(set(for_levels)) != len(for_levels):
        raise PolicyError(f"{origin}: two alert rules are raised for the same level")
    assert response is not None
    return SentimentPolicy(version=version, levels=tuple(levels), alerts=tuple(alerts), response=response)


def load_policy(path: Path | str) -> SentimentPolicy:
    return parse_policy(read_rules_yaml(path, PolicyError), origin=str(path))
