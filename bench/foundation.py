"""The foundation's figures (issue 2): intake through the outbox, and the shared consumer runtime.

1. intake: `POST /cases` requests/s through the transactional outbox, intake running as
   its own process (`python -m services.intake`) so the load generator does not share
   its event loop; latency p50/p99; how long until every accepted case is on the topic.
2. the consumer runtime (shared/runtime/consumer.py) over pre-produced valid events:
   validate + dedupe (inbox) + handle + one transaction + commit, with
   (a) a no-op handler and (b) a handler writing one upsert per event.
3. for ADR 0001: a faust-streaming agent with `stream.take(1000, within=0.05)` doing
   no-op consumption of the same events, and a plain aiokafka getmany + parse_event
   loop (validation only, no database) as the runtime's CPU ceiling.

    python -m bench foundation [--quick]
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import secrets
import sys
import time
import uuid
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from bench.common import (
    DISTURBED_MARK, Context, Probe, Row, Suite, SuiteReport, cpu_shares, cpu_snapshot, fmt_mib, fmt_ms, fmt_rate,
    log, markdown_table, percentiles, produce_rate,
)
from shared.config import PROJECT_ROOT, Settings

INTAKE_CONCURRENCY = 32
INTAKE_SECONDS = 20.0
INTAKE_WARMUP_REQUESTS = 64
RUNTIME_EVENTS = 50_000
CASES_FOR_EVENTS = 5_000       # events are spread over this many case numbers (keys)
FAUST_TIMEOUT_S = 120.0
OTHERS_WARN_CORES = 0.15       # CPU used by processes outside the run above which a phase is flagged


# ---------------------------------------------------------------- test data

def _resident_id(n: int) -> str:
    from stdnum.cn import ric
    first17 = f"410481{1960 + n % 40:04d}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    return first17 + ric.calc_check_digit(first17 + "0")


def _credit_code() -> str:
    from stdnum.cn import uscc
    body = "91410481MA3X12345"
    return body + uscc.calc_check_digit(body)


def filing_body(seq: int, year: int = 2025) -> bytes:
    """A valid, unique case.filed request body (case number sequence `seq`)."""
    body = {
        "case_no": f"({year})豫0481执{seq}号",
        "case_type": "执",
        "court_code": "豫0481",
        "filed_on": f"{year}-03-03",
        "target_amount": f"{10000 + seq % 90000}.50",
        "applicants": [{"name": "张伟", "kind": "person", "id_no": _resident_id(seq), "phone": "13812345678"}],
        "respondents": [{"name": "舞钢市某建材有限公司", "kind": "org", "id_no": _credit_code()}],
        "basis": {"doc_no": "（2024）豫0481民初88号", "issuing_court": "舞钢市人民法院", "kind": "judgment"},
    }
    return json.dumps(body, ensure_ascii=False).encode()


def node_events(n: int, cases: int = CASES_FOR_EVENTS, run: str = "") -> list[tuple[bytes, bytes]]:
    """n valid `node.completed` events (key = subject) over `cases` case numbers, ids unique per run."""
    from shared.contract.envelope import COURT_TZ, make_event

    start = datetime(2025, 3, 3, 9, 0, tzinfo=COURT_TZ)
    out = []
    for i in range(n):
        case_no = f"（2025）豫0481执{i % cases + 1}号"
        at = start + timedelta(seconds=i)
        event = make_event(
            type="node.completed", subject=case_no, time=at, source="ecc/bench", id=f"bench{run}:node:{i}",
            data={"node": "property_controlled", "done_at": at.isoformat(), "by": "h-017",
                  "ref": f"A-{i}", "asset_kind": "real_estate", "note": "查封房产一处"},
        )
        out.append((case_no.encode(), event.to_bytes()))
    return out


# ---------------------------------------------------------------- 1. intake

class TopicWatcher:
    """Reads a topic from the beginning (no group) and notes when each key first appears."""

    def __init__(self, bootstrap: str, topic: str):
        self.bootstrap, self.topic = bootstrap, topic
        self.first_seen: dict[str, float] = {}
        self.messages = 0
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                         auto_offset_reset="earliest", group_id=None, fetch_max_wait_ms=50)
        await self.consumer.start()
        partitions = self.consumer.partitions_for_topic(self.topic) or set()
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_beginning(*tps)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for recs in batch.values():
                for rec in recs:
                    self.messages += 1
                    self.first_seen.setdefault(rec.key.decode() if rec.key else "", now)

    async def wait_for(self, keys: set[str], timeout: float) -> bool:
        deadline = time.perf_counter() + timeout
        while not keys <= self.first_seen.keys():
            if time.perf_counter() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()


async def _wait_ready(url: str, proc: Any, timeout: float = 60.0) -> float:
    import httpx
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if not proc.running():
                from tools.stack import log_tail
                raise RuntimeError(f"intake exited during start-up\n{log_tail(proc.log_path)}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url + "/readyz")).status_code == 200:
                    return time.perf_counter() - started
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"intake not ready after {timeout:.0f} s")
            await asyncio.sleep(0.1)


async def bench_intake(ctx: Context, seconds: float, concurrency: int) -> dict[str, Any]:
    import httpx

    from shared.security.settings import SecuritySettings
    from shared.security.tokens import mint_token
    from shared.topics import CASE_EVENTS
    from tools import stack as tools_stack

    stack = ctx.stack
    settings = stack.settings("intake")
    await stack.create_topics(settings)
    port = tools_stack.free_port()
    secret = secrets.token_urlsafe(48)
    env = stack.env(settings, ECC_INTAKE_PORT=str(port), ECC_JWT_ALG="HS256", ECC_JWT_SECRET=secret,
                    ECC_AUTH="on", ECC_RATE_LIMIT_WRITES="off", ECC_LOG_LEVEL="INFO")
    env.pop("ECC_JWT_SECRET_FILE", None)
    token = mint_token("bench", ["window_clerk"], ttl_seconds=3600,
                       settings=SecuritySettings.from_env({k: v for k, v in env.items() if k.startswith("ECC_")}))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    url = f"http://127.0.0.1:{port}"
    topic = settings.topic(CASE_EVENTS.suffix)

    proc = tools_stack.spawn("intake", [sys.executable, "-m", "services.intake"], stack.workdir / "intake.log",
                             env=env, cwd=PROJECT_ROOT, port=port)
    watcher = TopicWatcher(stack.bootstrap, topic)
    try:
        ready_s = await _wait_ready(url, proc)
        await watcher.start()
        seq = itertools.count(1)
        statuses: Counter[int] = Counter()
        warmup_statuses: Counter[int] = Counter()
        latencies: list[float] = []
        answered_at: dict[str, float] = {}   # normalised case number -> when its 201 came back
        errors: Counter[str] = Counter()   # distinct non-201 replies (phase, status, body start)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

            async def one(record: bool) -> None:
                n = next(seq)
                started = time.perf_counter()
                try:
                    response = await client.post("/cases", content=filing_body(n), headers=headers)
                except httpx.HTTPError as exc:
                    (statuses if record else warmup_statuses)[0] += 1
                    errors[f"{'load' if record else 'warm-up'}: {exc!r}"[:200]] += 1
                    return
                done = time.perf_counter()
                if record:
                    statuses[response.status_code] += 1
                    latencies.append(done - started)
                else:
                    warmup_statuses[response.status_code] += 1
                if response.status_code == 201:
                    answered_at[response.json()["case_no"]] = done
                else:
                    errors[f"{'load' if record else 'warm-up'}: {response.status_code} {response.text[:120]}"] += 1

            async def worker(deadline: float) -> None:
                while time.perf_counter() < deadline:
                    await one(True)

            # Warm-up (connections, first transactions, JIT of pydantic validators): not counted.
            for _ in range(INTAKE_WARMUP_REQUESTS // 8):
                await asyncio.gather(*(one(False) for _ in range(8)))
            async with Probe({"intake": proc.pid, "mongo": stack.mongo_pid, "broker": stack.broker_pid,
                              "bench": None}) as probe:
                t0 = time.perf_counter()
                await asyncio.gather(*(worker(t0 + seconds) for _ in range(concurrency)))
                load_end = time.perf_counter()
            elapsed = load_end - t0
        all_on_topic = await watcher.wait_for(set(answered_at), timeout=60)
        drained_at = max((watcher.first_seen[k] for k in answered_at if k in watcher.first_seen), default=load_end)
        lags = [watcher.first_seen[k] - t for k, t in answered_at.items() if k in watcher.first_seen]
        missing = len(set(answered_at) - watcher.first_seen.keys())
        # exactly one message per accepted case? (the relay may repeat after a failure; consumers dedupe)
        await asyncio.sleep(0.5)
        on_topic = watcher.messages
    finally:
        await watcher.stop()
        tools_stack.stop(proc)
    log_text = proc.log_path.read_text(errors="replace") if proc.log_path.exists() else ""
    ok = statuses.get(201, 0)
    lat = percentiles(latencies)
    lag = percentiles(lags)
    return {
        "seconds": elapsed, "concurrency": concurrency, "requests": sum(statuses.values()),
        "statuses": dict(statuses), "warmup_statuses": dict(warmup_statuses), "created_per_s": ok / elapsed,
        "latency_p50": lat[50], "latency_p99": lat[99],
        "accepted_total": len(answered_at), "messages_on_topic": on_topic, "missing_on_topic": missing,
        "all_on_topic": all_on_topic, "drain_after_load_s": max(drained_at - load_end, 0.0),
        "publish_lag_p50": lag[50], "publish_lag_p99": lag[99], "ready_s": ready_s,
        "peak_rss": dict(probe.peak_rss), "cpu": dict(probe.cpu_share), "errors": dict(errors),
        "log_write_conflicts": sum(1 for line in log_text.splitlines()
                                   if "database_unavailable" in line and "WriteConflict" in line),
        "log_unhandled": sum(1 for line in log_text.splitlines() if '"unhandled"' in line),
    }


# ---------------------------------------------------------------- 2. the consumer runtime

class NoopHandler:
    async def handle(self, events: list, effects: Any) -> None:
        return None


class OneWritePerEvent:
    """One UpdateOne upsert per event into collection `effects` (the runtime bulk-writes them per batch)."""

    async def handle(self, events: list, effects: Any) -> None:
        from pymongo import UpdateOne
        for event in events:
            effects.write("effects", UpdateOne(
                {"_id": event.id},
                {"$set": {"case_no": event.subject, "node": event.data.node, "done_at": event.data.done_at}},
                upsert=True))


def _timed_runtime_class():
    from shared.runtime.consumer import ConsumerRuntime

    class TimedRuntime(ConsumerRuntime):
        """The real runtime, timing each batch from process() to the end of its offset commit."""

        target: int = 0
        stop_event: asyncio.Event

        def setup(self, target: int, stop_event: asyncio.Event, pids: dict[str, int | None]) -> None:
            self.target, self.stop_event, self.pids = target, stop_event, pids
            self.cpu: dict[str, float] = {}
            self.batch_seconds: list[float] = []
            self.batch_sizes: list[int] = []
            self.committed = 0
            self.first_started: float | None = None
            self.last_done: float | None = None
            self._batch_started = 0.0

        async def process(self, records):  # type: ignore[no-untyped-def]
            self._batch_started = time.perf_counter()
            if self.first_started is None:
                self.first_started = self._batch_started
                self._cpu0 = cpu_snapshot(self.pids)
            await super().process(records)

        async def _commit(self, records):  # type: ignore[no-untyped-def]
            await super()._commit(records)
            done = time.perf_counter()
            self.batch_seconds.append(done - self._batch_started)
            self.batch_sizes.append(len(records))
            self.committed += len(records)
            self.last_done = done
            if self.committed >= self.target and not self.stop_event.is_set():
                self.cpu = cpu_shares(self._cpu0, cpu_snapshot(self.pids))
                self.stop_event.set()

    return TimedRuntime


async def bench_runtime(ctx: Context, settings: Settings, variant: str, handler: Any, n: int) -> dict[str, Any]:
    from shared.runtime.health import Health
    from shared.runtime.mongo import connect
    from shared.runtime.outbox import Outbox
    from shared.runtime.producer import make_producer
    from shared.topics import CASE_EVENTS

    name = f"bench{variant}"
    settings = replace(settings, mongo_db_prefix=f"{settings.mongo_db_prefix}{variant}_")
    client = connect(settings, name)
    db = client[settings.database(name)]
    producer = make_producer(settings)
    await producer.start()
    stop = asyncio.Event()
    try:
        outbox = Outbox(db, producer, name)
        await outbox.ensure_indexes()
        runtime = _timed_runtime_class()(
            service=name, settings=settings, topics=[CASE_EVENTS], handler=handler, client=client, db=db,
            outbox=outbox, health=Health(name), group_id=f"{name}-{uuid.uuid4().hex[:6]}")
        pids = {"bench": None, "mongo": ctx.stack.mongo_pid, "broker": ctx.stack.broker_pid}
        runtime.setup(n, stop, pids)
        t_start = time.perf_counter()
        await runtime.start()
        try:
            async with Probe(pids) as probe:
                await asyncio.wait_for(runtime.run(stop), timeout=240)
        finally:
            await runtime.stop()
        elapsed = runtime.last_done - runtime.first_started
        handled = await db["inbox"].count_documents({})
        written = await db["effects"].count_documents({})
    finally:
        await producer.stop()
        await client.close()
    p = percentiles(runtime.batch_seconds)
    sizes = percentiles(runtime.batch_sizes, (50,))
    return {
        "variant": variant, "events": runtime.committed, "seconds": elapsed,
        "events_per_s": runtime.committed / elapsed,
        "batches": len(runtime.batch_seconds), "batch_size_p50": sizes[50],
        "batch_p50": p[50], "batch_p99": p[99], "start_to_first_s": runtime.first_started - t_start,
        "inbox_docs": handled, "effects_docs": written,
        "peak_rss": dict(probe.peak_rss), "cpu": runtime.cpu,
        "batch_max_records": settings.batch_max_records, "batch_timeout_ms": settings.batch_timeout_ms,
    }


async def bench_validate_only(ctx: Context, topic: str, n: int) -> dict[str, Any]:
    """Plain aiokafka getmany + parse_event per message, no database: the runtime's CPU ceiling."""
    from aiokafka import AIOKafkaConsumer

    from shared.contract.envelope import parse_event

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=ctx.stack.bootstrap,
                                group_id=f"benchval-{uuid.uuid4().hex[:6]}",
                                enable_auto_commit=False, auto_offset_reset="earliest", session_timeout_ms=2000,
                                heartbeat_interval_ms=500, fetch_max_wait_ms=100, max_partition_fetch_bytes=4 << 20)
    t0 = time.perf_counter()
    await consumer.start()
    seen, first, cpu0 = 0, None, None
    pids = {"bench": None, "broker": ctx.stack.broker_pid}
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            if not batch:
                if time.perf_counter() - t0 > 120:
                    raise TimeoutError(f"validate-only: {seen} of {n}")
                continue
            if first is None:
                first, cpu0 = time.perf_counter(), cpu_snapshot(pids)
            for recs in batch.values():
                for rec in recs:
                    parse_event(rec.value)
                    seen += 1
            await consumer.commit()
        done, cpu = time.perf_counter(), cpu_shares(cpu0, cpu_snapshot(pids))
    finally:
        await consumer.stop()
    return {"events": seen, "seconds": done - first, "events_per_s": seen / (done - first),
            "cpu_cores": cpu.get("bench", 0.0), "cpu": cpu, "start_to_first_s": first - t0}


