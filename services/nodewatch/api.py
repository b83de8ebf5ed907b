"""nodewatch's HTTP API: a case's deadlines, the alerts list and the overdue summary for the boards."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from services.nodewatch.policy import NodePolicy
from services.nodewatch.store import NodeStore
from shared.alerts import court_iso
from shared.contract.casenumber import CaseNumberError, parse_case_no
from shared.deadline_book import DeadlineBook
from shared.http.errors import ApiError, validation_body
from shared.security import Permission, Principal, audit_case_access, ensure_team_access, present, require


def _iso(moment: datetime | None) -> str | None:
    return court_iso(moment) if moment is not None else None


def _normalised(case_no: str) -> str:
    try:
        return parse_case_no(case_no).normalized
    except CaseNumberError as exc:
        raise ApiError(422, **validation_body([{"field": "path.case_no", "type": "case_no_format",
                                                "message": exc.reason, "message_zh": exc.reason_zh}])) from exc


def deadline_view(doc: dict[str, Any]) -> dict[str, Any]:
    alarms = [
        {"alert_id": a["alert_id"], "kind": a["kind"], "cycle": a["cycle"], "state": a["state"],
         "raised_at": _iso(a["raised_at"]), "resolved_at": _iso(a["resolved_at"]), "reason": a["reason"],
         "late_fact": bool(a.get("late"))}
        for a in doc["alarms"] if a["state"] in ("raised", "resolved")
    ]
    resolution = doc.get("resolution")
    if resolution:
        resolution = {**resolution, "at": _iso(resolution.get("at"))}
    return {
        "rule": doc["rule"], "name_zh": doc.get("name_zh"), "subject": doc["subject"], "ref": doc.get("ref"),
        "state": doc["state"], "opened_at": _iso(doc["opened_at"]), "due_at": _iso(doc["due_at"]),
        "warn_at": _iso(doc.get("warn_at")), "cycle": doc["cycle"], "alerts": alarms, "resolution": resolution,
        "details": doc.get("details") or {},
    }


def alert_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "alert_id": doc["alert_id"], "rule": doc["rule"], "kind": doc["kind"], "severity": doc["severity"],
        "case_no": doc.get("case_no"), "team": doc.get("team"), "due_at": _iso(doc.get("due_at")),
        "raised_at": _iso(doc["raised_at"]), "summary": doc["summary"], "state": doc["state"],
        "resolved_at": _iso(doc.get("resolved_at")), "reason": doc.get("reason"), "cycle": doc.get("cycle", 1),
        "details": doc.get("details") or {},
    }


def build_router(store: NodeStore, book: DeadlineBook, policy: NodePolicy) -> APIRouter:
    router = APIRouter(tags=["nodewatch"])

    @router.get("/cases/{case_no}/deadlines",
                summary="Every node rule's state for a case (流程节点期限): state, due and warning time")
    async def case_deadlines(
        case_no: Annotated[str, Path(max_length=64)],
        request: Request,
        principal: Annotated[Principal, Depends(require(Permission.DEADLINES_READ))],
    ) -> Any:
        normalised = _normalised(case_no)
        case = await store.case(normalised)
        teams = (case or {}).get("teams") or []
        team = teams[-1][2] if teams else None  # the latest decision (sorted by decided_at, revision)
        await audit_case_access(request, principal, normalised, "read")
        ensure_team_access(principal, team, Permission.DEADLINES_READ, request)
        if case is None:
            raise ApiError(404, "case_not_found", f"nodewatch has read nothing about case {normalised}.",
                           f"节点监管尚未收到案号为 {normalised} 的案件事件。")
        docs = await book.case_deadlines(normalised)
        seen = {d["rule"] for d in docs}
        not_started = [
            {"rule": r.code, "name_zh": r.name_zh, "subject": normalised, "ref": None, "state": "not_started",
             "opened_at": None, "due_at": None, "warn_at": None, "cycle": 0, "alerts": [], "resolution": None,
             "details": {"trigger": r.trigger.node or r.trigger.event}}
            for r in policy.rules
            if r.code not in seen and r.trigger.per == "case"
            and (case.get("case_type") is None or case["case_type"] in r.case_types)
        ]
        closed = case.get("closed")
        body = {
            "case_no": normalised, "case_type": case.get("case_type"), "team": team,
            "filed_at": _iso(case.get("filed_at")),
            "closed": {**closed, "at": _iso(closed["at"])} if closed else None,
            "watermark": _iso(await book.watermark()),
            "deadlines": [deadline_view(d) for d in docs] + not_started,
        }
        return present(principal, body)

    @router.get("/alerts", summary="Alerts raised by nodewatch (预警/告警), newest first, paged")
    async def alerts(
        principal: Annotated[Principal, Depends(require(Permission.ALERTS_READ))],
        request: Request,
        state: Annotated[Literal["open", "resolved", "all"], Query()] = "open",
        rule: Annotated[str | None, Query(max_length=100)] = None,
        team: Annotated[str | None, Query(max_length=200)] = None,
        case_no: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> Any:
        scoped = principal.team_for(Permission.ALERTS_READ)
        if scoped is not None:
            if team is not None and team != scoped:
                ensure_team_access(principal, team, Permission.ALERTS_READ, request)
            team = scoped
        normalised = _normalised(case_no) if case_no else None
        if normalised:
            await audit_case_access(request, principal, normalised, "read")
        docs, total = await book.find_alerts(state=None if state == "all" else state, rule=rule, team=team,
                                             case_no=normalised,
                                             limit=limit, offset=offset)
        return present(principal, {"total": total, "limit": limit, "offset": offset,
                                   "items": [alert_view(d) for d in docs]})

    @router.get("/overdue/summary", summary="Open alerts per rule and team (逾期/临期统计), for the boards")
    async def overdue_summary(
        principal: Annotated[Principal, Depends(require(Permission.ALERTS_READ))],
    ) -> Any:
        rows = await book.overdue_summary()
        scoped = principal.team_for(Permission.ALERTS_READ)
        if scoped is not None:
            rows = [r for r in rows if r.get("team") == scoped]
        by_rule: dict[str, dict[str, Any]] = {}
        for row in rows:
            entry = by_rule.setdefault(row["rule"], {"rule": row["rule"], "overdue": 0, "due_soon": 0, "other": 0,
                                                     "by_team": {}})
            kind = row["kind"] if row["kind"] in ("overdue", "due_soon") else "other"
            entry[kind] += row["count"]
            team_key = row.get("team") or "unassigned"
            team_entry = entry["by_team"].setdefault(team_key, {"overdue": 0, "due_soon": 0, "other": 0})
            team_entry[kind] += row["count"]
        names = {r.code: r.name_zh for r in policy.rules}
        items = [{**v, "name_zh": names.get(k)} for k, v in sorted(by_rule.items())]
        return {"watermark": _iso(await book.watermark()), "rules": items,
                "total_overdue": sum(i["overdue"] for i in items), "total_due_soon": sum(i["due_soon"] for i in items)}

    return router
