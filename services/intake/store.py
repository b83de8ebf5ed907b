"""Intake's MongoDB state: cases, their events, and the outbox, written together.

`accept` takes a batch of submissions (one for an HTTP request, hundreds for
the importer) and stores all new ones in one transaction with their outbox
entries: a 2xx answer means the event is durable and will reach the topic.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, InsertOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from services.intake.domain import Outcome, Submission, decide
from services.intake.handlers import TEAMS
from shared.config import Settings
from shared.runtime.outbox import COLLECTION as OUTBOX, Outbox, OutboxEntry
from shared.topics import CASE_EVENTS

CASES = "cases"
EVENTS = "events"


@dataclass(frozen=True)
class Accepted:
    submission: Submission
    outcome: Outcome
    event_id: str  # for a repeat: the id stored the first time


class IntakeStore:
    def __init__(self, client: AsyncMongoClient, db: AsyncDatabase, outbox: Outbox, settings: Settings):
        self.client = client
        self.db = db
        self.outbox = outbox
        self.topic = settings.topic(CASE_EVENTS.suffix)

    async def ensure_indexes(self) -> None:
        await self.db[EVENTS].create_index([("case_no", ASCENDING), ("time", ASCENDING)])

    async def accept(self, submissions: list[Submission]) -> list[Accepted]:
        """Decide and store a batch; a race with a concurrent writer is decided again."""
        for attempt in range(5):
            try:
                return await self._accept_once(submissions)
            except (DuplicateKeyError, BulkWriteError) as exc:
                if isinstance(exc, BulkWriteError) and not all(
                        e.get("code") == 11000 for e in exc.details.get("writeErrors", [])):
                    raise
            except OperationFailure as exc:
                # A write conflict with a concurrent transaction: MongoDB says retry the whole transaction.
                if not exc.has_error_label("TransientTransactionError"):
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
        return await self._accept_once(submissions)

    async def _accept_once(self, submissions: list[Submission]) -> list[Accepted]:
        case_nos = list({s.case_no for s in submissions})
        event_ids = list({s.event.id for s in submissions if not s.is_filing})
        async with self.client.start_session() as session:
            async with await session.start_transaction():
                known_cases = {d["_id"]: d async for d in self.db[CASES].find(
                    {"_id": {"$in": case_nos}}, {"fingerprint": 1, "event_id": 1}, session=session)}
                known_events = {d["_id"]: d async for d in self.db[EVENTS].find(
                    {"_id": {"$in": event_ids}}, {"fingerprint": 1}, session=session)} if event_ids else {}
                results, case_ops, event_ops, entries = self._plan(submissions, known_cases, known_events)
                if case_ops:
                    await self.db[CASES].bulk_write(case_ops, ordered=True, session=session)
                if event_ops:
                    await self.db[EVENTS].bulk_write(event_ops, ordered=True, session=session)
                if entries:
                    await self.db[OUTBOX].bulk_write([e.upsert() for e in entries], ordered=True, session=session)
        self.outbox.stored(entries)
        return results

    def _plan(self, submissions: list[Submission], known_cases: dict[str, Any], known_events: dict[str, Any]):
        now = datetime.now(UTC)
        results: list[Accepted] = []
        case_ops: list[InsertOne] = []
        event_ops: list[InsertOne] = []
        entries: list[OutboxEntry] = []
        for sub in submissions:
            event = sub.event
            outcome = decide(sub, known_cases.get(sub.case_no), known_events.get(event.id))
            stored_id = event.id
            if outcome is Outcome.REPEAT and sub.is_filing:
                stored_id = known_cases[sub.case_no]["event_id"]
            results.append(Accepted(sub, outcome, stored_id))
            if outcome is not Outcome.CREATED:
                continue
            wire = event.to_json_dict()
            if sub.is_filing:
                doc = {"_id": sub.case_no, "fingerprint": sub.fingerprint, "event_id": event.id,
                       "filing": wire["data"], "filed_time": wire["time"], "received_at": now}
                known_cases[sub.case_no] = doc
                case_ops.append(InsertOne(doc))
            else:
                known_events[event.id] = {"fingerprint": sub.fingerprint}
            event_ops.append(InsertOne({
                "_id": event.id, "case_no": sub.case_no, "type": event.type, "time": wire["time"],
                "data": wire["data"], "fingerprint": sub.fingerprint, "received_at": now,
            }))
            entries.append(self.outbox.entry(f"{self.topic}:{event.id}", self.topic, event.subject, event.to_bytes()))
        return results, case_ops, event_ops, entries

    async def team_of(self, case_no: str) -> str | None:
        doc = await self.db[TEAMS].find_one({"_id": case_no}, {"team": 1})
        return doc["team"] if doc else None

    async def case(self, case_no: str) -> dict[str, Any] | None:
        doc = await self.db[CASES].find_one({"_id": case_no})
        if doc is None:
            return None
        events = [d async for d in self.db[EVENTS].find({"case_no": case_no}).sort("time", ASCENDING)]
        return {
            "case_no": case_no,
            "filing": doc["filing"],
            "received_at": doc["received_at"].isoformat(),
            "events": [{"id": e["_id"], "type": e["type"], "time": e["time"], "data": e["data"]} for e in events],
        }


class GroupCommit:
    """Batch-first for HTTP: requests that arrive while a transaction is in flight share the next one.

    One request alone is written at once (no added wait); under load, every transaction carries
    all the submissions that queued up meanwhile (up to `max_batch`), so the database sees one
    transaction per burst instead of one per request.
    """

    def __init__(self, store: IntakeStore, max_batch: int = 500):
        self.store = store
        self.max_batch = max_batch
        self._queue: list[tuple[Submission, asyncio.Future[Accepted]]] = []
        self._draining = False

    async def submit(self, submission: Submission) -> Accepted:
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._queue.append((submission, future))
        if not self._draining:
            self._draining = True
            asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
                try:
                    results = await self.store.accept([submission for submission, _ in batch])
                except Exception as exc:  # every waiter gets the error (a 503 for a database outage)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._draining = False
