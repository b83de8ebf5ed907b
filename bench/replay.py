"""Bench suite `replay`: the county year (≈ 3,000 cases, ≈ 56,000 events, hourly ticks)
replayed into the whole stack, each service in its own process as `make up` runs it.

    python -m bench replay            # with the other suites' stack and raw baseline
    python -m bench.replay [--quick] [--cases N] [--no-profile] [--paced]
                                      # alone: writes bench/results/replay.md

Phases, each on fresh topics and databases (tools/replay.py drives them):
1. backlog (the issue's figure): the whole year published first, then every service
   started; they read it as a backlog in whatever order Kafka gives and put it in time
   order themselves (shared/runtime/alignment.py), so the output is the paced replay's
   (tests/integration/test_replay.py checks that). Wall time = publishing + start-up +
   until triage's and nodewatch's groups committed everything and their watermarks
   reached the last tick; throughput = events / that time;
2. paced (--paced; 10+ minutes at full size): each window of events drained before its
   tick, each tick run before the next window; wall time, and alert latency from a tick
   published to its alert on ecc.alerts (the live path: one tick, its alerts);
3. profile: a backlog replay of the first events with triage and nodewatch under
   pyinstrument; the top of each call tree goes into the report.
Every service found as services/<name>/__main__.py runs (the ticker does not: the
replay is the clock). Memory is each process's peak RSS; MongoDB documents per
open case count every document of the service's database after the paced replay
(inbox, outbox and audit apart) over the cases open at the end of the year.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import (
    Context, Probe, Row, Suite, SuiteReport, fmt_mib, fmt_ms, fmt_rate, log, markdown_table, percentiles,
)
from shared.config import PROJECT_ROOT, Settings

WATCHED = ("triage", "nodewatch")  # upstream first: nodewatch reads triage's decisions
PROFILE_EVENTS = 15_000
RUNTIME_COLLECTIONS = ("inbox", "outbox", "audit")


def stack_services() -> list[str]:
    """Every service `make up` would start, except the ticker (the replay publishes the clock)."""
    return sorted(p.parent.name for p in (PROJECT_ROOT / "services").glob("*/__main__.py")
                  if p.parent.name != "ticker")


@dataclass
class Running:
    name: str
    proc: Any
    port: int
    ready: bool = False
    note: str = ""


@dataclass
class Phase:
    name: str
    settings: Settings
    running: list[Running] = field(default_factory=list)
    probe: Probe | None = None
    ready_seconds: float = 0.0
    outputs: dict[str, int] = field(default_factory=dict)
    documents: dict[str, tuple[int, int]] = field(default_factory=dict)


async def _wait_ready(running: Running, timeout: float, path: str = "/readyz") -> None:
    import httpx

    from tools.stack import log_tail

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if not running.proc.running():
                running.note = "exited at start-up: " + log_tail(running.proc.log_path, 3).strip().splitlines()[-1]
                return
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"http://127.0.0.1:{running.port}{path}")).status_code == 200:
                    running.ready = True
                    return
            await asyncio.sleep(0.2)
    running.note = f"not ready after {timeout:.0f} s"


@contextlib.asynccontextmanager
async def whole_stack(ctx: Context, phase_name: str, *, profile: tuple[str, ...] = (),
                      before_start: Callable[[Settings], Awaitable[object]] | None = None):
    """Fresh topics and databases, every service as a subprocess; yields the Phase once they are up.

    before_start(settings) runs once the topics exist, before any service starts (a backlog's publishing)."""
    from tools import stack as tools_stack

    settings = ctx.stack.settings(f"replay{phase_name}", partitions=6)
    await ctx.stack.create_topics(settings)
    if before_start is not None:
        await before_start(settings)
    secret = secrets.token_urlsafe(48)
    phase = Phase(phase_name, settings)
    workdir = ctx.stack.workdir / f"replay-{phase_name}"
    workdir.mkdir(parents=True, exist_ok=True)
    for name in stack_services():
        port = tools_stack.free_port()
        env = ctx.stack.env(settings, **{f"ECC_{name.upper()}_PORT": str(port)}, ECC_JWT_ALG="HS256",
                            ECC_JWT_SECRET=secret,
                            # The barrier waits for the watched services only: they get the short fetch
                            # wait; the others keep the default, or their polling fills the broker's
                            # CPU (300 cases paced: 182 s with 5 ms for all, 140 s like this).
                            ECC_FETCH_MAX_WAIT_MS="5" if name in WATCHED else str(Settings.fetch_max_wait_ms),
                            ECC_LOG_LEVEL=os.environ.get("ECC_BENCH_LOG_LEVEL", "WARNING"))
        env.pop("ECC_JWT_SECRET_FILE", None)
        argv = [sys.executable, "-m", f"services.{name}"]
        if name in profile:
            argv = [sys.executable, "-m", "pyinstrument", "--renderer", "text", "--outfile",
                    str(workdir / f"{name}.profile.txt"), "-m", f"services.{name}"]
        proc = tools_stack.spawn(name, argv, workdir / f"{name}.log", env=env, cwd=PROJECT_ROOT, port=port)
        phase.running.append(Running(name, proc, port))
    try:
        # With a backlog on the topics nobody is "ready" (caught up) until it is drained: wait for alive.
        path = "/healthz" if before_start is not None else "/readyz"
        await asyncio.gather(*(_wait_ready(r, 90.0, path) for r in phase.running))
        missing = [r for r in phase.running if r.name in WATCHED and not r.ready]
        if missing:
            raise RuntimeError("; ".join(f"{r.name} {r.note}" for r in missing))
        pids: dict[str, int | None] = {r.name: r.proc.pid for r in phase.running if r.ready}
        pids |= {"database": ctx.stack.mongo_pid, "broker": ctx.stack.broker_pid, "driver": None}
        async with Probe(pids, interval=0.5) as probe:
            phase.probe = probe
            yield phase
    finally:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: tools_stack.stop_many([r.proc for r in phase.running], 30.0))


