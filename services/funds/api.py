"""funds' HTTP API: a case's account, unidentified deposits, anomalies, and POST endpoints for courts
without a fund-system feed.

The POST endpoints take exactly the contract's event data (contract §5), validate it like intake
(field-level 422 in English and Chinese), and store the fact with its outbox entry in one
transaction: it reaches `ecc.funds.events` even if the broker is down, and funds then consumes its
own event like any other (one code path for the feed and the window). Event ids are derived from
the fact (`funds.received:<receipt_id>`, ...), so a retried POST is answered 200 with the same id,
and a different fact under a used id is answered 409.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.funds.metrics import SUBMISSIONS
from services.funds.policy import FundsPolicy
from services.funds.rules import (
    FundsRules, fingerprint, item_subject, local_text, signed_money, unmatched_subject,
)
from services.funds.store import FundsStore, Submitted
from shared.alerts import court_iso
from shared.contract.casenumber import CaseNumberError, parse_case_no
from shared.contract.envelope import COURT_TZ, Event, make_event
from shared.contract.events_funds import FundsDelayApproved, FundsDisbursed, FundsMatched, FundsReceived
from shared.contract.types import format_money
from shared.deadline_book import DeadlineBook, key_of
from shared.deadlines import court_date
from shared.http.errors import ApiError, validation_body
from shared.ids import derived_id
from shared.logging import get_logger
from shared.security import Permission, Principal, audit_case_access, ensure_team_access, present, require

SOURCE = "ecc/funds"
log = get_logger()


class Accepted(BaseModel):
    event_id: str
    type: str
    subject: str


def _iso(moment: datetime | None) -> str | None:
    return court_iso(moment) if moment is not None else None


def _normalised(case_no: str) -> str:
    try:
        return parse_case_no(case_no).normalized
    except CaseNumberError as exc:
        raise ApiError(422, **validation_body([{"field": "path.case_no", "type": "case_no_format",
                                                "message": exc.reason, "message_zh": exc.reason_zh}])) from exc


def _field_error(field: str, kind: str, message: str, message_zh: str) -> ApiError:
    return ApiError(422, **validation_body([{"field": field, "type": kind, "message": message,
                                            "message_zh": message_zh}]))


def alert_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "alert_id": doc["alert_id"], "rule": doc["rule"], "kind": doc["kind"], "severity": doc["severity"],
        "case_no": doc.get("case_no"), "team": doc.get("team"), "due_at": _iso(doc.get("due_at")),
        "raised_at": _iso(doc["raised_at"]), "summary": doc["summary"], "state": doc["state"],
        "resolved_at": _iso(doc.get("resolved_at")), "reason": doc.get("reason"), "cycle": doc.get("cycle", 1),
        "details": doc.get("details") or {},
    }


def build_router(store: FundsStore, book: DeadlineBook, rules: FundsRules, policy: FundsPolicy) -> APIRouter:
    router = APIRouter(tags=["funds"])
    names = {r.code: r.name_zh for r in policy.rules}

    def answer(submitted: Submitted, event: Event) -> JSONResponse:
        SUBMISSIONS.labels(event.type, submitted.outcome).inc()
        log.info("funds_submission", event_id=submitted.event_id, type=event.type, outcome=submitted.outcome)
        if submitted.outcome == "conflict":
            raise ApiError(409, "event_conflict",
                           f"Event {submitted.event_id} was already recorded with different content.",
                           f"事件 {submitted.event_id} 已登记，且内容与本次不同。")
        body = Accepted(event_id=submitted.event_id, type=event.type, subject=event.subject).model_dump()
        return JSONResponse(body, status_code=201 if submitted.outcome == "created" else 200)

    async def submit(event: Event) -> JSONResponse:
        return answer(await store.submit(event, fingerprint(event.data)), event)

    def repeat_or_conflict(event: Event, known: dict[str, Any], what_en: str, what_zh: str) -> JSONResponse:
        """The registry (built from the topic, feed included) already holds a fact under this id."""
        if known["fingerprint"] == fingerprint(event.data):
            return answer(Submitted(known["event_id"], "repeat"), event)
        SUBMISSIONS.labels(event.type, "conflict").inc()
        raise ApiError(409, f"{what_en.replace(' ', '_')}_conflict",
                       f"{what_en} {known['_id']} was already recorded with different content.",
                       f"{what_zh} {known['_id']} 已登记，且内容与本次不同。")

    @router.post("/receipts", status_code=201, response_model=Accepted, responses={200: {}, 409: {}, 422: {}},
                 summary="Record a receipt (案款到账); case_no null for an unidentified deposit (不明款)")
    async def record_receipt(
        body: FundsReceived, request: Request,
        principal: Annotated[Principal, Depends(require(Permission.FUNDS_WRITE))],
    ) -> Any:
        if body.case_no is not None:
            await audit_case_access(request, principal, body.case_no, "write")
            ensure_team_access(principal, await store.team_of(body.case_no), Permission.FUNDS_WRITE, request)
        event = make_event(
            type="funds.received", subject=body.case_no or unmatched_subject(body.receipt_id),
            time=body.received_at, data=body, source=SOURCE, id=derived_id("funds.received", body.receipt_id))
        known = await store.receipt(body.receipt_id)
        if known is not None:
            return repeat_or_conflict(event, known, "receipt", "收款编号")
        return await submit(event)

    @router.post("/payouts", status_code=201, response_model=Accepted, responses={200: {}, 409: {}, 422: {}},
                 summary="Record a payout (案款发放) to a payee")
    async def record_payout(
        body: FundsDisbursed, request: Request,
        principal: Annotated[Principal, Depends(require(Permission.FUNDS_WRITE))],
    ) -> Any:
        await audit_case_access(request, principal, body.case_no, "write")
        ensure_team_access(principal, await store.team_of(body.case_no), Permission.FUNDS_WRITE, request)
        event = make_event(type="funds.disbursed", subject=body.case_no, time=body.disbursed_at, data=body,
                           source=SOURCE, id=derived_id("funds.disbursed", body.payout_id))
        known = await store.payout(body.payout_id)
        if known is not None:
            return repeat_or_conflict(event, known, "payout", "发放编号")
        return await submit(event)

    @router.post("/matches", status_code=201, response_model=Accepted, responses={200: {}, 404: {}, 409: {}, 422: {}},
                 summary="Match an unidentified deposit to a case (不明款认领)")
    async def record_match(
        body: FundsMatched, request: Request,
        principal: Annotated[Principal, Depends(require(Permission.FUNDS_WRITE))],
    ) -> Any:
        await audit_case_access(request, principal, body.case_no, "write")
        ensure_team_access(principal, await store.team_of(body.case_no), Permission.FUNDS_WRITE, request)
        event = make_event(type="funds.matched", subject=unmatched_subject(body.receipt_id), time=body.matched_at,
                           data=body, source=SOURCE, id=derived_id("funds.matched", body.receipt_id))
        receipt = await store.receipt(body.receipt_id)
        received_at = None
        if receipt is None:
            # Recorded here a moment ago and not consumed yet?
            pending = await store.submission(derived_id("funds.received", body.receipt_id))
            if pending is None or pending["data"].get("case_no") is not None:
                raise ApiError(404, "receipt_not_found", f"No unidentified deposit {body.receipt_id} is recorded.",
                               f"未找到收款编号为 {body.receipt_id} 的不明款。")
            received_at = datetime.fromisoformat(pending["data"]["received_at"])
        else:
            if receipt["case_no"] is not None:
                raise ApiError(409, "receipt_identified",
                               f"Receipt {body.receipt_id} was received for case {receipt['case_no']}; "
                               "only an unidentified deposit can be matched.",
                               f"收款 {body.receipt_id} 到账时已指明案号 {receipt['case_no']}，不是不明款。")
            matched = receipt.get("matched")
            if matched is not None:
                if matched["fingerprint"] == fingerprint(body):
                    return answer(Submitted(matched["event_id"], "repeat"), event)
                raise ApiError(409, "receipt_already_matched",
                               f"Receipt {body.receipt_id} was already matched to case {matched['case_no']}.",
                               f"不明款 {body.receipt_id} 已认领至 {matched['case_no']}。")
            received_at = receipt["received_at"]
        if body.matched_at < received_at:
            raise _field_error("body.matched_at", "matched_before_received",
                               f"matched_at is before the deposit was received ({court_iso(received_at)}).",
                               f"认领时间早于到账时间（{local_text(received_at)}）。")
        return await submit(event)

    @router.post("/delays", status_code=201, response_model=Accepted, responses={200: {}, 409: {}, 422: {}},
                 summary="Approve a payout delay (延缓发放) for a case; bureau chief only")
    async def approve_delay(
        body: FundsDelayApproved, request: Request,
        principal: Annotated[Principal, Depends(require(Permission.FUNDS_APPROVE))],
    ) -> Any:
        await audit_case_access(request, principal, body.case_no, "write")
        ensure_team_access(principal, await store.team_of(body.case_no), Permission.FUNDS_APPROVE, request)
        now = datetime.now(UTC).astimezone(COURT_TZ)
        if body.until < court_date(now):
            raise _field_error("body.until", "until_in_the_past",
                               f"until {body.until.isoformat()} is before today ({court_date(now).isoformat()}).",
                               f"延缓至 {body.until.isoformat()} 早于今日（{court_date(now).isoformat()}）。")
        fp = fingerprint(body)
        event = make_event(type="funds.delay_approved", subject=body.case_no, time=now, data=body, source=SOURCE,
                           id=derived_id("funds.delay_approved", body.case_no, fp[:16]))
        return await submit(event)

    @router.get("/cases/{case_no}/ledger",
                summary="A case's account (一案一账户): entries, balance, pending receipts and their payout due")
    async def ledger(
        case_no: Annotated[str, Path(max_length=64)], request: Request,
        principal: Annotated[Principal, Depends(require(Permission.FUNDS_READ))],
    ) -> Any:
        normalised = _normalised(case_no)
        doc = await store.ledger(normalised)
        teams = (doc or {}).get("teams") or []
        team = teams[-1][2] if teams else None
        await audit_case_access(request, principal, normalised, "read")
        ensure_team_access(principal, team, Permission.FUNDS_READ, request)
        if doc is None:
            raise ApiError(404, "case_not_found", f"funds has read nothing about case {normalised}.",
                           f"案款监管尚未收到案号为 {normalised} 的案件或案款事件。")
        view = rules.view(doc)
        deadlines = {d["subject"]: d for d in await book.case_deadlines(normalised)
                     if d["rule"] == rules.disbursement.code}
        entries: list[dict[str, Any]] = [
            {"kind": "receipt", "id": r.receipt_id, "amount": format_money(r.amount), "at": _iso(r.credited_at),
             "received_at": _iso(r.received_at), "payer_name": r.payer_name, "via": r.via,
             "cumulative_received": format_money(r.cumulative)}
            for r in view.receipts
        ] + [
            {"kind": "payout", "id": p.payout_id, "amount": format_money(p.amount), "at": _iso(p.disbursed_at),
             "payee_name": p.payee_name, "payee_id_no": p.payee_id_no, "approved_by": p.approved_by,
             "payee_is_party": p.payee_is_party, "balance_after": signed_money(p.balance_after)}
            for p in view.payouts
        ]
        entries.sort(key=lambda e: (e["at"], 0 if e["kind"] == "receipt" else 1, e["id"]))
        pending = []
        for r in view.pending:
            deadline = deadlines.get(item_subject(normalised, r.receipt_id)) or {}
            pending.append({
                "receipt_id": r.receipt_id, "amount": format_money(r.amount), "unpaid": format_money(r.uncovered),
                "received_at": _iso(r.received_at), "payout_due_at": _iso(r.due_at), "warn_at": _iso(r.warn_at),
                "suspended_until": r.suspended_until.isoformat() if r.suspended_until else None,
                "state": deadline.get("state", "open"),
            })
        alerts, _total = await book.find_alerts(case_no=normalised, state="open", limit=500)
        closed = doc.get("closed")
        body = {
            "case_no": normalised, "team": team, "parties_known": doc.get("filed") is not None,
            "closed": {"mode": closed["mode"], "closed_on": closed["closed_on"], "at": _iso(closed["at"])}
            if closed else None,
            "received": format_money(view.received), "disbursed": format_money(view.disbursed),
            "balance": signed_money(view.balance),
            "entries": entries, "pending": pending,
            "delays": [{"until": d["until"], "reason": d["reason"], "approved_by": d["approved_by"],
                        "approved_at": _iso(d["at"])} for d in doc.get("delays") or []],
            "open_anomalies": [alert_view(a) for a in alerts],
            "watermark": _iso(await book.watermark()),
        }
        return present(principal, body)

    @router.get("/unidentified", summary="Unidentified deposits (不明款) not yet matched, oldest first")
    async def unidentified(
        principal: Annotated[Principal, Depends(require(Permission.FUNDS_READ))], request: Request,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> Any:
        # They belong to no case yet, hence to no team: team-scoped callers see none.
        ensure_team_access(principal, None, Permission.FUNDS_READ, request)
        docs, total, claims = await store.unidentified(limit, offset)
        by_key = {d["_id"]: d for d in claims}
        totals = await store.totals()
        items = []
        for doc in docs:
            claim = by_key.get(key_of(rules.claim.code, doc["_id"])) or {}
            items.append({
                "receipt_id": doc["_id"], "amount": doc["amount"], "payer_name": doc["payer_name"],
                "received_at": _iso(doc["received_at"]), "claim_due_at": _iso(claim.get("due_at")),
                "claim_state": claim.get("state"), "overdue": claim.get("state") == "overdue",
            })
        return present(principal, {"total": total, "amount": totals["unidentified_amount"], "limit": limit,
                                   "offset": offset, "watermark": _iso(await book.watermark()), "items": items})

    @router.get("/anomalies", summary="Fund anomalies and deadline alerts (案款异常), newest first, paged")
    async def anomalies(
        principal: Annotated[Principal, Depends(require(Permission.FUNDS_READ))], request: Request,
        state: Annotated[Literal["open", "resolved"] | None, Query()] = "open",
        rule: Annotated[str | None, Query(max_length=100)] = None,
        case_no: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> Any:
        team = principal.team_for(Permission.FUNDS_READ)
        normalised = _normalised(case_no) if case_no else None
        if normalised:
            await audit_case_access(request, principal, normalised, "read")
        docs, total = await book.find_alerts(state=state, rule=rule, team=team, case_no=normalised,
                                             limit=limit, offset=offset)
        items = [{**alert_view(d), "rule_name_zh": names.get(d["rule"])} for d in docs]
        return present(principal, {"total": total, "limit": limit, "offset": offset, "items": items})

    return router
