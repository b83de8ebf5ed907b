"""nodewatch's own metrics; alerts raised (by rule and severity), open deadlines, the watermark
and the evaluation lag come from shared/deadline_book.py and shared/metrics.py. No per-case labels."""
from prometheus_client import Counter, Gauge

CASE_EVENTS = Counter(
    "ecc_nodewatch_events_total", "Events nodewatch applied, by type", ["type"],
)
CLOCK_HELD_SECONDS = Gauge(
    "ecc_nodewatch_clock_held_seconds",
    "Event-time seconds between the newest tick read and the watermark applied: ticks wait while "
    "case-event or triage partitions still have unread messages (watermark alignment)",
)
PENDING_CASES = Counter(
    "ecc_nodewatch_events_before_filing_total",
    "Case events read before their case.filed, kept and applied when the filing arrives",
)
TRIAGE_WAIT_EXPIRED = Counter(
    "ecc_nodewatch_triage_wait_expired_total",
    "Expected triage decisions not read within the wait: the clock went on, alerts without that team",
)
