"""`make demo`: a county court's year through the running suite, then a summary.

    python -m tools.demo [--cases 300] [--seed 2025] [--tick-days 1] [--concurrency 16]

Runs against what `make up` started (ports and topics from the environment,
the operator token from `.ecc/token`). It generates a deterministic year with
`tools.workload.generate_year` and replays it in event-time order, one
simulated day at a time:

1. that day's case events through intake's HTTP API: the filing as
   `POST /cases`, the rest as `POST /cases/{case_no}/events` (at most
   `--concurrency` requests in flight; one case's events one after another);
2. that day's fund events straight to `ecc.funds.events` (the case-fund
   system's way in), keyed by case number or `unmatched:<receipt_id>`;
3. the day's `clock.tick` to `ecc.clock`.

Then it waits until the suite has gone quiet (no topic grew for a few
seconds), reads every topic from the beginning with a fresh consumer (no
group), and prints: events per topic and type, triage decisions per track,
alerts by rule and severity, 终本 reviews, dead letters by reason. A service
that does not exist yet simply produced nothing, and the summary says so.
If intake itself is not running, case events go straight to
`ecc.case.events` (as the national case-flow system would write them).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from shared.config import SERVICE_PORTS, Settings
from shared.contract.envelope import Event
from shared.kafka import client_kwargs
from shared.topics import (
    ALERTS,
    ALL_TOPICS,
    CASE_EVENTS,
    CLOCK,
    DEADLETTER,
    METRICS_SNAPSHOTS,
    TERMINATION_EVENTS,
    TRIAGE_DECISIONS,
    topic_for_event_type,
)
from tools.stack import discover_services, state_dir
from tools.workload import generate_year

# Which service writes each output topic, to say why a topic is empty.
WRITERS = {
    TRIAGE_DECISIONS.suffix: ["triage"],
    ALERTS.suffix: ["nodewatch", "funds", "entrust", "sentiment", "termination", "metrics"],
    TERMINATION_EVENTS.suffix: ["termination"],
    METRICS_SNAPSHOTS.suffix: ["metrics"],
    DEADLETTER.suffix: ["any consumer"],
}
MAX_RETRIES = 6


# ---------------------------------------------------------------- token

def load_token() -> tuple[str | None, str]:
    """The operator token from .ecc/token, else a fresh one minted with the stack's secret."""
    path = state_dir() / "token"
    if path.exists() and path.read_text().strip():
        return path.read_text().strip(), f"token from {path}"
    return mint_fresh_token()


def mint_fresh_token() -> tuple[str | None, str]:
    secret = state_dir() / "jwt-secret"
    if not secret.exists():
        return None, "no token: run `make up` first (it writes .ecc/token)"
    os.environ.setdefault("ECC_JWT_SECRET_FILE", str(secret))
    try:
        from shared.security.tokens import mint_token
    except ImportError as exc:
        return None, f"no token: shared.security is not importable ({exc})"
    try:
        return mint_token("demo", ["operator"], ttl_seconds=4 * 3600), f"token minted with {secret}"
    except Exception as exc:  # noqa: BLE001 - any failure just means "no token"
        return None, f"no token: minting failed ({exc})"


# ---------------------------------------------------------------- posting

@dataclass
class Tally:
    http: Counter = field(default_factory=Counter)  # status code -> count
    rejected: list[str] = field(default_factory=list)  # first few bodies of 4xx/5xx
    produced: Counter = field(default_factory=Counter)  # topic -> count
    rate_limited: int = 0
    failed: int = 0

    def reject(self, what: str) -> None:
        if len(self.rejected) < 8:
            self.rejected.append(what[:300])


