"""Structured JSON logs via structlog, with personal data masked.

Every line carries `service`; handlers bind `case_no` and `event_id`. ID and
phone numbers are masked here, at the last step before output, so no code
path can leak them into logs by forgetting to mask.
"""
from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from shared.masking import mask_value


def mask_personal_data(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return {key: mask_value(value) for key, value in event_dict.items()}


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route structlog and stdlib logging (aiokafka, uvicorn) to one JSON stream on stdout."""
    numeric_level = getattr(logging, level.upper(), logging.INFO)
    shared_processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared_processors,
            structlog.processors.format_exc_info,
            mask_personal_data,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        # Not cached: structlog.testing.capture_logs must still see loggers made before it.
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared_processors, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            mask_personal_data,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # aiokafka logs every reconnect attempt at ERROR while the broker is down; keep one line a try.
    logging.getLogger("aiokafka").setLevel(max(numeric_level, logging.WARNING))
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def get_logger(**bound: Any) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(**bound)
