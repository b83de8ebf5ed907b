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

import bisect
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from shared.logging import get_logger

if TYPE_CHECKING:
    from shared.contract.envelope import Event

log = get_logger()
Bound = tuple[bool, "datetime | None"]  # (hold_all, bound), as InputGate.bound returns it


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

    def bound(self, topics: Collection[str] | None = None) -> Bound:
        """(hold_all, bound): ticks strictly before `bound` may be applied; (False, None) = all of them.

        `topics` (full names) limits the answer to those topics' partitions."""
        bounds: list[datetime] = []
        for key, lag in self._lag.items():
            if lag == 0 or (topics is not None and key[0] not in topics):
                continue
            last = self._last.get(key)
            if last is None:
                return True, None  # unread messages of unknown time: wait for them
            bounds.append(last)
        if not bounds:
            return False, None
        return False, min(bounds)


# ---------------------------------------------------------------- windows: events and ticks in event-time order

def window_order(events: Sequence["Event"], *, tick_type: str, tick_gate: Bound, clock_gate: Bound,
                 case_of: Callable[["Event"], str] = lambda e: e.subject) -> tuple[list["Event"], list["Event"]]:
    """(to handle now, in this order; to hold for a later batch) for a service whose decisions depend
    on the watermark at the moment each event is handled (triage's team counts).

    The order is the one a time-ordered reading gives, whatever order the partitions were read in:
    every event timed ≤ T before tick T, every event timed > T after it (an event's window is the
    first tick at or after its time). Within a window the events keep the order given (the service
    must not depend on it); an event never goes before an earlier one of its case.

    `events`: what was held before, then the new batch, in that order (the runtime offers deferred
    events first: Effects.defer). What cannot go yet is held:
    - a tick the tick gate does not let through (`tick_gate`: the gate over the fact topics), and
      everything after it;
    - an event after the last tick read while the clock may still bring a tick before it
      (`clock_gate`: the gate over the clock topic; an event timed ≤ its bound has every earlier
      tick read), and the later events of its case.
    """
    ticks: dict[datetime, "Event"] = {}
    for event in events:
        if event.type == tick_type:
            ticks.setdefault(event.data.now, event)  # type: ignore[attr-defined]
    tick_times = sorted(ticks)
    windows: list[list["Event"]] = [[] for _ in range(len(tick_times) + 1)]
    case_window: dict[str, int] = {}
    for event in events:
        if event.type == tick_type:
            continue
        case = case_of(event)
        window = max(bisect.bisect_left(tick_times, event.time), case_window.get(case, 0))
        case_window[case] = window
        windows[window].append(event)
    hold_ticks, tick_bound = tick_gate
    hold_events, event_bound = clock_gate
    ordered: list["Event"] = []
    held: list["Event"] = []
    held_cases: set[str] = set()
    blocked = False
    for index, window in enumerate(windows):
        last = index == len(tick_times)
        window_held = False
        for event in window:
            case = case_of(event)
            # Before a tick read, every earlier tick has been read too; after the last one, ask the clock gate.
            clock_ok = not last or (not hold_events and (event_bound is None or event.time <= event_bound))
            if blocked or case in held_cases or not clock_ok:
                held.append(event)
                held_cases.add(case)
                window_held = True
            else:
                ordered.append(event)
        if last:
            break
        tick = ticks[tick_times[index]]
        tick_ok = not hold_ticks and (tick_bound is None or tick_times[index] < tick_bound)
        if blocked or window_held or not tick_ok:
            blocked = True
            held.append(tick)
        else:
            ordered.append(tick)
    return ordered, held


# ---------------------------------------------------------------- an upstream service's progress

class UpstreamProgress:
    """Ticks wait until an upstream consumer group has handled the facts this service has read.

    nodewatch reads the case events and triage's decisions on them: an alert raised at tick T
    carries the team of the decisions timed ≤ T. When triage runs behind nodewatch (a backlog
    after a restart, a replay), the decisions for facts nodewatch already read are not on the
    topic yet, and a gate over the decisions topic (caught up: nothing to wait for) cannot see
    them. So nodewatch also holds tick T while triage's group has not committed a case event
    timed ≤ T that nodewatch has read. The shared runtime commits only after a batch's output
    is published, and never past an event the handler deferred (Effects.defer), so once triage
    committed past an event, it has decided on it, its decisions are on the topic and the gate
    over that topic (fed fresh end offsets after each check) takes over.

    The runtime feeds it: `note` for every message read from `reads`, `set_committed` with the
    upstream group's commits before each batch. A partition the upstream never committed on is
    taken as "no upstream there" (the service runs alone); `informed()` tells the service whether
    to rely on this or on its own fallback (nodewatch: the first decisions it expects). Liveness: an upstream that makes no
    progress for `wait_seconds` of wall time while behind stops holding ticks (logged once per
    stall) until it moves again; wall time decides only *when* ticks apply.
    """

    def __init__(self, group_id: str, reads: Sequence[str], outputs: Sequence[str], *, wait_seconds: float = 30.0):
        self.group_id = group_id
        self.reads = frozenset(reads)
        self.outputs = frozenset(outputs)
        self.wait_seconds = wait_seconds
        self._read: dict[tuple[str, int], deque[tuple[int, datetime]]] = {}
        self._first_read: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, int], int] = {}
        self._moved_at = time.monotonic()
        self._behind_since: float | None = None
        self._gave_up = False
        self.version = 0  # counts changes of the upstream's commits: the runtime re-runs the handler on one

    def note(self, topic: str, partition: int, offset: int, moment: datetime) -> None:
        key = (topic, partition)
        self._first_read.setdefault(key, offset)
        self._read.setdefault(key, deque()).append((offset, moment))

    def set_committed(self, committed: dict[tuple[str, int], int | None]) -> None:
        for key, offset in committed.items():
            if offset is None or offset < 0:
                continue
            if self._committed.get(key) != offset:
                self._committed[key] = offset
                self._moved_at = time.monotonic()
                self.version += 1
                if self._gave_up:
                    self._gave_up = False
                    log.info("upstream_progressing_again", upstream=self.group_id)
            read = self._read.get(key)
            while read and read[0][0] < offset:
                read.popleft()

    def informed(self) -> bool:
        """Has the upstream committed on every partition we read? (Until then bound() knows nothing.)"""
        return bool(self._first_read) and all(key in self._committed for key in self._first_read)

    def bound(self) -> Bound:
        """(hold_all, bound) for ticks: strictly before the earliest fact read and not yet handled upstream."""
        if self.wait_seconds <= 0:
            return False, None
        hold_all, bounds = False, []
        for key, committed in self._committed.items():
            first = self._first_read.get(key)
            if first is not None and committed < first:
                hold_all = True  # read from before our first message: times unknown (after a restart)
                continue
            read = self._read.get(key)
            if read:
                bounds.append(min(moment for _, moment in read))
        if not hold_all and not bounds:
            self._behind_since = None
            return False, None
        now = time.monotonic()
        if self._behind_since is None:
            self._behind_since = now
        stalled = now - max(self._behind_since, self._moved_at)
        if stalled > self.wait_seconds:
            if not self._gave_up:
                self._gave_up = True
                log.warning("upstream_not_progressing", upstream=self.group_id, waited_seconds=round(stalled, 1))
            return False, None
        return (True, None) if hold_all else (False, min(bounds))