# ---------------------------------------------------------------- 3. faust

async def bench_faust(ctx: Context, topic: str, n: int, partitions: int, mode: str = "noop") -> dict[str, Any]:
    """A faust worker in its own process: one agent, stream.take(1000, within=0.05), `mode` noop|validate."""
    from tools import stack as tools_stack

    result_file = ctx.stack.workdir / f"faust-{uuid.uuid4().hex[:6]}.json"
    log_path = ctx.stack.workdir / f"faust-{mode}.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "bench._faust_agent", ctx.stack.bootstrap, topic, str(n), str(partitions),
            str(result_file), "1000", "0.05", mode]
    started = time.perf_counter()
    proc = tools_stack.spawn("faust", argv, log_path, env=env, cwd=PROJECT_ROOT)
    probe = Probe({"faust": proc.pid, "broker": ctx.stack.broker_pid, "bench": None})
    try:
        async with probe:
            while not result_file.exists() or not result_file.read_text().endswith("\n"):
                if not proc.running():
                    break
                if time.perf_counter() - started > FAUST_TIMEOUT_S:
                    break
                await asyncio.sleep(0.1)
    finally:
        tools_stack.stop(proc, timeout=3)
    if result_file.exists() and result_file.read_text().strip():
        result = json.loads(result_file.read_text())
        result["ok"] = True
        result["cpu"] = dict(probe.cpu_share)  # over the worker's whole life, start-up included
        return result
    from tools.stack import log_tail
    why = "timed out" if proc.popen is not None and proc.popen.returncode in (None, -15, -9) else \
        f"exited with {proc.popen.returncode if proc.popen else '?'}"
    return {"ok": False, "why": f"{why} after {time.perf_counter() - started:.0f} s", "log": log_tail(log_path, 30)}


