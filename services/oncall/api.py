"""oncall's HTTP API: who is on duty, notifications (open, history, one), acknowledgement, roster
overrides and swaps (oncall_admin), and the Alertmanager webhook (monitoring role, oncall_ingest).

Errors are JSON in English and Chinese: 404 unknown id, 409 a step the state does not allow (ack of a
closed notification, an id reused with other content), 422 field-level. Phone numbers are masked for
roles without case_read_personal (present()).
"""
from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from services.oncall import rules
from services.oncall.metrics import ACKS, ALERTS_INGESTED
from services.oncall.policy import DUTY_ROLES, OncallPolicy
from services.oncall.store import Conflict, OncallStore
from shared.alerts import court_iso
from shared.contract.types import EventTime, Identifier, Line
from shared.http.errors import ApiError, validation_body
from shared.logging import get_logger
from shared.security import Permission, Principal, present, require

SOURCE_AM = "alertmanager"
# A Prometheus alert without a `family` label (or with one rules/oncall.yaml does not list).
ALERTMANAGER_FAMILY = "infrastructure"
NtfId = Annotated[str, Path(min_length=1, max_length=400, pattern=r"^\S+$")]
DutyRole = Literal["officer", "technician", "leader"]
log = get_logger()


def _iso(moment: datetime | None) -> str | None:
    return court_iso(moment) if moment is not None else None


# -- request bodies ----------------------------------------------------------------------------------

class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Line | None = None


class OverrideRequest(BaseModel):
    """顶班: `person` is on duty as `role` from `start` to `end` (whole shifts or part of one)."""

    model_config = ConfigDict(extra="forbid")
    id: Identifier | None = None
    role: DutyRole
    person: Identifier
    start: EventTime
    end: EventTime
    reason: Line


class SwapRequest(BaseModel):
    """换班: the people on duty as `role` in the shifts containing moments `a` and `b` swap."""

    model_config = ConfigDict(extra="forbid")
    id: Identifier | None = None
    role: DutyRole
    a: EventTime
    b: EventTime
    reason: Line


class AlertmanagerAlert(BaseModel):
    """One alert of Alertmanager's webhook payload (version 4); unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: str | None = None
    generatorURL: str | None = None
    fingerprint: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z]+$")


class AlertmanagerPayload(BaseModel):
    """Alertmanager's webhook_config payload, version "4" (prometheus.io/docs/alerting/latest/configuration)."""

    model_config = ConfigDict(extra="ignore")
    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupKey: str = ""
    truncatedAlerts: int = 0
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[AlertmanagerAlert] = Field(min_length=1, max_length=5000)


def alertmanager_inputs(payload: AlertmanagerPayload, families: Collection[str],
                        now: datetime) -> list[tuple[str, rules.AlertInput | None,
                                                                                     str, datetime]]:
    """(status, alert input, alert id, resolved_at) per alert; ApiError 422 when an alertname is missing."""
    errors: list[dict[str, str]] = []
    out = []
    for index, alert in enumerate(payload.alerts):
        labels = alert.labels
        where = f"body.alerts.{index}.labels"
        if not labels.get("alertname"):
            errors.append(_label_error(f"{where}.alertname", "alertname is required", "缺少 alertname 标签"))
        # A label this service does not know must not lose the alert (Alertmanager does not retry a 4xx):
        # unknown severity counts as warning, unknown family as infrastructure; the oddity is kept and logged.
        problems = {}
        severity = labels.get("severity", "")
        if severity not in ("warning", "critical"):
            problems["severity"] = severity
            severity = "warning"
        family = labels.get("family", ALERTMANAGER_FAMILY)
        if family not in families:
            problems["family"] = family
            family = ALERTMANAGER_FAMILY
        if problems:
            log.warning("alertmanager_labels_defaulted", fingerprint=alert.fingerprint,
                        alertname=labels.get("alertname"), unknown=problems)
        if errors:
            continue
        alert_id = f"alertmanager:{alert.fingerprint}"  # stable: Alertmanager's hash of the label set
        service = labels.get("service")
        summary = (alert.annotations.get("summary") or alert.annotations.get("description")
                   or f"{labels['alertname']} {service or ''}".strip())
        summary = " ".join(summary.split())[:500]
        firing = rules.AlertInput(
            alert_id=alert_id, rule=labels["alertname"], severity=severity, family=family,  # type: ignore[arg-type]
            team=labels.get("team"), summary=summary, raised_at=alert.startsAt, source=SOURCE_AM,
            details={"service": service, "instance": labels.get("instance"), "unknown_labels": problems})
        resolved_at = now
        if alert.endsAt and not alert.endsAt.startswith("0001-"):
            try:
                resolved_at = datetime.fromisoformat(alert.endsAt.replace("Z", "+00:00"))
            except ValueError:
                resolved_at = now
        out.append((alert.status, firing, alert_id, resolved_at))
    if errors:
        raise ApiError(422, **validation_body(errors))
    return out


