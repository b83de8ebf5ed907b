"""entrust's own metrics; alerts raised (by rule and severity), open deadlines, the watermark and
the evaluation lag come from shared/deadline_book.py and shared/metrics.py. No per-item labels."""
from prometheus_client import Counter

EVENTS = Counter("ecc_entrust_events_total", "Entrustment and supervision events applied, by type", ["type"])
REFUSED = Counter(
    "ecc_entrust_refused_total",
    "Impossible entrustment/supervision events sent to the dead-letter topic, by type and reason code",
    ["type", "reason"],
)
SUBMISSIONS = Counter(
    "ecc_entrust_submissions_total", "POSTed entrustment/supervision events by type and outcome", ["type", "outcome"],
)
