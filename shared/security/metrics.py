"""Prometheus counters of the security layer (one registration per process)."""
from __future__ import annotations

from prometheus_client import Counter, Gauge

AUTH_ENABLED = Gauge("ecc_auth_enabled", "1 when bearer-token authentication is on (alert on 0)", ["service"])
AUTH_DENIED = Counter("ecc_auth_denied_total", "Requests refused with 401 or 403", ["service", "status", "reason"])
RATE_LIMITED = Counter("ecc_rate_limited_total", "Write requests refused with 429", ["service"])
BODY_TOO_LARGE = Counter("ecc_body_too_large_total", "Requests refused with 413", ["service"])
AUDIT_WRITTEN = Counter("ecc_audit_entries_written_total", "Audit entries stored", ["service"])
AUDIT_DROPPED = Counter("ecc_audit_entries_dropped_total", "Audit entries lost (buffer full or shutdown failure)",
                        ["service"])
AUDIT_WRITE_FAILURES = Counter("ecc_audit_write_failures_total", "Failed audit insert_many calls", ["service"])
