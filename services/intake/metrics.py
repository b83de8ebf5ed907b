"""intake's own metrics (the shared ones come from shared.metrics)."""
from prometheus_client import Counter

SUBMISSIONS = Counter(
    "ecc_intake_submissions_total", "Submissions to the service window by event type and outcome",
    ["type", "outcome"],
)
