"""Watermark alignment: ticks wait until the facts timed before them have been read.

    gate = InputGate()
    process.consume([CASE_EVENTS, TRIAGE_DECISIONS, CLOCK], handler,
                    gate=gate, gated=[CASE_EVENTS, TRIAGE_DECISIONS])
    ...
    hold_all, bound = gate.bound()   # in the handler: apply only ticks before `bound`

The runtime (shared/runtime/consumer.py) feeds the gate: the event time of each
valid message read from a gated topic, and each gated partition's lag measured
before the batch is handled. Used by nodewatch, funds, entrust and sentiment.

Why: getmany drains one partition at a time, so a consumer catching up on a
backlog (a replay, a restart after downtime) can read a month of `clock.tick`s
before the case events of that month. Applied at once, those ticks would raise
alerts for facts that happened in time but were not read yet, and the alert
stream would depend on fetch timing. So a deadline service holds a tick W back while a
case-event (or triage) partition still has unread messages and the last event
read from it is not later than W; partitions that are caught up do not hold
anything. Per partition, events arrive in the order they were produced, which
for the flow system and replays is event-time order.

The gate only decides *when* held ticks are applied; what they raise is decided
by the deadline book on event time, and held ticks are stored (clock doc), so
a restart changes nothing. In-memory gate state is rebuilt from what is read
after a restart (until then a lagging partition holds every tick).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime


class InputGate:
    """Per gated partition: is anything unread, and the event time of the last message read."""

    def __init__(self) -> None:
        self._lag: dict[tuple[str, int], int | None] = {}
        self._last: dict[tuple[str, int], datetime] = {}

    def note(self, topic: str, partition: int, moment: datetime) -> None:
        self._last[(topic, partition)] = moment

    def set_lag(self, topic: str, partition: int, lag: int | None) -> None:
        self._lag[(topic, partition)] = lag

    def forget(self, keep: Iterable[tuple[str, int]]) -> None:
        keep = set(keep)
        for key in list(self._lag):
            if key not in keep:
                del self._lag[key]

    def bound(self) -> tuple[bool, datetime | None]:
        """(hold_all, bound): ticks strictly before `bound` may be applied; (False, None) = all of them."""
        bounds: list[datetime] = []
        for key, lag in self._lag.items():
            if lag == 0:
                continue
            last = self._last.get(key)
            if last is None:
                return True, None  # unread messages of unknown time: wait for them
            bounds.append(last)
        if not bounds:
            return False, None
        return False, min(bounds)
