"""funds (一案一账户): events/s of the funds consumer on a generated court workload, beside the raw
broker rates of the same run.

The workload, generated deterministically (seeded), pre-produced before the timing:
filings on `case.events`; receipts (about 1 in 20 unidentified, later matched), payouts (some to a
non-party, some overdrawing), delay approvals on `funds.events`; closures; one clock tick per day
on `clock`. The real FundsHandler runs in the shared consumer runtime in this process against the
private SecantusDB: load the batch's ledgers/registries/deadlines (one query each), decide, one
transaction (inbox + ledgers + registries + deadlines + alerts + outbox), publish alerts, commit.

    python -m bench funds [--quick] [--events N]

`run(baseline)` is the same measurement as a function returning the figures (it starts its own
private stack, and measures the raw baseline itself when given none).
"""
from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from bench.common import (
    Context, Probe, Row, Stack, Suite, SuiteReport, cpu_shares, cpu_snapshot, fmt_mib, fmt_ms, fmt_rate, log,
    percentiles, private_stack, produce_rate, raw_baseline,
)

EVENTS = 30_000
QUICK_EVENTS = 6_000
EVENTS_PER_CASE = 9           # on average: filing, receipts, payouts, a few others
START = datetime.fromisoformat("2025-01-02T09:00:00+08:00")
DAYS = 240
OTHERS_WARN_CORES = 0.15


# ---------------------------------------------------------------- the workload

def _resident_id(n: int) -> str:
    from stdnum.cn import ric
    first17 = f"410481{1960 + n % 40:04d}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    return first17 + ric.calc_check_digit(first17 + "0")


def _credit_code() -> str:
    from stdnum.cn import uscc
    body = "91410481MA3X12345"
    return body + uscc.calc_check_digit(body)


