"""The service-window HTTP API (contract §10). Entry points only translate and hand on."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.intake.domain import Outcome, Submission, event_submission, filing_submission
from services.intake.store import Accepted, GroupCommit, IntakeStore
from shared.contract.casenumber import CaseNumberError, parse_case_no
from shared.contract.events import EVENT_DATA_MODELS
from shared.contract.types import EventTime
from shared.http.errors import ApiError, validation_body, validation_error
from shared.logging import get_logger
from services.intake.metrics import SUBMISSIONS
from shared.security import Permission, Principal, audit_case_access, ensure_team_access, present, require
from shared.topics import CASE_EVENTS

log = get_logger()

CaseFiledData = EVENT_DATA_MODELS["case.filed"]
# Every case-event type but the filing itself, which has its own endpoint.
LaterCaseEventType = Literal[tuple(sorted(CASE_EVENTS.event_types - {"case.filed"}))]  # type: ignore[valid-type]


class CaseEventRequest(BaseModel):
    """Body of POST /cases/{case_no}/events; `data` is validated against `type`'s model."""

    model_config = ConfigDict(extra="forbid")

    type: LaterCaseEventType  # type: ignore[valid-type]
    time: EventTime | None = None
    data: dict[str, Any]
    id: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:\-]+$")


class Receipt(BaseModel):
    case_no: str
    event_id: str


class EventReceipt(Receipt):
    type: str


def _normalised(case_no: str) -> str:
    try:
        return parse_case_no(case_no).normalized
    except CaseNumberError as exc:
        raise ApiError(422, **validation_body([{"field": "path.case_no", "type": "case_no_format",
                                                "message": exc.reason, "message_zh": exc.reason_zh}])) from exc


def _conflict(accepted: Accepted) -> ApiError:
    if accepted.submission.is_filing:
        return ApiError(409, "case_conflict",
                        f"Case {accepted.submission.case_no} was already filed with different content.",
                        f"案号 {accepted.submission.case_no} 已立案，且内容与本次不同。")
    return ApiError(409, "event_conflict",
                    f"Event id {accepted.submission.event.id} was already used for a different event.",
                    f"事件编号 {accepted.submission.event.id} 已用于另一事件。")


def build_router(store: IntakeStore) -> APIRouter:
    router = APIRouter(tags=["intake"])
    commits = GroupCommit(store)

    async def accept_one(submission: Submission) -> Accepted:
        accepted = await commits.submit(submission)
        SUBMISSIONS.labels(submission.event.type, accepted.outcome.value).inc()
        log.info("submission", case_no=submission.case_no, event_id=accepted.event_id,
                 type=submission.event.type, outcome=accepted.outcome.value)
        return accepted

    @router.post(
        "/cases", status_code=201, response_model=Receipt,
        summary="File a case (立案): 201 created, 200 identical repeat, 409 different filing, 422 invalid",
        responses={200: {"model": Receipt}, 409: {}, 422: {}},
    )
    async def file_case(
        body: CaseFiledData,  # type: ignore[valid-type]
        request: Request,
        principal: Annotated[Principal, Depends(require(Permission.CASE_WRITE))],
    ) -> Any:
        accepted = await accept_one(filing_submission(body, datetime.now(UTC)))
        if accepted.outcome is Outcome.CONFLICT:
            raise _conflict(accepted)
        await audit_case_access(request, principal, accepted.submission.case_no, "write")
        receipt = Receipt(case_no=accepted.submission.case_no, event_id=accepted.event_id)
        status = 201 if accepted.outcome is Outcome.CREATED else 200
        return JSONResponse(receipt.model_dump(), status_code=status)

    @router.post(
        "/cases/{case_no}/events", status_code=202, response_model=EventReceipt,
        summary="Record a later case event (node, inquiry result, clue, extension, closure...)",
        responses={404: {}, 409: {}, 422: {}},
    )
    async def add_event(
        case_no: Annotated[str, Path(max_length=64)],
        body: CaseEventRequest,
        request: Request,
        principal: Annotated[Principal, Depends(require(Permission.CASE_EVENTS_WRITE))],
    ) -> Any:
        normalised = _normalised(case_no)
        ensure_team_access(principal, await store.team_of(normalised), Permission.CASE_EVENTS_WRITE, request)
        try:
            data = EVENT_DATA_MODELS[body.type].model_validate(body.data)
        except ValidationError as exc:
            raise validation_error(exc.errors(include_url=False), prefix=("body", "data")) from exc
        submission = event_submission(normalised, body.type, data, body.time, body.id, datetime.now(UTC))
        accepted = await accept_one(submission)
        if accepted.outcome is Outcome.UNKNOWN_CASE:
            raise ApiError(404, "case_not_found", f"No case {normalised} has been filed here.",
                           f"未找到案号为 {normalised} 的立案记录。")
        if accepted.outcome is Outcome.CONFLICT:
            raise _conflict(accepted)
        await audit_case_access(request, principal, normalised, "write")
        return EventReceipt(case_no=normalised, event_id=accepted.event_id, type=body.type)

    @router.get("/cases/{case_no}", summary="What intake holds for a case: the filing and its later events")
    async def get_case(
        case_no: Annotated[str, Path(max_length=64)],
        request: Request,
        principal: Annotated[Principal, Depends(require(Permission.CASE_READ))],
    ) -> Any:
        normalised = _normalised(case_no)
        ensure_team_access(principal, await store.team_of(normalised), Permission.CASE_READ, request)
        found = await store.case(normalised)
        if found is None:
            raise ApiError(404, "case_not_found", f"No case {normalised} has been filed here.",
                           f"未找到案号为 {normalised} 的立案记录。")
        await audit_case_access(request, principal, normalised, "read")
        return present(principal, found)

    return router
