"""python -m bench [suite ...] [--quick] [--no-faust] [--baseline-n N] [--keep-workdir] [--out DIR] ...

Starts a private Tansu + SecantusDB on free ports, measures the raw aiokafka
baseline on it, runs every suite (or the ones named), writes
bench/results/<date>-<suite>.md (+ .json) and prints each table on stdout.
Progress goes to stderr.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import pkgutil
import shlex
import sys
import time
from datetime import datetime
from pathlib import Path

import bench
from bench.common import (
    RESULTS_DIR, Context, Suite, fmt_rate, log, measured_baseline, private_stack, render_report, wait_for_quiet,
    write_results,
)


def discover() -> dict[str, Suite]:
    suites: dict[str, Suite] = {}
    for info in pkgutil.iter_modules(bench.__path__):
        if info.name.startswith("_") or info.name == "common":
            continue
        module = importlib.import_module(f"bench.{info.name}")
        suite = getattr(module, "SUITE", None)
        if isinstance(suite, Suite):
            suites[suite.name] = suite
    return suites


def quiet_logging() -> None:
    """The services' JSON logs go to stderr at WARNING: stdout carries the tables."""
    import structlog

    from shared.logging import configure_logging
    configure_logging("bench", "WARNING")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)


async def main_async(args: argparse.Namespace, suites: list[Suite]) -> int:
    command = "python -m bench " + shlex.join(sys.argv[1:])
    options = {"skip_faust": args.no_faust, "intake_seconds": args.intake_seconds,
               "intake_concurrency": args.intake_concurrency, "events": args.events}
    if args.wait_quiet > 0:
        busy = await wait_for_quiet(args.wait_quiet)
        if busy is not None and busy >= 0.2:
            log(f"WARNING: the machine is still busy ({busy:.2f} cores) after {args.wait_quiet:.0f} s; running anyway")
    async with private_stack(keep_workdir=args.keep_workdir) as stack:
        log(f"private stack: broker {stack.bootstrap}, database {stack.mongo_url.split('/?')[0]}, "
            f"work dir {stack.workdir}")
        log(f"raw baseline: {args.baseline_n:,} messages")
        baseline = await measured_baseline(stack, args.baseline_n)
        log(f"raw baseline: produce {fmt_rate(baseline['produce_msgs_per_s'], ' msg/s')}, "
            f"consume {fmt_rate(baseline['consume_msgs_per_s'], ' msg/s')}")
        for suite in suites:
            started, t0 = datetime.now().astimezone(), time.perf_counter()
            ctx = Context(stack=stack, baseline=baseline, quick=args.quick, options=options)
            log(f"suite {suite.name}: {suite.title}")
            report = await suite.run(ctx)
            seconds = time.perf_counter() - t0
            text = render_report(suite, report, baseline, command=command, started=started, seconds=seconds)
            raw = {"suite": suite.name, "started": started.isoformat(), "seconds": seconds, "command": command,
                   "disturbed": report.disturbed, **report.raw}
            path = write_results(suite, text, raw, started, Path(args.out), disturbed=report.disturbed)
            print(text)
            log(f"suite {suite.name}: {seconds:.0f} s, written to {path}")
            if report.disturbed:
                log(f"suite {suite.name}: DISTURBED: other processes competed for the CPU; the figures are low")
        if args.keep_workdir:
            log(f"kept {stack.workdir} (logs of broker, database, intake, faust)")
    return 0


def main(argv: list[str] | None = None) -> int:
    available = discover()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks on a private embedded stack (Tansu + SecantusDB); see bench/README.md.")
    parser.add_argument("suites", nargs="*", metavar="suite",
                        help=f"which suites (default: all): {', '.join(sorted(available))}")
    parser.add_argument("--quick", action="store_true", help="smaller loads, for a smoke run (figures not comparable)")
    parser.add_argument("--no-faust", action="store_true", help="skip the faust-streaming reference")
    parser.add_argument("--intake-seconds", type=float, help="foundation: length of the intake load (default 20)")
    parser.add_argument("--intake-concurrency", type=int, help="foundation: concurrent intake clients (default 32)")
    parser.add_argument("--events", type=int, help="foundation: events for the consumer runtime (default 50000)")
    parser.add_argument("--baseline-n", type=int, default=100_000,
                        help="messages for the raw baseline (default 100000)")
    parser.add_argument("--out", default=str(RESULTS_DIR), help="results folder (default bench/results)")
    parser.add_argument("--wait-quiet", type=float, default=120.0,
                        help="first wait up to this many seconds for other processes to go quiet "
                             "(default 120; 0: don't wait)")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the stack's logs and data folder")
    args = parser.parse_args(argv)
    unknown = [s for s in args.suites if s not in available]
    if unknown:
        parser.error(f"unknown suite(s) {', '.join(unknown)}; known: {', '.join(sorted(available))}")
    suites = [available[s] for s in (args.suites or sorted(available))]
    quiet_logging()
    return asyncio.run(main_async(args, suites))


if __name__ == "__main__":
    sys.exit(main())
