"""oncall's pure decisions: who is on duty (值班), where an alert goes (分派), how alerts group into
one notification (合并), when a notification is sent, escalated (升级) and closed.

No database, no broker, no clock: every function takes `now`. State is plain dicts (the MongoDB
documents of store.py); `Ledger` holds the documents a batch loaded and records which changed.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.oncall.policy import DUTY_ROLES, OncallPolicy, Roster, RoutingPolicy
from shared.clock import COURT_TZ

SEVERITY_ZH = {"info": "提示", "warning": "预警", "critical": "严重"}
ROLE_ZH = {"officer": "值班执行干警", "technician": "值班技术人员", "leader": "带班领导"}
LIVE = ("open", "acknowledged")
SAMPLE_ALERTS = 20  # alert ids kept on a notification for the message; the rest are in `alerts`


# -- roster: who is on duty ----------------------------------------------------------------------

@dataclass(frozen=True)
class Duty:
    """The people on duty at one moment, per duty role, and why (rotation, override or swap)."""

    at: datetime
    shift_index: int
    shift_start: datetime
    shift_end: datetime
    people: dict[str, str]
    because: dict[str, str]


def shift_index(roster: Roster, at: datetime) -> int:
    """The shift containing `at`, counted from the shift starting on the anchor day (0)."""
    first = datetime.combine(roster.shift.anchor, roster.shift.starts_at, tzinfo=COURT_TZ)
    return (at - first) // roster.shift.length


def shift_bounds(roster: Roster, index: int) -> tuple[datetime, datetime]:
    first = datetime.combine(roster.shift.anchor, roster.shift.starts_at, tzinfo=COURT_TZ)
    start = first + index * roster.shift.length
    return start, start + roster.shift.length


def rotation_person(roster: Roster, role: str, index: int) -> str:
    rotation = roster.rotations[role]  # type: ignore[index]
    return rotation.people[(index // rotation.every) % len(rotation.people)]


def on_duty(roster: Roster, changes: Iterable[dict[str, Any]], at: datetime) -> Duty:
    """The rotation, then swaps (换班, in the order made), then overrides (顶班, the latest made wins).

    A swap {role, a, b} exchanges the people of the shifts containing moments a and b; an override
    {role, start, end, person} puts `person` on duty for [start, end), whole shifts or part of one.
    """
    index = shift_index(roster, at)
    start, end = shift_bounds(roster, index)
    ordered = sorted(changes, key=lambda c: (c["created_at"], c["_id"]))
    people: dict[str, str] = {}
    because: dict[str, str] = {}
    for role in DUTY_ROLES:
        source = index
        why = "rotation"
        # Swaps are transpositions of shifts: walk them backwards to find whose turn this shift is.
        for change in reversed([c for c in ordered if c["kind"] == "swap" and c["role"] == role]):
            a, b = shift_index(roster, change["a"]), shift_index(roster, change["b"])
            if source == a:
                source, why = b, f"swap:{change['_id']}"
            elif source == b:
                source, why = a, f"swap:{change['_id']}"
        person = rotation_person(roster, role, source)
        for change in ordered:
            if change["kind"] == "override" and change["role"] == role and change["start"] <= at < change["end"]:
                person, why = change["person"], f"override:{change['_id']}"
        people[role] = person
        because[role] = why
    return Duty(at, index, start, end, people, because)


def check_change(roster: Roster, change: dict[str, Any]) -> str | None:
    """Why a roster change cannot be made (English; None when it can)."""
    if change["role"] not in DUTY_ROLES:
        return f"role must be one of {list(DUTY_ROLES)}"
    if change["kind"] == "override":
        if change["person"] not in roster.people:
            return f"person {change['person']!r} is not in the roster's people"
        if change["end"] <= change["start"]:
            return "end must be after start"
        if change["end"] - change["start"] > timedelta(days=366):
            return "an override spans at most 366 days"
    elif shift_index(roster, change["a"]) == shift_index(roster, change["b"]):
        return "a and b fall in the same shift; a swap needs two different shifts"
    return None


# -- routing ---------------------------------------------------------------------------------------

def route(routing: RoutingPolicy, family: str, severity: str, team: str | None, rule: str) -> list[str]:
    """Duty roles an alert goes to: every matching route's roles, in DUTY_ROLES order."""
    roles: set[str] = set()
    for entry in routing.routes:
        match = entry.match
        if match.families is not None and family not in match.families:
            continue
        if match.severities is not None and severity not in match.severities:
            continue
        if match.teams is not None and team not in match.teams:
            continue
        if match.rules is not None and not any(rule.startswith(p) for p in match.rules):
            continue
        roles.update(entry.to)
    return [r for r in DUTY_ROLES if r in roles]


