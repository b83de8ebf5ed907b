"""sentiment's HTTP API: register, approve (审签, bureau head), transfer and resolve items through
the outbox to ecc.sentiment.events; the open items by severity with the time left; alerts.

A POST is judged on what the service has applied plus the submissions it has not applied yet:
202 accepted (applied when the service reads it back), 200 identical repeat, 404 unknown item,
409 a step the lifecycle does not allow (or an id reused with other content), 422 field-level.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.sentiment import rules
from services.sentiment.metrics import SUBMISSIONS
from services.sentiment.policy import SentimentPolicy
from services.sentiment.store import SentimentStore, Submitted
from shared.alerts import court_iso
from shared.calendar import CourtCalendar
from shared.contract.casenumber import CaseNumberError, parse_case_no
from shared.contract.envelope import COURT_TZ, Event, make_event
from shared.contract.events import EVENT_DATA_MODELS
from shared.contract.types import Actor, EventTime, Identifier, Note
from shared.deadline_book import DeadlineBook
from shared.http.errors import ApiError, validation_body, validation_error
from shared.security import Permission, Principal, audit_case_access, ensure_team_access, present, require

SOURCE = "ecc/sentiment"
RegisteredData = EVENT_DATA_MODELS["sentiment.registered"]
ItemId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^\S+$")]
ClientId = Field(default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:\-]+$")


class ApproveRequest(BaseModel):
    """Body of POST /sentiment/items/{item_id}/approve; the approver is the caller (bureau head)."""

    model_config = ConfigDict(extra="forbid")

    at: EventTime | None = None
    note: Note | None = None
    id: str | None = ClientId


class TransferRequest(BaseModel):
    """Body of POST /sentiment/items/{item_id}/transfer; to_team defaults to the case's team (triage)."""

    model_config = ConfigDict(extra="forbid")

    at: EventTime | None = None
    to_team: Identifier | None = None
    by: Actor | None = None
    note: Note | None = None
    id: str | None = ClientId


class ResolveRequest(BaseModel):
    """Body of POST /sentiment/items/{item_id}/resolve."""

    model_config = ConfigDict(extra="forbid")

    at: EventTime | None = None
    by: Actor | None = None
    note: Note | None = None
    id: str | None = ClientId


class Receipt(BaseModel):
    event_id: str
    type: str
    item_id: str
    state: str | None
    level: str | None = None
    case_nos: list[str] | None = None
    to_team: str | None = None


def _iso(moment: datetime | None) -> str | None:
    return court_iso(moment) if moment is not None else None


def _normalised(case_no: str) -> str:
    try:
        return parse_case_no(case_no).normalized
    except CaseNumberError as exc:
        raise ApiError(422, **validation_body([{"field": "query.case_no", "type": "case_no_format",
                                                "message": exc.reason, "message_zh": exc.reason_zh}])) from exc


