"""Replay a generated court year (tools/workload.py) into running services, deterministically.

    from tools.replay import Replayer, watched_groups, read_stream, canonical
    async with Replayer(settings, watched_groups(processes)) as replayer:
        run = await replayer.replay(events)                 # paced: deterministic, one barrier per segment
        run = await replayer.replay(events, paced=False)    # free-running: throughput only
    async with Replayer(settings, []) as replayer:          # backlog: deterministic, no barriers
        run = await replayer.publish_backlog(events)        # ... before any service reads
        async with in_process(settings, names) as processes:
            await replayer.watch(watched_groups(processes))
            await replayer.drain(run, in_process_watermarks(names))

Backlog: the services put the stream in time order themselves
----------------------------------------------------------------
The year is on the topics before the services start, as after a long outage. triage and
nodewatch then read it in whatever order Kafka gives and align it on event time
(shared/runtime/alignment.py): triage handles its events and ticks in the order a
time-ordered reading gives and defers the rest (Effects.defer), nodewatch holds ticks until
triage's group has committed (= decided on) the case events timed before them. Their output
is the paced replay's (tests/integration/test_replay.py compares the two). `drain` waits for
the groups' commits and for each watched service's watermark to reach the last tick.

Why paced, and what it guarantees
---------------------------------
Kafka orders messages per partition only. Between two ticks a service may read
different cases' events (different partitions) and the clock (another topic) in
any order and in batches of any size. A service whose output depends only on
(a) each case's own events in their order and (b) for each tick T, the set of
events timed ≤ T, gives the same output on every replay when the driver makes
sure that the events it has read when it reads tick T are exactly those timed ≤ T.

So the paced replay cuts the time-ordered stream into segments: a run of
non-tick events, then the run of ticks that follows it, and so on. It publishes a
segment and waits until every watched consumer group has **committed** every
message published so far on the topics it reads (the shared runtime commits a
batch's offsets only after its effects are stored and what it emitted is on the
topic), then publishes the next segment. So:
- every event timed ≤ T is handled before tick T is published (a window is
  drained before its tick);
- no event timed > T is handled before tick T (the tick run is drained before
  the next window).
Within a window the order across cases is still free: services must not depend
on it (triage counts open cases as of the watermark for that reason).

The driver waits only for what it published. A service that also reads another
service's output (nodewatch reads triage's decisions) must align that input itself
(nodewatch's gate holds a tick while a decisions partition has unread messages).
After the run, read the outputs with `read_stream`, which waits for them to go quiet.

Tansu 0.6 answers ListOffsets(latest) with the base offset of the last record
batch + 1, not the end of the log (a batch of 10 records at offset 0 reports 1),
so nothing here uses `end_offsets`: the driver takes ends from its own
acknowledgements and readers from the fetch high watermark.

A year of hourly ticks has ≈ 2,600 windows with events, so ≈ 5,200 barriers;
each costs one fetch round trip of every watched consumer plus its transaction.
The consumer's fetch wait (`ECC_FETCH_MAX_WAIT_MS`, 100 ms by default) sets the
floor: Tansu answers a fetch only when that wait ends, so a barrier costs about
one wait per hop. Replays lower it to 5 ms (`in_process(..., fetch_max_wait_ms=5)`,
bench/replay.py sets the variable for the service processes).

The free-running replay publishes everything in order as fast as the producer
goes while the services read: a service that catches up with the driver takes "nothing
unread" for "nothing more before this tick", so its output may differ from the paced one.
Publish first (backlog) for a deterministic replay without barriers.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.config import Settings
from shared.contract.envelope import Event
from shared.kafka import client_kwargs
from shared.topics import Topic, topic_for_event_type

TICK = "clock.tick"


# ---------------------------------------------------------------- what to wait for

@dataclass(frozen=True)
class Watched:
    """A consumer group the replay waits for: its id and the full names of the topics it reads."""

    name: str
    group_id: str
    topics: tuple[str, ...]


def watched_groups(processes: Iterable[Any]) -> list[Watched]:
    """Every consumer of these ServiceProcesses (in-process services), in the order given: upstream first."""
    out = []
    for process in processes:
        for runtime in process.consumers:
            out.append(Watched(process.name, runtime.group_id, tuple(sorted(runtime.topics))))
    return out


def watched_for(settings: Settings, name: str, topics: Sequence[Topic], group_id: str | None = None) -> Watched:
    """A service in another process, described by its name and the registry topics it consumes."""
    from shared.runtime.consumer import group_id_for

    return Watched(name, group_id or group_id_for(name), tuple(sorted(settings.topic(t.suffix) for t in topics)))


# ---------------------------------------------------------------- the replay

@dataclass
class ReplayRun:
    paced: bool
    backlog: bool = False
    published: int = 0
    by_type: Counter = field(default_factory=Counter)
    segments: int = 0
    seconds: float = 0.0
    publish_seconds: float = 0.0     # time spent publishing (and waiting for acks)
    barrier_seconds: float = 0.0     # time spent waiting for the groups
    caught_up_at: dict[str, float] = field(default_factory=dict)  # group name → seconds from start
    nudges: int = 0  # partitions re-sent their last message after a stall (see Replayer.barrier)
    tick_sent: dict[datetime, float] = field(default_factory=dict)  # tick now → wall time (time.time()) sent

    @property
    def events_per_second(self) -> float:
        return self.published / self.seconds if self.seconds else 0.0


def segments(events: Sequence[Event]) -> list[list[Event]]:
    """Runs of non-tick events and runs of ticks, alternating, in stream order."""
    out: list[list[Event]] = []
    for event in events:
        is_tick = event.type == TICK
        if out and (out[-1][0].type == TICK) == is_tick:
            out[-1].append(event)
        else:
            out.append([event])
    return out


class Replayer:
    """Publishes events to their topics and waits for consumer groups to commit them."""

    def __init__(self, settings: Settings, watched: Sequence[Watched], *, linger_ms: int = 0,
                 barrier_timeout: float = 300.0, stall_seconds: float = 30.0):
        self.settings = settings
        self.watched = list(watched)
        self.linger_ms = linger_ms
        self.barrier_timeout = barrier_timeout
        self.stall_seconds = stall_seconds
        self.producer: AIOKafkaProducer | None = None
        # One admin client reads every group's commits: one OffsetFetch per group per poll.
        self.admin: AIOKafkaAdminClient | None = None
        self.coordinators: dict[str, int] = {}
        self.published_end: dict[TopicPartition, int] = {}  # offset of the next message, per partition
        self.committed: dict[str, dict[TopicPartition, int]] = defaultdict(dict)
        self.last_sent: dict[TopicPartition, tuple[bytes, bytes]] = {}
        self.t0 = time.perf_counter()

    async def __aenter__(self) -> "Replayer":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self.producer = AIOKafkaProducer(
            **client_kwargs(self.settings), acks="all", enable_idempotence=False,
            linger_ms=self.linger_ms, max_batch_size=1 << 20)
        await self.producer.start()
        self.admin = AIOKafkaAdminClient(**client_kwargs(self.settings))
        await self.admin.start()
        for watched in self.watched:
            self.coordinators[watched.group_id] = await self.admin.find_coordinator(watched.group_id)

    async def stop(self) -> None:
        if self.admin is not None:
            await self.admin.close()
            self.admin = None
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

    # ------------------------------------------------------------ publishing

    async def publish(self, events: Sequence[Event], run: ReplayRun | None = None) -> None:
        """Send events to their topics keyed by subject; return when the broker acknowledged all."""
        assert self.producer is not None, "start() first"
        started = time.perf_counter()
        futures = []
        for event in events:
            topic = self.settings.topic(topic_for_event_type(event.type).suffix)
            if run is not None and event.type == TICK:
                run.tick_sent[event.data.now] = time.time()  # type: ignore[attr-defined]
            futures.append(await self.producer.send(topic, event.to_bytes(), key=event.subject.encode()))
        for event, meta in zip(events, await asyncio.gather(*futures)):
            tp = TopicPartition(meta.topic, meta.partition)
            if meta.offset + 1 >= self.published_end.get(tp, 0):
                self.published_end[tp] = meta.offset + 1
                self.last_sent[tp] = (event.subject.encode(), event.to_bytes())
        if run is not None:
            run.published += len(events)
            run.by_type.update(e.type for e in events)
            run.publish_seconds += time.perf_counter() - started

    # ------------------------------------------------------------ waiting

    def _targets(self, watched: Watched) -> dict[TopicPartition, int]:
        """What the group must have committed: everything this driver published on its topics."""
        return {tp: end for tp, end in self.published_end.items() if tp.topic in watched.topics}

    async def caught_up(self, watched: Watched) -> bool:
        """Has this group committed every message this driver published on its topics?"""
        key = watched.name + "/" + watched.group_id
        known = self.committed[key]
        targets = self._targets(watched)
        behind = [tp for tp, end in targets.items() if known.get(tp, 0) < end]
        if not behind:
            return True
        assert self.admin is not None, "start() first"
        offsets = await self.admin.list_consumer_group_offsets(
            watched.group_id, self.coordinators[watched.group_id], partitions=behind)
        for tp in behind:
            meta = offsets.get(tp)
            known[tp] = max(meta.offset, 0) if meta is not None else 0
        return all(known[tp] >= targets[tp] for tp in behind)

    async def barrier(self, watched: Sequence[Watched] | None = None, run: ReplayRun | None = None,
                      t0: float | None = None) -> None:
        """Wait until every (or these) watched group has committed everything published so far.

        Fails when no watched group has committed anything new for `barrier_timeout`
        seconds (a slow batch is waited for; a stuck service is not).

        A group that makes no progress for `stall_seconds` is nudged: the last message of
        each partition it is behind on is sent again (same id, so consumers drop it as a
        duplicate; it only gives the partition a newer message). Seen once in a full
        replay on a loaded machine: both services stopped 1-2 messages short on five
        partitions for minutes; the cause (broker or client) is not known.
        """
        started = time.perf_counter()
        waiting = list(watched if watched is not None else self.watched)
        delay = 0.001
        last_progress = last_nudge = started
        seen = self._committed_total(waiting)
        while waiting:
            while waiting and await self.caught_up(waiting[0]):
                done = waiting.pop(0)
                if run is not None and t0 is not None:
                    run.caught_up_at[done.name] = time.perf_counter() - t0
            if not waiting:
                break
            now = time.perf_counter()
            total = self._committed_total(waiting)
            if total != seen:
                seen, last_progress, last_nudge = total, now, now
            if now - last_progress > self.barrier_timeout:
                lag = {}
                for w in waiting:
                    key = w.name + "/" + w.group_id
                    lag[w.name] = {f"{tp.topic}[{tp.partition}]": (self.committed[key].get(tp, 0), end)
                                   for tp, end in self._targets(w).items()
                                   if self.committed[key].get(tp, 0) < end}
                raise TimeoutError(f"replay: no progress for {self.barrier_timeout:.0f} s; behind "
                                   f"(committed, published): {lag}")
            if now - last_nudge > self.stall_seconds:
                await self._nudge(waiting, run)
                last_nudge = now
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.005)
        if run is not None:
            run.barrier_seconds += time.perf_counter() - started

    def _committed_total(self, watched: Sequence[Watched]) -> int:
        return sum(sum(self.committed[w.name + "/" + w.group_id].values()) for w in watched)

    async def _nudge(self, waiting: Sequence[Watched], run: ReplayRun | None) -> None:
        assert self.producer is not None
        behind: set[TopicPartition] = set()
        for w in waiting:
            known = self.committed[w.name + "/" + w.group_id]
            behind |= {tp for tp, end in self._targets(w).items() if known.get(tp, 0) < end}
        for tp in sorted(behind):
            key, value = self.last_sent[tp]
            meta = await (await self.producer.send(tp.topic, value, key=key, partition=tp.partition))
            self.published_end[tp] = max(self.published_end[tp], meta.offset + 1)
        if run is not None:
            run.nudges += len(behind)
        names = ", ".join(w.name for w in waiting)
        print(f"replay: {names} made no progress for {self.stall_seconds:.0f} s, behind on "
              f"{', '.join(f'{tp.topic}[{tp.partition}]' for tp in sorted(behind))}; sent their last message again",
              file=sys.stderr, flush=True)

    async def watch(self, watched: Sequence[Watched]) -> None:
        """Wait for these groups from now on (a backlog replay starts its services after publishing)."""
        assert self.admin is not None, "start() first"
        self.watched = list(watched)
        for w in self.watched:
            self.coordinators[w.group_id] = await self.admin.find_coordinator(w.group_id)

    async def publish_backlog(self, events: Sequence[Event], *,
                              progress: Callable[[int, int], None] | None = None) -> ReplayRun:
        """The backlog replay's first half: publish the whole stream, time-ordered, before any service reads it.

        Then start the services, `watch` their groups and `drain`. The services meet the year as
        a backlog (like a restart after downtime) and put it in time order themselves (the gates of
        shared/runtime/alignment.py), so the output is the paced replay's, without barriers.
        Publishing everything first matters: a consumer that caught up with a driver still
        publishing would take "no unread messages" for "nothing more before this tick".
        """
        run = ReplayRun(paced=False, backlog=True)
        self.t0 = time.perf_counter()
        await self._publish_all(events, run, progress)
        return run

    async def _publish_all(self, events: Sequence[Event], run: ReplayRun,
                           progress: Callable[[int, int], None] | None) -> None:
        """Everything, in time order, as fast as the producer goes (chunks only to report progress)."""
        chunk = 5000
        for start in range(0, len(events), chunk):
            await self.publish(events[start:start + chunk], run)
            if progress is not None:
                progress(run.published, len(events))
        run.segments = 1

    def _finish(self, run: ReplayRun, t0: float) -> ReplayRun:
        run.seconds = time.perf_counter() - t0
        for w in self.watched:
            run.caught_up_at.setdefault(w.name, run.seconds)
        return run

    async def drain(self, run: ReplayRun, watermarks: Callable[[], Awaitable[dict[str, float | None]]],
                    timeout: float = 300.0) -> ReplayRun:
        """Wait until every watched group committed the whole backlog and every watched service's
        settled watermark (`watermarks()`: the watermark less any deadline evaluation lag) reached
        the last tick: a service may still hold ticks after its last commit (nodewatch waits for
        triage to catch up) or evaluate a paged backlog of deadlines.
        Times count from publish_backlog."""
        await self.barrier(run=run, t0=self.t0)
        last_tick = max(run.tick_sent).timestamp() if run.tick_sent else None
        deadline = time.perf_counter() + timeout
        while last_tick is not None:
            seen = await watermarks()
            if all((seen.get(w.name) or 0) >= last_tick for w in self.watched):
                break
            if time.perf_counter() > deadline:
                raise TimeoutError(f"replay: watermarks {seen} did not reach the last tick {last_tick} "
                                   f"in {timeout:.0f} s after the groups committed everything")
            await asyncio.sleep(0.05)
        return self._finish(run, self.t0)

    async def replay(self, events: Sequence[Event], *, paced: bool = True,
                     progress: Callable[[int, int], None] | None = None) -> ReplayRun:
        """Publish `events` (time-ordered, as generate_year returns them); see the module docstring."""
        run = ReplayRun(paced=paced)
        t0 = time.perf_counter()
        if paced:
            parts = segments(events)
            for index, part in enumerate(parts):
                await self.publish(part, run)
                await self.barrier(run=run)
                run.segments += 1
                if progress is not None and index % 200 == 0:
                    progress(run.published, len(events))
        else:
            await self._publish_all(events, run, progress)
            await self.barrier(run=run, t0=t0)
        return self._finish(run, t0)


# ---------------------------------------------------------------- watermarks (for drain)

def _metric_names() -> tuple[str, str]:
    """(watermark, deadline evaluation lag): the names the services' gauges export."""
    from shared.deadline_book import EVALUATION_LAG
    from shared.metrics import WATERMARK

    return WATERMARK.describe()[0].name, EVALUATION_LAG.describe()[0].name


