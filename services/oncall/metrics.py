"""oncall's own Prometheus metrics (shared ones live in shared/metrics.py). Labels are bounded:
channel, duty role, outcome, family, source; never a case number, a person or a notification id."""
from prometheus_client import Counter, Gauge

ALERTS_INGESTED = Counter(
    "ecc_oncall_alerts_total", "Alerts taken in, by source (ecc.alerts | alertmanager), family and outcome "
    "(opened a notification, joined one, resolved, closed one, unrouted, duplicate)",
    ["source", "family", "outcome"],
)
NOTIFICATIONS_SENT = Counter(
    "ecc_oncall_notifications_sent_total", "Delivery attempts to people on duty, by channel, duty role, step "
    "(initial, escalation, resolved) and outcome (sent, retry, failed)",
    ["channel", "role", "step", "outcome"],
)
DELIVERY_FAILURES = Counter(
    "ecc_oncall_delivery_failures_total", "Failed delivery attempts by channel (each retry counts)", ["channel"],
)
DELIVERIES_GIVEN_UP = Counter(
    "ecc_oncall_deliveries_failed_total", "Deliveries given up after the last attempt, or with no configured "
    "channel, by channel", ["channel"],
)
ESCALATIONS = Counter(
    "ecc_oncall_escalations_total", "Escalation steps of unacknowledged notifications, by severity", ["severity"],
)
ACKS = Counter("ecc_oncall_acks_total", "Acknowledgements through the API, by outcome", ["outcome"])
NOTIFICATIONS_OPEN = Gauge(
    "ecc_oncall_notifications_open", "Live notifications by state (open = not acknowledged yet)", ["state"],
)
DELIVERIES_PENDING = Gauge("ecc_oncall_deliveries_pending", "Deliveries waiting for their (next) attempt")