def workload(n_events: int, run: str, seed: int = 15) -> dict[str, list[tuple[bytes, bytes]]]:
    """About n_events valid events per topic suffix, as (key, value) pairs in per-key time order."""
    from shared.contract.envelope import make_event

    rng = random.Random(seed)
    out: dict[str, list[tuple[datetime, bytes, bytes]]] = {"case.events": [], "funds.events": [], "clock": []}

    def add(topic: str, type_: str, subject: str, at: datetime, data: dict, eid: str) -> None:
        event = make_event(type=type_, subject=subject, time=at, data=data, source="ecc/bench", id=f"{run}:{eid}")
        out[topic].append((at, subject.encode(), event.to_bytes()))

    ticks = [START + timedelta(days=d, hours=15) for d in range(DAYS)]
    for at in ticks:
        add("clock", "clock.tick", "clock", at, {"now": at.isoformat()}, f"tick:{at.date()}")
    cases = max(1, (n_events - len(ticks)) // EVENTS_PER_CASE)
    org = _credit_code()
    for c in range(1, cases + 1):
        case_no = f"（2025）豫0481执{c}号"
        applicant = _resident_id(c)
        filed_at = START + timedelta(days=rng.randrange(0, DAYS // 3), hours=rng.randrange(0, 8))
        add("case.events", "case.filed", case_no, filed_at, {
            "case_no": case_no, "case_type": "执", "court_code": "豫0481", "filed_on": filed_at.date().isoformat(),
            "target_amount": "100000.00",
            "applicants": [{"name": "张伟", "kind": "person", "id_no": applicant}],
            "respondents": [{"name": "舞钢市某建材有限公司", "kind": "org", "id_no": org}],
            "basis": {"doc_no": "（2024）豫0481民初88号", "issuing_court": "舞钢市人民法院", "kind": "judgment"},
        }, f"filed:{c}")
        at = filed_at
        held = 0
        for r in range(rng.randint(3, 6)):
            at += timedelta(days=rng.randint(1, 20), minutes=rng.randrange(0, 600))
            amount = rng.randint(100, 500_000) * 100 + rng.randrange(0, 100)
            rid = f"{run}-R{c}-{r}"
            data = {"receipt_id": rid, "amount": f"{amount // 100}.{amount % 100:02d}", "payer_name": "舞钢市某建材有限公司",
                    "received_at": at.isoformat()}
            if rng.random() < 0.05:  # unidentified, matched a few days later
                add("funds.events", "funds.received", f"unmatched:{rid}", at, data, f"rcv:{rid}")
                match_at = at + timedelta(days=rng.randint(1, 6))
                add("funds.events", "funds.matched", f"unmatched:{rid}", match_at,
                    {"receipt_id": rid, "case_no": case_no, "matched_at": match_at.isoformat()}, f"match:{rid}")
            else:
                add("funds.events", "funds.received", case_no, at, {**data, "case_no": case_no}, f"rcv:{rid}")
            held += amount
            if rng.random() < 0.9 and held > 0:
                pay = held if rng.random() < 0.85 else held // 2
                if rng.random() < 0.03:
                    pay += 10_000  # an overdraft now and then
                # Most payouts within the 10 days before the warning; some late, a few past the 30 days.
                late = rng.random()
                days = rng.randint(2, 9) if late < 0.75 else rng.randint(10, 29) if late < 0.95 else rng.randint(31, 60)
                pay_at = at + timedelta(days=days)
                payee = applicant if rng.random() > 0.02 else _resident_id(c + 7919)
                pid = f"{run}-P{c}-{r}"
                add("funds.events", "funds.disbursed", case_no, pay_at, {
                    "payout_id": pid, "case_no": case_no, "amount": f"{pay // 100}.{pay % 100:02d}",
                    "payee_name": "张伟", "payee_id_no": payee, "approved_by": "fm-01",
                    "disbursed_at": pay_at.isoformat()}, f"pay:{pid}")
                held = max(held - pay, 0)
        if rng.random() < 0.05:
            d_at = at + timedelta(days=3)
            add("funds.events", "funds.delay_approved", case_no, d_at, {
                "case_no": case_no, "until": (d_at + timedelta(days=60)).date().isoformat(),
                "reason": "需进行案款分配", "approved_by": "局长王某"}, f"delay:{c}")
        if rng.random() < 0.3:
            c_at = at + timedelta(days=rng.randint(5, 60))
            add("case.events", "case.closed", case_no, c_at, {
                "mode": "performed", "closed_on": c_at.date().isoformat(), "amount_recovered": "100.00"},
                f"closed:{c}")
    # Per key the topic's order is time order (each producer sends its facts as they happen).
    return {topic: [(k, v) for _at, k, v in sorted(items, key=lambda x: x[0])] for topic, items in out.items()}


# ---------------------------------------------------------------- the timed runtime

def _timed_runtime_class():
    # What funds deploys: the shared runtime with the watermark gate (services/funds/main.py).
    from shared.runtime.consumer import ConsumerRuntime

    class TimedRuntime(ConsumerRuntime):
        """The real runtime, timing each batch from process() to the end of its offset commit."""

        def setup(self, target: int, stop_event: asyncio.Event, pids: dict[str, int | None]) -> None:
            self.target, self.stop_event, self.pids = target, stop_event, pids
            self.cpu: dict[str, float] = {}
            self.batch_seconds: list[float] = []
            self.batch_sizes: list[int] = []
            self.committed = 0
            self.store_s = 0.0    # validate + inbox check + handler + the batch's transaction
            self.publish_s = 0.0  # the outbox flush: send what the batch emitted, mark it sent
            self.first_started: float | None = None
            self.last_done: float | None = None
            self._batch_started = 0.0

        async def process(self, records):  # type: ignore[no-untyped-def]
            self._batch_started = time.perf_counter()
            if self.first_started is None:
                self.first_started = self._batch_started
                self._cpu0 = cpu_snapshot(self.pids)
            await super().process(records)

        async def _store_with_retry(self, valid, dead):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return await super()._store_with_retry(valid, dead)
            finally:
                self.store_s += time.perf_counter() - t

        async def _publish_with_retry(self):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return await super()._publish_with_retry()
            finally:
                self.publish_s += time.perf_counter() - t

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


class _InboxTimer:
    """Times the runtime's inbox lookup (shared/runtime/inbox.already_handled) during the run, bench only."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __enter__(self) -> "_InboxTimer":
        from shared.runtime import consumer
        self._module = consumer.inbox
        self._original = original = consumer.inbox.already_handled

        async def timed(db: Any, ids: Any) -> set[str]:
            t = time.perf_counter()
            try:
                return await original(db, ids)
            finally:
                self.seconds += time.perf_counter() - t

        self._module.already_handled = timed  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        self._module.already_handled = self._original  # type: ignore[assignment]


class _TimedHandler:
    """The real handler, with the time spent in it (loads + decisions, before the transaction) summed."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.seconds = 0.0
        self.events = 0

    async def handle(self, events: list, effects: Any) -> None:
        t = time.perf_counter()
        try:
            await self.inner.handle(events, effects)
        finally:
            self.seconds += time.perf_counter() - t
            self.events += len(events)


async def measure(stack: Stack, n_events: int) -> dict[str, Any]:
    """Pre-produce the workload, then time the funds consumer over all of it."""
    from services.funds.handlers import FundsHandler
    from services.funds.policy import POLICY_FILE, load_policy
    from services.funds.rules import FundsRules
    from services.funds.store import FundsStore
    from shared.runtime.alignment import InputGate
    from shared.deadline_book import DeadlineBook
    from shared.calendar import default_calendar
    from shared.runtime.health import Health
    from shared.runtime.mongo import connect
    from shared.runtime.outbox import Outbox
    from shared.runtime.producer import make_producer
    from shared.topics import ALERTS, CASE_EVENTS, CLOCK, DEADLETTER, FUNDS_EVENTS, TRIAGE_DECISIONS

    settings = stack.settings("funds")
    await stack.create_topics(settings)
    run = uuid.uuid4().hex[:6]
    log(f"funds: generating about {n_events:,} events")
    t0 = time.perf_counter()
    load = workload(n_events, run)
    generated_s = time.perf_counter() - t0
    total = sum(len(v) for v in load.values())
    produced: dict[str, Any] = {}
    for suffix, pairs in load.items():
        produced[suffix] = await produce_rate(stack.bootstrap, settings.topic(suffix), [v for _, v in pairs],
                                              keys=[k for k, _ in pairs])
    counts = {suffix: len(pairs) for suffix, pairs in load.items()}
    size = sum(len(v) for pairs in load.values() for _, v in pairs) / total
    del load
    log(f"funds: produced {total:,} events ({counts}); consuming")

    policy = load_policy(settings.rules_file(POLICY_FILE))
    client = connect(settings, "funds")
    db = client[settings.database("funds")]
    producer = make_producer(settings)
    await producer.start()
    stop = asyncio.Event()
    try:
        outbox = Outbox(db, producer, "funds")
        await outbox.ensure_indexes()
        book = DeadlineBook(db, "funds")
        store = FundsStore(client, db, book, outbox, settings)
        await store.ensure_indexes()
        gate = InputGate()
        handler = _TimedHandler(FundsHandler(FundsRules(policy, default_calendar()), book, store, gate))
        runtime = _timed_runtime_class()(
            gate=gate, gated=[FUNDS_EVENTS, CASE_EVENTS, TRIAGE_DECISIONS],
            service="funds", settings=settings, topics=[FUNDS_EVENTS, CASE_EVENTS, TRIAGE_DECISIONS, CLOCK],
            handler=handler, client=client, db=db, outbox=outbox, health=Health("funds"),
            group_id=f"bench-funds-{run}")
        pids = {"bench": None, "mongo": stack.mongo_pid, "broker": stack.broker_pid}
        runtime.setup(total, stop, pids)
        inbox_timer = _InboxTimer()
        t_start = time.perf_counter()
        await runtime.start()
        try:
            async with Probe(pids) as probe:
                with inbox_timer:
                    await asyncio.wait_for(runtime.run(stop), timeout=1800)
        finally:
            await runtime.stop()
        elapsed = runtime.last_done - runtime.first_started
        alerts_raised = await db["alerts"].count_documents({})
        alerts_open = await db["alerts"].count_documents({"state": "open"})
        ledgers = await db["ledgers"].count_documents({})
        letters = await db["outbox"].count_documents({"topic": settings.topic(DEADLETTER.suffix)})
        alert_messages = await db["outbox"].count_documents({"topic": settings.topic(ALERTS.suffix)})
        unsent = await db["outbox"].count_documents({"sent_at": None})
    finally:
        await producer.stop()
        await client.close()
    p = percentiles(runtime.batch_seconds)
    return {
        "events": runtime.committed, "counts": counts, "event_bytes_avg": size, "seconds": elapsed,
        "events_per_s": runtime.committed / elapsed, "batches": len(runtime.batch_seconds),
        "batch_size_p50": percentiles(runtime.batch_sizes, (50,))[50], "batch_p50": p[50], "batch_p99": p[99],
        "start_to_first_s": runtime.first_started - t_start, "generated_s": generated_s, "produced": produced,
        "store_s": runtime.store_s, "publish_s": runtime.publish_s, "handler_s": handler.seconds,
        "inbox_check_s": inbox_timer.seconds,
        "handler_events_per_s": handler.events / handler.seconds if handler.seconds else None,
        "alerts_raised": alerts_raised, "alerts_open": alerts_open, "alert_messages": alert_messages,
        "dead_letters": letters, "outbox_unsent": unsent, "ledgers": ledgers,
        "peak_rss": dict(probe.peak_rss), "cpu": runtime.cpu,
        "batch_max_records": settings.batch_max_records, "batch_timeout_ms": settings.batch_timeout_ms,
    }


async def run(baseline: dict[str, Any] | None = None, *, stack: Stack | None = None,
              events: int = EVENTS) -> dict[str, Any]:
    """funds' events/s with the raw broker rates of the same run: {"funds": {...}, "baseline": {...}, ...}.

    Without `stack`, a private stack is started (and stopped); without `baseline`, the raw baseline is
    measured on that stack first (50,000 messages).
    """
    if stack is None:
        async with private_stack() as own:
            return await run(baseline, stack=own, events=events)
    if baseline is None:
        log("funds: raw baseline (50,000 messages)")
        baseline = await raw_baseline(stack.bootstrap, 50_000)
    result = await measure(stack, events)
    consume = baseline["consume_msgs_per_s"]
    return {
        "funds": result, "baseline": {k: baseline.get(k) for k in (
            "n", "produce_msgs_per_s", "produce_keyed_msgs_per_s", "consume_msgs_per_s")},
        "events_per_s": result["events_per_s"], "raw_consume_msgs_per_s": consume,
        "share_of_raw_consume": result["events_per_s"] / consume if consume else None,
    }


async def suite(ctx: Context) -> SuiteReport:
    n = int(ctx.options.get("events") or (QUICK_EVENTS if ctx.quick else EVENTS))
    out = await run(ctx.baseline, stack=ctx.stack, events=n)
    r = out["funds"]
    report = SuiteReport(title="funds (一案一账户): the fund consumer on a generated court workload")
    report.rows.append(Row(
        what="funds consumer: fund, case and clock events → ledger, rules, deadlines, alerts (one transaction "
             "per batch)",
        figure=fmt_rate(r["events_per_s"], " events/s"),
        latency=f"{fmt_ms(r['batch_p50'])} / {fmt_ms(r['batch_p99'])} per batch",
        rss=f"bench {fmt_mib(r['peak_rss'].get('bench'))}", rate=r["events_per_s"], versus="consume",
        note=(f"{r['events']:,} events in {r['batches']} batches (median {r['batch_size_p50']:.0f}); "
              f"{r['alerts_raised']:,} alerts raised ({r['alert_messages']:,} alert messages), "
              f"{r['dead_letters']} dead letters, {r['ledgers']:,} ledgers; CPU bench {r['cpu'].get('bench', 0):.2f}, "
              f"SecantusDB {r['cpu'].get('mongo', 0):.2f} cores"),
    ))
    report.rows.append(Row(
        what="funds handler alone: batch loads (one query per collection) + decisions, no transaction",
        figure=fmt_rate(r["handler_events_per_s"], " events/s"), rate=r["handler_events_per_s"], versus="consume",
        note=f"{r['handler_s']:.1f} s in handle() for {r['events']:,} events: the ceiling without the database writes",
    ))
    report.notes += [
        f"Workload: {r['counts']} events of {r['event_bytes_avg']:.0f} bytes on average, "
        f"{DAYS} daily ticks, about {EVENTS_PER_CASE} events per case; generated in {r['generated_s']:.1f} s and "
        "produced before the timing. Per topic the messages are in time order; across topics the consumer reads "
        "them as getmany returns them; ticks wait for the fund, case and triage partitions that still have unread "
        "messages timed before them (the watermark gate funds deploys).",
        f"Consumer settings: ECC_BATCH_MAX_RECORDS={r['batch_max_records']}, "
        f"ECC_BATCH_TIMEOUT_MS={r['batch_timeout_ms']}. Events/s run from the first batch's start to the last "
        f"batch's commit; start → first batch {r['start_to_first_s']:.1f} s (group join).",
        "The consumer ran in the bench process, against the private SecantusDB (a single Python process): "
        "see the CPU figures. A production MongoDB moves the ceiling.",
        f"Where the time went: {r['store_s']:.1f} s validating, deciding and storing (one transaction per batch; "
        f"of it {r['handler_s']:.1f} s in the funds handler and {r['inbox_check_s']:.1f} s in the runtime's inbox "
        "lookup, one `$in` over the batch's event ids), "
        f"{r['publish_s']:.1f} s in the outbox flush (sending the batch's alerts, marking them sent), of "
        f"{r['seconds']:.1f} s. funds' own loads are chunked `$in` queries (services/funds/store.py IN_CHUNK: "
        "SecantusDB is slow on long ones); the deadline book serves the batch from its cache.",
        f"Alerts: {r['alerts_raised']:,} raised for {r['events']:,} events ({r['alert_messages']:,} alert messages "
        "with the resolutions): each one is a document in `alerts` and an outbox entry in the batch's "
        "transaction, so the alert rate of the workload weighs on the figure.",
    ]
    others = r["cpu"].get("others", 0.0)
    if others > OTHERS_WARN_CORES and hasattr(report, "disturbed"):
        report.disturbed = True
        report.notes.insert(0, f"**Disturbed run**: other processes used {others:.2f} cores during the run.")
    report.raw = out
    return report


SUITE = Suite(name="funds", title="funds (一案一账户): fund consumer events/s beside the raw broker rate", run=suite)


def main() -> None:
    """python -m bench.funds [events]: the figures as JSON, on a private stack."""
    import json
    import sys
    events = int(sys.argv[1]) if len(sys.argv) > 1 else EVENTS
    print(json.dumps(asyncio.run(run(events=events)), indent=1, default=str, ensure_ascii=False))


if __name__ == "__main__":
    main()