def group_key(rule: str, severity: str, team: str | None) -> str:
    """Alerts of one rule, severity and team share one live notification."""
    return f"{rule}:{severity}:{team or '-'}"


# -- ingest: alerts join, open and close notifications ------------------------------------------

@dataclass(frozen=True)
class AlertInput:
    """An alert from ecc.alerts (alert.raised) or from Alertmanager (firing), normalised."""

    alert_id: str
    rule: str
    severity: str
    family: str
    team: str | None
    summary: str
    raised_at: datetime
    source: str  # "ecc.alerts" | "alertmanager"
    case_no: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliverySpec:
    """One message to one person on one channel; its id is deterministic, so a step is sent once."""

    id: str
    notification_id: str
    step: str
    role: str
    person: str
    channel: str | None
    title: str
    text: str
    severity: str

    def document(self, now: datetime) -> dict[str, Any]:
        doc = {"_id": self.id, "notification_id": self.notification_id, "step": self.step, "role": self.role,
               "person": self.person, "channel": self.channel, "title": self.title, "text": self.text,
               "severity": self.severity, "created_at": now, "attempts": [], "attempt_count": 0}
        if self.channel is None:
            # Nobody can be reached: recorded (and counted) as failed rather than silently dropped.
            doc.update(state="failed", next_attempt_at=None, error="no configured channel for this person")
        else:
            doc.update(state="pending", next_attempt_at=now)
        return doc


class Ledger:
    """The alerts, groups and notifications a batch (or a webhook call) touches, changed in memory."""

    def __init__(self, policy: OncallPolicy, channels: frozenset[str], alerts: dict[str, dict[str, Any]],
                 groups: dict[str, dict[str, Any]], notifications: dict[str, dict[str, Any]]):
        self.policy = policy
        self.channels = channels
        self.alerts = alerts
        self.groups = groups
        self.notifications = notifications
        self.changed: dict[str, set[str]] = {"alerts": set(), "groups": set(), "notifications": set()}
        self.deliveries: list[DeliverySpec] = []
        self.outcomes: list[tuple[str, str]] = []  # (alert id, what happened) for logs and metrics

    def docs(self, collection: str) -> list[dict[str, Any]]:
        store = getattr(self, collection)
        return [store[i] for i in sorted(self.changed[collection])]

    def _touch(self, collection: str, doc: dict[str, Any]) -> None:
        getattr(self, collection)[doc["_id"]] = doc
        self.changed[collection].add(doc["_id"])

    def raise_alert(self, alert: AlertInput, now: datetime) -> str:
        """Record a firing alert and put it in its group's live notification (a new one if none)."""
        known = self.alerts.get(alert.alert_id)
        if known is not None and known["state"] == "open":
            self.outcomes.append((alert.alert_id, "already_open"))
            return "already_open"
        roles = route(self.policy.routing, alert.family, alert.severity, alert.team, alert.rule)
        doc = {**(known or {}), "_id": alert.alert_id, "rule": alert.rule, "severity": alert.severity,
               "family": alert.family, "team": alert.team, "case_no": alert.case_no, "summary": alert.summary,
               "raised_at": alert.raised_at, "source": alert.source, "state": "open", "received_at": now,
               "resolved_at": None, "reason": None, "cycles": (known or {}).get("cycles", 0) + 1,
               "notification_id": None}
        if not roles:
            doc["state_note"] = "no route: recorded, nobody notified"
            self._touch("alerts", doc)
            self.outcomes.append((alert.alert_id, "unrouted"))
            return "unrouted"
        key = group_key(alert.rule, alert.severity, alert.team)
        group = self.groups.get(key) or {"_id": key, "generation": 0, "live": None}
        ntf = self.notifications.get(group["live"]) if group.get("live") else None
        if ntf is None or ntf["state"] not in LIVE:
            group = {**group, "generation": group["generation"] + 1}
            ntf = self._new_notification(key, group["generation"], alert, roles, now)
            group["live"] = ntf["_id"]
            self._touch("groups", group)
            outcome = "opened"
        else:
            ntf = {**ntf}
            outcome = "joined"
        ntf["alert_count"] += 1
        ntf["open_alerts"] += 1
        if len(ntf["sample"]) < SAMPLE_ALERTS:
            ntf["sample"] = [*ntf["sample"], {"alert_id": alert.alert_id, "summary": alert.summary,
                                              "case_no": alert.case_no}]
        ntf["updated_at"] = now
        doc["notification_id"] = ntf["_id"]
        self._touch("notifications", ntf)
        self._touch("alerts", doc)
        self.outcomes.append((alert.alert_id, outcome))
        return outcome

    def _new_notification(self, key: str, generation: int, alert: AlertInput, roles: list[str],
                          now: datetime) -> dict[str, Any]:
        return {
            "_id": f"{key}:{generation}", "group_key": key, "rule": alert.rule, "severity": alert.severity,
            "family": alert.family, "team": alert.team, "source": alert.source, "roles": roles,
            "state": "open", "alert_count": 0, "open_alerts": 0, "sample": [],
            "created_at": now, "updated_at": now, "send_at": now + self.policy.routing.grouping.wait,
            "next_action_at": now + self.policy.routing.grouping.wait, "sent_at": None,
            "escalations": 0, "next_escalation_at": None, "notified": [], "acked": None,
            "closed_at": None, "close_reason": None,
        }

    def resolve_alert(self, alert_id: str, at: datetime, reason: str, now: datetime) -> str:
        """Mark the alert resolved; its notification closes when its last open alert resolves."""
        doc = self.alerts.get(alert_id)
        if doc is None or doc["state"] != "open":
            outcome = "unknown" if doc is None else "already_resolved"
            self.outcomes.append((alert_id, outcome))
            return outcome
        self._touch("alerts", {**doc, "state": "resolved", "resolved_at": at, "reason": reason})
        ntf_id = doc.get("notification_id")
        ntf = self.notifications.get(ntf_id) if ntf_id else None
        if ntf is None or ntf["state"] not in LIVE:
            self.outcomes.append((alert_id, "resolved"))
            return "resolved"
        ntf = {**ntf, "open_alerts": max(ntf["open_alerts"] - 1, 0), "updated_at": now}
        outcome = "resolved"
        if ntf["open_alerts"] == 0:
            ntf, notices = close(self.policy, self.channels, ntf, now, "all alerts resolved")
            self.deliveries += notices
            outcome = "closed"
        self._touch("notifications", ntf)
        self.outcomes.append((alert_id, outcome))
        return outcome


