"""Entrustment (事项委托) and supervision (督办) event data, contract §6, topic `ecc.entrust.events`."""
from __future__ import annotations

from typing import ClassVar

from shared.contract.casenumber import CaseNo
from shared.contract.events_vocab import SupervisionLevel
from shared.contract.types import (
    Actor,
    CourtDate,
    EventData,
    EventTime,
    Identifier,
    Name,
    Note,
)


class _EntrustOpened(EventData):
    entrust_id: Identifier
    case_no: CaseNo
    counterpart_court: Name
    matter: Note
    at: EventTime
    due_on: CourtDate | None = None


class EntrustSent(_EntrustOpened):
    """委托发出 we entrust a matter to another court."""

    event_type: ClassVar[str] = "entrust.sent"


class EntrustReceived(_EntrustOpened):
    """收到委托 another court entrusts a matter to us."""

    event_type: ClassVar[str] = "entrust.received"


class _EntrustStep(EventData):
    entrust_id: Identifier
    at: EventTime
    note: Note | None = None


class EntrustSupplementRequested(_EntrustStep):
    """要求补正材料 supplementary material is requested."""

    event_type: ClassVar[str] = "entrust.supplement_requested"


class EntrustReturned(_EntrustStep):
    """退回委托 the entrusted matter is returned."""

    event_type: ClassVar[str] = "entrust.returned"


class EntrustReplied(_EntrustStep):
    """委托事项回复 the other side replied."""

    event_type: ClassVar[str] = "entrust.replied"


class EntrustCompleted(_EntrustStep):
    """委托办结 the entrusted matter is done."""

    event_type: ClassVar[str] = "entrust.completed"


class SupervisionIssued(EventData):
    """督办事项下发 a supervision item issued to a team, due on `due_on`."""

    event_type: ClassVar[str] = "supervision.issued"

    item_id: Identifier
    case_no: CaseNo | None = None
    level: SupervisionLevel
    to_team: Identifier
    issued_at: EventTime
    due_on: CourtDate


class SupervisionReplied(EventData):
    """督办回复 the team replied to a supervision item."""

    event_type: ClassVar[str] = "supervision.replied"

    item_id: Identifier
    replied_at: EventTime
    by: Actor


ENTRUST_EVENT_MODELS: tuple[type[EventData], ...] = (
    EntrustSent, EntrustReceived, EntrustSupplementRequested, EntrustReturned,
    EntrustReplied, EntrustCompleted, SupervisionIssued, SupervisionReplied,
)
