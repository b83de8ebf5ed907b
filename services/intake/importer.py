"""Bulk import of JSON-lines exports from the national case-flow system (全国执行案件流程系统).

    python -m services.intake.importer export.jsonl [--report rejected.jsonl] [--batch 500]

One JSON object per line:
    {"type": "case.filed", "data": {...case.filed data...}}
    {"type": "node.completed", "case_no": "（2025）豫0481执1号", "id": "flow-123",
     "time": "2025-03-04T10:00:00+08:00", "data": {...}}
`id` and `time` are optional (an export that carries ids makes re-imports idempotent).
Lines are validated exactly as the HTTP API validates them and stored through the
same outbox, a batch per transaction. Rejected lines go to the report with their
line number and field-level reasons; the exit code is 0 when every line was
accepted (new or repeat), 1 when any was rejected, 2 on a usage or I/O error.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import TypeAdapter, ValidationError
from tqdm import tqdm

from services.intake.domain import FILING_TYPE, Outcome, Submission, event_submission, filing_submission
from services.intake.store import IntakeStore
from shared.config import Settings
from shared.contract.casenumber import CaseNumberError, parse_case_no
from shared.contract.events import EVENT_DATA_MODELS
from shared.contract.types import EventTime
from shared.http.errors import error_items
from shared.logging import configure_logging
from shared.runtime.mongo import connect
from shared.runtime.outbox import Outbox
from shared.runtime.producer import make_producer
from shared.topics import CASE_EVENTS

_TIME = TypeAdapter(EventTime)
IMPORTABLE = CASE_EVENTS.event_types


@dataclass
class Rejected:
    line: int
    errors: list[dict[str, str]]

    def to_json(self) -> str:
        return json.dumps({"line": self.line, "errors": self.errors}, ensure_ascii=False)


def _error(field: str, message: str, message_zh: str) -> list[dict[str, str]]:
    return [{"field": field, "type": "invalid", "message": message, "message_zh": message_zh}]


def parse_line(text: str, received_at: datetime) -> Submission | list[dict[str, str]]:
    """One export line → a Submission, or its field-level errors."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return _error("", f"not JSON: {exc.msg}", "不是有效的 JSON")
    if not isinstance(obj, dict):
        return _error("", "a line must be a JSON object", "每行须为 JSON 对象")
    unknown = set(obj) - {"type", "case_no", "id", "time", "data"}
    if unknown:
        return _error(",".join(sorted(unknown)), "unknown fields", "存在未定义的字段")
    event_type = obj.get("type")
    if event_type not in IMPORTABLE:
        return _error("type", f"not a case event type: {event_type!r}", f"不是案件事件类型：{event_type!r}")
    try:
        data = EVENT_DATA_MODELS[event_type].model_validate(obj.get("data"))
    except ValidationError as exc:
        return error_items(exc.errors(include_url=False), prefix=("data",))
    if event_type == FILING_TYPE:
        return filing_submission(data, received_at)
    try:
        case_no = parse_case_no(obj.get("case_no")).normalized
        event_time = _TIME.validate_python(obj["time"]) if obj.get("time") is not None else None
    except CaseNumberError as exc:
        return _error("case_no", exc.reason, exc.reason_zh)
    except ValidationError as exc:
        return error_items(exc.errors(include_url=False), prefix=("time",))
    event_id = obj.get("id")
    if event_id is not None and (not isinstance(event_id, str) or not event_id):
        return _error("id", "id must be a non-empty string", "id 须为非空字符串")
    return event_submission(case_no, event_type, data, event_time, event_id, received_at)


async def run_import(path: Path, report: Path, batch_size: int, settings: Settings) -> Counter:
    client = connect(settings, "intake-importer")
    db = client[settings.database("intake")]
    producer = make_producer(settings)
    outbox = Outbox(db, producer, "intake")  # built here, inside the running loop
    store = IntakeStore(client, db, outbox, settings)
    await store.ensure_indexes()
    await outbox.ensure_indexes()
    counts: Counter = Counter()
    received_at = datetime.now(UTC)
    total = sum(1 for _ in path.open(encoding="utf-8"))
    pending: list[tuple[int, Submission]] = []
    with path.open(encoding="utf-8") as lines, report.open("w", encoding="utf-8") as rejected, \
            tqdm(total=total, unit="line", desc="import", file=sys.stderr) as progress:

        async def store_pending() -> None:
            accepted = await store.accept([sub for _, sub in pending])
            for (number, _), result in zip(pending, accepted, strict=True):
                counts[result.outcome.value] += 1
                if result.outcome in (Outcome.CONFLICT, Outcome.UNKNOWN_CASE):
                    message = {"conflict": ("conflicts with what is already stored", "与已存储的内容冲突"),
                               "unknown_case": ("the case has not been filed", "该案尚未立案")}[result.outcome.value]
                    rejected.write(Rejected(number, _error("case_no", *message)).to_json() + "\n")
            progress.update(len(pending))
            pending.clear()

        for number, text in enumerate(lines, start=1):
            if not text.strip():
                progress.update(1)
                continue
            parsed = parse_line(text, received_at)
            if isinstance(parsed, list):
                counts["invalid"] += 1
                rejected.write(Rejected(number, parsed).to_json() + "\n")
                progress.update(1)
                continue
            pending.append((number, parsed))
            if len(pending) >= batch_size:
                await store_pending()
        if pending:
            await store_pending()
    # Publish now if the broker is there; otherwise the running intake's relay finds the entries.
    try:
        await asyncio.wait_for(producer.start(), timeout=10)
        await outbox.flush()
        counts["published"] = counts["created"]
    except Exception as exc:  # noqa: BLE001 - reported, not fatal: the entries are stored
        print(f"broker not reachable ({exc!r}); the intake service's relay will publish the stored events",
              file=sys.stderr)
    finally:
        await producer.stop()
        await client.close()
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.intake.importer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export", type=Path, help="JSON-lines export file")
    parser.add_argument("--report", type=Path, default=None, help="where rejected lines go (default: <export>.rejected.jsonl)")
    parser.add_argument("--batch", type=int, default=500, help="lines per transaction (default 500)")
    args = parser.parse_args(argv)
    if not args.export.is_file():
        print(f"no such file: {args.export}", file=sys.stderr)
        return 2
    if args.batch < 1:
        print("--batch must be at least 1", file=sys.stderr)
        return 2
    report = args.report or args.export.with_suffix(args.export.suffix + ".rejected.jsonl")
    settings = Settings.from_env()
    configure_logging("intake-importer", settings.log_level)
    counts = asyncio.run(run_import(args.export, report, args.batch, settings))
    rejected = counts["invalid"] + counts["conflict"] + counts["unknown_case"]
    print(json.dumps({"created": counts["created"], "repeat": counts["repeat"], "rejected": rejected,
                      "report": str(report)}, ensure_ascii=False))
    return 1 if rejected else 0


if __name__ == "__main__":
    sys.exit(main())
