"""funds' own metrics. Amounts are gauges read from the state in MongoDB (the `totals` document and
the overdue deadlines), refreshed every few seconds; no per-case labels. Alerts raised and resolved,
open deadlines and the watermark come from shared/deadline_book.py and shared/metrics.py.

Prometheus samples are floats: the Decimal amounts are converted only here, for exposition;
every sum is made in Decimal before that."""
from prometheus_client import Counter, Gauge

BALANCE_HELD = Gauge(
    "ecc_funds_balance_held_yuan",
    "Money the court holds: every receipt (case accounts and unidentified deposits) minus every payout, yuan",
)
RECEIPTS_TOTAL = Gauge("ecc_funds_receipts_total_yuan", "Sum of every receipt recorded (到账总额), yuan")
PAYOUTS_TOTAL = Gauge("ecc_funds_payouts_total_yuan", "Sum of every payout recorded (发放总额), yuan")
RECEIPTS_COUNT = Gauge("ecc_funds_receipts_count", "Receipts recorded")
PAYOUTS_COUNT = Gauge("ecc_funds_payouts_count", "Payouts recorded")
OVERDUE_PENDING = Gauge(
    "ecc_funds_overdue_pending_yuan",
    "Unpaid parts of receipts whose payout is overdue (funds.disbursement overdue and open), yuan",
)
OVERDUE_RECEIPTS = Gauge("ecc_funds_overdue_receipts", "Receipts whose payout is overdue and still unpaid")
UNIDENTIFIED_AMOUNT = Gauge("ecc_funds_unidentified_yuan", "Unidentified deposits (不明款) not yet matched, yuan")
UNIDENTIFIED_COUNT = Gauge("ecc_funds_unidentified_count", "Unidentified deposits (不明款) not yet matched")

EVENTS = Counter("ecc_funds_events_total", "Events funds applied, by type (handler runs)", ["type"])
REJECTED = Counter("ecc_funds_rejected_total", "Events funds dead-lettered as impossible facts, by type", ["type"])
SUBMISSIONS = Counter("ecc_funds_submissions_total", "POSTed fund facts by type and outcome", ["type", "outcome"])