def _label_error(field: str, message: str, message_zh: str) -> dict[str, str]:
    return {"field": field, "type": "alert_label", "message": message, "message_zh": message_zh}


# -- views ---------------------------------------------------------------------------------------------

def person_view(policy: OncallPolicy, person_id: str) -> dict[str, Any]:
    person = policy.roster.people.get(person_id)
    if person is None:
        return {"id": person_id, "name": None}
    return {"id": person_id, "name": person.name, "phone": person.phone, "channels": list(person.channels)}


def notification_view(ntf: dict[str, Any]) -> dict[str, Any]:
    acked = ntf.get("acked")
    return {
        "id": ntf["_id"], "state": ntf["state"], "rule": ntf["rule"], "severity": ntf["severity"],
        "severity_zh": rules.SEVERITY_ZH.get(ntf["severity"]), "family": ntf["family"], "team": ntf.get("team"),
        "source": ntf.get("source"), "roles": ntf["roles"], "alert_count": ntf["alert_count"],
        "open_alerts": ntf["open_alerts"], "sample": ntf["sample"][:5], "created_at": _iso(ntf["created_at"]),
        "send_at": _iso(ntf.get("send_at")), "sent_at": _iso(ntf.get("sent_at")),
        "escalations": ntf["escalations"], "next_escalation_at": _iso(ntf.get("next_escalation_at")),
        "notified": [{**n, "at": _iso(n["at"])} for n in ntf.get("notified", [])],
        "acknowledged": {"by": acked["by"], "at": _iso(acked["at"]), "note": acked.get("note")} if acked else None,
        "closed_at": _iso(ntf.get("closed_at")), "close_reason": ntf.get("close_reason"),
    }


def delivery_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {"id": doc["_id"], "step": doc["step"], "role": doc["role"], "person": doc["person"],
            "channel": doc["channel"], "state": doc["state"], "attempts": [
                {**a, "at": _iso(a["at"])} for a in doc.get("attempts", [])],
            "next_attempt_at": _iso(doc.get("next_attempt_at")), "error": doc.get("error")}


def change_view(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in doc.items() if k not in ("_id",)}
    return {"id": doc["_id"], **out}


# -- routes --------------------------------------------------------------------------------------------