def close(policy: OncallPolicy, channels: frozenset[str], ntf: dict[str, Any], now: datetime,
          reason: str) -> tuple[dict[str, Any], list[DeliverySpec]]:
    """Close a notification; tell the people already notified (notify_on_close), once each."""
    closed = {**ntf, "state": "closed", "closed_at": now, "close_reason": reason, "next_action_at": None,
              "next_escalation_at": None}
    if not policy.routing.notify_on_close or ntf.get("sent_at") is None:
        return closed, []
    title = f"【已恢复】{_label(policy, ntf)}"
    text = f"{title}\n共 {ntf['alert_count']} 条告警均已解除。\n通知编号 {ntf['_id']}"
    seen: set[str] = set()
    notices = []
    for entry in ntf.get("notified", []):
        if entry["person"] in seen:
            continue
        seen.add(entry["person"])
        notices += deliveries_for(policy, channels, ntf, "resolved", entry["role"], entry["person"], title, text)
    return closed, notices


# -- dispatch: send, escalate ----------------------------------------------------------------------

def deliveries_for(policy: OncallPolicy, channels: frozenset[str], ntf: dict[str, Any], step: str, role: str,
                   person: str, title: str, text: str) -> list[DeliverySpec]:
    """One delivery per configured channel of the person; one failed record when none is configured."""
    known = policy.roster.people.get(person)
    usable = [c for c in (known.channels if known else []) if c in channels]
    base = f"{ntf['_id']}/{step}/{person}"
    if not usable:
        return [DeliverySpec(f"{base}/-", ntf["_id"], step, role, person, None, title, text, ntf["severity"])]
    return [DeliverySpec(f"{base}/{c}", ntf["_id"], step, role, person, c, title, text, ntf["severity"])
            for c in usable]


def _label(policy: OncallPolicy, ntf: dict[str, Any]) -> str:
    family = policy.routing.families.get(ntf["family"])
    team = f"（{ntf['team']}）" if ntf.get("team") else ""
    return f"{family.name_zh if family else ntf['family']} {ntf['rule']}{team}"


