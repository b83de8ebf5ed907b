"""The Kafka producer every service uses."""
from __future__ import annotations

from aiokafka import AIOKafkaProducer

from shared.config import Settings
from shared.kafka import client_kwargs


def make_producer(settings: Settings) -> AIOKafkaProducer:
    # Idempotent producers fail on the embedded broker (InitProducerId → UnknownError);
    # consumers dedupe by event id instead (runtime.md). acks=all keeps what was acknowledged.
    return AIOKafkaProducer(
        **client_kwargs(settings),
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        request_timeout_ms=10000,
        max_batch_size=1 << 20,
        max_request_size=4 << 20,
    )
