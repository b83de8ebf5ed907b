"""entrust's HTTP API: outgoing and incoming entrusted matters, supervision items and their
reply chain, alerts; POST endpoints that write events through the outbox to ecc.entrust.events.

A POST is judged on what the service has applied plus the submissions it has not applied
yet (store.submit): 202 accepted (the service applies it when it reads it back from the
topic), 200 for an identical repeat, 404 for an unknown id, 409 for a step the lifecycle
does not allow or an id reused with other content, 422 with field-level messages.
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

from services.entrust import rules
from services.entrust.metrics import SUBMISSIONS
from services.entrust.policy import EntrustPolicy
from services.entrust.store import EntrustStore, Submitted
from shared.alerts import court_iso
from shared.calendar import CourtCalendar
from shared.contract.casenumber import CaseNumberError, parse_case_no
from shared.contract.envelope import COURT_TZ, Event, make_event
from shared.contract.events import EVENT_DATA_MODELS
from shared.contract.events_vocab import SupervisionLevel
from shared.contract.types import Actor, EventTime, Note
from shared.deadline_book import DeadlineBook, key_of
from shared.http.errors import ApiError, validation_body, validation_error
from shared.security import Permission, Principal, audit_case_access, ensure_team_access, present, require

SOURCE = "ecc/entrust"
EntrustSentData = EVENT_DATA_MODELS["entrust.sent"]
EntrustReceivedData = EVENT_DATA_MODELS["entrust.received"]
SupervisionIssuedData = EVENT_DATA_MODELS["supervision.issued"]
StepType = Literal["entrust.supplement_requested", "entrust.returned", "entrust.replied", "entrust.completed"]
IdText = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^\S+$")]
ClientId = Field(default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:\-]+$")


class EntrustStepRequest(BaseModel):
    """Body of POST /entrusts/{entrust_id}/events: a step on an entrusted matter."""

    model_config = ConfigDict(extra="forbid")

    type: StepType
    at: EventTime | None = None  # default: when the request is received
    note: Note | None = None
    id: str | None = ClientId   # give one to make a retried POST a repeat


class SupervisionReplyRequest(BaseModel):
    """Body of POST /supervision/{item_id}/reply."""

    model_config = ConfigDict(extra="forbid")

    replied_at: EventTime | None = None
    by: Actor | None = None  # default: the caller
    id: str | None = ClientId


class Receipt(BaseModel):
    event_id: str
    type: str
    subject: str
    state: str | None


def _iso(moment: datetime | None) -> str | None:
    return court_iso(moment) if moment is not None else None


def _normalised(case_no: str) -> str:
    try:
        return parse_case_no(case_no).normalized
    except CaseNumberError as exc:
        raise ApiError(422, **validation_body([{"field": "query.case_no", "type": "case_no_format",
                                                "message": exc.reason, "message_zh": exc.reason_zh}])) from exc


def fingerprint(event: Event, time_given: bool) -> str:
    """Content of a submission; without a caller-given time the time is left out (a retry is a repeat)."""
    data = event.data.model_dump(mode="json")
    if not time_given:
        for name in ("at", "replied_at"):
            data.pop(name, None)
    canonical = json.dumps({"type": event.type, "subject": event.subject, "data": data}, ensure_ascii=False,
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _validated(event_type: str, data: dict[str, Any], path_fields: tuple[str, ...]) -> Any:
    try:
        return EVENT_DATA_MODELS[event_type].model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        for err in errors:
            loc = tuple(err.get("loc", ()))
            err["loc"] = ("path", *loc) if loc and loc[0] in path_fields else ("body", *loc)
        raise validation_error(errors) from exc


def deadline_view(doc: dict[str, Any] | None, rule_name: str) -> dict[str, Any] | None:
    if doc is None:
        return None
    return {"rule": doc["rule"], "name_zh": doc.get("name_zh") or rule_name, "state": doc["state"],
            "opened_at": _iso(doc.get("started_at")), "due_at": _iso(doc.get("due_at")),
            "warn_at": _iso(doc.get("warn_at")), "cycle": doc.get("cycle", 1),
            "resolution": ({**doc["resolution"], "at": _iso(doc["resolution"].get("at"))}
                           if doc.get("resolution") else None)}


def _history(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**h, "at": _iso(h["at"]), "type_zh": rules.EVENT_ZH.get(h["type"], h["type"])}
            for h in state.get("history", [])]


def build_router(store: EntrustStore, book: DeadlineBook, policy: EntrustPolicy,
                 calendar: CourtCalendar) -> APIRouter:
    router = APIRouter(tags=["entrust"])
    names = {r.code: r.name_zh for r in policy.rules}

    def fold(state: dict[str, Any] | None, pending: list[Event]) -> dict[str, Any] | None:
        for earlier in pending:  # submitted, not applied yet: judged in the order they were stored
            step = rules.decide(policy, calendar, state, earlier)
            if step.refusal is None:
                state = step.state
        return state

    def judge(state: dict[str, Any] | None, pending: list[Event],
              event: Event) -> tuple[rules.Refusal | None, str | None]:
        step = rules.decide(policy, calendar, fold(state, pending), event)
        return step.refusal, (step.state or {}).get("state")

    async def audit_write(request: Request, principal: Principal, entity: str, the_id: str) -> None:
        """Audit the case of the id as it will be once what was submitted is applied."""
        folded = fold(*await store.pending(entity, the_id))
        if folded is not None and folded.get("case_no"):
            await audit_case_access(request, principal, folded["case_no"], "write")

    async def submit(entity: str, event: Event, time_given: bool) -> JSONResponse:
        result: Submitted = await store.submit(entity, event, fingerprint(event, time_given), judge)
        SUBMISSIONS.labels(event.type, result.outcome).inc()
        if result.outcome == "conflict":
            raise ApiError(409, "event_conflict",
                           f"Event id {event.id} was already used for a different {entity} event.",
                           f"事件编号 {event.id} 已用于另一事件。")
        if result.outcome == "refused":
            refusal = result.refusal
            if refusal.code == "due_before_opening":  # a field of this request, not the item's state
                raise ApiError(422, **validation_body([{"field": "body.due_on", "type": refusal.code,
                                                        "message": refusal.message,
                                                        "message_zh": refusal.message_zh}]))
            status = 404 if refusal.code == "unknown_id" else 409
            raise ApiError(status, refusal.code, refusal.message, refusal.message_zh)
        receipt = Receipt(event_id=result.event_id, type=event.type, subject=event.subject, state=result.state)
        return JSONResponse(receipt.model_dump(), status_code=202 if result.outcome == "created" else 200)

    def opening(event_type: str, subject: str, at: datetime, data: Any) -> Event:
        # One opening per id: a deterministic id makes a retried POST a repeat and other content a conflict.
        return make_event(type=event_type, subject=subject, time=at, data=data, source=SOURCE,
                          id=f"{event_type}:{subject}")

    # -- entrusted matters 事项委托 ------------------------------------------------------------

    @router.post("/entrusts/outgoing", status_code=202, response_model=Receipt,
                 summary="委托发出: we entrust a matter to another court (entrust.sent)",
                 responses={200: {"model": Receipt}, 409: {}, 422: {}})
    async def send(body: EntrustSentData, request: Request,  # type: ignore[valid-type]
                   principal: Annotated[Principal, Depends(require(Permission.ENTRUST_WRITE))]) -> Any:
        await audit_case_access(request, principal, body.case_no, "write")
        return await submit("entrust", opening("entrust.sent", body.entrust_id, body.at, body), True)

    @router.post("/entrusts/incoming", status_code=202, response_model=Receipt,
                 summary="收到委托: another court entrusts a matter to us (entrust.received)",
                 responses={200: {"model": Receipt}, 409: {}, 422: {}})
    async def receive(body: EntrustReceivedData, request: Request,  # type: ignore[valid-type]
                      principal: Annotated[Principal, Depends(require(Permission.ENTRUST_WRITE))]) -> Any:
        await audit_case_access(request, principal, body.case_no, "write")
        return await submit("entrust", opening("entrust.received", body.entrust_id, body.at, body), True)

    @router.post("/entrusts/{entrust_id}/events", status_code=202, response_model=Receipt,
                 summary="A step on an entrusted matter: supplement requested, returned, replied, completed",
                 responses={200: {"model": Receipt}, 404: {}, 409: {}, 422: {}})
    async def step(entrust_id: IdText, body: EntrustStepRequest, request: Request,
                   principal: Annotated[Principal, Depends(require(Permission.ENTRUST_WRITE))]) -> Any:
        at = body.at or datetime.now(UTC).astimezone(COURT_TZ)
        raw = {"entrust_id": entrust_id, "at": at}
        if body.note is not None:
            raw["note"] = body.note
        data = _validated(body.type, raw, ("entrust_id",))
        event = make_event(type=body.type, subject=data.entrust_id, time=at, data=data, source=SOURCE,
                           id=body.id or f"entrust:{uuid.uuid4()}")
        await audit_write(request, principal, "entrust", data.entrust_id)
        return await submit("entrust", event, body.at is not None)

    @router.get("/entrusts", summary="Entrusted matters, outgoing (委托) or incoming (受托), with state and due dates")
    async def list_entrusts(
        request: Request,
        principal: Annotated[Principal, Depends(require(Permission.ENTRUST_READ))],
        direction: Annotated[Literal["outgoing", "incoming"] | None, Query()] = None,
        state: Annotated[Literal[tuple(rules.ENTRUST_STATES)] | None, Query()] = None,  # type: ignore[valid-type]
        case_no: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> Any:
        normalised = _normalised(case_no) if case_no else None
        if normalised:
            await audit_case_access(request, principal, normalised, "read")
        if principal.team_for(Permission.ENTRUST_READ) is not None:
            # Entrusted matters are the command center's work (art. 7): no team holds them.
            return present(principal, {"total": 0, "limit": limit, "offset": offset, "items": [],
                                       "watermark": _iso(await book.watermark())})
        docs, total = await store.entrusts(direction=direction, state=state, case_no=normalised,
                                           limit=limit, offset=offset)
        views = await entrust_views(docs)
        return present(principal, {"total": total, "limit": limit, "offset": offset, "items": views,
                                   "watermark": _iso(await book.watermark())})

    @router.get("/entrusts/{entrust_id}", summary="One entrusted matter: state, deadlines and history")
    async def get_entrust(entrust_id: IdText, request: Request,
                          principal: Annotated[Principal, Depends(require(Permission.ENTRUST_READ))]) -> Any:
        doc = await store.entrust(entrust_id)
        if doc is not None:
            await audit_case_access(request, principal, doc["case_no"], "read")
        ensure_team_access(principal, None, Permission.ENTRUST_READ, request)
        if doc is None:
            raise ApiError(404, "unknown_id", f"No entrusted matter {entrust_id} has been read here.",
                           f"未找到委托事项 {entrust_id}。")
        (view,) = await entrust_views([doc])
        return present(principal, {**view, "history": _history(doc), "watermark": _iso(await book.watermark())})

    async def entrust_views(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        codes = policy.codes_for("entrust")
        deadlines = await store.deadlines_of([key_of(c, d["_id"]) for d in docs for c in codes])
        out = []
        for doc in docs:
            own = [deadline_view(deadlines.get(key_of(c, doc["_id"])), names[c]) for c in codes]
            own = [d for d in own if d is not None]
            running = [d for d in own if d["state"] not in ("resolved", "cancelled")]
            out.append({
                "entrust_id": doc["_id"], "direction": doc["direction"],
                "direction_zh": "委托" if doc["direction"] == "outgoing" else "受托",
                "case_no": doc["case_no"], "counterpart_court": doc["counterpart_court"], "matter": doc["matter"],
                "state": doc["state"], "state_zh": rules.ENTRUST_STATES.get(doc["state"], doc["state"]),
                "opened_at": _iso(doc["opened_at"]), "due_on": doc.get("due_on"),
                "closed_at": _iso(doc.get("closed_at")), "replies": doc.get("replies", 0),
                "due_at": min((d["due_at"] for d in running if d["due_at"]), default=None),
                "overdue": any(d["state"] == "overdue" for d in running),
                "deadlines": own,
            })
        return out

    # -- supervision items 督办 -----------------------------------------------------------------

    @router.post("/supervision", status_code=202, response_model=Receipt,
                 summary="督办下发: a supervision item issued (received from a higher court or our own)",
                 responses={200: {"model": Receipt}, 409: {}, 422: {}})
    async def issue(body: SupervisionIssuedData, request: Request,  # type: ignore[valid-type]
                    principal: Annotated[Principal, Depends(require(Permission.ENTRUST_WRITE))]) -> Any:
        if body.case_no:
            await audit_case_access(request, principal, body.case_no, "write")
        return await submit("supervision", opening("supervision.issued", body.item_id, body.issued_at, body), True)

    @router.post("/supervision/{item_id}/reply", status_code=202, response_model=Receipt,
                 summary="督办回复: the team's reply to a supervision item",
                 responses={200: {"model": Receipt}, 404: {}, 409: {}, 422: {}})
    async def reply(item_id: IdText, body: SupervisionReplyRequest, request: Request,
                    principal: Annotated[Principal, Depends(require(Permission.ENTRUST_WRITE))]) -> Any:
        at = body.replied_at or datetime.now(UTC).astimezone(COURT_TZ)
        data = _validated("supervision.replied", {"item_id": item_id, "replied_at": at, "by": body.by or principal.sub},
                          ("item_id",))
        event = make_event(type="supervision.replied", subject=data.item_id, time=at, data=data, source=SOURCE,
                           id=body.id or f"supervision:{uuid.uuid4()}")
        await audit_write(request, principal, "supervision", data.item_id)
        return await submit("supervision", event, body.replied_at is not None)

    @router.get("/supervision", summary="Supervision items (督办事项) with state and due dates")
    async def list_items(
        request: Request,
        principal: Annotated[Principal, Depends(require(Permission.ENTRUST_READ))],
        state: Annotated[Literal["issued", "replied"] | None, Query()] = None,
        level: Annotated[SupervisionLevel | None, Query()] = None,
        team: Annotated[str | None, Query(max_length=200)] = None,
        case_no: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> Any:
        scoped = principal.team_for(Permission.ENTRUST_READ)
        if scoped is not None:
            if team is not None and team != scoped:
                ensure_team_access(principal, team, Permission.ENTRUST_READ, request)
            team = scoped
        normalised = _normalised(case_no) if case_no else None
        if normalised:
            await audit_case_access(request, principal, normalised, "read")
        docs, total = await store.items(state=state, level=level, team=team, case_no=normalised,
                                        limit=limit, offset=offset)
        return present(principal, {"total": total, "limit": limit, "offset": offset,
                                   "items": await item_views(docs), "watermark": _iso(await book.watermark())})

    @router.get("/supervision/{item_id}",
                summary="One supervision item with its reply chain (逐级回复: own → intermediate → high → supreme)")
    async def get_item(item_id: IdText, request: Request,
                       principal: Annotated[Principal, Depends(require(Permission.ENTRUST_READ))]) -> Any:
        doc = await store.item(item_id)
        if doc is not None and doc.get("case_no"):
            await audit_case_access(request, principal, doc["case_no"], "read")
        ensure_team_access(principal, doc["to_team"] if doc else None, Permission.ENTRUST_READ, request)
        if doc is None:
            raise ApiError(404, "unknown_id", f"No supervision item {item_id} has been read here.",
                           f"未找到督办事项 {item_id}。")
        related = await store.items_of_case(doc["case_no"]) if doc.get("case_no") else [doc]
        related.sort(key=lambda d: (rules.LEVELS.index(d["level"]), d["issued_at"], d["_id"]))
        chain_views = await item_views(related)
        (view,) = [v for v in chain_views if v["item_id"] == item_id]
        chain = {
            "reply_path": [{"level": lv, "name_zh": rules.LEVEL_ZH[lv]} for lv in rules.reply_path(doc["level"])],
            "items": [{k: v[k] for k in ("item_id", "level", "level_zh", "to_team", "state", "state_zh",
                                         "issued_at", "due_at", "replied", "overdue")} for v in chain_views],
            # Level by level: each level's items are replied before the level above can be answered.
            "complete": all(v["state"] == "replied" for v in chain_views),
            "waiting_at": next((v["level"] for v in reversed(chain_views) if v["state"] != "replied"), None),
        }
        return present(principal, {**view, "history": _history(doc), "chain": chain,
                                   "watermark": _iso(await book.watermark())})

    async def item_views(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        deadlines = await store.deadlines_of([key_of(c, d["_id"]) for d in docs for c in policy.codes_for("supervision")])
        out = []
        for doc in docs:
            own = [deadline_view(deadlines.get(key_of(c, doc["_id"])), names[c]) for c in policy.codes_for("supervision")]
            own = [d for d in own if d is not None]
            replied = doc.get("replied")
            out.append({
                "item_id": doc["_id"], "case_no": doc.get("case_no"), "level": doc["level"],
                "level_zh": rules.LEVEL_ZH[doc["level"]], "to_team": doc["to_team"],
                "state": doc["state"], "state_zh": rules.SUPERVISION_STATES.get(doc["state"], doc["state"]),
                "issued_at": _iso(doc["issued_at"]), "due_on": doc["due_on"],
                "due_at": next((d["due_at"] for d in own if d["due_at"]), None),
                "replied": {"at": _iso(replied["at"]), "by": replied["by"]} if replied else None,
                "overdue": any(d["state"] == "overdue" for d in own),
                "deadlines": own,
            })
        return out

    # -- alerts --------------------------------------------------------------------------------

    @router.get("/alerts", summary="Alerts raised by entrust (预警/告警), newest first, paged")
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