def message(policy: OncallPolicy, ntf: dict[str, Any], step: str) -> tuple[str, str]:
    """Title and text (Chinese) of a send or an escalation, from the notification as it is now."""
    severity = SEVERITY_ZH.get(ntf["severity"], ntf["severity"])
    prefix = f"【{severity}】" if step == "initial" else f"【升级{step.rsplit('.', 1)[-1]}·{severity}】"
    title = f"{prefix}{_label(policy, ntf)} ×{ntf['alert_count']}"
    lines = [title]
    for item in ntf["sample"][:5]:
        lines.append(f"- {item['summary']}")
    if ntf["alert_count"] > 5:
        lines.append(f"……等共 {ntf['alert_count']} 条（未解除 {ntf['open_alerts']} 条）")
    if step != "initial":
        lines.append(f"已于 {_local(ntf['sent_at'])} 通知，至今未确认。")
    lines.append(f"确认：POST /notifications/{ntf['_id']}/ack")
    return title, "\n".join(lines)


def _local(moment: datetime | None) -> str:
    return moment.astimezone(COURT_TZ).strftime("%m-%d %H:%M") if moment else "-"


@dataclass
class Step:
    notification: dict[str, Any]
    deliveries: list[DeliverySpec]
    kind: str | None  # "initial" | "escalation" | None (nothing due)


DutyAt = Callable[[datetime], Duty]


def dispatch(policy: OncallPolicy, channels: frozenset[str], ntf: dict[str, Any], now: datetime,
             duty_at: DutyAt) -> Step:
    """What is due for a notification at `now`: its first send after the grouping wait, or an escalation.

    Missed repeats (the service was down) collapse into one step; the next is scheduled from now.
    """
    routing = policy.routing
    if ntf["state"] == "closed" or ntf.get("next_action_at") is None or now < ntf["next_action_at"]:
        return Step(ntf, [], None)
    after = {**ntf, "next_action_at": None}
    if ntf.get("sent_at") is None:
        if ntf["state"] == "acknowledged":  # seen in the API before the grouping wait ended
            return Step(after, [], None)
        duty = duty_at(now)
        title, text = message(policy, ntf, "initial")
        specs: list[DeliverySpec] = []
        notified = []
        for role in ntf["roles"]:
            person = duty.people[role]
            notified.append({"role": role, "person": person, "step": "initial", "at": now})
            specs += deliveries_for(policy, channels, ntf, "initial", role, person, title, text)
        after.update(sent_at=now, notified=notified)
        if ntf["severity"] in routing.escalation.severities:
            after["next_escalation_at"] = after["next_action_at"] = now + routing.escalation.after
        return Step(after, specs, "initial")
    if ntf["state"] != "open" or ntf.get("next_escalation_at") is None:
        return Step(after, [], None)
    level = ntf["escalations"] + 1
    step = f"escalation.{level}"
    duty = duty_at(now)
    title, text = message(policy, ntf, step)
    specs = []
    notified = list(ntf.get("notified", []))
    for role in routing.escalation.to:
        person = duty.people[role]
        notified.append({"role": role, "person": person, "step": step, "at": now})
        specs += deliveries_for(policy, channels, ntf, step, role, person, title, text)
    after.update(escalations=level, notified=notified, next_escalation_at=None)
    if level < 1 + routing.escalation.max_repeats:
        after["next_escalation_at"] = after["next_action_at"] = now + routing.escalation.repeat_every
    return Step(after, specs, "escalation")


# -- acknowledgement -------------------------------------------------------------------------------

@dataclass(frozen=True)
class AckResult:
    notification: dict[str, Any]
    outcome: str  # acknowledged | repeat | closed


def acknowledge(ntf: dict[str, Any], by: str, at: datetime, note: str | None) -> AckResult:
    """确认: stops escalation; a second ack keeps the first (who and when); a closed one cannot be acked."""
    if ntf["state"] == "closed":
        return AckResult(ntf, "closed")
    if ntf["state"] == "acknowledged":
        return AckResult(ntf, "repeat")
    acked = {**ntf, "state": "acknowledged", "acked": {"by": by, "at": at, "note": note},
             "next_escalation_at": None, "updated_at": at}
    # An ack before the grouping wait ended still lets dispatch() see the unsent notification once.
    acked["next_action_at"] = ntf["next_action_at"] if ntf.get("sent_at") is None else None
    return AckResult(acked, "acknowledged")


# -- delivery retries ------------------------------------------------------------------------------

def retry_delay(policy: OncallPolicy, attempt: int) -> timedelta:
    """Wait before attempt `attempt + 1` after `attempt` failures: base * 2^(attempt-1), capped."""
    delivery = policy.routing.delivery
    return min(delivery.base_delay * (2 ** max(attempt - 1, 0)), delivery.max_delay)
