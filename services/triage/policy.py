"""The triage policy `rules/triage.yaml` (繁简分流), loaded and validated at start-up.

A bad file raises PolicyError naming the field, e.g.
`rules/triage.yaml: lines[3].track: Input should be 'simple', 'complex' or 'preservation'`,
and the service refuses to start.
"""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.contract.events_vocab import TriageReason, TriageTrack
from shared.contract.types import Identifier, Line, Name, parse_money
from shared.rulesfile import read_rules_yaml

RULES_FILE_NAME = "triage.yaml"

# rules.md §2: each reason code and its line of the table, in table order.
# The order is the rule (first match wins), so the file must follow it.
TABLE_LINES: dict[str, int] = {
    "preservation_case": 1,
    "full_deposit": 2,
    "needs_disposal": 3,
    "many_respondents": 4,
    "large_amount": 4,
    "resumed_case": 5,
    "no_property": 6,
    "partial_property": 7,
}
assert set(TABLE_LINES) == set(get_args(TriageReason)), "TABLE_LINES out of step with the contract"

TRACKS: tuple[str, ...] = get_args(TriageTrack)


class PolicyError(ValueError):
    """The triage rules file cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_Strict):
    large_amount: Decimal
    """Line 4 标的额巨大: target amount ≥ this (yuan)."""
    many_respondents: int = Field(ge=1, strict=True)
    """Line 4 被执行人众多: this many respondents or more."""

    @field_validator("large_amount", mode="before")
    @classmethod
    def _money(cls, value: Any) -> Decimal:
        if not isinstance(value, str):
            raise ValueError("write the amount as a decimal string in yuan, e.g. \"5000000.00\"")
        amount = parse_money(value)
        if amount <= 0:
            raise ValueError("must be above 0")
        return amount


class ReasonLine(_Strict):
    """One reason code of the triage table (line 4 has two)."""

    line: int = Field(ge=1, le=7, strict=True)
    code: TriageReason
    name_zh: Name
    name_en: Name
    track: TriageTrack
    status: Literal["SPC", "LOCAL", "UNCONFIRMED"]
    source: Line


class TriagePolicy(_Strict):
    policy_version: Identifier
    thresholds: Thresholds
    teams: dict[TriageTrack, list[Identifier]]
    lines: list[ReasonLine]

    # ---------------------------------------------------------------- lookups

    def track_of(self, code: str) -> str:
        return self.by_code[code].track

    def teams_of(self, track: str) -> list[str]:
        return self.teams[track]  # type: ignore[index]

    def reason(self, code: str) -> ReasonLine:
        return self.by_code[code]

    @property
    def all_teams(self) -> list[tuple[str, str]]:
        """(team, track) in file order."""
        return [(team, track) for track, teams in self.teams.items() for team in teams]

    @property
    def by_code(self) -> dict[str, ReasonLine]:
        return {line.code: line for line in self.lines}


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _check_consistency(policy: TriagePolicy) -> None:
    """What pydantic's field types cannot say: table order, one track per line, teams for every track."""
    codes = [line.code for line in policy.lines]
    for index, line in enumerate(policy.lines):
        expected = TABLE_LINES[line.code]
        if line.line != expected:
            raise PolicyError(f"lines[{index}].line: {line.code} is on line {expected} of rules.md §2, not {line.line}")
        if codes.count(line.code) > 1:
            raise PolicyError(f"lines[{index}].code: {line.code} is listed twice")
    missing = [code for code in TABLE_LINES if code not in codes]
    if missing:
        raise PolicyError(f"lines: reason codes missing: {', '.join(missing)} (rules.md §2 has all of them)")
    ordered = [TABLE_LINES[c] for c in codes]
    for index in range(1, len(ordered)):
        if ordered[index] < ordered[index - 1]:
            raise PolicyError(f"lines[{index}].line: lines must follow rules.md §2's order "
                              f"(first match wins), line {ordered[index]} comes after line {ordered[index - 1]}")
    for index, line in enumerate(policy.lines):
        partner = next((other for other in policy.lines if other.line == line.line and other.track != line.track), None)
        if partner is not None:
            raise PolicyError(f"lines[{index}].track: {line.code} and {partner.code} share line {line.line}, "
                              f"so they need one track ({line.track} ≠ {partner.track})")
    used_tracks = {line.track for line in policy.lines}
    seen_teams: dict[str, str] = {}
    for track in TRACKS:
        teams = policy.teams.get(track)  # type: ignore[call-overload]
        if track in used_tracks and not teams:
            raise PolicyError(f"teams.{track}: a line routes cases to {track}, so it needs at least one team")
        for position, team in enumerate(teams or []):
            if team in seen_teams:
                where = "twice" if seen_teams[team] == track else f"in {seen_teams[team]} too"
                raise PolicyError(f"teams.{track}[{position}]: team {team!r} is listed {where}; "
                                  "a team belongs to one track")
            seen_teams[team] = track


def parse_policy(document: Any, origin: str = RULES_FILE_NAME) -> TriagePolicy:
    if not isinstance(document, dict):
        raise PolicyError(f"{origin}: expected a mapping with policy_version, thresholds, teams and lines")
    try:
        policy = TriagePolicy.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise PolicyError(f"{origin}: {_where(first['loc'])}: {first['msg']}{more}") from exc
    try:
        _check_consistency(policy)
    except PolicyError as exc:
        raise PolicyError(f"{origin}: {exc}") from exc
    return policy


def load_policy(path: Path | str) -> TriagePolicy:
    """Read and validate the triage rules file; PolicyError on any problem."""
    return parse_policy(read_rules_yaml(path, PolicyError), str(path))
