"""triage's HTTP API: a case's decision history with reasons, and open cases per team."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from services.triage.policy import TriagePolicy
from services.triage.store import TriageStore
from shared.contract.casenumber import CaseNumberError, parse_case_no
from shared.http.errors import ApiError, validation_body
from shared.security import Permission, Principal, audit_case_access, ensure_team_access, present, require


def _normalised(case_no: str) -> str:
    try:
        return parse_case_no(case_no).normalized
    except CaseNumberError as exc:
        raise ApiError(422, **validation_body([{"field": "path.case_no", "type": "case_no_format",
                                                "message": exc.reason, "message_zh": exc.reason_zh}])) from exc


def _status(doc: dict[str, Any]) -> str:
    if doc.get("decisions"):
        return "decided"
    if doc.get("filing") is None:
        return "awaiting_filing"  # only results so far: kept until the filing arrives
    if doc.get("closed_at"):
        return "closed_undecided"
    return "awaiting_network_inquiry"


def build_router(store: TriageStore, policy: TriagePolicy) -> APIRouter:
    router = APIRouter(tags=["triage"])

    def reasons(codes: list[str]) -> list[dict[str, str]]:
        out = []
        for code in codes:
            line = policy.by_code.get(code)
            out.append({"code": code, "name_zh": line.name_zh if line else code,
                        "name_en": line.name_en if line else code})
        return out

    @router.get("/cases/{case_no}/triage", summary="繁简分流: a case's triage decisions (revisions) with reasons")
    async def case_triage(
        case_no: Annotated[str, Path(max_length=64)],
        request: Request,
        principal: Annotated[Principal, Depends(require(Permission.TRIAGE_READ))],
    ) -> Any:
        normalised = _normalised(case_no)
        await audit_case_access(request, principal, normalised, "read")
        doc = await store.case(normalised)
        ensure_team_access(principal, doc.get("team") if doc else None, Permission.TRIAGE_READ, request)
        if doc is None:
            raise ApiError(404, "case_not_found", f"Triage has no case {normalised}.",
                           f"繁简分流中没有案号为 {normalised} 的案件。")
        decisions = [{**d, "reasons": reasons(d["reasons"])} for d in doc.get("decisions", [])]
        current = decisions[-1] if decisions else None
        filing = doc.get("filing")
        return present(principal, {
            "case_no": normalised,
            "status": _status(doc),
            "case_type": filing["case_type"] if filing else None,
            "track": current["track"] if current else None,
            "team": current["team"] if current else None,
            "revision": current["revision"] if current else None,
            "closed_at": doc.get("closed_at"),
            "decisions": decisions,
        })

    @router.get("/teams", summary="Open cases per team (filed, triaged, not closed)")
    async def teams(
        principal: Annotated[Principal, Depends(require(Permission.TRIAGE_READ))],
    ) -> Any:
        rows, watermark = await store.teams()
        return {"policy_version": policy.policy_version, "watermark": watermark, "teams": rows}

    return router
