"""A faust-streaming agent doing no-op consumption in batches, for bench.foundation (ADR 0001).

    python -m bench._faust_agent BOOTSTRAP TOPIC N PARTITIONS RESULT_FILE [TAKE] [WITHIN] [noop|validate]

Runs a faust worker whose one agent reads TOPIC with `stream.take(TAKE, within=WITHIN)`
and only counts (noop) or also parses each value with shared.contract.envelope.parse_event
(validate); when it has N events it writes a JSON line to RESULT_FILE
({"n", "seconds", "events_per_s", "cpu_cores", "start_to_first_s", "batches", "peak_rss_bytes"})
and exits. The rate runs from the end of the first batch to the N-th event and leaves the
first batch's events out of the count (the clock starts when it is done).
Settings are the tuned embedded ones of runtime.md: broker_session_timeout=2,
broker_heartbeat_interval=0.5, no table, no web server.
"""
from __future__ import annotations

import json
import os
import sys
import time
import uuid

T_IMPORT = time.perf_counter()

import faust  # noqa: E402


def _rss() -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def main() -> None:
    bootstrap, topic_name, n, partitions, result_file = sys.argv[1:6]
    n, partitions = int(n), int(partitions)
    take = int(sys.argv[6]) if len(sys.argv) > 6 else 1000
    within = float(sys.argv[7]) if len(sys.argv) > 7 else 0.05
    mode = sys.argv[8] if len(sys.argv) > 8 else "noop"
    parse = None
    if mode == "validate":
        from shared.contract.envelope import parse_event as parse

    app = faust.App(
        f"bench-faust-{uuid.uuid4().hex[:6]}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        broker_session_timeout=2,
        broker_heartbeat_interval=0.5,
        consumer_auto_offset_reset="earliest",
        topic_partitions=partitions,
        topic_replication_factor=1,
        processing_guarantee="at_least_once",
    )
    source = app.topic(topic_name, key_serializer="raw", value_serializer="raw", partitions=partitions)
    state = {"count": 0, "first": None, "first_len": 0, "cpu0": 0.0, "batches": 0}

    @app.agent(source)
    async def noop(stream):  # noqa: ANN001 - faust's stream type
        async for batch in stream.take(take, within=within):
            if parse is not None:
                for value in batch:
                    parse(value)
            if state["first"] is None:  # the clock starts once the first batch is done
                state["first"] = time.perf_counter()
                state["first_len"] = len(batch)
                state["cpu0"] = sum(os.times()[:2])
            state["count"] += len(batch)
            state["batches"] += 1
            if state["count"] >= n:
                elapsed = time.perf_counter() - state["first"]
                cpu = sum(os.times()[:2]) - state["cpu0"]
                measured = state["count"] - state["first_len"]
                result = {
                    "n": state["count"], "measured": measured, "seconds": elapsed,
                    "events_per_s": measured / elapsed, "cpu_cores": cpu / elapsed, "mode": mode,
                    "start_to_first_s": state["first"] - T_IMPORT, "batches": state["batches"],
                    "take": take, "within": within, "peak_rss_bytes": _rss(),
                    "faust": faust.__version__,
                }
                with open(result_file, "w") as out:
                    out.write(json.dumps(result) + "\n")
                sys.stdout.flush()
                os._exit(0)  # measured; no need for a graceful faust shutdown

    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
