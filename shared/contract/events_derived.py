"""Event data our services derive: triage decisions, 终本 reviews, indicator snapshots,
alerts and clock ticks (contract §8-9, rules.md §2, §5, §7)."""
from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from shared.contract.casenumber import CaseNo
from shared.contract.events_vocab import (
    AlertSeverity,
    ChecklistCode,
    ReviewStage,
    TriageReason,
    TriageTrack,
)
from shared.contract.messages import contract_error
from shared.contract.types import (
    ContractModel,
    Count,
    CourtDate,
    EventData,
    EventTime,
    Identifier,
    Line,
    Money,
    Rate,
    Revision,
    StrictBool,
    single_line_text,
)

EventId = single_line_text(300)
"""An envelope id (the envelope allows up to 300 characters)."""

AlertId = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1,
                                           max_length=600, pattern=r"^\S+$")]
"""e.g. node.notice.overdue:（2021）豫0481执123号 or termination.recheck.due_soon:<case_no>#1."""

MetricsScope = Annotated[str, StringConstraints(strict=True, min_length=6, max_length=200,
                                                pattern=r"^(court|team):\S+$")]
"""court:<court code> or team:<team>."""

MetricsPeriod = Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9]{4}(-(0[1-9]|1[0-2]))?$")]
"""A month YYYY-MM or a year YYYY."""

IndicatorId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=100,
                                               pattern=r"^[a-z][a-z0-9_]*$")]
"""An indicator id from the rules file, e.g. closure_rate (结案率)."""


class TriageDecided(EventData):
    """繁简分流决定 a triage decision; a changed track is a new decision with revision + 1."""

    event_type: ClassVar[str] = "triage.decided"

    case_no: CaseNo
    track: TriageTrack
    reasons: list[TriageReason] = Field(min_length=1)  # the matching reason first
    team: Identifier
    decided_at: EventTime
    revision: Revision
    policy_version: Identifier


class TerminationReviewed(EventData):
    """终本审查 the 终本 checklist at proposal or closure; `missing` lists unmet items in order."""

    event_type: ClassVar[str] = "termination.reviewed"

    case_no: CaseNo
    stage: ReviewStage
    passed: StrictBool
    missing: list[ChecklistCode]

    @field_validator("missing")
    @classmethod
    def _consistent_with_passed(cls, missing: list[str], info: ValidationInfo) -> list[str]:
        passed = info.data.get("passed")
        if passed is not None and passed == bool(missing):
            raise contract_error("review_inconsistent")
        return missing


class TerminationRestoreSuggested(EventData):
    """建议恢复执行 property turned up after a 终本 closure; `trigger` is that event's id."""

    event_type: ClassVar[str] = "termination.restore_suggested"

    case_no: CaseNo
    trigger: EventId
    reason: Line


class IndicatorCounts(ContractModel):
    """An indicator's numerator and denominator: a count of cases, or a sum of amounts (Σ 金额)."""

    numerator: Count | Money
    denominator: Count | Money


class MetricsSnapshot(EventData):
    """质效指标快照 indicators of one scope and period, as of a completed day.

    A rate whose denominator is 0 is null, not 0.
    """

    event_type: ClassVar[str] = "metrics.snapshot"

    scope: MetricsScope
    period: MetricsPeriod
    as_of: CourtDate
    indicators: dict[IndicatorId, Rate | None]
    counts: dict[IndicatorId, IndicatorCounts]


class AlertRaised(EventData):
    """预警/告警 an alert, raised once per breach; `alert_id` is deterministic (rules.md §0)."""

    event_type: ClassVar[str] = "alert.raised"

    alert_id: AlertId
    rule: Identifier
    severity: AlertSeverity
    case_no: CaseNo | None = None
    team: Identifier | None = None
    due_at: EventTime | None = None
    raised_at: EventTime
    summary: Line  # one line, Chinese
    details: dict[str, Any] = Field(default_factory=dict)


class AlertResolved(EventData):
    """告警解除 the awaited fact arrived or the case closed."""

    event_type: ClassVar[str] = "alert.resolved"

    alert_id: AlertId
    resolved_at: EventTime
    reason: Line


class ClockTick(EventData):
    """时钟 the event-time watermark moves to `now` (contract §8)."""

    event_type: ClassVar[str] = "clock.tick"

    now: EventTime


DERIVED_EVENT_MODELS: tuple[type[EventData], ...] = (
    TriageDecided, TerminationReviewed, TerminationRestoreSuggested, MetricsSnapshot,
    AlertRaised, AlertResolved, ClockTick,
)
