"""Public-sentiment event data (舆情事件), contract §7, topic `ecc.sentiment.events`."""
from __future__ import annotations

from typing import ClassVar

from shared.contract.casenumber import CaseNo
from shared.contract.types import (
    Actor,
    EventData,
    EventTime,
    Identifier,
    Line,
    LongText,
    Name,
    Note,
    Url,
)


class SentimentRegistered(EventData):
    """舆情登记 an item captured by monitoring staff; `case_no` when the registrar knew it."""

    event_type: ClassVar[str] = "sentiment.registered"

    item_id: Identifier
    captured_at: EventTime
    channel: Name  # where it was seen (微博, 网站, ...): free text, not the inquiry channel
    title: Line
    text: LongText
    url: Url | None = None
    case_no: CaseNo | None = None


class _SentimentStep(EventData):
    item_id: Identifier
    at: EventTime
    by: Actor
    to_team: Identifier | None = None
    note: Note | None = None


class SentimentApproved(_SentimentStep):
    """局领导审批 approved (signed off) by the bureau head."""

    event_type: ClassVar[str] = "sentiment.approved"


class SentimentTransferred(_SentimentStep):
    """转办 transferred to the case team."""

    event_type: ClassVar[str] = "sentiment.transferred"


class SentimentResolved(_SentimentStep):
    """办结 resolved."""

    event_type: ClassVar[str] = "sentiment.resolved"


SENTIMENT_EVENT_MODELS: tuple[type[EventData], ...] = (
    SentimentRegistered, SentimentApproved, SentimentTransferred, SentimentResolved,
)
