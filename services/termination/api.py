"""termination's HTTP API: a case's latest 终本 review per stage with the evidence per item, and the
terminated cases under re-check (optionally only those whose periodic network re-query is due)."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from services.termination.policy import TerminationPolicy
from services.termination.store import DUE_STATES, TerminationStore
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


def review_view(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    return {
        "review_id": doc["_id"], "stage": doc["stage"], "seq": doc["seq"], "passed": doc["passed"],
        "missing": doc["missing"], "stage_date": doc["stage_date"], "reviewed_at": _iso(doc["reviewed_at"]),
        "trigger": doc["trigger"], "policy_version": doc.get("policy_version"), "items": doc["items"],
    }


def recheck_view(doc: dict[str, Any]) -> dict[str, Any]:
    resolution = doc.get("resolution")
    if resolution:
        resolution = {"at": _iso(resolution.get("at")), "reason": resolution.get("reason"),
                      "on_time": resolution.get("on_time"), "cancelled": resolution.get("cancelled", False)}
    return {
        "n": int(doc.get("ref") or 0), "subject": doc["subject"], "state": doc["state"],
        "period_start": _iso(doc["opened_at"]), "due_at": _iso(doc["due_at"]), "warn_at": _iso(doc.get("warn_at")),
        "alerts": [a["alert_id"] for a in doc["alarms"] if a["state"] in ("raised", "resolved")],
        "resolution": resolution,
    }


def _closed_view(case: dict[str, Any]) -> dict[str, Any] | None:
    closed = case.get("closed")
    if not closed:
        return None
    return {"mode": closed["mode"], "closed_on": closed["closed_on"], "at": _iso(closed["at"]),
            "amount_recovered": closed.get("amount_recovered")}


def _resumed_view(case: dict[str, Any]) -> dict[str, Any] | None:
    resumed = case.get("resumed")
    if not resumed:
        return None
    return {"new_case_no": resumed["new_case_no"], "resumed_on": resumed["resumed_on"], "at": _iso(resumed["at"])}


def _current_period(rechecks: list[dict[str, Any]], now: datetime | None) -> dict[str, Any] | None:
    """The period holding the watermark (the first not yet due), else the last one."""
    if not rechecks:
        return None
    if now is not None:
        for doc in rechecks:
            if doc["due_at"] >= now:
                return doc
    return rechecks[-1]


def build_router(store: TerminationStore, book: DeadlineBook, policy: TerminationPolicy) -> APIRouter:
    router = APIRouter(tags=["termination"])
    checklist = [{"code": i.code, "name_zh": i.name_zh, "name_en": i.name_en, "required": i.required,
                  "status": i.status, "source": i.source} for i in policy.checklist]

    @router.get("/cases/{case_no}/review",
                summary="The latest 终本 review per stage (拟终本/结案), with the evidence for each checklist item")
    async def case_review(
        case_no: Annotated[str, Path(max_length=64)],
        request: Request,
        principal: Annotated[Principal, Depends(require(Permission.TERMINATION_READ))],
    ) -> Any:
        normalised = _normalised(case_no)
        case = await store.case(normalised)
        await audit_case_access(request, principal, normalised, "read")
        ensure_team_access(principal, (case or {}).get("team"), Permission.TERMINATION_READ, request)
        if case is None:
            raise ApiError(404, "case_not_found", f"termination has read nothing about case {normalised}.",
                           f"终本审查尚未收到案号为 {normalised} 的案件事件。")
        latest = await store.latest_reviews(normalised)
        rechecks = (await store.rechecks_of([normalised]))[normalised]
        recheck = case.get("recheck")
        body = {
            "case_no": normalised, "case_type": case.get("case_type"), "team": case.get("team"),
            "filed_on": case.get("filed_on"), "closed": _closed_view(case), "resumed": _resumed_view(case),
            "watermark": _iso(await book.watermark()),
            "reviews": {stage: review_view(latest.get(stage)) for stage in ("proposed", "closed")},
            "review_counts": case.get("reviews"),
            "pending_reviews": [{"stage": r["stage"], "stage_date": r["stage_date"], "trigger": r["trigger"]}
                                for r in case.get("pending_reviews") or []],
            "recheck": None if recheck is None else {
                "from": _iso(recheck["from"]), "until": _iso(recheck["until"]),
                "periods": [recheck_view(d) for d in rechecks],
            },
            "restore_suggestions": [{"trigger": s["trigger"], "at": _iso(s["at"]), "reason": s["reason"]}
                                    for s in case.get("suggestions") or []],
            "checklist": checklist,
        }
        return present(principal, body)

    @router.get("/terminated", summary="终本 cases under the 5-year re-check; recheck_due=true: the periodic "
                                       "network re-query is due (warned) or overdue")
    async def terminated(
        principal: Annotated[Principal, Depends(require(Permission.TERMINATION_READ))],
        request: Request,
        recheck_due: Annotated[bool, Query()] = False,
        team: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> Any:
        scoped = principal.team_for(Permission.TERMINATION_READ)
        if scoped is not None:
            if team is not None and team != scoped:
                ensure_team_access(principal, team, Permission.TERMINATION_READ, request)
            team = scoped
        due_cases = await store.recheck_due_cases() if recheck_due else None
        docs, total = await store.terminated(case_nos=due_cases, team=team, limit=limit, offset=offset)
        rechecks = await store.rechecks_of([d["_id"] for d in docs])
        now = await book.watermark()
        items = []
        for case in docs:
            periods = rechecks.get(case["_id"], [])
            current = _current_period(periods, now)
            due = [recheck_view(d) for d in periods if d["state"] in DUE_STATES]
            latest_closed = (case.get("latest") or {}).get("closed")
            items.append({
                "case_no": case["_id"], "team": case.get("team"), "case_type": case.get("case_type"),
                "closed": _closed_view(case),
                "recheck_until": _iso((case.get("recheck") or {}).get("until")),
                "review_passed": latest_closed["passed"] if latest_closed else None,
                "current_period": recheck_view(current) if current else None,
                "due_periods": due,
                "restore_suggestions": len(case.get("suggestions") or []),
            })
        return present(principal, {"watermark": _iso(now), "total": total, "limit": limit, "offset": offset,
                                   "recheck_due": recheck_due, "items": items})

    return router
