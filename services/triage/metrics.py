"""triage's own metrics (the shared ones come from shared.metrics). No per-case labels."""
from prometheus_client import Counter, Gauge

DECISIONS = Counter(
    "ecc_triage_decisions_total",
    "triage.decided events emitted, by track and matching reason (revisions included)",
    ["track", "reason", "revision"],
)
OPEN_CASES = Gauge(
    "ecc_triage_open_cases", "Open cases (filed, triaged, not closed) per team, live", ["team", "track"],
)
OPEN_CASES_AT_WATERMARK = Gauge(
    "ecc_triage_open_cases_at_watermark",
    "Open cases per team as of the clock watermark: the counts team assignment uses", ["team", "track"],
)
REJECTED = Counter(
    "ecc_triage_rejected_total", "Case events triage refused (dead-lettered), by event type", ["type"],
)
HELD_EVENTS = Gauge(
    "ecc_triage_held_events",
    "Events and ticks read but deferred until the time-ordered reading reaches them (shared/runtime/alignment.py)",
)