async def _watched(settings: Settings) -> list:
    """The consumer groups of triage and nodewatch, read from their own wiring (build())."""
    from shared.runtime.service import ServiceProcess
    from tools.replay import Watched

    # build() wires the HTTP app too, whose security settings want a token secret: any will do here.
    os.environ.setdefault("ECC_JWT_ALG", "HS256")
    os.environ.setdefault("ECC_JWT_SECRET", secrets.token_hex(32))
    out = []
    for name in WATCHED:
        process = ServiceProcess(name, settings)
        __import__(f"services.{name}.main", fromlist=["build"]).build(process)
        out += [Watched(name, rt.group_id, tuple(sorted(rt.topics))) for rt in process.consumers]
        await process.client.close()
    return out


async def _backlog(ctx: Context, name: str, events: list, *, profile: tuple[str, ...] = ()):
    """Publish `events` to fresh topics, then start the whole stack and wait until triage and nodewatch
    committed everything and applied the last tick. Returns (ReplayRun, Phase with outputs/documents)."""
    from shared.topics import ALERTS, TRIAGE_DECISIONS
    from tools.replay import Replayer, http_watermarks, read_stream

    replayer: Replayer | None = None
    run = None

    async def publish(settings: Settings) -> None:
        nonlocal replayer, run
        replayer = Replayer(settings, [], linger_ms=20, barrier_timeout=1800)
        await replayer.start()
        run = await replayer.publish_backlog(
            events, progress=lambda n, total: log(f"replay {name}: {n:,}/{total:,} published"))

    try:
        async with whole_stack(ctx, name, profile=profile, before_start=publish) as phase:
            assert replayer is not None and run is not None
            phase.ready_seconds = time.perf_counter() - replayer.t0 - run.publish_seconds
            await replayer.watch(await _watched(phase.settings))
            ports = {r.name: r.port for r in phase.running if r.name in WATCHED}
            await replayer.drain(run, http_watermarks(ports))
            log(f"replay {name}: drained in {run.seconds:.1f} s")
            if not profile:
                # ecc.alerts also carries funds', entrust's, sentiment's and termination's alerts (not waited for).
                alerts = [m for m in await read_stream(phase.settings, ALERTS)
                          if m["value"].get("source") == "ecc/nodewatch"]
                decisions = await read_stream(phase.settings, TRIAGE_DECISIONS)
                phase.outputs = {"decisions": len(decisions), "alerts": len(alerts)}
                phase.documents = {w: await _db_documents(phase.settings, w) for w in WATCHED}
    finally:
        if replayer is not None:
            await replayer.stop()
    return run, phase