class Poster:
    """Case events through intake (or straight to the topic when intake is absent)."""

    def __init__(self, base_url: str, token: str | None, concurrency: int, tally: Tally, progress):
        import httpx

        self.httpx = httpx
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.tally = tally
        self.progress = progress
        self.limit = asyncio.Semaphore(concurrency)
        self.client = httpx.AsyncClient(
            base_url=self.base_url, timeout=30.0,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency))
        self.reminted = False

    async def close(self) -> None:
        await self.client.aclose()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def post_case(self, events: list[Event]) -> None:
        """One case's events of the day, in order (the filing before anything else)."""
        for event in events:
            async with self.limit:
                await self._post(event)
            self.progress.update(1)

    async def _post(self, event: Event) -> None:
        body = event.to_json_dict()
        if event.type == "case.filed":
            url, payload = "/cases", body["data"]
        else:
            url = f"/cases/{quote(event.subject, safe='')}/events"
            payload = {"type": body["type"], "time": body["time"], "data": body["data"], "id": body["id"]}
        for attempt in range(MAX_RETRIES):
            try:
                response = await self.client.post(url, json=payload, headers=self._headers())
            except self.httpx.HTTPError as exc:
                if attempt == MAX_RETRIES - 1:
                    self.tally.failed += 1
                    self.tally.reject(f"{event.type} {event.subject}: {type(exc).__name__} {exc}")
                    return
                await asyncio.sleep(0.5 * 2 ** attempt)
                continue
            if response.status_code == 429:  # intake's write rate limit: wait as told
                if not self.tally.rate_limited:
                    self.progress.write(
                        "demo: intake is rate-limiting writes (429): this replay will be slow. The stack "
                        "was started without ECC_RATE_LIMIT_WRITES=off; `make down && make demo` lifts it.")
                self.tally.rate_limited += 1
                wait = float(response.headers.get("Retry-After") or 1)
                await asyncio.sleep(min(max(wait, 0.1), 30))
                continue
            if response.status_code == 401 and not self.reminted:
                self.reminted = True  # an expired token: mint a new one once
                token, _ = mint_fresh_token()
                if token:
                    self.token = token
                    continue
            if response.status_code >= 500 and attempt < MAX_RETRIES - 1:
                await asyncio.sleep(0.5 * 2 ** attempt)
                continue
            self.tally.http[response.status_code] += 1
            if response.status_code >= 400:
                self.tally.reject(f"{event.type} {event.subject} -> {response.status_code} {response.text}")
            return
        self.tally.failed += 1


class Producer:
    def __init__(self, settings: Settings, tally: Tally):
        from aiokafka import AIOKafkaProducer

        self.settings = settings
        self.tally = tally
        # Tansu fails idempotent producers (runtime.md): acks=all without idempotence.
        self.producer = AIOKafkaProducer(
            **client_kwargs(settings), acks="all", enable_idempotence=False,
            linger_ms=20, request_timeout_ms=30000)

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def send_all(self, events: list[Event]) -> None:
        futures = []
        for event in events:
            topic = self.settings.topic(topic_for_event_type(event.type).suffix)
            futures.append(await self.producer.send(topic, event.to_bytes(), key=event.subject.encode()))
            self.tally.produced[topic] += 1
        if futures:
            await asyncio.gather(*futures)


# ---------------------------------------------------------------- reading back

