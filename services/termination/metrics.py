"""termination's own metrics; alerts raised (by rule and severity), open deadlines, the watermark and
the evaluation lag come from shared/deadline_book.py and shared/metrics.py. No per-case labels."""
from prometheus_client import Counter, Gauge

REVIEWS = Counter(
    "ecc_termination_reviews_total", "终本 reviews run, by stage (proposed | closed) and result", ["stage", "passed"],
)
MISSING_ITEMS = Counter(
    "ecc_termination_missing_items_total", "Checklist items found missing by reviews, by item", ["item"],
)
RESTORE_SUGGESTIONS = Counter(
    "ecc_termination_restore_suggestions_total", "Restore suggestions (建议恢复执行) after a 终本 closure",
)
EVENTS = Counter("ecc_termination_events_total", "Events termination applied, by type", ["type"])
IN_RECHECK = Gauge(
    "ecc_termination_cases_in_recheck", "terminated_current cases under the re-check (not resumed)",
)
