"""sentiment's MongoDB state, beside the deadline book's `deadlines`, `alerts` and `clock`.

- `items`: one document per sentiment item (grade, linked cases, state, approval,
  transfers, resolution, history), written by the handler only.
- `case_teams`: the team of each case from triage decisions (latest revision wins).
- `submissions`: what the POST endpoints accepted, keyed by event id, stored in one
  transaction with its outbox entry. A new submission is judged on the stored state plus
  the submissions not applied yet, so "approve" then "transfer" at once is judged in order.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, InsertOne, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.config import Settings
from shared.contract.envelope import Event, parse_event
from shared.deadline_book import DeadlineBook
from shared.runtime.effects import Effects
from shared.runtime.mongo import find_in
from shared.runtime.outbox import COLLECTION as OUTBOX, Outbox
from shared.topics import SENTIMENT_EVENTS

ITEMS = "items"
CASE_TEAMS = "case_teams"
SUBMISSIONS = "submissions"




@dataclass(frozen=True)
class Submitted:
    outcome: str  # created | repeat | conflict | refused
    event_id: str
    refusal: Any = None
    state: str | None = None


class SentimentStore:
    def __init__(self, db: AsyncDatabase, book: DeadlineBook, client: AsyncMongoClient | None = None,
                 outbox: Outbox | None = None, settings: Settings | None = None):
        self.db = db
        self.book = book
        self.client = client
        self.outbox = outbox
        self.topic = settings.topic(SENTIMENT_EVENTS.suffix) if settings is not None else None

    async def ensure_indexes(self) -> None:
        await self.book.ensure_indexes()
        await self.db[ITEMS].create_index([("state", ASCENDING), ("level", ASCENDING)])
        await self.db[ITEMS].create_index([("team", ASCENDING), ("state", ASCENDING)])
        await self.db[ITEMS].create_index([("case_nos", ASCENDING)])
        await self.db[SUBMISSIONS].create_index([("subject", ASCENDING), ("seq", ASCENDING)])

    # -- the handler's reads and writes ------------------------------------------------------

    async def load_items(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        return {d["_id"]: d for d in await find_in(self.db[ITEMS], "_id", ids)}

    async def load_teams(self, case_nos: set[str]) -> dict[str, dict[str, Any]]:
        return {d["_id"]: d for d in await find_in(self.db[CASE_TEAMS], "_id", case_nos)}

    @staticmethod
    def write(effects: Effects, collection: str, docs: list[dict[str, Any]]) -> None:
        """One op per changed document; the version filter turns a concurrent writer into a batch retry."""
        ops = []
        for doc in sorted(docs, key=lambda d: d["_id"]):
            old = doc.get("v")
            doc["v"] = (old or 0) + 1
            if old is None:
                ops.append(InsertOne(doc))
            else:
                ops.append(ReplaceOne({"_id": doc["_id"], "v": old}, doc, upsert=True))
        if ops:
            effects.write(collection, *ops)

    # -- the API's submissions ------------------------------------------------------------------

    async def submit(self, event: Event, fingerprint: str, judge) -> Submitted:
        """Store `event` with its outbox entry unless it repeats, conflicts or `judge` refuses it.

        judge(state, pending_events, event) -> (Refusal | None, state name after it).
        """
        for _attempt in range(5):
            try:
                return await self._submit_once(event, fingerprint, judge)
            except (DuplicateKeyError, BulkWriteError) as exc:
                if isinstance(exc, BulkWriteError) and not all(
                        e.get("code") == 11000 for e in exc.details.get("writeErrors", [])):
                    raise
        return await self._submit_once(event, fingerprint, judge)

    async def _submit_once(self, event: Event, fingerprint: str, judge) -> Submitted:
        assert self.client is not None and self.outbox is not None and self.topic is not None
        async with self.client.start_session() as session:
            async with await session.start_transaction():
                known = await self.db[SUBMISSIONS].find_one({"_id": event.id}, session=session)
                if known is not None:
                    return Submitted("repeat" if known["fingerprint"] == fingerprint else "conflict", event.id)
                state = await self.db[ITEMS].find_one({"_id": event.subject}, session=session)
                applied = {h["id"] for h in (state or {}).get("history", [])}
                pending = [parse_event(doc["event"]) async for doc in self.db[SUBMISSIONS].find(
                    {"subject": event.subject}, session=session).sort("seq", ASCENDING)
                    if doc["_id"] not in applied]
                refusal, after = await judge(state, pending, event)
                if refusal is not None:
                    return Submitted("refused", event.id, refusal)
                wire = event.to_bytes().decode()
                entry = self.outbox.entry(f"{self.topic}:{event.id}", self.topic, event.subject, wire)
                await self.db[SUBMISSIONS].insert_one({
                    "_id": event.id, "subject": event.subject, "type": event.type, "fingerprint": fingerprint,
                    "event": wire, "seq": entry.seq, "received_at": datetime.now(UTC),
                }, session=session)
                await self.db[OUTBOX].bulk_write([entry.upsert()], session=session)
        self.outbox.stored([entry])
        return Submitted("created", event.id, state=after)

    # -- the API's reads ----------------------------------------------------------------------

    async def item(self, item_id: str) -> dict[str, Any] | None:
        return await self.db[ITEMS].find_one({"_id": item_id})

    async def pending(self, item_id: str) -> tuple[dict[str, Any] | None, list[Event]]:
        """The stored item and the submissions not applied to it yet (oldest first), outside a transaction."""
        state = await self.db[ITEMS].find_one({"_id": item_id})
        applied = {h["id"] for h in (state or {}).get("history", [])}
        cursor = self.db[SUBMISSIONS].find({"subject": item_id}).sort("seq", ASCENDING)
        return state, [parse_event(doc["event"]) async for doc in cursor if doc["_id"] not in applied]

    async def case_team(self, case_no: str) -> dict[str, Any] | None:
        return await self.db[CASE_TEAMS].find_one({"_id": case_no})

    async def items(self, *, states: list[str] | None, level: str | None, team: str | None,
                    case_no: str | None) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        if states is not None:
            query["state"] = {"$in": states}
        if level is not None:
            query["level"] = level
        if team is not None:
            query["team"] = team
        if case_no is not None:
            query["case_nos"] = case_no
        cursor = self.db[ITEMS].find(query, {"text": 0}).sort([("captured_at", DESCENDING), ("_id", ASCENDING)])
        return await cursor.to_list(length=None)