async def _db_documents(settings: Settings, name: str) -> tuple[int, int]:
    """(documents of the service's own state, documents of inbox/outbox/audit) in its database."""
    from pymongo import AsyncMongoClient

    client = AsyncMongoClient(settings.mongo_url, tz_aware=True)
    try:
        db = client[settings.database(name)]
        state = runtime = 0
        for collection in await db.list_collection_names():
            count = await db[collection].count_documents({})
            if collection in RUNTIME_COLLECTIONS:
                runtime += count
            else:
                state += count
        return state, runtime
    finally:
        await client.close()


def _profile_summary(path: Path, lines: int = 45) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no profile written at {path})"
    body = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    return "\n".join(body[:lines])


async def run(ctx: Context) -> SuiteReport:
    from shared.topics import ALERTS, TRIAGE_DECISIONS
    from tools.replay import Replayer, alert_latencies, read_stream
    from tools.workload import generate_year

    cases = int(ctx.options.get("replay_cases") or (300 if ctx.quick else 3000))
    profile = not ctx.options.get("replay_no_profile", False)
    if profile and importlib.util.find_spec("pyinstrument") is None:
        profile = False
        report_note = "profile skipped: pyinstrument is not installed (pip install pyinstrument)"
    else:
        report_note = ""
    skip_paced = not ctx.options.get("replay_paced", False)
    events = generate_year(2025, cases)
    open_cases = sum(e.type == "case.filed" for e in events) - sum(e.type == "case.closed" for e in events)
    log(f"replay: {cases:,} cases, {len(events):,} events, {open_cases:,} open at year end")
    report = SuiteReport(title=f"County-year replay into the whole stack ({cases:,} cases, {len(events):,} events)")
    if report_note:
        report.notes.append(report_note)
    raw: dict[str, Any] = {"cases": cases, "events": len(events), "open_cases_at_year_end": open_cases,
                           "services": stack_services()}

    # 1. backlog: the year on the topics, then the whole stack starts and catches up
    backlog, phase = await _backlog(ctx, "backlog", events)
    assert phase.probe is not None
    raw["backlog"] = {"seconds": backlog.seconds, "publish_seconds": backlog.publish_seconds,
                      "caught_up_at": backlog.caught_up_at, "peak_rss": phase.probe.peak_rss,
                      "cpu_share": phase.probe.cpu_share, "ready_seconds": phase.ready_seconds,
                      "decisions": phase.outputs.get("decisions"), "alerts": phase.outputs.get("alerts"),
                      "nudges": backlog.nudges}
    target = "within" if backlog.seconds < 120 else "over"
    report.rows.append(Row(
        what="county year, backlog replay into the whole stack", figure=f"{backlog.seconds:.0f} s",
        rate=len(events) / backlog.seconds, versus="consume",
        note=f"{target} the 120 s target: publishing {backlog.publish_seconds:.1f} s, services ready after "
             f"{phase.ready_seconds:.1f} s, {phase.outputs.get('decisions', 0):,} decisions and "
             f"{phase.outputs.get('alerts', 0):,} nodewatch alert events"
             + (f"; {backlog.nudges} stall nudges (see tools/replay.py)" if backlog.nudges else "")))
    for name in WATCHED:
        seconds = backlog.caught_up_at.get(name, backlog.seconds)
        report.rows.append(Row(
            what=f"{name}: backlog replay, whole stack", figure=fmt_rate(len(events) / seconds, " events/s"),
            rss=fmt_mib(phase.probe.peak_rss.get(name)), rate=len(events) / seconds, versus="consume",
            note=f"group committed all {len(events):,} events {seconds:.0f} s after publishing began"))
    for name in WATCHED:
        state, runtime = phase.documents[name]
        report.rows.append(Row(
            what=f"{name}: MongoDB documents per open case", figure=f"{state / max(open_cases, 1):.1f}",
            rss=fmt_mib(phase.probe.peak_rss.get(name)), versus="",
            note=f"{state:,} state documents for {open_cases:,} open cases (and "
                 f"{runtime:,} inbox/outbox/audit documents: {runtime / max(open_cases, 1):.1f} per open case)"))
    report.notes.append(f"backlog phase: {phase.probe.cpu_note()} (wall {phase.probe.wall:.0f} s)")
    rss_rows = [[name, fmt_mib(phase.probe.peak_rss.get(name))] for name in sorted(phase.probe.peak_rss)]
    report.details += "\n## Peak RSS per process (backlog phase)\n\n" + markdown_table(["process", "peak RSS"],
                                                                                        rss_rows, "lr") + "\n"

    # 2. paced, deterministic replay: wall time and tick → alert latency
    if not skip_paced:
        async with whole_stack(ctx, "paced") as phase:
            async with Replayer(phase.settings, await _watched(phase.settings), barrier_timeout=600) as replayer:
                paced = await replayer.replay(
                    events, paced=True,
                    progress=lambda n, total: log(f"replay paced: {n:,}/{total:,} published"))
            alerts = await read_stream(phase.settings, ALERTS)
            decisions = await read_stream(phase.settings, TRIAGE_DECISIONS)
        assert phase.probe is not None
        latencies = alert_latencies(paced, alerts)
        pct = percentiles(latencies) if latencies else {50: float("nan"), 99: float("nan")}
        raw["paced"] = {"seconds": paced.seconds, "segments": paced.segments, "barrier_seconds": paced.barrier_seconds,
                        "publish_seconds": paced.publish_seconds, "alerts": len(alerts), "decisions": len(decisions),
                        "alert_latency_p50": pct[50], "alert_latency_p99": pct[99], "latencies_n": len(latencies),
                        "peak_rss": phase.probe.peak_rss, "cpu_share": phase.probe.cpu_share,
                        "nudges": paced.nudges}
        report.rows.append(Row(
            what="county year, paced (deterministic) replay, whole stack", figure=f"{paced.seconds:.0f} s",
            rate=len(events) / paced.seconds, versus="consume",
            note=f"{paced.segments:,} barriers (window → tick → window), "
                 f"{len(decisions):,} decisions, {len(alerts):,} alert events"
                 + (f"; {paced.nudges} stall nudges (see tools/replay.py)" if paced.nudges else "")))
        report.rows.append(Row(
            what="alert latency: tick published → alert on ecc.alerts (paced)",
            figure=f"{len(latencies):,} alerts", latency=f"{fmt_ms(pct[50])} / {fmt_ms(pct[99])}", versus=""))
        report.notes.append(f"paced phase: {phase.probe.cpu_note()} (wall {phase.probe.wall:.0f} s)")

    # 3. where the time goes
    if profile:
        head = events[:PROFILE_EVENTS]
        profiled, _ = await _backlog(ctx, "profile", head, profile=WATCHED)
        workdir = ctx.stack.workdir / "replay-profile"
        raw["profile"] = {"events": len(head), "seconds": profiled.seconds}
        report.details += (f"\n## Where the time goes (pyinstrument, backlog replay of the first "
                           f"{len(head):,} events, {profiled.seconds:.0f} s)\n")
        for name in WATCHED:
            report.details += f"\n### {name}\n\n```\n{_profile_summary(workdir / f'{name}.profile.txt')}\n```\n"
    report.raw = raw
    return report