# ---------------------------------------------------------------- the suite

async def run(ctx: Context) -> SuiteReport:
    quick = ctx.quick
    seconds = float(ctx.options.get("intake_seconds") or (6.0 if quick else INTAKE_SECONDS))
    concurrency = int(ctx.options.get("intake_concurrency") or INTAKE_CONCURRENCY)
    n = int(ctx.options.get("events") or (10_000 if quick else RUNTIME_EVENTS))
    report = SuiteReport(title="foundation: intake through the outbox, the consumer runtime, faust")
    raw: dict[str, Any] = {"baseline": ctx.baseline}

    # 1. intake
    log(f"intake: POST /cases for {seconds:.0f} s at concurrency {concurrency} (intake as a subprocess)")
    intake = await bench_intake(ctx, seconds, concurrency)
    raw["intake"] = intake
    log(f"intake: {intake['created_per_s']:.0f} created/s, statuses {intake['statuses']}")
    other = {k: v for k, v in intake["statuses"].items() if k != 201}
    report.rows.append(Row(
        what=f"intake `POST /cases` → 201 (through the outbox), {concurrency} concurrent",
        figure=fmt_rate(intake["created_per_s"], " req/s"),
        latency=f"{fmt_ms(intake['latency_p50'])} / {fmt_ms(intake['latency_p99'])}",
        rss=f"intake {fmt_mib(intake['peak_rss'].get('intake'))}",
        rate=intake["created_per_s"], versus="produce",
        note=(f"{intake['requests']:,} requests in {intake['seconds']:.0f} s"
              + (f", non-201: {other}" if other else ", all 201")
              + f"; CPU intake {intake['cpu'].get('intake', 0):.2f}, SecantusDB {intake['cpu'].get('mongo', 0):.2f}, "
                f"load generator {intake['cpu'].get('bench', 0):.2f} cores"),
    ))
    report.rows.append(Row(
        what="intake: 201 answered → case.filed on the topic (outbox relay)",
        figure=("all " if intake["all_on_topic"] else f"{intake['missing_on_topic']} MISSING of ")
        + f"{intake['accepted_total']:,} on topic",
        latency=f"{fmt_ms(intake['publish_lag_p50'])} / {fmt_ms(intake['publish_lag_p99'])}",
        versus="",
        note=(f"last one on the topic {fmt_ms(intake['drain_after_load_s'])} after the load ended; "
              f"{intake['messages_on_topic']:,} messages for {intake['accepted_total']:,} accepted cases"),
    ))

    # 2. consumer runtime
    from shared.topics import CASE_EVENTS
    settings = ctx.stack.settings("runtime")
    await ctx.stack.create_topics(settings)
    topic = settings.topic(CASE_EVENTS.suffix)
    log(f"runtime: producing {n:,} valid node.completed events to {topic} ({settings.partitions} partitions)")
    events = node_events(n, run=ctx.stack.run_id)
    produced = await produce_rate(ctx.stack.bootstrap, topic, [v for _, v in events], keys=[k for k, _ in events])
    raw["pre_produce"] = produced
    size = sum(len(v) for _, v in events) / n
    del events

    runtime_rows = []
    for variant, handler, label in (
        ("noop", NoopHandler(), "no-op handler (inbox insert per event still written)"),
        ("write", OneWritePerEvent(), "handler writes one upsert per event into `effects`"),
    ):
        log(f"runtime ({variant}): consuming {n:,} events")
        result = await bench_runtime(ctx, settings, variant, handler, n)
        raw[f"runtime_{variant}"] = result
        log(f"runtime ({variant}): {result['events_per_s']:.0f} events/s")
        checks = f"inbox {result['inbox_docs']:,}"
        if variant == "write":
            checks += f", effects {result['effects_docs']:,}"
        runtime_rows.append(result)
        report.rows.append(Row(
            what=f"consumer runtime, {label}",
            figure=fmt_rate(result["events_per_s"], " events/s"),
            latency=f"{fmt_ms(result['batch_p50'])} / {fmt_ms(result['batch_p99'])} per batch",
            rss=f"bench {fmt_mib(result['peak_rss'].get('bench'))}",
            rate=result["events_per_s"], versus="consume",
            note=(f"{result['events']:,} events in {result['batches']} batches "
                  f"(median {result['batch_size_p50']:.0f}); "
                  f"documents after: {checks}; CPU bench {result['cpu'].get('bench', 0):.2f}, "
                  f"SecantusDB {result['cpu'].get('mongo', 0):.2f} cores"),
        ))

    # 3. references for ADR 0001
    log("reference: aiokafka getmany + parse_event, no database")
    val = await bench_validate_only(ctx, topic, n)
    raw["validate_only"] = val
    report.rows.append(Row(
        what="reference: plain aiokafka getmany + parse_event (validation only, no database)",
        figure=fmt_rate(val["events_per_s"], " events/s"), rate=val["events_per_s"], versus="consume",
        note=(f"the runtime's ceiling without a database: pydantic validation of each event, one commit per "
              f"batch; {val['cpu_cores']:.2f} cores busy"),
    ))
    if ctx.options.get("skip_faust"):
        report.notes.append("faust was skipped (--no-faust).")
    else:
        for mode, label in (("noop", "no-op (counts only)"), ("validate", "parse_event per event")):
            log(f"faust ({mode}): a faust-streaming agent, stream.take(1000, within=0.05), own process")
            fst = await bench_faust(ctx, topic, n, settings.partitions, mode)
            raw[f"faust_{mode}"] = fst
            what = f"reference: faust-streaming agent, `stream.take(1000, within=0.05)`, {label}, no table"
            if fst.get("ok"):
                log(f"faust ({mode}): {fst['events_per_s']:.0f} events/s")
                report.rows.append(Row(
                    what=what, figure=fmt_rate(fst["events_per_s"], " events/s"),
                    rss=f"faust {fmt_mib(fst.get('peak_rss_bytes'))}",
                    rate=fst["events_per_s"], versus="consume",
                    note=(f"own process, {fst['cpu_cores']:.2f} cores busy; start → first batch "
                          f"{fst['start_to_first_s']:.1f} s (broker_session_timeout=2, broker_heartbeat_interval=0.5); "
                          f"{fst['batches']} batches"),
                ))
            else:
                log(f"faust ({mode}): failed: {fst['why']}")
                report.rows.append(Row(what=what, figure="FAILED", versus="", note=fst["why"]))
                report.details += f"\n## faust ({mode}) failure\n\n```\n" + fst["log"] + "\n```\n"

    # notes and a detail table
    s = runtime_rows[0]
    report.notes += [
        f"Events for the runtime: {n:,} valid `node.completed` envelopes of {size:.0f} bytes on average, keyed by "
        f"case number over {CASES_FOR_EVENTS:,} cases, {settings.partitions} partitions, produced before the timing "
        f"({fmt_rate(produced['msgs_per_s'], ' msg/s')} with the same producer settings as the baseline, keyed). "
        f"Each variant reads them in its own consumer group into its own database.",
        f"Consumer runtime settings: ECC_BATCH_MAX_RECORDS={s['batch_max_records']}, "
        f"ECC_BATCH_TIMEOUT_MS={s['batch_timeout_ms']}; one MongoDB transaction per batch (inbox inserts + effects + "
        f"outbox), then the offset commit. Events/s run from the first batch's start to the last batch's commit; "
        f"batch latency is process() + commit. The runtime ran in the bench process (nothing else was running in it); "
        f"its start → first batch was {s['start_to_first_s']:.1f} s (group join).",
        "Even the no-op handler writes one inbox document per event (that is the dedupe), so both variants are "
        "bound by SecantusDB, a single Python process: see the CPU columns. A production MongoDB moves this ceiling; "
        "the validation-only reference shows where the Python side alone would stop.",
        f"intake: warm-up of {INTAKE_WARMUP_REQUESTS} requests not counted; latency is the client's (httpx, same "
        f"machine); ECC_RATE_LIMIT_WRITES=off, auth on (HS256), log level INFO as deployed. Intake started in "
        f"{intake['ready_s']:.1f} s. Publish lag = time from the client receiving 201 to the watcher (a plain "
        f"consumer in the load generator) seeing the event.",
        "The faust rows have no database and no inbox: set them beside the aiokafka validation-only reference "
        "(same events, same validation), not beside the runtime rows. faust acknowledges each event and commits "
        "on its own schedule; its worker ran in its own process, started after the rows above had finished.",
    ]
    warm_bad = {k: v for k, v in intake["warmup_statuses"].items() if k != 201}
    if warm_bad or intake["errors"]:
        report.notes.append(
            f"intake answers other than 201: load {other or 'none'}, warm-up {warm_bad or 'none'} "
            f"(of {INTAKE_WARMUP_REQUESTS}); intake's log shows {intake['log_write_conflicts']} WriteConflict "
            f"(TransientTransactionError) answered as 503 and {intake['log_unhandled']} unhandled exceptions. "
            "Replies: " + "; ".join(f"{n} x {text}" for text, n in intake["errors"].items()))
    phases = [("intake load", intake["peak_rss"], intake["cpu"])]
    phases += [(f"runtime {r['variant']}", r["peak_rss"], r["cpu"]) for r in runtime_rows]
    phases.append(("validation-only reference", {}, val["cpu"]))
    for mode in ("noop", "validate"):
        fst = raw.get(f"faust_{mode}")
        if fst and fst.get("ok"):
            phases.append((f"faust {mode} (whole worker life)", {"faust": fst.get("peak_rss_bytes")}, fst["cpu"]))
    report.details += "\n## Resources\n\n" + markdown_table(
        ["phase", "peak RSS", "CPU (cores, average over the phase; others = the rest of the machine)"],
        [[name, ", ".join(f"{k} {fmt_mib(v)}" for k, v in rss.items()) or "-",
          ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())] for name, rss, cpu in phases],
    ) + "\n"
    busy = [(name, cpu["others"]) for name, _, cpu in phases if cpu.get("others", 0) > OTHERS_WARN_CORES]
    if ctx.baseline.get("others_cores", 0) > OTHERS_WARN_CORES:
        busy.insert(0, ("raw baseline", ctx.baseline["others_cores"]))
    if busy:
        report.disturbed = True
        report.notes.insert(0, DISTURBED_MARK + ": other processes on this machine used "
                            + ", ".join(f"{v:.2f} cores during {name}" for name, v in busy)
                            + ". Those figures are low; run again on a quiet machine.")
    report.raw = raw
    return report


SUITE = Suite(name="foundation", title="intake through the outbox; the consumer runtime; faust for ADR 0001", run=run)
