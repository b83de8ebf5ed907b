"""Watermark alignment: ticks wait until the case facts before them have been read.

Why: getmany drains one partition at a time, so a consumer catching up on a
backlog (a replay, a restart after downtime) can read a month of `clock.tick`s
before the case events of that month. Applied at once, those ticks would raise
alerts for facts that happened in time but were not read yet, and the alert
stream would depend on fetch timing. So nodewatch holds a tick W back while a
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

from aiokafka import ConsumerRecord

from shared.runtime.consumer import ConsumerRuntime

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


class GatedConsumerRuntime(ConsumerRuntime):
    """The shared runtime, plus what the gate needs: per-partition lag and the last event time read."""

    def __init__(self, *, gate: InputGate, gated_topics: Iterable[str], **options):
        super().__init__(**options)
        self.gate = gate
        self.gated = frozenset(gated_topics)

    def _validate(self, records: list[ConsumerRecord]):
        valid, dead = super()._validate(records)
        for rec, event in valid:
            if rec.topic in self.gated:
                self.gate.note(rec.topic, rec.partition, event.time)
        return valid, dead

    async def process(self, records: list[ConsumerRecord]) -> None:
        await self._measure_lag()
        await super().process(records)

    async def _measure_lag(self) -> None:
        """Lag after this batch (getmany already moved the positions past it)."""
        assert self.consumer is not None
        assigned = [tp for tp in self.consumer.assignment() if tp.topic in self.gated]
        for tp in assigned:
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                self.gate.set_lag(tp.topic, tp.partition, None)
                continue
            position = await self.consumer.position(tp)
            self.gate.set_lag(tp.topic, tp.partition, max(highwater - position, 0))
        self.gate.forget((tp.topic, tp.partition) for tp in assigned)
