"""Prometheus helpers shared by every service (one set of metric names suite-wide).

Labels are bounded: service, topic, partition, reason class. Never a case
number: a label per case would grow without bound.
"""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "ecc_events_consumed_total", "Messages read from a topic and processed (incl. duplicates)",
    ["service", "topic"],
)
EVENTS_DUPLICATE = Counter(
    "ecc_events_duplicate_total", "Messages dropped because their event id was already in the inbox",
    ["service", "topic"],
)
EVENTS_PRODUCED = Counter(
    "ecc_events_produced_total", "Messages published to a topic", ["service", "topic"],
)
EVENTS_DEADLETTERED = Counter(
    "ecc_events_deadlettered_total", "Messages sent to the dead-letter topic, by source topic",
    ["service", "topic"],
)
BATCH_SECONDS = Histogram(
    "ecc_batch_seconds", "Time to process one consumed batch: validate, dedupe, handle, store, publish, commit",
    ["service"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
HANDLER_SECONDS = Histogram(
    "ecc_handler_seconds", "Time the service's handler spends on one batch (decisions only, no I/O of the runtime)",
    ["service"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BATCH_SIZE = Histogram(
    "ecc_batch_size", "Messages per consumed batch", ["service"],
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
CONSUMER_LAG = Gauge(
    "ecc_consumer_lag", "Messages between the consumer's position and the partition's high watermark",
    ["service", "topic", "partition"],
)
LAST_EVENT_TIMESTAMP = Gauge(
    "ecc_last_event_processed_timestamp_seconds", "Wall time at which the service last stored a batch's effects",
    ["service"],
)
OUTBOX_PENDING = Gauge(
    "ecc_outbox_pending", "Outbox entries stored but not yet published", ["service"],
)
READY = Gauge("ecc_ready", "1 when the service answers /readyz with 200", ["service"])
WATERMARK = Gauge(
    "ecc_watermark_timestamp_seconds", "The service's clock watermark (event time, contract §8)", ["service"],
)
ERRORS = Counter(
    "ecc_errors_total", "Failures the service recovered from, by kind (database, broker, handler)",
    ["service", "kind"],
)
