"""Event time (contract §8): a service's "now" is the largest clock.tick it has read.

The watermark never moves back, so a late or replayed tick changes nothing,
and deadlines are judged on event time, never on the machine's wall clock.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

TICK = "clock.tick"
# For a handler's `idempotent` (shared/runtime/consumer.BatchHandler): a service that stores its
# watermark in the batch's transaction needs no inbox record for a tick, because a redelivered
# tick is at or behind the stored watermark and changes nothing.
DEDUPED_BY_WATERMARK = frozenset({TICK})

# The court's time zone (contract §1): local dates, end-of-day deadlines and alert times use it.
COURT_TZ = ZoneInfo("Asia/Shanghai")


@dataclass
class Watermark:
    now: datetime | None = None

    def advance(self, tick_now: datetime) -> bool:
        """Move to `tick_now` if it is later; True when the watermark moved."""
        if tick_now.tzinfo is None:
            raise ValueError("clock ticks carry an offset (contract §1)")
        if self.now is None or tick_now > self.now:
            self.now = tick_now
            return True
        return False
