"""Dead-letter records (contract §1): the original message and why it was refused."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: str
    error: str
    service: str

    @property
    def entry_id(self) -> str:
        # Deterministic: a redelivered bad message yields the same outbox entry, not a second letter.
        return f"deadletter:{self.service}:{self.topic}:{self.partition}:{self.offset}"

    def to_json(self) -> str:
        return json.dumps({
            "topic": self.topic, "partition": self.partition, "offset": self.offset,
            "key": self.key, "value": self.value, "error": self.error,
            "service": self.service, "at": datetime.now(UTC).isoformat(),
        }, ensure_ascii=False)


def decode_text(raw: bytes | None) -> str:
    if raw is None:
        return ""
    return raw.decode("utf-8", errors="replace")
