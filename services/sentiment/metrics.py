"""sentiment's own metrics; alerts raised (by rule and severity), open deadlines, the watermark and
the evaluation lag come from shared/deadline_book.py and shared/metrics.py. No per-item labels."""
from prometheus_client import Counter

EVENTS = Counter("ecc_sentiment_events_total", "Sentiment events applied, by type", ["type"])
REGISTERED = Counter("ecc_sentiment_registered_total", "Sentiment items registered, by severity level", ["level"])
REFUSED = Counter(
    "ecc_sentiment_refused_total", "Impossible sentiment events sent to the dead-letter topic, by type and reason code",
    ["type", "reason"],
)
SUBMISSIONS = Counter(
    "ecc_sentiment_submissions_total", "POSTed sentiment events by type and outcome", ["type", "outcome"],
)