def build_router(policy: OncallPolicy, store: OncallStore, channels: frozenset[str],
                 clock: Callable[[], datetime]) -> APIRouter:
    router = APIRouter(tags=["oncall"])

    @router.get("/duty/now", summary="值班: who is on duty now (or `at` a given moment), per duty role")
    async def duty_now(principal: Annotated[Principal, Depends(require(Permission.ONCALL_READ))],
                       at: Annotated[EventTime | None, Query()] = None) -> Any:
        moment = at or clock()
        duty = rules.on_duty(policy.roster, await store.roster_changes(), moment)
        return present(principal, {
            "at": _iso(moment), "shift": {"index": duty.shift_index, "start": _iso(duty.shift_start),
                                          "end": _iso(duty.shift_end)},
            "on_duty": {role: {**person_view(policy, duty.people[role]), "role_zh": rules.ROLE_ZH[role],
                               "because": duty.because[role]} for role in DUTY_ROLES},
        })

    @router.get("/notifications", summary="Notifications by state (default open: not acknowledged), newest first")
    async def list_notifications(
        principal: Annotated[Principal, Depends(require(Permission.ONCALL_READ))],
        state: Annotated[Literal["open", "acknowledged", "live", "closed", "all"], Query()] = "open",
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> Any:
        states = {"live": list(rules.LIVE), "all": None}.get(state, [state])
        docs, total = await store.notifications(states, limit, offset)  # type: ignore[arg-type]
        return present(principal, {"state": state, "total": total, "limit": limit, "offset": offset,
                                   "items": [notification_view(d) for d in docs]})

    @router.get("/notifications/history", summary="Every notification, newest first, paged (值班记录)")
    async def history(
        principal: Annotated[Principal, Depends(require(Permission.ONCALL_READ))],
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> Any:
        docs, total = await store.notifications(None, limit, offset)
        return present(principal, {"total": total, "limit": limit, "offset": offset,
                                   "items": [notification_view(d) for d in docs]})

    @router.get("/notifications/{ntf_id}", summary="One notification with its deliveries and their attempts")
    async def get_notification(ntf_id: NtfId,
                               principal: Annotated[Principal, Depends(require(Permission.ONCALL_READ))]) -> Any:
        ntf = await store.notification(ntf_id)
        if ntf is None:
            raise _unknown(ntf_id)
        deliveries = await store.deliveries_of(ntf_id)
        return present(principal, {**notification_view(ntf), "deliveries": [delivery_view(d) for d in deliveries]})

    @router.post("/notifications/{ntf_id}/ack", summary="确认: acknowledge; stops escalation; records who")
    async def ack(ntf_id: NtfId, body: AckRequest,
                  principal: Annotated[Principal, Depends(require(Permission.ONCALL_ACK))]) -> Any:
        async def attempt() -> rules.AckResult:
            ntf = await store.notification(ntf_id)
            if ntf is None:
                raise _unknown(ntf_id)
            result = rules.acknowledge(ntf, principal.sub, clock(), body.note)
            if result.outcome == "acknowledged":
                await store.save_notification(result.notification)
            return result

        result = await store.retrying(attempt)
        ACKS.labels(result.outcome).inc()
        if result.outcome == "closed":
            raise ApiError(409, "closed", f"Notification {ntf_id} is closed: its alerts have resolved.",
                           f"通知 {ntf_id} 已关闭（告警均已解除），无需确认。")
        log.info("notification_acknowledged", notification_id=ntf_id, by=principal.sub, outcome=result.outcome)
        return present(principal, {**notification_view(result.notification), "outcome": result.outcome})

    # -- roster changes ------------------------------------------------------------------------------

    @router.get("/roster/changes", summary="Overrides (顶班) and swaps (换班) made through the API")
    async def roster_changes(principal: Annotated[Principal, Depends(require(Permission.ONCALL_READ))]) -> Any:
        return {"items": [change_view(c) for c in await store.roster_changes()]}

    async def add_change(doc: dict[str, Any]) -> JSONResponse:
        reason = rules.check_change(policy.roster, doc)
        if reason is not None:
            raise ApiError(422, **validation_body([{"field": "body", "type": "roster_change", "message": reason,
                                                    "message_zh": f"值班调整无效：{reason}"}]))
        if not await store.add_roster_change(doc):
            known = await store.roster_change(doc["_id"])
            same = known is not None and all(_same(known.get(k), v) for k, v in doc.items()
                                              if k not in ("created_at", "by"))
            if not same:
                raise ApiError(409, "id_conflict", f"Roster change {doc['_id']} exists with other content.",
                               f"值班调整编号 {doc['_id']} 已用于其他内容。")
            return JSONResponse(change_view(known), status_code=200)
        log.info("roster_changed", change_id=doc["_id"], kind=doc["kind"], role=doc["role"], by=doc["by"])
        return JSONResponse(change_view(doc), status_code=201)

    @router.post("/roster/overrides", status_code=201, summary="顶班: put a person on duty for a time range")
    async def add_override(body: OverrideRequest,
                           principal: Annotated[Principal, Depends(require(Permission.ONCALL_ADMIN))]) -> Any:
        return await add_change({"_id": body.id or f"override:{uuid.uuid4()}", "kind": "override",
                                 "role": body.role, "person": body.person, "start": body.start, "end": body.end,
                                 "reason": body.reason, "by": principal.sub, "created_at": clock()})

    @router.post("/roster/swaps", status_code=201, summary="换班: swap the people of two shifts for a duty role")
    async def add_swap(body: SwapRequest,
                       principal: Annotated[Principal, Depends(require(Permission.ONCALL_ADMIN))]) -> Any:
        return await add_change({"_id": body.id or f"swap:{uuid.uuid4()}", "kind": "swap", "role": body.role,
                                 "a": body.a, "b": body.b, "reason": body.reason, "by": principal.sub,
                                 "created_at": clock()})

    @router.delete("/roster/changes/{change_id}", status_code=204, summary="Withdraw an override or a swap")
    async def delete_change(change_id: Annotated[str, Path(min_length=1, max_length=200)],
                            principal: Annotated[Principal, Depends(require(Permission.ONCALL_ADMIN))]) -> Response:
        if not await store.delete_roster_change(change_id):
            raise ApiError(404, "unknown_id", f"No roster change {change_id}.", f"未找到值班调整 {change_id}。")
        log.info("roster_change_withdrawn", change_id=change_id, by=principal.sub)
        return Response(status_code=204)

    # -- Alertmanager -----------------------------------------------------------------------------------

    @router.post("/alertmanager/webhook",
                 summary="Alertmanager webhook (payload version 4): infrastructure alerts into the same routing")
    async def alertmanager(payload: AlertmanagerPayload,
                           principal: Annotated[Principal, Depends(require(Permission.ONCALL_INGEST))]) -> Any:
        inputs = alertmanager_inputs(payload, policy.routing.families, clock())

        async def attempt() -> list[tuple[str, str]]:
            now = clock()
            firing = [i for status, i, _, _ in inputs if status == "firing" and i is not None]
            ledger = await store.load_ledger(policy, channels, {alert_id for _, _, alert_id, _ in inputs},
                                             {rules.group_key(i.rule, i.severity, i.team) for i in firing})
            for status, alert, alert_id, resolved_at in inputs:
                if status == "firing":
                    ledger.raise_alert(alert, now)  # type: ignore[arg-type]
                else:
                    ledger.resolve_alert(alert_id, resolved_at, "Alertmanager: resolved", now)
            await store.in_transaction(store.ledger_writes(ledger, now))
            return ledger.outcomes

        try:
            outcomes = await store.retrying(attempt)
        except Conflict as exc:
            raise ApiError(503, "busy", "Concurrent updates; retry.", "并发更新冲突，请重试。") from exc
        families = {i.alert_id: i.family for _, i, _, _ in inputs if i is not None}
        for alert_id, outcome in outcomes:
            ALERTS_INGESTED.labels(SOURCE_AM, families.get(alert_id, ALERTMANAGER_FAMILY), outcome).inc()
        log.info("alertmanager_received", by=principal.sub, alerts=len(inputs), group_key=payload.groupKey[:200],
                 outcomes=dict(Counter(o for _, o in outcomes)))
        return {"received": len(inputs), "outcomes": dict(Counter(o for _, o in outcomes))}

    return router


def _same(stored: Any, given: Any) -> bool:
    """Equal as MongoDB keeps it: times to the millisecond (BSON dates), in any zone."""
    if isinstance(stored, datetime) and isinstance(given, datetime):
        return int(stored.timestamp() * 1000) == int(given.timestamp() * 1000)
    return stored == given


def _unknown(ntf_id: str) -> ApiError:
    return ApiError(404, "unknown_id", f"No notification {ntf_id}.", f"未找到通知 {ntf_id}。")