async def topic_end_offsets(settings: Settings) -> dict[str, int]:
    """Sum of end offsets per topic: grows whenever a topic does, cheap enough to poll.

    Not a message count against Tansu (its end offset is the last batch's base offset + 1).
    """
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    consumer = AIOKafkaConsumer(**client_kwargs(settings), group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        parts = []
        for topic in ALL_TOPICS:
            name = settings.topic(topic.suffix)
            for p in consumer.partitions_for_topic(name) or await _partitions(consumer, name):
                parts.append(TopicPartition(name, p))
        ends = await consumer.end_offsets(parts) if parts else {}
        totals: dict[str, int] = defaultdict(int)
        for tp, offset in ends.items():
            totals[tp.topic] += offset
        return dict(totals)
    finally:
        await consumer.stop()


async def _partitions(consumer, name: str) -> set[int]:
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - metadata for an unsubscribed topic
    except Exception:  # noqa: BLE001
        return set()
    return consumer.partitions_for_topic(name) or set()


async def wait_quiet(settings: Settings, quiet: float, max_wait: float, exclude: set[str]) -> dict[str, int]:
    """Wait until no topic (but `exclude`, e.g. the wall-clock ticker's) grew for `quiet` seconds."""
    deadline = time.monotonic() + max_wait
    last = await topic_end_offsets(settings)
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = await topic_end_offsets(settings)
        changed = {t for t in now if t not in exclude and now.get(t) != last.get(t)}
        if changed:
            still_since = time.monotonic()
            last = now
        elif time.monotonic() - still_since >= quiet:
            return now
    print(f"demo: the suite was still writing after {max_wait:.0f} s; summarising what is there")
    return last


async def read_all(settings: Settings) -> dict[str, list[tuple[bytes | None, bytes]]]:
    """Every message of every registry topic, from the beginning, with a group-less consumer.

    Reads each partition up to the high watermark its fetch responses report.
    Not up to ListOffsets' end offset: Tansu 0.6 answers that with the last
    *batch's* base offset + 1, so it undercounts whenever producers batch.
    """
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    consumer = AIOKafkaConsumer(**client_kwargs(settings), group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    out: dict[str, list[tuple[bytes | None, bytes]]] = {settings.topic(t.suffix): [] for t in ALL_TOPICS}
    try:
        parts = []
        for name in out:
            for p in consumer.partitions_for_topic(name) or await _partitions(consumer, name):
                parts.append(TopicPartition(name, p))
        if not parts:
            return out
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        remaining = {tp for tp, end in ends.items() if end > 0}  # 0: nothing was ever written
        deadline = time.monotonic() + 120
        while remaining and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                out[tp.topic].extend((record.key, record.value) for record in records)
            for tp in list(remaining):
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    remaining.discard(tp)
        return out
    finally:
        await consumer.stop()


# ---------------------------------------------------------------- summary

def summarise(settings: Settings, messages: dict[str, list[tuple[bytes | None, bytes]]],
              running: list[str]) -> str:
    lines: list[str] = []
    add = lines.append
    add("")
    add("=" * 72)
    add("ECC demo summary / 演示结果")
    add("=" * 72)
    add(f"services running: {', '.join(running) or 'none'}")
    missing = [s for s in SERVICE_PORTS if s not in running and s != "ticker"]
    if missing:
        add(f"services not running (they produce nothing yet): {', '.join(missing)}")

    add("")
    add("Events per topic and type:")
    parsed: dict[str, list[dict[str, Any]]] = {}
    for topic in ALL_TOPICS:
        name = settings.topic(topic.suffix)
        values = []
        for _key, value in messages.get(name, []):
            try:
                values.append(json.loads(value))
            except (TypeError, ValueError):
                values.append({"type": "(not JSON)"})
        parsed[topic.suffix] = values
        if not values:
            writers = WRITERS.get(topic.suffix)
            why = f"  (nothing: written by {', '.join(writers)})" if writers else ""
            add(f"  {name:<28} {0:>7}{why}")
            continue
        add(f"  {name:<28} {len(values):>7}")
        if topic is not DEADLETTER:
            for type_, count in sorted(Counter(v.get("type", "?") for v in values).items()):
                add(f"      {type_:<30} {count:>7}")

    decisions = [v.get("data", {}) for v in parsed[TRIAGE_DECISIONS.suffix] if v.get("type") == "triage.decided"]
    add("")
    add("Triage decisions (繁简分流) per track:")
    if decisions:
        latest: dict[str, dict[str, Any]] = {}
        for d in decisions:
            case_no = d.get("case_no")
            if case_no and d.get("revision", 1) >= latest.get(case_no, {}).get("revision", 0):
                latest[case_no] = d
        for track, count in Counter(d.get("track") for d in decisions).most_common():
            final = sum(1 for d in latest.values() if d.get("track") == track)
            add(f"  {track:<14} {count:>6} decisions, {final:>5} cases on this track now")
        reasons = Counter((d.get("reasons") or ["?"])[0] for d in latest.values())
        add("  by reason: " + ", ".join(f"{r} {c}" for r, c in reasons.most_common()))
        revised = sum(1 for d in latest.values() if d.get("revision", 1) > 1)
        add(f"  revised after a later inquiry: {revised}")
    else:
        add("  none (triage not running yet)")

    alerts = parsed[ALERTS.suffix]
    raised = [v.get("data", {}) for v in alerts if v.get("type") == "alert.raised"]
    resolved = [v.get("data", {}) for v in alerts if v.get("type") == "alert.resolved"]
    add("")
    add("Alerts (预警) by rule and severity:")
    if raised:
        by_rule: dict[str, Counter] = defaultdict(Counter)
        for a in raised:
            by_rule[a.get("rule", "?")][a.get("severity", "?")] += 1
        resolved_ids = {r.get("alert_id") for r in resolved}
        open_by_rule = Counter(a.get("rule", "?") for a in raised if a.get("alert_id") not in resolved_ids)
        add(f"  {'rule':<34} {'info':>6} {'warning':>8} {'critical':>9} {'open':>6}")
        for rule in sorted(by_rule):
            c = by_rule[rule]
            add(f"  {rule:<34} {c['info']:>6} {c['warning']:>8} {c['critical']:>9} {open_by_rule[rule]:>6}")
        add(f"  raised {len(raised)}, resolved {len(resolved)}")
    else:
        add("  none (no alerting service running yet)")

    reviews = [v.get("data", {}) for v in parsed[TERMINATION_EVENTS.suffix] if v.get("type") == "termination.reviewed"]
    restores = [v for v in parsed[TERMINATION_EVENTS.suffix] if v.get("type") == "termination.restore_suggested"]
    if reviews or restores:
        add("")
        add("终本 reviews:")
        for stage in ("proposed", "closed"):
            staged = [r for r in reviews if r.get("stage") == stage]
            if staged:
                passed = sum(1 for r in staged if r.get("passed"))
                add(f"  {stage:<9} {len(staged):>5} reviewed, {passed:>5} passed")
        missing_items = Counter(m for r in reviews for m in r.get("missing", []))
        if missing_items:
            add("  most often missing: " + ", ".join(f"{m} {c}" for m, c in missing_items.most_common(5)))
        add(f"  restore suggestions: {len(restores)}")

    snapshots = [v.get("data", {}) for v in parsed[METRICS_SNAPSHOTS.suffix] if v.get("type") == "metrics.snapshot"]
    court = [s for s in snapshots if str(s.get("scope", "")).startswith("court:") and len(str(s.get("period"))) == 4]
    if court:
        last = max(court, key=lambda s: str(s.get("as_of")))
        add("")
        add(f"Indicators, {last.get('scope')} {last.get('period')} as of {last.get('as_of')}:")
        for name, value in sorted((last.get("indicators") or {}).items()):
            add(f"  {name:<24} {value}")

    dead = parsed[DEADLETTER.suffix]
    add("")
    add("Dead letters (死信) by service and reason:")
    if dead:
        reasons = Counter((d.get("service", "?"), str(d.get("error", "?")).split(":")[0][:80]) for d in dead)
        for (service, reason), count in reasons.most_common(15):
            add(f"  {count:>6}  {service}: {reason}")
    else:
        add("  none")
    return "\n".join(lines)


def running_services(settings: Settings) -> list[str]:
    import httpx

    up = []
    for name in discover_services():
        try:
            port = settings.http_port(name)
            if httpx.get(f"http://{settings.http_host}:{port}/readyz", timeout=2).status_code == 200:
                up.append(name)
        except (KeyError, httpx.HTTPError):
            continue
    return up


# ---------------------------------------------------------------- main

def _windows(events: list[Event]) -> list[tuple[list[Event], list[Event]]]:
    """Split time-ordered events at each tick: (events up to the tick, [tick])."""
    windows: list[tuple[list[Event], list[Event]]] = []
    current: list[Event] = []
    for event in events:
        if event.type == "clock.tick":
            windows.append((current, [event]))
            current = []
        else:
            current.append(event)
    if current:
        windows.append((current, []))
    return windows


async def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    settings = Settings.from_env()
    running = running_services(settings)
    intake_url = args.intake or f"http://{settings.http_host}:{settings.http_port('intake')}"
    use_intake = "intake" in running
    print(f"demo: services answering /readyz: {', '.join(running) or 'none'}")
    if not use_intake:
        print("demo: intake is not running: case events go straight to "
              f"{settings.topic(CASE_EVENTS.suffix)} (as the case-flow system would write them)")

    token, how = load_token()
    if use_intake:
        print(f"demo: {how}")

    started = time.monotonic()
    events = generate_year(args.seed, args.cases, tick_every=timedelta(days=args.tick_days))
    counts = Counter(e.type for e in events)
    print(f"demo: generated {len(events)} events for {counts['case.filed']} cases (seed {args.seed}) "
          f"in {time.monotonic() - started:.1f} s")

    tally = Tally()
    producer = Producer(settings, tally)
    try:
        await producer.start()
    except Exception as exc:  # noqa: BLE001
        await producer.stop()
        print(f"demo: cannot reach the broker at {settings.kafka_bootstrap}: {exc}. Run `make up` first.")
        return 1
    progress = tqdm(total=len(events), unit="ev", desc="replaying", file=sys.stdout, mininterval=0.5)
    poster = Poster(intake_url, token, args.concurrency, tally, progress) if use_intake else None
    try:
        for day_events, ticks in _windows(events):
            case_events = [e for e in day_events if topic_for_event_type(e.type) is CASE_EVENTS]
            other = [e for e in day_events if topic_for_event_type(e.type) is not CASE_EVENTS]
            if poster is not None:
                by_case: dict[str, list[Event]] = defaultdict(list)
                for event in case_events:
                    by_case[event.subject].append(event)
                await asyncio.gather(*(poster.post_case(evs) for evs in by_case.values()))
            else:
                await producer.send_all(case_events)
                progress.update(len(case_events))
            await producer.send_all(other + ticks)
            progress.update(len(other) + len(ticks))
    finally:
        progress.close()
        if poster is not None:
            await poster.close()
        await producer.stop()
    elapsed = time.monotonic() - started
    print(f"demo: replayed in {elapsed:.1f} s")
    if poster is not None:
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(tally.http.items()))
        print(f"demo: intake answered {codes}" + (f"; {tally.failed} failed" if tally.failed else ""))
        if tally.rate_limited:
            print(f"demo: intake rate-limited {tally.rate_limited} requests (429, retried). "
                  "`make demo` starts the stack with ECC_RATE_LIMIT_WRITES=off; a stack started "
                  "with the default limit replays slowly.")
        for line in tally.rejected:
            print(f"demo:   e.g. {line}")
    for topic, n in sorted(tally.produced.items()):
        print(f"demo: published {n} events to {topic}")

    print(f"demo: waiting for the suite to finish (quiet for {args.quiet:.0f} s, at most {args.max_wait:.0f} s)...")
    await wait_quiet(settings, args.quiet, args.max_wait, exclude={settings.topic(CLOCK.suffix)})
    messages = await read_all(settings)
    print(summarise(settings, messages, running_services(settings)))
    return 0 if not tally.failed else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--tick-days", type=float, default=1.0, help="simulated days between ticks")
    parser.add_argument("--concurrency", type=int, default=16, help="HTTP requests in flight")
    parser.add_argument("--intake", help="intake's base URL (default from ECC_INTAKE_PORT)")
    parser.add_argument("--quiet", type=float, default=5.0, help="seconds without new output = done")
    parser.add_argument("--max-wait", type=float, default=180.0)
    args = parser.parse_args(argv)
    if args.tick_days <= 0:
        parser.error("--tick-days must be positive")
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
