"""The one topic registry (contract §3). No service spells a topic name itself.

Each entry holds the topic's suffix (the name without ECC_TOPIC_PREFIX), what
its key is, and which event types may travel on it. Retention is the deploy
default: case and fund events are the court's record and are kept; the clock
is disposable.
"""
from __future__ import annotations

from dataclasses import dataclass

FOREVER = -1
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Topic:
    suffix: str
    key: str
    event_types: frozenset[str]
    retention_ms: int
    writers: str

    def carries(self, event_type: str) -> bool:
        # The dead-letter topic carries raw rejected messages, not envelopes.
        return event_type in self.event_types


CASE_EVENTS = Topic(
    "case.events", "case number",
    frozenset({
        "case.filed", "node.completed", "property.inquiry.result",
        "property.clue.registered", "case.term_extended",
        "case.closure_proposed", "case.closed", "case.resumed",
    }),
    FOREVER, "intake API, importers, the flow system",
)
FUNDS_EVENTS = Topic(
    "funds.events", "case number; unmatched:<receipt_id> for unidentified deposits",
    frozenset({"funds.received", "funds.disbursed", "funds.matched", "funds.delay_approved"}),
    FOREVER, "the case-fund system, funds API",
)
ENTRUST_EVENTS = Topic(
    "entrust.events", "entrust or item id",
    frozenset({
        "entrust.sent", "entrust.received", "entrust.supplement_requested",
        "entrust.returned", "entrust.replied", "entrust.completed",
        "supervision.issued", "supervision.replied",
    }),
    FOREVER, "the command platform, entrust API",
)
SENTIMENT_EVENTS = Topic(
    "sentiment.events", "item id",
    frozenset({"sentiment.registered", "sentiment.approved", "sentiment.transferred", "sentiment.resolved"}),
    FOREVER, "monitoring staff, sentiment API",
)
CLOCK = Topic("clock", "clock", frozenset({"clock.tick"}), 7 * DAY_MS, "the clock ticker, tests, replays")
TRIAGE_DECISIONS = Topic("triage.decisions", "case number", frozenset({"triage.decided"}), FOREVER, "triage")
ALERTS = Topic("alerts", "alert id", frozenset({"alert.raised", "alert.resolved"}), 365 * DAY_MS,
               "every service that raises alerts")
TERMINATION_EVENTS = Topic(
    "termination.events", "case number",
    frozenset({"termination.reviewed", "termination.restore_suggested"}),
    FOREVER, "termination",
)
METRICS_SNAPSHOTS = Topic("metrics.snapshots", "<scope>:<period>", frozenset({"metrics.snapshot"}),
                          FOREVER, "metrics")
DEADLETTER = Topic("deadletter", "original key", frozenset(), 90 * DAY_MS, "any consumer")

ALL_TOPICS: tuple[Topic, ...] = (
    CASE_EVENTS, FUNDS_EVENTS, ENTRUST_EVENTS, SENTIMENT_EVENTS, CLOCK,
    TRIAGE_DECISIONS, ALERTS, TERMINATION_EVENTS, METRICS_SNAPSHOTS, DEADLETTER,
)


def topic_for_event_type(event_type: str) -> Topic:
    for topic in ALL_TOPICS:
        if topic.carries(event_type):
            return topic
    raise KeyError(f"no topic carries event type {event_type!r}")
