"""Pure decisions of the service window (立案窗口): what a submission means, no I/O.

A filing is identified by its case number; a repeat of the identical filing
is answered as before, a different filing under the same number is a
conflict. A later case event is identified by its event id the same way.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, time
from enum import Enum
from typing import Any

from shared.contract.envelope import COURT_TZ, Event, make_event
from shared.ids import derived_id

SOURCE = "ecc/intake"
FILING_TYPE = "case.filed"


class Outcome(str, Enum):
    CREATED = "created"
    REPEAT = "repeat"
    CONFLICT = "conflict"
    UNKNOWN_CASE = "unknown_case"


@dataclass(frozen=True)
class Submission:
    event: Event
    fingerprint: str

    @property
    def is_filing(self) -> bool:
        return self.event.type == FILING_TYPE

    @property
    def case_no(self) -> str:
        return self.event.subject


def fingerprint(case_no: str, event_type: str, data: dict[str, Any]) -> str:
    """Content hash of a submission (case, type, normalised data), to tell a repeat from a conflict."""
    canonical = json.dumps({"case_no": case_no, "type": event_type, "data": data}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def filing_time(filed_on, received_at: datetime) -> datetime:
    """Event time of a filing: when it was received if that is the filing day, else the start of filed_on."""
    received_local = received_at.astimezone(COURT_TZ)
    if received_local.date() == filed_on:
        return received_local
    return datetime.combine(filed_on, time(0, 0), tzinfo=COURT_TZ)


def filing_submission(data, received_at: datetime) -> Submission:
    """`data` is a validated case.filed model; its case number is already normalised."""
    event = make_event(
        type=FILING_TYPE, subject=data.case_no, time=filing_time(data.filed_on, received_at), data=data,
        source=SOURCE, id=derived_id(FILING_TYPE, data.case_no),
    )
    return Submission(event, fingerprint(data.case_no, FILING_TYPE, data.model_dump(mode="json")))


def event_submission(case_no: str, event_type: str, data, event_time: datetime | None,
                     event_id: str | None, received_at: datetime) -> Submission:
    """A later case event; `data` is already validated against the type's model."""
    event = make_event(
        type=event_type, subject=case_no, time=event_time or received_at.astimezone(COURT_TZ), data=data,
        source=SOURCE, id=event_id or f"intake:{uuid.uuid4()}",
    )
    # The fingerprint leaves out time when the caller gave none, so a retried POST with an id is a repeat.
    return Submission(event, fingerprint(case_no, event_type, event.data.model_dump(mode="json")))


def decide(submission: Submission, known_case: dict[str, Any] | None, known_event: dict[str, Any] | None) -> Outcome:
    """What a submission does, given what intake already holds for it."""
    if submission.is_filing:
        if known_case is None:
            return Outcome.CREATED
        return Outcome.REPEAT if known_case["fingerprint"] == submission.fingerprint else Outcome.CONFLICT
    if known_event is not None:
        return Outcome.REPEAT if known_event["fingerprint"] == submission.fingerprint else Outcome.CONFLICT
    if known_case is None:
        return Outcome.UNKNOWN_CASE
    return Outcome.CREATED
