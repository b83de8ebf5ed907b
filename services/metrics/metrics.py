"""metrics' own Prometheus metrics: the indicators and the case-flow gauges. Labels are bounded
(indicator, scope = court or team, case type, rule, alert kind); never a case number."""
from prometheus_client import Counter, Gauge

INDICATOR = Gauge(
    "ecc_indicator", "Quality indicator (质效指标), month to date as of the last completed day; absent when "
    "its denominator is 0", ["indicator", "scope"],
)
INDICATOR_YTD = Gauge(
    "ecc_indicator_ytd", "Quality indicator (质效指标), year to date as of the last completed day", ["indicator", "scope"],
)
INDICATOR_TARGET = Gauge("ecc_indicator_target", "The indicator's target from rules/indicators.yaml", ["indicator"])
CASES_OPEN = Gauge("ecc_cases_open", "Open cases (filed, not closed) by case type and team", ["case_type", "team"])
ALERTS_OPEN = Gauge(
    "ecc_alerts_open", "Alerts raised on ecc.alerts and not resolved, by rule, kind (due_soon | overdue | raised) "
    "and team", ["rule", "kind", "team"],
)
CASES_FILED = Counter("ecc_cases_filed_total", "Case filings read (new cases), by case type", ["case_type"])
SNAPSHOTS = Counter("ecc_metrics_snapshots_total", "metrics.snapshot events emitted, by period kind", ["period"])
EVENTS = Counter("ecc_metrics_events_total", "Events metrics applied, by type", ["type"])