def fingerprint(event: Event, time_given: bool) -> str:
    data = event.data.model_dump(mode="json")
    if not time_given:
        data.pop("at", None)
    canonical = json.dumps({"type": event.type, "subject": event.subject, "data": data}, ensure_ascii=False,
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def build_router(store: SentimentStore, book: DeadlineBook, policy: SentimentPolicy,
                 calendar: CourtCalendar) -> APIRouter:
    router = APIRouter(tags=["sentiment"])

    async def teams_for(state: dict[str, Any] | None, events: list[Event]) -> rules.CaseTeams:
        case_nos = {(state or {}).get("case_no")}
        for e in events:
            if e.type == "sentiment.registered":
                case_nos.update(rules.linked_cases(e.data.title, e.data.text, e.data.case_no)[:1])
        docs = {}
        for case_no in filter(None, case_nos):
            doc = await store.case_team(case_no)
            if doc is not None:
                docs[case_no] = doc
        return rules.CaseTeams(docs)

    def fold(state: dict[str, Any] | None, pending: list[Event], teams: rules.CaseTeams) -> dict[str, Any] | None:
        for earlier in pending:  # submitted, not applied yet: judged in the order they were stored
            step = rules.decide(policy, calendar, state, earlier, teams)
            if step.refusal is None:
                state = step.state
        return state

    async def judge(state: dict[str, Any] | None, pending: list[Event],
                    event: Event) -> tuple[rules.Refusal | None, str | None]:
        teams = await teams_for(state, [*pending, event])
        step = rules.decide(policy, calendar, fold(state, pending, teams), event, teams)
        return step.refusal, (step.state or {}).get("state")

    async def submit(event: Event, time_given: bool, **extra: Any) -> JSONResponse:
        result: Submitted = await store.submit(event, fingerprint(event, time_given), judge)
        SUBMISSIONS.labels(event.type, result.outcome).inc()
        if result.outcome == "conflict":
            raise ApiError(409, "event_conflict", f"Event id {event.id} was already used for a different event.",
                           f"事件编号 {event.id} 已用于另一事件。")
        if result.outcome == "refused":
            refusal = result.refusal
            raise ApiError(404 if refusal.code == "unknown_id" else 409, refusal.code, refusal.message,
                           refusal.message_zh)
        receipt = Receipt(event_id=result.event_id, type=event.type, item_id=event.subject, state=result.state,
                          **extra)
        return JSONResponse(receipt.model_dump(exclude_none=True),
                            status_code=202 if result.outcome == "created" else 200)

    def step_event(event_type: str, item_id: str, at: datetime | None, fields: dict[str, Any],
                   client_id: str | None) -> Event:
        moment = at or datetime.now(UTC).astimezone(COURT_TZ)
        raw = {"item_id": item_id, "at": moment, **{k: v for k, v in fields.items() if v is not None}}
        try:
            data = EVENT_DATA_MODELS[event_type].model_validate(raw)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            for err in errors:
                loc = tuple(err.get("loc", ()))
                err["loc"] = ("path", *loc) if loc[:1] == ("item_id",) else ("body", *loc)
            raise validation_error(errors) from exc
        return make_event(type=event_type, subject=data.item_id, time=moment, data=data, source=SOURCE,
                          id=client_id or f"sentiment:{uuid.uuid4()}")

    async def audit_item(request: Request, principal: Principal, item_id: str, action: str) -> dict | None:
        doc = await store.item(item_id)
        if doc is not None and doc.get("case_no"):
            await audit_case_access(request, principal, doc["case_no"], action)  # type: ignore[arg-type]
        return doc

    async def audit_write(request: Request, principal: Principal, item_id: str) -> tuple[dict | None, rules.CaseTeams]:
        """The item as it will be once what was submitted is applied (its case is audited), and its case teams."""
        state, pending = await store.pending(item_id)
        teams = await teams_for(state, pending)
        folded = fold(state, pending, teams)
        if folded is not None and folded.get("case_no"):
            await audit_case_access(request, principal, folded["case_no"], "write")
        return folded, teams

    # -- writes ----------------------------------------------------------------------------------

    @router.post("/sentiment/items", status_code=202, response_model=Receipt,
                 summary="舆情登记: register an item; graded and linked to the cases it names",
                 responses={200: {"model": Receipt}, 409: {}, 422: {}})
    async def register(body: RegisteredData, request: Request,  # type: ignore[valid-type]
                       principal: Annotated[Principal, Depends(require(Permission.SENTIMENT_WRITE))]) -> Any:
        cases = rules.linked_cases(body.title, body.text, body.case_no)
        for case_no in cases:
            await audit_case_access(request, principal, case_no, "write")
        level, _matched = rules.grade(policy, body.title, body.text)
        # One registration per item id: a retry is a repeat, other content under the id a conflict.
        event = make_event(type="sentiment.registered", subject=body.item_id,
                           time=datetime.now(UTC).astimezone(COURT_TZ), data=body, source=SOURCE,
                           id=f"sentiment.registered:{body.item_id}")
        return await submit(event, True, level=level, case_nos=cases)

    @router.post("/sentiment/items/{item_id}/approve", status_code=202, response_model=Receipt,
                 summary="审签: the bureau head signs off the item (ends the response deadline)",
                 responses={200: {"model": Receipt}, 404: {}, 409: {}, 422: {}})
    async def approve(item_id: ItemId, body: ApproveRequest, request: Request,
                      principal: Annotated[Principal, Depends(require(Permission.SENTIMENT_APPROVE))]) -> Any:
        await audit_write(request, principal, item_id)
        event = step_event("sentiment.approved", item_id, body.at, {"by": principal.sub, "note": body.note}, body.id)
        return await submit(event, body.at is not None)

    @router.post("/sentiment/items/{item_id}/transfer", status_code=202, response_model=Receipt,
                 summary="移交: transfer an approved item to the case team (default: the team triage assigned)",
                 responses={200: {"model": Receipt}, 404: {}, 409: {}, 422: {}})
    async def transfer(item_id: ItemId, body: TransferRequest, request: Request,
                       principal: Annotated[Principal, Depends(require(Permission.SENTIMENT_WRITE))]) -> Any:
        folded, teams = await audit_write(request, principal, item_id)
        # Default: the linked case's team from triage, written into the event so that it says where it went.
        team = body.to_team or teams.team((folded or {}).get("case_no"))
        event = step_event("sentiment.transferred", item_id, body.at,
                           {"by": body.by or principal.sub, "to_team": team, "note": body.note}, body.id)
        return await submit(event, body.at is not None, to_team=team)

    @router.post("/sentiment/items/{item_id}/resolve", status_code=202, response_model=Receipt,
                 summary="办结: the item is dealt with (resolves its alerts)",
                 responses={200: {"model": Receipt}, 404: {}, 409: {}, 422: {}})
    async def resolve(item_id: ItemId, body: ResolveRequest, request: Request,
                      principal: Annotated[Principal, Depends(require(Permission.SENTIMENT_WRITE))]) -> Any:
        await audit_write(request, principal, item_id)
        event = step_event("sentiment.resolved", item_id, body.at, {"by": body.by or principal.sub, "note": body.note},
                           body.id)
        return await submit(event, body.at is not None)

    # -- reads -----------------------------------------------------------------------------------

    def view(doc: dict[str, Any], now: datetime | None, full: bool = False) -> dict[str, Any]:
        left = rules.time_left(doc, now)
        approved, resolved = doc.get("approved"), doc.get("resolved")
        due = doc["response_due_at"]
        if approved is not None:
            response = "on_time" if approved["at"] <= due else "late"
        elif now is not None and now > due:
            response = "overdue"
        else:
            response = "open"
        out = {
            "item_id": doc["_id"], "level": doc["level"], "level_zh": policy.level(doc["level"]).name_zh,
            "state": doc["state"], "state_zh": rules.STATES.get(doc["state"], doc["state"]),
            "title": doc["title"], "channel": doc["channel"], "url": doc.get("url"),
            "case_no": doc.get("case_no"), "case_nos": doc.get("case_nos", []), "matched": doc.get("matched", []),
            "captured_at": _iso(doc["captured_at"]), "registered_at": _iso(doc.get("registered_at")),
            "response": {"due_at": _iso(due), "state": response, "seconds_left": left,
                         "within": str(policy.response.due[doc["level"]])},
            "approved": {"at": _iso(approved["at"]), "by": approved["by"]} if approved else None,
            "team": doc.get("team"),
            "transfers": [{"at": _iso(t["at"]), "by": t["by"], "to_team": t["to_team"]}
                          for t in doc.get("transfers", [])],
            "resolved": ({"at": _iso(resolved["at"]), "by": resolved["by"], "note": resolved.get("note")}
                         if resolved else None),
        }
        if full:
            out["text"] = doc.get("text")
            out["history"] = [{**h, "at": _iso(h["at"]), "type_zh": rules.EVENT_ZH.get(h["type"], h["type"])}
                              for h in doc.get("history", [])]
        return out

    @router.get("/sentiment/items",
                summary="Items by severity (重大 → 较大 → 一般), then least time left to the response due")
    async def list_items(
        request: Request,
        principal: Annotated[Principal, Depends(require(Permission.SENTIMENT_READ))],
        state: Annotated[Literal["open", "registered", "approved", "transferred", "resolved", "all"], Query()] = "open",
        level: Annotated[Literal["major", "serious", "general"] | None, Query()] = None,
        team: Annotated[str | None, Query(max_length=200)] = None,
        case_no: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> Any:
        scoped = principal.team_for(Permission.SENTIMENT_READ)
        if scoped is not None:  # a case team sees the items transferred to it (seed art. 10)
            if team is not None and team != scoped:
                ensure_team_access(principal, team, Permission.SENTIMENT_READ, request)
            team = scoped
        normalised = _normalised(case_no) if case_no else None
        if normalised:
            await audit_case_access(request, principal, normalised, "read")
        states = {"open": sorted(rules.OPEN_STATES), "all": None}.get(state, [state])
        docs = await store.items(states=states, level=level, team=team, case_no=normalised)
        now = await book.watermark()

        def order(doc: dict[str, Any]) -> tuple:
            left = rules.time_left(doc, now)
            return (rules.LEVEL_RANK[doc["level"]], left is None, left if left is not None else 0.0,
                    doc["captured_at"], doc["_id"])

        docs.sort(key=order)
        counts = {lv: sum(1 for d in docs if d["level"] == lv) for lv in rules.LEVEL_RANK}
        page = docs[offset: offset + limit]
        return present(principal, {"watermark": _iso(now), "total": len(docs), "by_level": counts,
                                   "limit": limit, "offset": offset, "items": [view(d, now) for d in page]})

    @router.get("/sentiment/items/{item_id}", summary="One item: grade, linked cases, response, approval, transfers")
    async def get_item(item_id: ItemId, request: Request,
                       principal: Annotated[Principal, Depends(require(Permission.SENTIMENT_READ))]) -> Any:
        doc = await audit_item(request, principal, item_id, "read")
        ensure_team_access(principal, doc.get("team") if doc else None, Permission.SENTIMENT_READ, request)
        if doc is None:
            raise ApiError(404, "unknown_id", f"No sentiment item {item_id} has been read here.",
                           f"未找到舆情 {item_id}。")
        return present(principal, {**view(doc, await book.watermark(), full=True),
                                   "watermark": _iso(await book.watermark())})

    @router.get("/alerts", summary="Alerts raised by sentiment (预警/告警), newest first, paged")
    async def alerts(
        principal: Annotated[Principal, Depends(require(Permission.ALERTS_READ))],
        request: Request,
        state: Annotated[Literal["open", "resolved"] | None, Query()] = "open",
        rule: Annotated[str | None, Query(max_length=100)] = None,
        team: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> Any:
        scoped = principal.team_for(Permission.ALERTS_READ)
        if scoped is not None:
            if team is not None and team != scoped:
                ensure_team_access(principal, team, Permission.ALERTS_READ, request)
            team = scoped
        docs, total = await book.find_alerts(state=state, rule=rule, team=team, limit=limit, offset=offset)
        items = [{"alert_id": d["alert_id"], "rule": d["rule"], "kind": d["kind"], "severity": d["severity"],
                  "case_no": d.get("case_no"), "team": d.get("team"), "subject": d.get("subject"),
                  "due_at": _iso(d.get("due_at")), "raised_at": _iso(d["raised_at"]), "summary": d["summary"],
                  "state": d["state"], "resolved_at": _iso(d.get("resolved_at")), "reason": d.get("reason")}
                 for d in docs]
        return present(principal, {"total": total, "limit": limit, "offset": offset, "items": items})

    return router