SUITE = Suite(name="replay", title="County-year replay (triage, nodewatch, whole stack)", run=run)


# ---------------------------------------------------------------- standalone: python -m bench.replay

async def _main(args: argparse.Namespace) -> int:
    import shlex

    from bench.__main__ import quiet_logging
    from bench.common import measured_baseline, private_stack, render_report

    quiet_logging()
    command = "python -m bench.replay " + shlex.join(sys.argv[1:])
    async with private_stack(keep_workdir=args.keep_workdir) as stack:
        log(f"private stack: broker {stack.bootstrap}, work dir {stack.workdir}")
        baseline = await measured_baseline(stack, args.baseline_n)
        started, t0 = datetime.now().astimezone(), time.perf_counter()
        ctx = Context(stack=stack, baseline=baseline, quick=args.quick,
                      options={"replay_cases": args.cases, "replay_no_profile": args.no_profile,
                               "replay_paced": args.paced})
        report = await run(ctx)
        text = render_report(SUITE, report, baseline, command=command, started=started,
                             seconds=time.perf_counter() - t0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    import json
    out.with_suffix(".json").write_text(json.dumps({"command": command, **report.raw}, indent=1,
                                                   ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    print(text)
    log(f"written to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 cases instead of 3,000")
    parser.add_argument("--cases", type=int, default=None)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--paced", action="store_true", help="also the paced replay (alert latency; 10+ min)")
    parser.add_argument("--baseline-n", type=int, default=100_000)
    parser.add_argument("--keep-workdir", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "replay.md"))
    args = parser.parse_args(argv)
    return asyncio.run(_main(args))


if __name__ == "__main__":
    raise SystemExit(main())
