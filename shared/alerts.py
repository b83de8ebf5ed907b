"""Alert events (告警事件) for `ecc.alerts`, contract §9 and rules.md §0.

Ids are deterministic, so a replay or a restart publishes the same ids:

- alert ids: `<rule>.due_soon:<subject>`, `<rule>.overdue:<subject>` for a
  deadline rule, `<rule>:<subject>` for a rule without a deadline;
- event ids: `alert.raised:<alert_id>` and `alert.resolved:<alert_id>`; a
  later breach of the same alert id (the same deadline re-armed: a seizure
  renewed, a case term extended) appends the cycle, `alert.raised:<alert_id>:2`.

The event's subject is the alert id: the runtime keys messages by subject,
and `ecc.alerts` is keyed by alert id (contract §3). Every time is written in
the court's zone, so the same alert has the same bytes whoever built it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from shared.contract.envelope import COURT_TZ, Event, make_event

AlertKind = Literal["due_soon", "overdue", "raised"]
"""due_soon 临期预警 (warning), overdue 逾期告警 (critical), raised: a rule without a deadline."""

ALERT_KINDS: tuple[str, ...] = ("due_soon", "overdue", "raised")
DEFAULT_SEVERITY: dict[str, str] = {"due_soon": "warning", "overdue": "critical", "raised": "warning"}


def alert_id(rule: str, subject: str, kind: str) -> str:
    """`<rule>.due_soon:<subject>`, `<rule>.overdue:<subject>`, or `<rule>:<subject>` (kind "raised")."""
    if kind not in ALERT_KINDS:
        raise ValueError(f"alert kind {kind!r} must be one of {ALERT_KINDS}")
    if not rule or not subject:
        raise ValueError(f"alert id needs a rule and a subject, got {rule!r}, {subject!r}")
    return f"{rule}:{subject}" if kind == "raised" else f"{rule}.{kind}:{subject}"


def _cycle_suffix(cycle: int) -> str:
    return "" if cycle <= 1 else f":{cycle}"


def raised_event_id(alert: str, cycle: int = 1) -> str:
    return f"alert.raised:{alert}{_cycle_suffix(cycle)}"


def resolved_event_id(alert: str, cycle: int = 1) -> str:
    return f"alert.resolved:{alert}{_cycle_suffix(cycle)}"


def court_iso(moment: datetime) -> str:
    """RFC 3339 in Asia/Shanghai: one spelling per instant (a time read back from MongoDB is UTC)."""
    return moment.astimezone(COURT_TZ).isoformat()


def alert_raised(
    *, source: str, alert: str, rule: str, severity: str, raised_at: datetime, summary: str,
    case_no: str | None = None, team: str | None = None, due_at: datetime | None = None,
    details: dict[str, Any] | None = None, cycle: int = 1,
) -> Event:
    """An `alert.raised` event; `raised_at` is event time (the watermark or event that raised it)."""
    data: dict[str, Any] = {
        "alert_id": alert, "rule": rule, "severity": severity, "raised_at": court_iso(raised_at),
        "summary": summary, "details": details or {},
    }
    if case_no is not None:
        data["case_no"] = case_no
    if team is not None:
        data["team"] = team
    if due_at is not None:
        data["due_at"] = court_iso(due_at)
    return make_event(type="alert.raised", subject=alert, time=raised_at.astimezone(COURT_TZ), data=data,
                      source=source, id=raised_event_id(alert, cycle))


def alert_resolved(*, source: str, alert: str, resolved_at: datetime, reason: str, cycle: int = 1) -> Event:
    """An `alert.resolved` event: the awaited fact arrived or the case closed."""
    return make_event(
        type="alert.resolved", subject=alert, time=resolved_at.astimezone(COURT_TZ),
        data={"alert_id": alert, "resolved_at": court_iso(resolved_at), "reason": reason},
        source=source, id=resolved_event_id(alert, cycle),
    )