def _settled(watermark: float | None, evaluation_lag: float | None) -> float | None:
    """The event time up to which a service has done everything: its watermark, less the part of
    a paged deadline backlog it has not evaluated yet (shared/deadline_book.py)."""
    return None if watermark is None else watermark - (evaluation_lag or 0.0)


def in_process_watermarks(names: Iterable[str]) -> Callable[[], Awaitable[dict[str, float | None]]]:
    """Settled watermarks of services running in this process (the shared Prometheus registry)."""
    from prometheus_client import REGISTRY

    names = list(names)
    watermark, lag = _metric_names()

    async def read() -> dict[str, float | None]:
        return {name: _settled(REGISTRY.get_sample_value(watermark, {"service": name}),
                               REGISTRY.get_sample_value(lag, {"service": name}))
                for name in names}
    return read


def http_watermarks(ports: dict[str, int]) -> Callable[[], Awaitable[dict[str, float | None]]]:
    """Settled watermarks of services in other processes, from their /metrics."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    watermark, lag = _metric_names()

    async def read() -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        async with httpx.AsyncClient(timeout=5) as http:
            for name, port in ports.items():
                out[name] = None
                with contextlib.suppress(httpx.HTTPError):
                    text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                    found = {sample.name: sample.value for family in text_string_to_metric_families(text)
                             for sample in family.samples if sample.labels.get("service") == name}
                    out[name] = _settled(found.get(watermark), found.get(lag))
        return out
    return read


# ---------------------------------------------------------------- reading the outputs

async def read_stream(settings: Settings, topic: Topic, *, quiet_seconds: float = 1.0,
                      timeout: float = 120.0) -> list[dict[str, Any]]:
    """Every message on a topic: key, partition, offset, timestamp (s), value.

    Reads until every partition is at its fetch high watermark and nothing new has
    arrived for `quiet_seconds` (services may still be publishing when it starts).
    """
    name = settings.topic(topic.suffix)
    consumer = AIOKafkaConsumer(**client_kwargs(settings), enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=None, max_partition_fetch_bytes=8 << 20,
                                fetch_max_wait_ms=50)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(name)
        if partitions is None:
            await consumer.topics()  # refresh metadata once
            partitions = consumer.partitions_for_topic(name) or set()
        tps = [TopicPartition(name, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[dict[str, Any]] = []
        started = last_new = time.monotonic()
        while True:
            batch = await consumer.getmany(timeout_ms=100, max_records=10_000)
            for records in batch.values():
                for rec in records:
                    out.append({"key": rec.key.decode() if rec.key else None, "partition": rec.partition,
                                "offset": rec.offset, "timestamp": rec.timestamp / 1000.0,
                                "value": json.loads(rec.value)})
                if records:
                    last_new = time.monotonic()
            at_end = True
            for tp in tps:
                highwater = consumer.highwater(tp)
                if highwater is None or await consumer.position(tp) < highwater:
                    at_end = False
            now = time.monotonic()
            if at_end and now - last_new >= quiet_seconds:
                return out
            if now - started > timeout:
                raise TimeoutError(f"{name}: still not at the end after {timeout:.0f} s ({len(out)} read)")
    finally:
        await consumer.stop()


def canonical(messages: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """Sorted (event id, canonical JSON of the whole envelope): two streams compare equal iff same facts."""
    return sorted(
        (m["value"]["id"], json.dumps(m["value"], ensure_ascii=False, sort_keys=True, separators=(",", ":")))
        for m in messages)


def alert_latencies(run: ReplayRun, alerts: Iterable[dict[str, Any]]) -> list[float]:
    """Seconds from publishing the tick whose time raised an alert to the alert's timestamp on the topic."""
    sent = {moment.timestamp(): wall for moment, wall in run.tick_sent.items()}
    out = []
    for message in alerts:
        value = message["value"]
        if value.get("type") != "alert.raised":
            continue
        raised = datetime.fromisoformat(value["data"]["raised_at"]).timestamp()
        wall = sent.get(raised)
        if wall is not None:
            out.append(max(message["timestamp"] - wall, 0.0))
    return out


