"""The county-year replay (issue 4, "done means"): a generated year, replayed twice from scratch,
gives identical triage decisions and alerts, ids and content.

≈ 3,000 cases, ≈ 56,000 events with a tick every simulated hour (tools/workload.py), into
triage and nodewatch running in this process, each run on fresh topics and fresh databases.
Two ways of publishing (tools/replay.py):
- backlog: the whole year is on the topics before the services start; they read it in
  whatever order Kafka gives and put it in time order themselves (shared/runtime/alignment.py);
- paced: the driver publishes a window, waits until it is handled, then its tick, and so on.
Two backlog replays must give the same streams, and so must a paced one: the services'
own ordering gives what a time-ordered reading gives. Takes minutes: marked slow.
"""
from __future__ import annotations

import importlib
import os
import importlib.util
import uuid
from dataclasses import replace

import pytest

from shared.topics import ALERTS, DEADLETTER, TRIAGE_DECISIONS
from tools import stack
from tools.replay import Replayer, canonical, in_process, in_process_watermarks, read_stream, watched_groups
from tools.workload import generate_year

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 2025
# ECC_REPLAY_CASES shrinks the year for a quick local look; the figure is 3,000.
CASES = int(os.environ.get("ECC_REPLAY_CASES", "3000"))
FETCH_MAX_WAIT_MS = 5  # Tansu holds each fetch this long: the floor of a replay barrier (tools/replay.py)


def _nodewatch_ready() -> bool:
    if importlib.util.find_spec("services.nodewatch") is None:
        return False
    if importlib.util.find_spec("services.nodewatch.main") is None:
        return False
    module = importlib.import_module("services.nodewatch.main")
    return callable(getattr(module, "build", None))


# nodewatch joins the replay as soon as services/nodewatch/main.py has its build().
SERVICE_SETS = [("triage", "nodewatch")] if _nodewatch_ready() else [("triage",)]


@pytest.fixture(scope="module")
def year():
    events = generate_year(SEED, CASES)
    if CASES == 3000:
        assert 50_000 < len(events) < 70_000
    return events


async def replay_once(base, events, names, *, paced: bool = False) -> dict[str, list[tuple[str, str]]]:
    run = uuid.uuid4().hex[:6]
    settings = replace(base, topic_prefix=f"rp{run}.", mongo_db_prefix=f"rp{run}_", partitions=6)
    await stack.acreate_topics(settings.kafka_bootstrap, settings.topic_prefix, settings.partitions)
    if paced:
        async with in_process(settings, names, fetch_max_wait_ms=FETCH_MAX_WAIT_MS) as processes:
            async with Replayer(settings, watched_groups(processes)) as replayer:
                result = await replayer.replay(events)
    else:
        async with Replayer(settings, []) as replayer:
            result = await replayer.publish_backlog(events)
            async with in_process(settings, names) as processes:
                await replayer.watch(watched_groups(processes))
                await replayer.drain(result, in_process_watermarks(names))
    assert result.published == len(events)
    return {
        "decisions": canonical(await read_stream(settings, TRIAGE_DECISIONS)),
        "alerts": canonical(await read_stream(settings, ALERTS)),
        "deadletters": [m["value"] for m in await read_stream(settings, DEADLETTER)],
    }


def first_difference(a: list[tuple[str, str]], b: list[tuple[str, str]]) -> str:
    ids_a, ids_b = dict(a), dict(b)
    only_a = sorted(set(ids_a) - set(ids_b))[:5]
    only_b = sorted(set(ids_b) - set(ids_a))[:5]
    changed = [i for i in sorted(set(ids_a) & set(ids_b)) if ids_a[i] != ids_b[i]][:3]
    return (f"{len(a)} vs {len(b)} events; only in run 1: {only_a}; only in run 2: {only_b}; "
            f"different content: {[(i, ids_a[i], ids_b[i]) for i in changed]}")


@pytest.mark.timeout(3600)  # full replays: minutes each (see the figures in bench/results/replay.md)
@pytest.mark.parametrize("names", SERVICE_SETS, ids=["+".join(s) for s in SERVICE_SETS])
async def test_a_county_year_replays_to_identical_decisions_and_alerts(settings, year, names):
    first = await replay_once(settings, year, names)
    second = await replay_once(settings, year, names)
    _assert_same(first, second, names, year)


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("names", SERVICE_SETS, ids=["+".join(s) for s in SERVICE_SETS])
async def test_a_backlog_gives_what_the_paced_time_ordered_replay_gives(settings, year, names):
    backlog = await replay_once(settings, year, names)
    paced = await replay_once(settings, year, names, paced=True)
    _assert_same(backlog, paced, names, year)


def _assert_same(first, second, names, year) -> None:
    assert first["deadletters"] == [] and second["deadletters"] == [], first["deadletters"][:3]
    filings = sum(1 for e in year if e.type == "case.filed")
    assert 0.85 * filings < len(first["decisions"]) < 1.3 * filings  # most cases decided, some revised
    assert first["decisions"] == second["decisions"], first_difference(first["decisions"], second["decisions"])
    if "nodewatch" in names:
        assert len(first["alerts"]) > CASES // 3  # ≈ 4.6 alerts per case in the generated year
        assert first["alerts"] == second["alerts"], first_difference(first["alerts"], second["alerts"])
