"""Loads and validates `rules/roster.yaml` (值班表, ECC_ONCALL_ROSTER overrides) and `rules/oncall.yaml`
(routing, grouping, escalation, delivery; ECC_RULES overrides).

A bad file raises PolicyError naming the file, the entry (rotation, person, route, section) and the
field; the service refuses to start (main.py). Cross-references are checked here too: a rotation
naming an unknown person, a route naming an unknown family, a person without a channel.
"""
from __future__ import annotations

import re
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.rulesfile import describe_validation, read_rules_yaml

ROSTER_FILE = "roster.yaml"
POLICY_FILE = "oncall.yaml"

DUTY_ROLES: tuple[str, ...] = ("officer", "technician", "leader")
"""值班执行干警 officer, 值班技术人员 technician, 带班领导 leader (seed art. 30)."""
CHANNELS: tuple[str, ...] = ("webhook", "sms", "wecom")
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")

DutyRole = Literal["officer", "technician", "leader"]
ChannelName = Literal["webhook", "sms", "wecom"]
Severity = Literal["info", "warning", "critical"]

_UNITS = {"second": 1, "seconds": 1, "minute": 60, "minutes": 60, "hour": 3600, "hours": 3600,
          "day": 86400, "days": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$")


class PolicyError(ValueError):
    """A rules file of oncall cannot be used; the message names the file, the entry and the field."""


def parse_duration(raw: Any) -> timedelta:
    """"30 seconds", "15 minutes", "24 hours", "1 day" (decimals allowed, for fast tests)."""
    if isinstance(raw, timedelta):
        return raw
    match = _DURATION.match(str(raw)) if isinstance(raw, str) else None
    if match is None or match.group(2) not in _UNITS:
        raise ValueError(f"{raw!r} is not a duration like '30 seconds', '15 minutes', '24 hours'")
    value = timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    if value <= timedelta(0):
        raise ValueError(f"{raw!r} must be longer than zero")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- roster.yaml ------------------------------------------------------------------------------

class ShiftSpec(_Strict):
    starts_at: time
    length: timedelta
    anchor: date

    @field_validator("length", mode="before")
    @classmethod
    def _length(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @field_validator("starts_at", mode="before")
    @classmethod
    def _starts(cls, value: Any) -> Any:
        if isinstance(value, int):  # YAML 1.1 reads 08:30 unquoted as sexagesimal minutes
            raise ValueError("quote the time, e.g. \"08:30\"")
        return value


class Rotation(_Strict):
    name_zh: str = Field(min_length=1, max_length=50)
    every: int = Field(ge=1, le=366)
    people: list[str] = Field(min_length=1)


class Person(_Strict):
    name: str = Field(min_length=1, max_length=50)
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9]{5,20}$")
    wecom_userid: str | None = Field(default=None, min_length=1, max_length=64)
    channels: list[ChannelName] = Field(min_length=1)

    @model_validator(mode="after")
    def _reachable(self) -> "Person":
        if "sms" in self.channels and not self.phone:
            raise ValueError("phone: channel sms needs a phone number")
        return self


class Roster(_Strict):
    version: Literal[1]
    status: Literal["SPC", "LOCAL", "UNCONFIRMED"]
    source: str = Field(min_length=1)
    shift: ShiftSpec
    rotations: dict[DutyRole, Rotation]
    people: dict[str, Person]

    @model_validator(mode="after")
    def _references(self) -> "Roster":
        missing = [r for r in DUTY_ROLES if r not in self.rotations]
        if missing:
            raise ValueError(f"rotations: every duty role needs a rotation; missing {missing}")
        for role, rotation in self.rotations.items():
            for index, person in enumerate(rotation.people):
                if person not in self.people:
                    raise ValueError(f"rotations.{role}.people: person #{index + 1} {person!r} is not listed "
                                     "under people")
        return self


# -- oncall.yaml --------------------------------------------------------------------------------

class Family(_Strict):
    name_zh: str = Field(min_length=1, max_length=50)
    prefixes: list[str] = Field(default_factory=list)


class Match(_Strict):
    families: list[str] | None = None
    severities: list[Severity] | None = None
    teams: list[str] | None = None
    rules: list[str] | None = None


class Route(_Strict):
    name: str = Field(min_length=1, max_length=100)
    match: Match = Match()
    to: list[DutyRole] = Field(min_length=1)


class Grouping(_Strict):
    wait: timedelta

    @field_validator("wait", mode="before")
    @classmethod
    def _wait(cls, value: Any) -> timedelta:
        return parse_duration(value)


class Escalation(_Strict):
    severities: list[Severity] = Field(min_length=1)
    after: timedelta
    repeat_every: timedelta
    max_repeats: int = Field(ge=0, le=1000)
    to: list[DutyRole] = Field(min_length=1)

    @field_validator("after", "repeat_every", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> timedelta:
        return parse_duration(value)


class Delivery(_Strict):
    base_delay: timedelta
    max_delay: timedelta
    max_attempts: int = Field(ge=1, le=100)
    timeout: timedelta

    @field_validator("base_delay", "max_delay", "timeout", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> timedelta:
        return parse_duration(value)


class RoutingPolicy(_Strict):
    version: Literal[1]
    status: Literal["SPC", "LOCAL", "UNCONFIRMED"]
    source: str = Field(min_length=1)
    families: dict[str, Family] = Field(min_length=1)
    fallback_family: str
    routes: list[Route] = Field(min_length=1)
    grouping: Grouping
    escalation: Escalation
    notify_on_close: bool = True
    delivery: Delivery

    @model_validator(mode="after")
    def _references(self) -> "RoutingPolicy":
        if self.fallback_family not in self.families:
            raise ValueError(f"fallback_family: {self.fallback_family!r} is not one of families "
                             f"{sorted(self.families)}")
        for index, route in enumerate(self.routes):
            for family in route.match.families or []:
                if family not in self.families:
                    raise ValueError(f"routes.{index}.match.families ({route.name}): {family!r} is not one "
                                     f"of families {sorted(self.families)}")
        return self

    def family_of(self, rule: str) -> str:
        """The family whose longest prefix matches `rule`; the fallback family when none does."""
        best, length = self.fallback_family, -1
        for name, family in self.families.items():
            for prefix in family.prefixes:
                if rule.startswith(prefix) and len(prefix) > length:
                    best, length = name, len(prefix)
        return best


class OncallPolicy(_Strict):
    roster: Roster
    routing: RoutingPolicy


def _validate(model: type[BaseModel], raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: expected a mapping at the top level")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        # e.g. "rules/roster.yaml: field rotations.officer: person #2 'x' is not listed under people"
        raise PolicyError(f"{where}: {describe_validation(exc, whole=None)}") from None


def parse_policy(roster_raw: Any, routing_raw: Any, roster_where: str = ROSTER_FILE,
                 routing_where: str = POLICY_FILE) -> OncallPolicy:
    roster = _validate(Roster, roster_raw, roster_where)
    routing = _validate(RoutingPolicy, routing_raw, routing_where)
    return OncallPolicy(roster=roster, routing=routing)


def load_policy(roster_path: Path, routing_path: Path) -> OncallPolicy:
    return parse_policy(read_rules_yaml(roster_path, PolicyError), read_rules_yaml(routing_path, PolicyError),
                        str(roster_path), str(routing_path))
