"""Case-fund event data (案款事件, 一案一账户), contract §5, topic `ecc.funds.events`."""
from __future__ import annotations

from typing import ClassVar

from shared.contract.casenumber import CaseNo
from shared.contract.identity import PartyIdNo
from shared.contract.types import (
    Actor,
    CourtDate,
    EventData,
    EventTime,
    Identifier,
    Line,
    Name,
    PositiveMoney,
)


class FundsReceived(EventData):
    """案款到账 a receipt; `case_no` is None for an unidentified deposit (不明款)."""

    event_type: ClassVar[str] = "funds.received"

    receipt_id: Identifier
    # Omitted or null alike: the envelope drops None fields when it writes.
    case_no: CaseNo | None = None
    amount: PositiveMoney
    payer_name: Name
    received_at: EventTime


class FundsDisbursed(EventData):
    """案款发放 a payout to a payee, who should be a party of the case."""

    event_type: ClassVar[str] = "funds.disbursed"

    payout_id: Identifier
    case_no: CaseNo
    amount: PositiveMoney
    payee_name: Name
    payee_id_no: PartyIdNo
    approved_by: Actor
    disbursed_at: EventTime


class FundsMatched(EventData):
    """不明款认领 an unidentified deposit claimed for a case (subject `unmatched:<receipt_id>`)."""

    event_type: ClassVar[str] = "funds.matched"

    receipt_id: Identifier
    case_no: CaseNo
    matched_at: EventTime


class FundsDelayApproved(EventData):
    """延缓发放 a payout delay approved by the bureau chief, until `until`."""

    event_type: ClassVar[str] = "funds.delay_approved"

    case_no: CaseNo
    until: CourtDate
    reason: Line
    approved_by: Actor


FUNDS_EVENT_MODELS: tuple[type[EventData], ...] = (
    FundsReceived, FundsDisbursed, FundsMatched, FundsDelayApproved,
)