# ---------------------------------------------------------------- running services in this process

@contextlib.asynccontextmanager
async def in_process(settings: Settings, names: Sequence[str], *, fetch_max_wait_ms: int | None = None,
                     ready_timeout: float = 60.0) -> AsyncIterator[list[Any]]:
    """Build and serve services/<name> for each name in this event loop, each on a free HTTP port.

    Yields the ServiceProcesses once every one answers /readyz; stops them on exit.
    """
    import importlib

    import httpx

    from shared.runtime.service import ServiceProcess
    from tools.stack import free_port

    if fetch_max_wait_ms is not None:
        settings = replace(settings, fetch_max_wait_ms=fetch_max_wait_ms)
    processes, apps = [], []
    for name in names:
        process = ServiceProcess(name, replace(settings, http_port_override=free_port()))
        built = importlib.import_module(f"services.{name}.main").build(process)
        apps.append(built[0] if isinstance(built, tuple) else built)
        processes.append(process)
    tasks = [asyncio.create_task(p.serve(app, install_signals=False), name=f"serve-{p.name}")
             for p, app in zip(processes, apps)]
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            deadline = time.monotonic() + ready_timeout
            for process, task in zip(processes, tasks):
                url = f"http://127.0.0.1:{process.settings.http_port(process.name)}/readyz"
                while True:
                    if task.done():
                        task.result()
                        raise RuntimeError(f"{process.name} stopped before it was ready")
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(url)).status_code == 200:
                            break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{process.name} not ready after {ready_timeout:.0f} s")
                    await asyncio.sleep(0.1)
        yield processes
    finally:
        for process in processes:
            process.stop.set()
        for task in tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, timeout=30)
