"""Where a replay's time goes: services in this process, per-batch timings, no other services.

    python -m bench.replay_inprocess --cases 3000 --services triage,nodewatch [--free | --backlog] [--fetch-wait-ms 5]

Starts a private Tansu + SecantusDB, runs the named services in this event loop
(tools.replay.in_process, as tests/integration/test_replay.py does), replays the
generated county year paced (default), free-running, or as a backlog (published before the
services start: tools/replay.Replayer.publish_backlog), and prints one line: events,
seconds, barriers, time waiting at barriers, and per service the batches handled and
the time spent in them (ConsumerRuntime.process: validate, inbox, handler, transaction,
publish). Findings and figures: bench/results/2026-11-27-replay-analysis.md.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time
from collections import Counter

from bench.common import private_stack
from shared.runtime import consumer as runtime_module
from tools.replay import Replayer, in_process, in_process_watermarks, watched_groups
from tools.workload import generate_year

BATCHES: Counter = Counter()
BATCH_SECONDS: Counter = Counter()


def _time_batches() -> None:
    """Wrap ConsumerRuntime.process to add up batches and their seconds per service."""
    original = runtime_module.ConsumerRuntime.process

    async def process(self, records, **options):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        await original(self, records, **options)
        BATCHES[self.service] += 1
        BATCH_SECONDS[self.service] += time.perf_counter() - started

    runtime_module.ConsumerRuntime.process = process  # type: ignore[method-assign]


async def main(args: argparse.Namespace) -> None:
    os.environ.setdefault("ECC_JWT_SECRET", secrets.token_hex(32))
    os.environ.setdefault("ECC_LOG_LEVEL", "WARNING")
    _time_batches()
    async with private_stack() as stack:
        settings = stack.settings("inprocess")
        await stack.create_topics(settings)
        events = generate_year(args.seed, args.cases)
        names = args.services.split(",")
        if args.backlog:
            async with Replayer(settings, []) as replayer:
                run = await replayer.publish_backlog(events)
                async with in_process(settings, names, fetch_max_wait_ms=args.fetch_wait_ms) as processes:
                    await replayer.watch(watched_groups(processes))
                    await replayer.drain(run, in_process_watermarks(names))
        else:
            async with in_process(settings, names, fetch_max_wait_ms=args.fetch_wait_ms) as processes:
                async with Replayer(settings, watched_groups(processes)) as replayer:
                    run = await replayer.replay(events, paced=not args.free)
    per_service = ", ".join(f"{name} {BATCHES[name]:,} batches / {BATCH_SECONDS[name]:.1f} s" for name in names)
    mode = "backlog" if args.backlog else "free-running" if args.free else "paced"
    print(f"{mode} replay of {args.cases:,} cases "
          f"(fetch wait {args.fetch_wait_ms} ms): {run.published:,} events in {run.seconds:.1f} s; "
          f"{run.segments:,} barriers, {run.barrier_seconds:.1f} s waiting at them, "
          f"{run.publish_seconds:.1f} s publishing; {per_service}; nudges {run.nudges}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.replay_inprocess", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--services", default="triage,nodewatch", help="upstream first")
    parser.add_argument("--free", action="store_true", help="free-running instead of paced")
    parser.add_argument("--backlog", action="store_true", help="the year published before the services start")
    parser.add_argument("--fetch-wait-ms", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
