"""The registry of event data models: envelope `type` -> pydantic model (contract §4-9).

The models live in topic modules (events_case, events_funds, events_entrust,
events_sentiment, events_derived) and are re-exported here, so callers write
`from shared.contract.events import CaseFiled, EVENT_DATA_MODELS`.
"""
from __future__ import annotations

from pydantic import BaseModel

from shared.contract.events_case import (
    CASE_EVENT_MODELS,
    Asset,
    Basis,
    CaseClosed,
    CaseClosureProposed,
    CaseFiled,
    CaseResumed,
    CaseTermExtended,
    NodeCompleted,
    Party,
    PropertyClueRegistered,
    PropertyInquiryResult,
)
from shared.contract.events_derived import (
    DERIVED_EVENT_MODELS,
    AlertRaised,
    AlertResolved,
    ClockTick,
    IndicatorCounts,
    MetricsSnapshot,
    TerminationRestoreSuggested,
    TerminationReviewed,
    TriageDecided,
)
from shared.contract.events_entrust import (
    ENTRUST_EVENT_MODELS,
    EntrustCompleted,
    EntrustReceived,
    EntrustReplied,
    EntrustReturned,
    EntrustSent,
    EntrustSupplementRequested,
    SupervisionIssued,
    SupervisionReplied,
)
from shared.contract.events_funds import (
    FUNDS_EVENT_MODELS,
    FundsDelayApproved,
    FundsDisbursed,
    FundsMatched,
    FundsReceived,
)
from shared.contract.events_sentiment import (
    SENTIMENT_EVENT_MODELS,
    SentimentApproved,
    SentimentRegistered,
    SentimentResolved,
    SentimentTransferred,
)
from shared.contract.types import EventData

__all__ = [
    "EVENT_DATA_MODELS", "EventData", "model_for",
    "Party", "Basis", "Asset", "IndicatorCounts",
    "CaseFiled", "NodeCompleted", "PropertyInquiryResult", "PropertyClueRegistered",
    "CaseTermExtended", "CaseClosureProposed", "CaseClosed", "CaseResumed",
    "FundsReceived", "FundsDisbursed", "FundsMatched", "FundsDelayApproved",
    "EntrustSent", "EntrustReceived", "EntrustSupplementRequested", "EntrustReturned",
    "EntrustReplied", "EntrustCompleted", "SupervisionIssued", "SupervisionReplied",
    "SentimentRegistered", "SentimentApproved", "SentimentTransferred", "SentimentResolved",
    "TriageDecided", "TerminationReviewed", "TerminationRestoreSuggested", "MetricsSnapshot",
    "AlertRaised", "AlertResolved", "ClockTick",
]


def _registry(*groups: tuple[type[EventData], ...]) -> dict[str, type[BaseModel]]:
    registry: dict[str, type[BaseModel]] = {}
    for model in (m for group in groups for m in group):
        if model.event_type in registry:  # two models claiming one type is a programming error
            raise RuntimeError(f"event type {model.event_type!r} registered twice")
        registry[model.event_type] = model
    return registry


EVENT_DATA_MODELS: dict[str, type[BaseModel]] = _registry(
    CASE_EVENT_MODELS, FUNDS_EVENT_MODELS, ENTRUST_EVENT_MODELS,
    SENTIMENT_EVENT_MODELS, DERIVED_EVENT_MODELS,
)
"""Every event type of the contract -> the model of its `data`."""


def model_for(event_type: str) -> type[BaseModel]:
    """The data model of `event_type`; KeyError for a type the contract does not know."""
    return EVENT_DATA_MODELS[event_type]
