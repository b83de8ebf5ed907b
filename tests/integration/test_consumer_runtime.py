"""The shared consumer runtime against the real broker and database: dedupe, dead letters, restarts."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import pytest
from pymongo import UpdateOne

from shared.contract.envelope import COURT_TZ, Event, make_event
from shared.http.app import create_app
from shared.runtime.effects import Effects
from shared.runtime.service import ServiceProcess
from shared.topics import ALERTS, CLOCK, DEADLETTER
from tests.conftest import wait_until
from tests.integration.harness import publish, read_topic, running

pytestmark = pytest.mark.integration

START = datetime(2025, 3, 1, 9, 0, tzinfo=COURT_TZ)


def tick(n: int) -> Event:
    now = START + timedelta(hours=n)
    return make_event(type="clock.tick", subject="clock", time=now, data={"now": now.isoformat()},
                      source="tests", id=f"tick-{n}")


class CountingHandler:
    """Counts ticks in one document; emits an alert for every 10th tick; refuses tick 13; crashes on tick 17."""

    def __init__(self, crash_on: str | None = None):
        self.batches: list[int] = []
        self.crash_on = crash_on

    async def handle(self, events: list[Event], effects: Effects) -> None:
        self.batches.append(len(events))
        for event in events:
            if event.id == self.crash_on:
                raise RuntimeError("bug in the handler")
            if event.id == "tick-13":
                effects.reject(event, "tick 13 is refused by this test")
                continue
            effects.write("counts", UpdateOne({"_id": "ticks"}, {"$inc": {"n": 1}, "$push": {"ids": event.id}},
                                              upsert=True))
            number = int(event.id.split("-")[1])
            if number % 10 == 0:
                effects.emit(ALERTS, make_event(
                    type="alert.raised", subject=f"test.rule:{number}", time=event.time, source="ecc/test",
                    id=f"alert.raised:test.rule:{number}",
                    data={"alert_id": f"test.rule:{number}", "rule": "test.rule", "severity": "info",
                          "raised_at": event.time.isoformat(), "summary": "测试", "details": {}}))


async def counted(process: ServiceProcess) -> dict:
    return await process.db["counts"].find_one({"_id": "ticks"}) or {"n": 0, "ids": []}


def runtime_process(settings, handler) -> tuple[ServiceProcess, object]:
    process = ServiceProcess("runtimetest", settings)
    process.consume([CLOCK], handler)
    return process, create_app(service="runtimetest", health=process.health)


async def test_duplicates_are_dropped_and_bad_messages_dead_lettered(settings):
    handler = CountingHandler()
    process, app = runtime_process(settings, handler)
    async with running(process, app):
        await publish(settings, CLOCK, [tick(n) for n in range(1, 21)])
        await publish(settings, CLOCK, [tick(5), tick(10), tick(20)])  # redelivered facts
        await publish(settings, CLOCK, [
            ("clock", b"{not json"),
            ("clock", json.dumps({"specversion": "1.0", "id": "x", "source": "s", "type": "case.teleported",
                                  "subject": "clock", "time": "2025-03-01T09:00:00+08:00",
                                  "datacontenttype": "application/json", "data": {}}).encode()),
            ("wrong-key", tick(99).to_bytes()),
        ])

        async def all_counted() -> bool:
            return (await counted(process))["n"] == 19

        await wait_until(all_counted, what="19 ticks counted")
        letters = await read_topic(settings, DEADLETTER, min_count=4)
        alerts = await read_topic(settings, ALERTS, min_count=2)
        doc = await counted(process)
    assert sorted(doc["ids"]) == sorted(f"tick-{n}" for n in range(1, 21) if n != 13)
    reasons = sorted(m["value"]["error"] for m in letters)
    assert len(letters) == 4, reasons
    assert any("not JSON" in r for r in reasons)
    assert any("unknown event type" in r for r in reasons)
    assert any("differs from subject" in r for r in reasons)
    assert any("tick 13 is refused" in r for r in reasons)
    for letter in letters:
        assert set(letter["value"]) == {"topic", "partition", "offset", "key", "value", "error", "service", "at"}
        assert letter["value"]["service"] == "runtimetest"
    assert sorted(m["value"]["id"] for m in alerts) == ["alert.raised:test.rule:10", "alert.raised:test.rule:20"]


async def test_handler_bug_dead_letters_only_the_culprit(settings):
    process, app = runtime_process(settings, CountingHandler(crash_on="tick-17"))
    async with running(process, app):
        await publish(settings, CLOCK, [tick(n) for n in range(11, 21)])

        async def nine_counted() -> bool:
            return (await counted(process))["n"] == 8  # 11..20 minus 13 (refused) and 17 (bug)

        await wait_until(nine_counted, what="the batch around the bug to be stored")
        letters = await read_topic(settings, DEADLETTER, min_count=2)
    assert sorted(json.loads(m["value"]["value"])["id"] for m in letters) == ["tick-13", "tick-17"]
    assert any("handler error" in m["value"]["error"] for m in letters)


@pytest.mark.slow
async def test_restart_mid_stream_loses_nothing_and_emits_nothing_twice(settings):
    first, app = runtime_process(settings, CountingHandler())
    async with running(first, app):
        await publish(settings, CLOCK, [tick(n) for n in range(1, 31)])

        async def some_counted() -> bool:
            return (await counted(first))["n"] >= 10

        await wait_until(some_counted, what="the first ticks")
    # A new process on the same database and group: it resumes from the committed offsets.
    second, app2 = runtime_process(settings, CountingHandler())
    async with running(second, app2):
        await publish(settings, CLOCK, [tick(n) for n in range(25, 41)])  # overlaps what was handled

        async def all_counted() -> bool:
            return (await counted(second))["n"] == 39

        await wait_until(all_counted, what="39 distinct ticks")
        alerts = await read_topic(settings, ALERTS, min_count=4)
        doc = await counted(second)
    assert len(doc["ids"]) == len(set(doc["ids"])) == 39
    assert sorted(m["value"]["id"] for m in alerts) == [f"alert.raised:test.rule:{n}" for n in (10, 20, 30, 40)]


class DeferringHandler:
    """Defers every tick until tick-`release` has been offered, then handles all offered ticks in order."""

    def __init__(self, release: int | None):
        self.release = release
        self.handled: list[str] = []

    async def handle(self, events: list[Event], effects: Effects) -> None:
        if self.release is not None and all(int(e.id.split("-")[1]) < self.release for e in events):
            for event in events:
                effects.defer(event)
            return
        for event in events:
            self.handled.append(event.id)
            effects.write("counts", UpdateOne({"_id": "ticks"}, {"$inc": {"n": 1}, "$push": {"ids": event.id}},
                                              upsert=True))


async def group_committed(settings, group_id: str) -> int:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka import TopicPartition
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        name = settings.topic(CLOCK.suffix)
        offsets = await admin.list_consumer_group_offsets(
            group_id, partitions=[TopicPartition(name, p) for p in range(settings.partitions)])
        return sum(max(meta.offset, 0) for meta in offsets.values())
    finally:
        await admin.close()


@pytest.mark.slow
async def test_deferred_events_are_offered_again_not_committed_and_survive_a_restart(settings):
    """Effects.defer: the offset is not committed past a deferred event, so a restart reads it again;
    once handled it is recorded like any other (nothing lost, nothing twice)."""
    first_handler = DeferringHandler(release=99)  # never reached in the first run: everything stays deferred
    first, app = runtime_process(settings, first_handler)
    async with running(first, app):
        await publish(settings, CLOCK, [tick(n) for n in range(1, 6)])
        await asyncio.sleep(2.0)  # several batches and idle rounds: each offers the five again
        assert (await counted(first))["n"] == 0
        assert await group_committed(settings, "ecc-runtimetest") == 0
    second_handler = DeferringHandler(release=7)
    second, app2 = runtime_process(settings, second_handler)
    async with running(second, app2):
        await publish(settings, CLOCK, [tick(6)])
        await asyncio.sleep(1.0)
        assert (await counted(second))["n"] == 0  # ticks 1-6 re-read after the restart, deferred again
        await publish(settings, CLOCK, [tick(7), tick(3)])  # tick-3 again: a duplicate of a deferred one

        async def all_seven() -> bool:
            return (await counted(second))["n"] == 7

        await wait_until(all_seven, what="ticks 1-7 handled once the release tick came")

        async def all_committed() -> bool:
            return await group_committed(settings, "ecc-runtimetest") == 8

        await wait_until(all_committed, what="every message committed, the duplicate too")
        doc = await counted(second)
    assert doc["ids"] == [f"tick-{n}" for n in range(1, 8)]  # in read order, each once
