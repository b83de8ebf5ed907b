"""The clock ticker: the only place where wall time enters the suite.

Ticks go straight to the producer, not through an outbox: a lost tick is
replaced by the next one, and the watermark only needs the largest.
Ticks are aligned to whole multiples of the interval, so two tickers (a
restart overlapping its predecessor) publish the same ids.
"""
from __future__ import annotations

import asyncio
import time
from datetime import datetime

from shared.clock import Watermark
from shared.contract.envelope import COURT_TZ, Event, make_event
from shared.http.app import create_app
from shared.ids import derived_id
from shared.logging import get_logger
from shared.metrics import ERRORS, EVENTS_PRODUCED, WATERMARK
from shared.runtime.service import ServiceProcess
from shared.topics import CLOCK

NAME = "ticker"
log = get_logger()


def tick_event(now: datetime) -> Event:
    stamp = now.astimezone(COURT_TZ).replace(microsecond=0)
    return make_event(
        type="clock.tick", subject="clock", time=stamp, data={"now": stamp.isoformat()},
        source=f"ecc/{NAME}", id=derived_id("clock.tick", stamp.isoformat()),
    )


def aligned_now(interval: float, wall: float | None = None) -> datetime:
    wall = time.time() if wall is None else wall
    return datetime.fromtimestamp(wall - wall % interval, tz=COURT_TZ)


async def tick_forever(process: ServiceProcess, stop: asyncio.Event) -> None:
    interval = process.settings.tick_seconds
    topic = process.settings.topic(CLOCK.suffix)
    watermark = Watermark()
    while not stop.is_set():
        now = aligned_now(interval)
        if watermark.advance(now):
            event = tick_event(now)
            try:
                await process.producer.send_and_wait(topic, event.to_bytes(), key=event.subject.encode())
                EVENTS_PRODUCED.labels(NAME, topic).inc()
                WATERMARK.labels(NAME).set(now.timestamp())
                log.debug("tick", now=event.data.now.isoformat())
            except Exception as exc:
                ERRORS.labels(NAME, "broker").inc()
                log.warning("tick_not_published", error=str(exc))
                watermark.now = None  # publish this instant again on the next pass
        wait = interval - time.time() % interval
        try:
            await asyncio.wait_for(stop.wait(), timeout=min(wait, 1.0) if watermark.now is None else wait)
        except TimeoutError:
            pass


async def run() -> None:
    process = ServiceProcess(NAME)
    app = create_app(service=NAME, health=process.health, description="Clock ticker (contract §8).")

    async def ticking(stop: asyncio.Event) -> None:
        await tick_forever(process, stop)

    await process.serve(app, extra=[ticking])


def main() -> None:
    asyncio.run(run())
