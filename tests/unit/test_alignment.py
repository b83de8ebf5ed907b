"""Event-time alignment (shared/runtime/alignment.py): window_order and UpstreamProgress."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.contract.envelope import COURT_TZ, Event, make_event
from shared.runtime.alignment import InputGate, UpstreamProgress, window_order

T0 = datetime(2025, 3, 3, 0, 0, tzinfo=COURT_TZ)
OPEN = (False, None)  # a gate that lets everything through


def tick(hour: int) -> Event:
    now = T0 + timedelta(hours=hour)
    return make_event(type="clock.tick", subject="clock", time=now, data={"now": now.isoformat()},
                      source="tests", id=f"tick-{hour}")


@dataclass(frozen=True)
class Fact:
    """What window_order reads of a non-tick event."""

    id: str
    type: str
    subject: str
    time: datetime


def fact(case: str, hour: float, n: int = 0) -> Fact:
    return Fact(f"{case}-{hour}-{n}", "test.fact", case, T0 + timedelta(hours=hour))


def order(events, tick_gate=OPEN, clock_gate=OPEN):
    ordered, held = window_order(events, tick_type="clock.tick", tick_gate=tick_gate, clock_gate=clock_gate)
    return [e.id for e in ordered], [e.id for e in held]


def test_events_go_before_the_first_tick_at_or_after_their_time_whatever_the_read_order():
    read = [tick(1), tick(2), fact("B", 1.5), fact("A", 0.5), fact("C", 2.0), fact("D", 2.5)]
    ordered, held = order(read)
    assert ordered == ["A-0.5-0", "tick-1", "B-1.5-0", "C-2.0-0", "tick-2", "D-2.5-0"]
    assert held == []


def test_a_tick_the_fact_gate_holds_holds_everything_after_it():
    read = [tick(1), tick(2), fact("A", 0.5), fact("B", 1.5)]
    ordered, held = order(read, tick_gate=(False, T0 + timedelta(hours=1, minutes=30)))
    assert ordered == ["A-0.5-0", "tick-1", "B-1.5-0"]
    assert held == ["tick-2"]
    ordered, held = order(read, tick_gate=(True, None))  # a fact partition of unknown time: nothing passes a tick
    assert ordered == ["A-0.5-0"] and held == ["tick-1", "B-1.5-0", "tick-2"]


def test_a_tick_waits_for_a_fact_held_before_it():
    # boundary: a fact timed exactly at the tick belongs before it
    ordered, held = order([tick(1), fact("A", 1.0)], clock_gate=(True, None))
    assert ordered == ["A-1.0-0", "tick-1"] and held == []


def test_events_after_the_last_tick_read_wait_while_the_clock_may_bring_an_earlier_tick():
    read = [tick(1), fact("A", 1.5), fact("B", 3.0), fact("A", 3.5)]
    clock_lagging = (False, T0 + timedelta(hours=2))  # last tick read: 02:00, more unread
    ordered, held = order(read, clock_gate=clock_lagging)
    assert ordered == ["tick-1", "A-1.5-0"]
    assert held == ["B-3.0-0", "A-3.5-0"]
    # the clock caught up: nothing more can come before them
    ordered, held = order(read)
    assert held == [] and ordered[-2:] == ["B-3.0-0", "A-3.5-0"]


def test_a_case_never_overtakes_its_own_held_event():
    read = [fact("A", 5.0), fact("A", 1.0, 1), fact("B", 1.0)]
    ordered, held = order(read, clock_gate=(False, T0 + timedelta(hours=2)))
    assert ordered == ["B-1.0-0"]
    assert held == ["A-5.0-0", "A-1.0-1"]


def test_duplicate_ticks_count_once():
    ordered, _ = order([tick(1), tick(1), fact("A", 0.5)])
    assert ordered == ["A-0.5-0", "tick-1"]


def test_input_gate_bound_can_be_asked_for_some_topics():
    gate = InputGate()
    gate.set_lag("facts", 0, 3)
    gate.note("facts", 0, T0)
    gate.set_lag("clock", 0, 0)
    assert gate.bound() == (False, T0)
    assert gate.bound({"clock"}) == (False, None)
    gate.set_lag("facts", 1, 2)  # unread, time unknown
    assert gate.bound({"facts"}) == (True, None)


def test_upstream_bound_is_the_earliest_fact_read_but_not_committed_upstream():
    up = UpstreamProgress("ecc-triage", reads=["facts"], outputs=["decisions"], wait_seconds=30)
    for offset in range(4):
        up.note("facts", 0, offset, T0 + timedelta(hours=offset))
    assert up.bound() == (False, None) and not up.informed()  # no commits: no upstream there
    up.set_committed({("facts", 0): 2})
    assert up.informed()
    assert up.bound() == (False, T0 + timedelta(hours=2))
    up.set_committed({("facts", 0): 4})
    assert up.bound() == (False, None)


def test_upstream_behind_our_first_read_holds_everything_and_a_stalled_one_is_given_up():
    up = UpstreamProgress("ecc-triage", reads=["facts"], outputs=["decisions"], wait_seconds=0.2)
    up.note("facts", 0, 10, T0)  # after a restart we start at offset 10
    up.set_committed({("facts", 0): 5})
    assert up.bound() == (True, None)
    time.sleep(0.3)
    assert up.bound() == (False, None)  # no progress for wait_seconds: stop holding
    up.set_committed({("facts", 0): 6})  # it moves again: hold again
    assert up.bound() == (True, None)


def test_upstream_wait_zero_turns_the_wait_off():
    up = UpstreamProgress("ecc-triage", reads=["facts"], outputs=["decisions"], wait_seconds=0)
    up.note("facts", 0, 0, T0)
    up.set_committed({("facts", 0): 0})
    assert up.bound() == (False, None)
